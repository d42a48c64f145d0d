"""The provisioning HTTP server (plain HTTP, as SIP Gateway's regional provisioning servers) on the gateway's loop.

URLs (``[...]`` optional, in this order)::

    /[lang_xx/][tenantid/<guid>/]<file>                 bootstrap: what DHCP option 66/160 hands a device
    /[lang_xx/][tenantid/<guid>/]s/<token>/<file>       the device's state URL (signed out / signed in)
    POST /s/<token>/signin[?port=N]                     the device's Sign-in action: pairing code + page URL
    POST /s/<token>/signout[?port=N]                    the device's Sign-out action
    GET  /s/<token>/status[?port=N]                     what the device shows (state, user, number, code)

The state token names the device (its MAC); ``port`` names one line of a multi-port ATA (default its first).
The web pages (:mod:`gateway.web`) are here too: ``/signin`` is open, ``/admin/...`` needs ``Authorization: Bearer
<token>`` when the gateway has a control token (:mod:`gateway.control_api.auth`).

``<file>`` is what the vendor asks for (``$PSN.xml``, ``$mac.cfg``, ``mac.ini``, ``algop$mac.conf``, see
:mod:`gateway.provisioning.formats`). The device is identified by its HTTP User-Agent, checked against the
catalogue like the SIP one: an unknown device, a firmware verdict that is not acceptable, a file name its vendor
does not use or a MAC that differs from the User-Agent's is refused (403/404) with the reason in the body.
An ATA gets one file with every port's account (:mod:`gateway.provisioning.formats`), each port in its own
state; ``X-Sgw-State`` is the first line's, ``X-Sgw-Lines`` every line's (``001=signed_in,002=signed_out``).

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
from gateway.control_api.auth import admin_paths, bearer_middleware
from gateway.provisioning import formats
from gateway.services.model import PairState
from gateway.services.signin import SignInError, split_key

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
        # The admin pages (sign out, restart devices) need the control token when the gateway has one; what a
        # phone or a user signing in reaches (files, /s/<token>/..., /signin) stays open.
        secret = getattr(getattr(gw, "config", None), "control_token", None)
        middlewares = [self._record]
        if secret is not None:
            middlewares.append(bearer_middleware(secret.get_secret_value(), admin_paths))
        self.app = web.Application(middlewares=middlewares)
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
        """The admin's Restart: the whole device restarts (an ATA with all its ports)."""
        mac = split_key(key)[0]
        self.restarts[mac] = self.gw.clock.now()
        log.info("event=restart_requested device=%s", mac)

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
            self.signin.onboard(mac, vendor=verdict.vendor, model=verdict.model, firmware=verdict.found,
                                user_agent=verdict.user_agent, verdict=verdict.verdict.value,
                                verdict_reason=verdict.reason, lang=lang, tenant=m.group("tenant"))
        else:
            lines = self.signin.lines(mac)
            if lines and all(d.pair_state is PairState.OFFBOARDED for d in lines):
                raise _refuse(403, f"device {mac} was offboarded (not connected for too long); factory-reset it "
                              "to onboard again")
            if not self.signin.state_token_ok(mac, token):
                raise _refuse(410, f"state token {token} is not current for device {mac}; it was onboarded again "
                              "since (fetch the bootstrap URL)")
            self.signin.config_fetched(mac)
        return self._render(request, fmt, mac, m.group("file"), lang, m.group("tenant"))

    def _render(self, request, fmt, mac, filename, lang, tenant) -> web.Response:
        """The device's file: every line's account in its current state (one line unless it is an ATA)."""
        rec = self.signin.record(mac)  # the device's state token
        lines = []
        for device in self.signin.lines(mac):
            creds = self.signin.credentials(device.key)
            user = self.gw.directory.user(device.username) if device.pair_state is PairState.PAIRED else None
            lines.append({"n": split_key(device.key)[1] or 1, "key": device.key, "device": device,
                          "creds": creds, "sip_user": creds.username if creds else "",
                          "sip_password": creds.password if creds else "",
                          "display_name": user.name if user else "Sign in", "number": (user.number if user else "")
                          or "", "state": _STATE.get(device.pair_state.value, device.pair_state.value)})
        if not lines or not any(line["creds"] for line in lines):
            state = lines[0]["device"].pair_state.value if lines else "unknown"
            raise _refuse(403, f"device {mac} has no credentials in its state ({state})")
        first = lines[0]
        prefix = (f"/lang_{lang}" if lang != "en" else "") + (f"/tenantid/{tenant}" if tenant else "")
        state_url = f"{self.url}{prefix}/s/{rec['token']}/{filename}"
        host, port = self.gw.endpoints.tls if self.gw.endpoints else ("127.0.0.1", 5061)
        try:
            text = formats.render(fmt, sip_host=host, sip_port=port, transport="tls", sip_user=first["sip_user"],
                                  sip_password=first["sip_password"], display_name=first["display_name"],
                                  number=first["number"], state_url=state_url, lang=lang,
                                  signin_url=f"{self.url}{'/lang_' + lang if lang != 'en' else ''}/signin",
                                  state=first["state"], lab_mode=self.lab_mode, lines=lines)
        except formats.ConfigInvalid as exc:
            log.error("event=config_invalid device=%s format=%s problem=%r", mac, fmt.name, str(exc))
            raise _refuse(500, f"the {fmt.name} configuration for {mac} is invalid: {exc}") from None
        for line in lines:
            if line["device"].pair_state is PairState.PAIRED:
                self.signin.signed_in_config_fetched(line["key"])
        states = ",".join(f"{line['n']:03d}={line['state']}" for line in lines)
        log.info("event=config_served device=%s format=%s state=%s lines=%s", mac, fmt.name, first["state"], states)
        return web.Response(text=text, content_type=fmt.content_type,
                            headers={"X-Sgw-State": first["state"], "X-Sgw-Lines": states})

    # --- device actions ------------------------------------------------------------------------------------------
    def _line_for_token(self, request: web.Request) -> str:
        """The line a device action is for: the token's device, its ``?port=N`` (default its first line)."""
        token = request.match_info["token"]
        mac = token.split("-", 1)[0]
        if not self.signin.state_token_ok(mac, token):
            raise _refuse(410, f"state token {token} is not current; fetch the bootstrap URL again")
        raw = request.query.get("port")
        if raw is not None and not (raw.isdigit() and 1 <= int(raw) <= 999):
            raise web.HTTPBadRequest(
                text=json_error(400, "bad_port", f"query.port: {raw!r} is not a port number (1 to 999)",
                                "query.port"), content_type="application/json")
        try:
            return self.signin.key_for_port(mac, int(raw) if raw is not None else None)
        except SignInError as exc:
            raise web.HTTPNotFound(text=json_error(exc.status, exc.code, exc.message, exc.where),
                                   content_type="application/json") from None

    async def device_signin(self, request: web.Request) -> web.Response:
        key = self._line_for_token(request)
        try:
            pairing = self.signin.start_pairing(key)
        except SignInError as exc:
            return web.json_response({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)
        return web.json_response({"key": key, "pairing_code": pairing.code, "auth_url": f"{self.url}/signin",
                                  "expires": pairing.expires})

    async def device_signout(self, request: web.Request) -> web.Response:
        key = self._line_for_token(request)
        try:
            self.signin.sign_out(key, by="device")
        except SignInError as exc:
            return web.json_response({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)
        return web.json_response({"key": key, "state": "signed_out", "message": "Signed Out Successfully"})

    async def device_status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status(self._line_for_token(request)))

    def status(self, key: str) -> dict[str, Any]:
        """What a line's display shows (a multi-port ATA's port: its own state, user and code)."""
        device = self.gw.devices.get(key)
        pairing = self.signin.pairing_for(key)
        user = self.gw.directory.user(device.username) if device and device.username else None
        mac, port = split_key(key)
        return {"key": key, "mac": mac, "port": port, "pair_state": device.pair_state.value if device else None,
                "user": user.username if user else None, "name": user.name if user else None,
                "number": user.number if user else None,
                "pairing_code": pairing.code if pairing else None,
                "pairing_expires": pairing.expires if pairing else None,
                "auth_url": f"{self.url}/signin", "restart_requested": self.restarts.get(mac)}


_STATE = {"onboarding": "onboarding", "unpaired": "signed_out", "paired": "signed_in"}


def json_error(status: int, code: str, message: str, where: str | None) -> str:
    import json

    return json.dumps({"error": {"code": code, "message": message, "where": where}})


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
