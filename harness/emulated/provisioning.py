"""Provisioning and sign-in of an emulated device, as the real device does it over HTTP and SIP.

Mixed into :class:`harness.drivers.emulated.EmulatedDriver`; implements the ``Provisioning`` and ``SignIn``
capabilities plus ``dial_feature_code``:

- ``factory_reset()``: forget the configuration and drop the provisioned SIP account.
- ``provision(url)``: what a device does with the URL DHCP option 66/160 hands it: fetch its vendor's file
  (``$PSN.xml``, ``$mac.cfg``, ``mac.ini``, ``algop$mac.conf``) with its own User-Agent, read the SIP account and
  the resync (state) URL from it in the vendor's own key names, fetch the state URL, and register the account.
- ``start_sign_in()``: the Sign-in key: asks the sign-in service for a pairing code; the status carries the code
  and the page URL the device shows. ``sign_in_status()`` reads what the service says (the device's display) and,
  when that changed the pairing, fetches and applies the new configuration (a device resyncing); a Restart the
  admin asked for makes it fetch its configuration and register again.
- ``sign_out()``: the Sign-out key, then the resync to the signed-out configuration.
- ``dial_feature_code("*55*123456")``: dials from the provisioned account and returns the ended call with the
  gateway's final status (the confirmation the gateway gives).

Every result is observed: HTTP statuses and bodies, the final REGISTER response, the call's final status.
The provisioned account is the worker's account ``p99`` (its events are reported as line 99). A multi-port ATA's
file carries an account per port (port 1 in the keys above, port N in the vendor's numbered keys); the emulated
ATA registers ports 1 to ``provisioned_ports`` (device option, default 2, at most the model's usable ports) as
accounts ``p99``, ``p98``, … on lines 99, 98, …; ``start_sign_in``, ``sign_in_status``, ``sign_out``,
``provisioned_registration`` and ``dial_feature_code`` take ``port=N`` (default 1).
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.protocols import (
    CallInfo,
    CallState,
    EventKind,
    OperationFailed,
    Provisioning,
    ProvisioningInfo,
    RegistrationInfo,
    SignIn,
    SignInState,
    SignInStatus,
    StateError,
)
from harness.steps import step

PROV_ACCOUNT = "p99"
PROV_LINE = 99

#: The vendor's own key names: (SIP user, password, resync URL, display name, number, pair state).
_KEYS: dict[str, tuple[str, str, str, str, str, str]] = {
    "cisco": ("User_ID_1_", "Password_1_", "Profile_Rule", "Display_Name_1_", "Station_Display_Name", "Pair_State"),
    "poly": ("reg.1.auth.userId", "reg.1.auth.password", "device.prov.serverName", "reg.1.displayName",
             "reg.1.label", "sgw.pair.state"),
    "yealink": ("account.1.user_name", "account.1.password", "static.auto_provision.server.url",
                "account.1.display_name", "account.1.label", "sgw.pair_state"),
    "audiocodes": ("voip/line/0/auth_name", "voip/line/0/auth_password", "provisioning/configuration/url",
                   "voip/line/0/description", "voip/line/0/extension_display", "sgw/pair_state"),
    "audiocodes-ata": ("AuthUserName", "AuthPassword", "ProvisioningURL", "DisplayName", "PhoneNumber",
                       "SgwPairState"),
    "gigaset": ("BS_IP_Data1.aucS_SIP_USER_ID_1", "BS_IP_Data1.aucS_SIP_PASSWORD_1", "BS_Provider.aucS_PROV_URL",
                "BS_IP_Data1.aucS_SIP_ACCOUNT_NAME_1", "BS_IP_Data1.aucS_SIP_DISPLAYNAME_1", "SGW.ucS_PAIR_STATE"),
    "spectralink": ("user.1.username", "user.1.password", "provisioning.config.url", "user.1.displayname",
                    "user.1.number", "sgw.pair_state"),
    "ascom": ("user/1/name", "user/1/password", "provisioning/url", "user/1/display", "user/1/number",
              "sgw/pair_state"),
    "algo": ("sip.u1.user", "sip.u1.pwd", "prov.url", "sip.u1.display", "sip.u1.number", "sgw.pair_state"),
}


#: Keys of port N ≥ 2 of a multi-port ATA (same order as :data:`_KEYS`; the resync URL is the device's).
_PORT_KEYS = {
    "cisco": lambda n: (f"User_ID_{n}_", f"Password_{n}_", "Profile_Rule", f"Display_Name_{n}_", f"Line_Number_{n}_",
                        f"Pair_State_{n}_"),
    "poly": lambda n: (f"reg.{n}.auth.userId", f"reg.{n}.auth.password", "device.prov.serverName",
                       f"reg.{n}.displayName", f"reg.{n}.label", f"reg.{n}.sgw.pair.state"),
    "audiocodes-ata": lambda n: (f"AuthUserName_{n}", f"AuthPassword_{n}", "ProvisioningURL", f"DisplayName_{n}",
                                 f"PhoneNumber_{n}", f"SgwPairState_{n}"),
}


def prov_account(port: int) -> str:
    """The worker account of a provisioned port: ``p99`` for port 1, ``p98`` for port 2, …"""
    return f"p{prov_line(port)}"


def prov_line(port: int) -> int:
    """The line a provisioned port's events are reported on: 99 for port 1, 98 for port 2, …"""
    return PROV_LINE + 1 - port


