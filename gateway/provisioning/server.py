"""The provisioning HTTP server (plain HTTP, as SIP Gateway's regional provisioning servers) on the gateway's loop.

URLs (``[...]`` optional, in this order)::

    /[lang_xx/][tenantid/<guid>/]<file>                 bootstrap: what DHCP option 66/160 hands a device
    /[lang_xx/][tenantid/<guid>/]s/<token>/<file>       the device's state URL (signed out / signed in)
    POST /s/<token>/signin                              the device's Sign-in action: pairing code + page URL
    POST /s/<token>/signout                             the device's Sign-out action
    GET  /s/<token>/status                              what the device shows (state, user, number, code)

``<file>`` is what the vendor asks for (``$PSN.xml``, ``$mac.cfg``, ``mac.ini``, ``algop$mac.conf``, see
:mod:`gateway.provisioning.formats`). The device is identified by its HTTP User-Agent, checked against the
catalogue like the SIP one: an unknown device, a firmware verdict that is not acceptable, a file name its vendor
does not use or a MAC that differs from the User-Agent's is refused (403/404) with the reason in the body.

A bootstrap fetch is what a factory-fresh (or factory-reset) device does: it is onboarded (new onboarding
credentials, new state token) and gets the onboarding configuration, whose resync URL is its state URL. A
state-URL fetch returns the configuration of the device's current state; a stale token (the device was reset
and onboarded again since) is 410, an offboarded device 403 until a factory reset. Every exchange is kept
(bounded) for evidence: ``exchanges(since)``.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from aiohttp import web

from device_profiles.catalogue import default_catalogue
from device_profiles.verdict import check_user_agent
from gateway.provisioning import formats
from gateway.services.model import PairState
from gateway.services.signin import SignInError

log = logging.getLogger("sipgw.provisioning")

LANGS = ("en", "es", "ja", "de", "fr", "pt")
_PATH = re.compile(r"^/(?:lang_(?P<lang>[a-z]{2})/)?(?:tenantid/(?P<tenant>[0-9A-Fa-f-]{36})/)?"
                   r"(?:s/(?P<token>[0-9a-f]{12}-\d+-[0-9a-f]{12})/)?(?P<file>[^/]+)$")


class ProvisioningServer:
    def __init__(self, gw, signin, *, lab_mode: bool = True, max_exchanges: int = 5000):
        self.gw = gw
        self.signin = signin
        self.lab_mode = lab_mode
        self._exchanges: list[dict[str, Any]] = []
        self._seq = 0
        self._max = max_exchanges
        self.restarts: dict[str, float] = {}
        self.app = web.Application(middlewares=[self._record])
        from gateway.web import routes as page_routes

        self.app.add_routes(page_routes(self))
        self.app.add_routes([
            web.post(r"/s/{token}/signin", self.device_signin),
            web.post(r"/s/{token}/signout", self.device_signout),
            web.get(r"/s/{token}/status", self.device_status),
            web.get("/favicon.ico", _no_icon),  # browsers ask for it on the web pages
            web.get(r"/{path:.*}", self.config),
        ])
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------------
    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        bound = self._runner.addresses
        self.address = (host, int(bound[0][1]) if bound else port)
        log.info("event=provisioning_listening url=%s", self.url)
        return self.address

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        assert self.address is not None
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    # --- evidence ----------------------------------------------------------------------------------------------
    @web.middleware
    async def _record(self, request: web.Request, handler):
        body = ""
        if request.method == "POST" and request.can_read_body:
            raw = await request.read()
            body = _redact(raw.decode("utf-8", "replace"))
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            resp = exc
        text = getattr(resp, "text", None) or ""
        self._seq += 1
        self._exchanges.append({"seq": self._seq, "t": self.gw.clock.now(), "monotonic": time.monotonic(),
                                "method": request.method, "path": request.path_qs,
                                "user_agent": request.headers.get("User-Agent", ""), "peer": request.remote,
                                "request_body": body[:2000], "status": resp.status,
                                "content_type": resp.content_type, "response_body": _redact(text)[:4000]})
        del self._exchanges[:-self._max]
        if isinstance(resp, web.HTTPException) and resp.status >= 300:
            raise resp
        return resp

    def exchanges(self, after_seq: int = 0) -> list[dict[str, Any]]:
        return [e for e in self._exchanges if e["seq"] > after_seq]

    def request_restart(self, key: str) -> None:
        self.restarts[key] = self.gw.clock.now()
        log.info("event=restart_requested device=%s", key)

    # --- configuration ---------------------------------------------------------------------------------------------
    def _identify(self, request: web.Request, filename: str):
        ua = request.headers.get("User-Agent", "")
        verdict = check_user_agent(ua, source="http")
        if verdict.vendor is None:  # some devices fetch with their SIP User-Agent (Cisco ATA)
            verdict = check_user_agent(ua, source="sip")
        if verdict.vendor is None or verdict.model is None:
            raise _refuse(403, f"User-Agent {ua!r} is not a device SIP Gateway provisions: {verdict.reason}")
        profile = default_catalogue().find(verdict.model, verdict.vendor)
        fmt = formats.format_for(verdict.vendor, profile.kind if profile else None)
        if fmt is None:
            raise _refuse(404, f"{verdict.vendor} {verdict.model} is not provisioned by SIP Gateway")
        m = fmt.match_file(filename)
        mac = verdict.mac
        if m is None:
            raise _refuse(404, f"{verdict.vendor} {verdict.model} devices ask for "
                          f"{' or '.join(formats.expected_files(fmt, mac or '<mac>'))}, not {filename!r}")
        file_mac = m.groupdict().get("mac")
        if file_mac:
            file_mac = file_mac.lower()
            if mac and mac != file_mac:
                raise _refuse(403, f"{filename!r} names MAC {file_mac} but the User-Agent says {mac}")
            mac = file_mac
        if not mac:
            raise _refuse(403, f"cannot tell which device this is: no MAC in {filename!r} or in User-Agent {ua!r}")
        if not verdict.acceptable:
            raise _refuse(403, f"firmware refused for {verdict.vendor} {verdict.model}: {verdict.reason}")
        return verdict, profile, fmt, mac

    async def config(self, request: web.Request) -> web.Response:
        m = _PATH.match(request.path)
        if m is None:
            raise _refuse(404, f"no provisioning file at {request.path}; expected "
                          "/[lang_xx/][tenantid/<guid>/][s/<token>/]<file>")
        lang = m.group("lang") or "en"
        if lang not in LANGS:
            raise _refuse(404, f"language {lang!r} is not offered (offered: {', '.join(LANGS)})")
        verdict, _profile, fmt, mac = self._identify(request, m.group("file"))
        token = m.group("token")
        if token is None:
            device = self.signin.onboard(mac, vendor=verdict.vendor, model=verdict.model, firmware=verdict.found,
                                         user_agent=verdict.user_agent, verdict=verdict.verdict.value,
                                         verdict_reason=verdict.reason, lang=lang, tenant=m.group("tenant"))
        else:
            device = self.gw.devices.get(mac)
            if device is not None and device.pair_state is PairState.OFFBOARDED:
                raise _refuse(403, f"device {mac} was offboarded (not connected for too long); factory-reset it "
                              "to onboard again")
            if not self.signin.state_token_ok(mac, token):
                raise _refuse(410, f"state token {token} is not current for device {mac}; it was onboarded again "
                              "since (fetch the bootstrap URL)")
            device = self.signin.config_fetched(mac)
        return self._render(request, fmt, mac, device, m.group("file"), lang, m.group("tenant"))

    def _render(self, request, fmt, mac, device, filename, lang, tenant) -> web.Response:
        rec = self.signin.record(mac)
        creds = self.signin.credentials(mac)
        if creds is None:
            raise _refuse(403, f"device {mac} has no credentials in its state ({device.pair_state.value})")
        prefix = (f"/lang_{lang}" if lang != "en" else "") + (f"/tenantid/{tenant}" if tenant else "")
        state_url = f"{self.url}{prefix}/s/{rec['token']}/{filename}"
        host, port = self.gw.endpoints.tls if self.gw.endpoints else ("127.0.0.1", 5061)
        user = self.gw.directory.user(device.username) if device.pair_state is PairState.PAIRED else None
        state = {"onboarding": "onboarding", "unpaired": "signed_out", "paired": "signed_in"}.get(
            device.pair_state.value, device.pair_state.value)
        try:
            text = formats.render(fmt, sip_host=host, sip_port=port, transport="tls", sip_user=creds.username,
                                  sip_password=creds.password, display_name=user.name if user else "Sign in",
                                  number=(user.number if user else "") or "", state_url=state_url, lang=lang,
                                  signin_url=f"{self.url}{'/lang_' + lang if lang != 'en' else ''}/signin",
                                  state=state, lab_mode=self.lab_mode)
        except formats.ConfigInvalid as exc:
            log.error("event=config_invalid device=%s format=%s problem=%r", mac, fmt.name, str(exc))
            raise _refuse(500, f"the {fmt.name} configuration for {mac} is invalid: {exc}") from None
        if device.pair_state is PairState.PAIRED:
            self.signin.signed_in_config_fetched(mac)
        log.info("event=config_served device=%s format=%s state=%s", mac, fmt.name, state)
        return web.Response(text=text, content_type=fmt.content_type, headers={"X-Sgw-State": state})

    # --- device actions ------------------------------------------------------------------------------------------
    def _device_for_token(self, token: str) -> str:
        mac = token.split("-", 1)[0]
        if not self.signin.state_token_ok(mac, token):
            raise _refuse(410, f"state token {token} is not current; fetch the bootstrap URL again")
        return mac

    async def device_signin(self, request: web.Request) -> web.Response:
        mac = self._device_for_token(request.match_info["token"])
        try:
            pairing = self.signin.start_pairing(mac)
        except SignInError as exc:
            return web.json_response({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)
        return web.json_response({"pairing_code": pairing.code, "auth_url": f"{self.url}/signin",
                                  "expires": pairing.expires})

    async def device_signout(self, request: web.Request) -> web.Response:
        mac = self._device_for_token(request.match_info["token"])
        try:
            self.signin.sign_out(mac, by="device")
        except SignInError as exc:
            return web.json_response({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)
        return web.json_response({"state": "signed_out", "message": "Signed Out Successfully"})

    async def device_status(self, request: web.Request) -> web.Response:
        mac = self._device_for_token(request.match_info["token"])
        return web.json_response(self.status(mac))

    def status(self, mac: str) -> dict[str, Any]:
        device = self.gw.devices.get(mac)
        pairing = self.signin.pairing_for(mac)
        user = self.gw.directory.user(device.username) if device and device.username else None
        return {"key": mac, "pair_state": device.pair_state.value if device else None,
                "user": user.username if user else None, "name": user.name if user else None,
                "number": user.number if user else None,
                "pairing_code": pairing.code if pairing else None,
                "pairing_expires": pairing.expires if pairing else None,
                "auth_url": f"{self.url}/signin", "restart_requested": self.restarts.get(mac)}


async def _no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


def _refuse(status: int, message: str) -> web.HTTPException:
    log.warning("event=provisioning_refused status=%d reason=%r", status, message)
    cls = {403: web.HTTPForbidden, 404: web.HTTPNotFound, 410: web.HTTPGone}.get(status, web.HTTPInternalServerError)
    return cls(text=message + "\n", content_type="text/plain")


_SECRET = re.compile(r"(?i)((?:password|pwd|Password_1_|AuthPassword)[^=>\"']*[=>\"']\s*'?)([^<\"'\s&]+)")


def _redact(text: str) -> str:
    """Evidence never keeps secrets: password values and form fields are blanked."""
    return _SECRET.sub(r"\1***", text)