def device_family(vendor: str, kind: str) -> str | None:
    v = vendor.lower()
    if v == "audiocodes":
        return "audiocodes-ata" if kind == "ata" else "audiocodes"
    return v if v in _KEYS else None


def config_file(vendor: str, kind: str, model: str, mac: str) -> str:
    """The file a device of this vendor asks for at the provisioning URL."""
    fam = device_family(vendor, kind)
    if fam == "cisco":
        return f"{mac}.cfg" if kind == "ata" else f"{model.replace(' ', '')}.xml"
    if fam == "audiocodes-ata":
        return f"{mac}.ini"
    if fam == "gigaset":
        return f"{mac}.xml"
    if fam == "algo":
        return f"algop{mac}.conf"
    return f"{mac}.cfg"


def read_config(text: str) -> dict[str, str]:
    """Settings of a served configuration (XML elements, attributes, Gigaset items, or key = value lines)."""
    stripped = text.lstrip()
    out: dict[str, str] = {}
    if stripped.startswith("<"):
        root = ET.fromstring(text)
        for el in root.iter():
            if el.tag == "SYMB_ITEM" and "ID" in el.attrib:
                out[el.attrib["ID"]] = el.attrib.get("value", "")
            elif el is not root:
                out.update(el.attrib)
                if len(el) == 0 and el.text and el.text.strip():
                    out[el.tag] = el.text.strip()
        return out
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, value = (s.strip() for s in line.split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        out[key] = value
    return out


_CLIENT: list[httpx.Client] = []
_CLIENT_LOCK = threading.Lock()


def _http_client() -> httpx.Client:
    """One client per process for every emulated device's provisioning requests: ``httpx.request`` builds a
    client, and with it a TLS context from the CA bundle, per call (about 40 ms of CPU each, a third of a
    pytest worker's CPU in a lab run)."""
    with _CLIENT_LOCK:
        if not _CLIENT:
            _CLIENT.append(httpx.Client(timeout=10.0))
        return _CLIENT[0]


@dataclass
class _ProvState:
    url: str | None = None
    state_url: str | None = None
    status: str = "factory_default"
    config: dict[str, str] = field(default_factory=dict)
    #: The SIP user each port's account registered with (port → user); absent: nothing applied.
    applied: dict[int, str] = field(default_factory=dict)
    restarts: int = 0
    restart_seen: dict[int, float] = field(default_factory=dict)
    exchanges: list[dict[str, Any]] = field(default_factory=list)


class EmulatedProvisioning(Provisioning, SignIn):
    """HTTP provisioning and sign-in for :class:`~harness.drivers.emulated.EmulatedDriver` (a mixin)."""

    _prov_state: _ProvState | None = None
    #: Per provisioned worker account (``p99`` …), the worker boot whose worker holds it (absent: none does). Set as
    #: soon as the worker accepted ``add_account``, whatever the REGISTER then gets, and cleared only once the
    #: account is gone: a set-up after a refused or unanswered REGISTER must remove it before adding it again. It
    #: outlives ``_prov_state`` (a factory reset forgets the configuration, not the worker's accounts).
    _prov_account_boot: dict[str, int] | None = None

    @property
    def _prov(self) -> _ProvState:
        if self._prov_state is None:
            self._prov_state = _ProvState(url=self.ctx.options.get("provisioning_url"))
        return self._prov_state

    @property
    def mac(self) -> str:
        mac = (self.ctx.mac or "").replace(":", "").replace("-", "").lower()
        if not mac:
            raise StateError(f"{self.device_id}: the emulated device has no MAC address")
        return mac

    def _family(self) -> str:
        fam = device_family(self.ctx.vendor, self.ctx.profile.kind)
        if fam is None:
            from harness.protocols import NotApplicable

            raise NotApplicable(f"{self.ctx.vendor} devices are not provisioned by SIP Gateway's provisioning "
                                "server", device_id=self.device_id)
        return fam

    def _http(self, method: str, url: str) -> httpx.Response:
        t0 = time.time()
        try:
            resp = _http_client().request(method, url, headers={"User-Agent": self.user_agent})
        except httpx.HTTPError as exc:
            raise OperationFailed(f"{self.device_id}: {method} {url} failed: {exc}") from exc
        self._prov.exchanges.append({"t": t0, "method": method, "url": url, "status": resp.status_code,
                                     "body": resp.text[:500] if resp.status_code >= 400 else ""})
        del self._prov.exchanges[:-100]
        return resp

    def http_exchanges(self) -> list[dict[str, Any]]:
        """What the device sent and got over HTTP (statuses; bodies of refusals)."""
        return list(self._prov.exchanges)

    # --- Provisioning ------------------------------------------------------------------------------------
    @step("provisioning.factory_reset")
    def factory_reset(self) -> ProvisioningInfo:
        self._drop_account()
        url = self._prov.url
        self._prov_state = _ProvState(url=url)
        return self.provisioning()

    def provisioning(self) -> ProvisioningInfo:
        p = self._prov
        return ProvisioningInfo(url=p.url, status=p.status, config_version=p.config.get(self._keys()[5]) if
                                p.config else None, detail=p.state_url)

    def _keys(self, port: int = 1) -> tuple[str, str, str, str, str, str]:
        fam = self._family()
        return _KEYS[fam] if port == 1 else _PORT_KEYS[fam](port)

    def prov_ports(self) -> list[int]:
        """The ports whose provisioned accounts this device registers (``[1]`` unless a multi-port ATA)."""
        profile = self.ctx.profile
        usable = getattr(profile, "ports_usable", None) or 1
        if profile.kind != "ata" or usable <= 1 or self._family() not in _PORT_KEYS:
            return [1]
        return list(range(1, min(usable, int(self.ctx.options.get("provisioned_ports", 2))) + 1))

    @property
    def _boots(self) -> dict[str, int]:
        if self._prov_account_boot is None:
            self._prov_account_boot = {}
        return self._prov_account_boot

    @step("provisioning.provision")
    def provision(self, url: str | None = None) -> ProvisioningInfo:
        """Fetch the bootstrap file from ``url`` (as DHCP option 66/160 gives it), then the state URL; register."""
        self._family()  # NotApplicable for a device SIP Gateway's provisioning server does not serve
        p = self._prov
        p.url = (url or p.url or "").rstrip("/") or None
        if not p.url:
            # No URL from DHCP: the device keeps the static line accounts the lab configured on it.
            return ProvisioningInfo(url=None, status="factory_default",
                                    detail="no provisioning URL (DHCP option 66/160); static line accounts in use")
        name = config_file(self.ctx.vendor, self.ctx.profile.kind, self.ctx.model, self.mac)
        resp = self._http("GET", f"{p.url}/{name}")
        if resp.status_code != 200:
            p.status = "failed"
            return ProvisioningInfo(url=p.url, status="failed", detail=f"HTTP {resp.status_code}: "
                                    f"{resp.text.strip()[:300]}")
        boot = read_config(resp.text)
        state_url = boot.get(self._keys()[2])
        if not state_url:
            p.status = "failed"
            return ProvisioningInfo(url=p.url, status="failed", detail="the configuration has no resync URL")
        p.state_url = state_url
        return self.resync()

    @step("provisioning.resync")
    def resync(self, *, timeout: float = 10.0) -> ProvisioningInfo:
        """Fetch the state URL and apply it: (re-)register each port whose account changed, drop a port's account
        the configuration no longer carries."""
        p = self._prov
        if not p.state_url:
            raise StateError(f"{self.device_id}: not provisioned yet")
        resp = self._http("GET", p.state_url)
        if resp.status_code != 200:
            p.status = "failed"
            self._drop_account()
            return ProvisioningInfo(url=p.url, status="failed",
                                    detail=f"HTTP {resp.status_code}: {resp.text.strip()[:300]}")
        p.config = read_config(resp.text)
        p.status = "fetched"
        for port in self.prov_ports():
            keys = self._keys(port)
            user = p.config.get(keys[0])
            if not user:  # no account for this port in its state (e.g. the port was offboarded)
                self._drop_account(port)
                continue
            if user != p.applied.get(port) or self._boots.get(prov_account(port)) != self._worker_boot():
                reg = self._register_account(user, p.config.get(keys[1], ""), timeout=timeout, port=port)
                if not reg.ok:
                    p.status = "failed"
                    return ProvisioningInfo(url=p.url, status="failed", config_version=p.config.get(self._keys()[5]),
                                            detail=f"port {port}: REGISTER answered {reg.status_code} {reg.reason}")
                p.applied[port] = user
        if not p.applied:
            p.status = "failed"
            return ProvisioningInfo(url=p.url, status="failed", detail="the configuration carries no SIP account")
        p.status = "applied"
        return self.provisioning()

    @property
    def restarts(self) -> int:
        """How many times the admin's Restart made the device fetch its configuration and register again."""
        return self._prov.restarts

    def provisioned_registration(self, port: int = 1) -> RegistrationInfo:
        line = prov_line(port)
        return self.book.registration(line) or RegistrationInfo(line=line, status_code=0, reason="not registered",
                                                                expires=0)

    @step("provisioning.withdraw")
    def withdraw(self, *, timeout: float = 10.0) -> RegistrationInfo | None:
        """Un-REGISTER and drop every provisioned account, keeping the configuration (the device is unplugged);
        returns the final response to port 1's un-REGISTER (None when nothing was registered)."""
        if self._prov_state is None or not self._prov_state.applied or self.worker is None:
            return None
        first = None
        for port in sorted(self._prov_state.applied):
            line, account = prov_line(port), prov_account(port)
            mark = self.book.last_seq
            info = None
            try:
                self._rpc(lambda w, a=account: w.unregister(a))

                def final(line=line, mark=mark) -> RegistrationInfo | None:
                    for e in self.book.events(mark):
                        if (e.kind is EventKind.REGISTRATION and e.line == line
                                and e.detail.get("status_code", 0) >= 200):
                            return self.book.registration(line)
                    return None

                info = self.book.wait(final, f"final response to the un-REGISTER of provisioned port {port}",
                                      timeout)
            except OperationFailed:
                pass  # not registered at the moment
            if port == 1:
                first = info
        self._drop_account()
        return first

    def _worker_boot(self) -> int:
        return getattr(self, "_boot", 1)

    def _drop_account(self, port: int | None = None) -> None:
        """Remove a port's provisioned account (every port's when ``port`` is None) from the worker when the
        worker holds it, applied or not."""
        ports = [port] if port is not None else sorted({1, *self.prov_ports_known()})
        for n in ports:
            if self._prov_state is not None:
                self._prov_state.applied.pop(n, None)
            account = prov_account(n)
            boot = self._boots.get(account)
            if boot is None:
                continue
            if self.worker is None or boot != self._worker_boot():  # that worker process is gone, with the account
                self._boots.pop(account, None)
                continue
            try:
                self._rpc(lambda w, a=account: w.remove_account(a))
            except StateError:  # powered off: the worker was killed with the account in it
                pass
            except OperationFailed as exc:
                if getattr(exc.__cause__, "code", None) != "no_such_account":
                    raise
            self._boots.pop(account, None)

    def prov_ports_known(self) -> list[int]:
        """Ports whose accounts may be in the worker: those this device registers, and any left from before."""
        held = [PROV_LINE + 1 - int(a[1:]) for a in self._boots]
        try:
            ports = self.prov_ports()
        except Exception:  # a device SIP Gateway does not provision has only what it left
            ports = []
        return sorted(set(ports) | set(held))

    def _register_account(self, user: str | None, password: str, *, timeout: float,
                          port: int = 1) -> RegistrationInfo:
        if not user:
            raise OperationFailed(f"{self.device_id}: the configuration carries no SIP user")
        self._drop_account(port)
        gw = self.ctx.gateway
        if gw is None:
            raise StateError(f"{self.device_id}: no gateway to register with")
        tp = self.ctx.transport
        suffix = "" if tp == "udp" else f";transport={tp}"
        account, line = prov_account(port), prov_line(port)
        mark = self.book.last_seq
        self._rpc(lambda w: w.add_account(
            account, f"sip:{user}@{gw.domain}", registrar=f"sip:{gw.host}:{gw.port(tp)}{suffix}",
            username=user, password=password, proxies=(f"sip:{gw.host}:{gw.port(tp)};lr{suffix}",), transport=tp,
            display_name=self._prov.config.get(self._keys(port)[3]) or None))
        self._boots[account] = self._worker_boot()

        def final() -> RegistrationInfo | None:
            for e in self.book.events(mark):
                if e.kind is EventKind.REGISTRATION and e.line == line and e.detail.get("status_code", 0) >= 200:
                    return self.book.registration(line)
            return None

        return self.book.wait(final, f"final REGISTER response of the provisioned account {user}", timeout)

    # --- SignIn ------------------------------------------------------------------------------------------
    def _token_url(self, action: str, port: int = 1) -> str:
        p = self._prov
        if not p.state_url or "/s/" not in p.state_url:
            raise StateError(f"{self.device_id}: not provisioned (no state URL); provision() first")
        base, rest = p.state_url.split("/s/", 1)
        token = rest.split("/", 1)[0]
        root = base.split("/lang_")[0].split("/tenantid/")[0]
        return f"{root}/s/{token}/{action}" + (f"?port={port}" if port != 1 else "")

    @step("signin.status")
    def sign_in_status(self, port: int = 1) -> SignInStatus:
        resp = self._http("GET", self._token_url("status", port))
        if resp.status_code != 200:
            raise OperationFailed(f"{self.device_id}: sign-in status answered HTTP {resp.status_code}: "
                                  f"{resp.text.strip()[:200]}")
        st = resp.json()
        asked = st.get("restart_requested")
        if asked is not None and asked != self._prov.restart_seen.get(port):  # the admin's Restart: fetch anew
            seen_elsewhere = asked in self._prov.restart_seen.values()
            self._prov.restart_seen[port] = asked
            if not seen_elsewhere:  # one restart of the device, whichever port's display noticed it
                self._prov.restarts += 1
                self._drop_account()
                self.resync()
        state_key = self._keys(port)[5]
        if st.get("pair_state") == "paired":
            if self._prov.config.get(state_key) != "signed_in":
                self.resync()
            return SignInStatus(SignInState.SIGNED_IN, user=st.get("user"), number=st.get("number"))
        if self._prov.config.get(state_key) == "signed_in":
            self.resync()  # signed out by the admin: the device falls back to its signed-out configuration
        if st.get("pairing_code"):
            return SignInStatus(SignInState.PAIRING, pairing_code=st["pairing_code"], auth_url=st.get("auth_url"))
        return SignInStatus(SignInState.SIGNED_OUT, auth_url=st.get("auth_url"))

    @step("signin.start")
    def start_sign_in(self, port: int = 1) -> SignInStatus:
        resp = self._http("POST", self._token_url("signin", port))
        if resp.status_code != 200:
            raise OperationFailed(f"{self.device_id}: Sign-in answered HTTP {resp.status_code}: "
                                  f"{resp.text.strip()[:200]}")
        body = resp.json()
        return SignInStatus(SignInState.PAIRING, pairing_code=body["pairing_code"], auth_url=body["auth_url"])

    def wait_signed_in(self, *, signed_in: bool = True, timeout: float = 10.0, poll_s: float = 0.2,
                       port: int = 1) -> SignInStatus:
        """Poll the sign-in service as the device does until it reads (not) signed in; raise at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.sign_in_status(port)
            if (st.state is SignInState.SIGNED_IN) == signed_in:
                return st
            if time.monotonic() >= deadline:
                raise OperationFailed(f"{self.device_id}: port {port} still {st.state.value} after {timeout} s")
            time.sleep(poll_s)  # the device's own polling interval; nothing pushes the change to it

    @step("signin.sign_out")
    def sign_out(self, port: int = 1) -> SignInStatus:
        resp = self._http("POST", self._token_url("signout", port))
        if resp.status_code != 200:
            raise OperationFailed(f"{self.device_id}: Sign-out answered HTTP {resp.status_code}: "
                                  f"{resp.text.strip()[:200]}")
        message = resp.json().get("message", "")
        self.resync()
        st = self.sign_in_status(port)
        if st.state is SignInState.SIGNED_IN:
            raise OperationFailed(f"{self.device_id}: still signed in after Sign-out ({message!r})")
        return st

    # --- feature codes --------------------------------------------------------------------------------------
    @step("dial_feature_code")
    def dial_feature_code(self, digits: str, *, timeout: float = 10.0, port: int = 1,
                          until: str = "ended") -> CallInfo:
        """Dial ``digits`` (e.g. ``*55*123456``) from port ``port``'s provisioned account. ``until="ended"``: the
        ended call with its final status; ``until="answered"``: the call once it is answered (to listen to it,
        e.g. ``*55*``'s confirmation tone) or has ended, whichever comes first."""
        if until not in ("ended", "answered"):
            raise ValueError(f"until={until!r}: expected 'ended' or 'answered'")
        if not self._prov.applied.get(port):
            raise StateError(f"{self.device_id}: no provisioned account on port {port} to dial from; provision() "
                             "first")
        gw = self.ctx.gateway
        from sipua import protocol as sp

        uri = f"sip:{digits}@{gw.domain if gw else '127.0.0.1'}"
        res = self._rpc(lambda w: w.request(sp.MakeCall(account=prov_account(port), target=uri)))
        cid = str(res["call"])
        self._ensure_call(cid, remote=digits, line=prov_line(port))
        self.book.update_call(cid, None, sip_call_id=res.get("call_id") or None, line=prov_line(port))
        states = {CallState.DISCONNECTED} | ({CallState.CONFIRMED} if until == "answered" else set())
        return self.book.wait_state(cid, states, timeout)
