"""AudioCodes MediaPack / Mediant analog gateways: the REST status API (7.x; vendor-control-apis.md §5.2).

An ATA has no call-control API. Calls on its FXS ports are made and answered by what hangs off the port:
in a lab, an analog line simulator (off-hook, on-hook, DTMF dialling). The session takes that actuator as
the endpoint option ``line_side`` (an object with ``offhook(port)``, ``onhook(port)``, ``dial(port,
digits)``); without one, call operations are ``NotApplicable`` and say so. The REST API reads the ports back.

With the endpoint option ``ssh`` (an :class:`~harness.drivers.vendors.audiocodes_cli.SshEndpoint`, from the
inventory's ``ssh:``) the session also has the device's CLI over SSH (:mod:`.audiocodes_cli`, netmiko):
port status comes from ``show voip ports``, ports are reset, locked and unlocked, the device's log is read,
and the identity the REST API reports is cross-checked against the CLI's (two interfaces reporting different
devices means the inventory points them at different boxes). REST stays the path for what REST does
(status, registration, device reset); without ``ssh`` the CLI operations are ``NotApplicable``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from harness.drivers.vendors import Endpoint, LineStatus, Probe, VendorApiError, VendorCall, VendorIdentity
from harness.drivers.vendors._http import HttpSession
from harness.drivers.vendors.audiocodes_cli import AudioCodesCli, LogEntry, PortStatus
from harness.protocols import CallState, NotApplicable

VENDOR = "AudioCodes"
API = "AudioCodes REST API"
_STATES = {"ringing": CallState.INCOMING, "dialing": CallState.CALLING, "connected": CallState.CONFIRMED,
           "hold": CallState.CONFIRMED}


class Session(HttpSession):
    def __init__(self, ep: Endpoint) -> None:
        super().__init__(ep, auth=(ep.username or "Admin", ep.password or ""), vendor=VENDOR)
        self.line_side: Any = ep.options.get("line_side")
        self.counter: dict[int, int] = {}
        self.current: dict[int, VendorCall] = {}
        self.dialled: dict[int, str] = {}
        self.dial_sent: set[int] = set()  # ports whose dialled digits went out and whose call no poll saw yet
        ssh = ep.options.get("ssh")
        self.cli: AudioCodesCli | None = AudioCodesCli(ssh) if ssh is not None else None


def connect(ep: Endpoint) -> Session:
    return Session(ep)


def close(s: Session) -> None:
    if s.cli is not None:
        s.cli.close()
    s.close()


def _cli(s: Session, what: str) -> AudioCodesCli:
    if s.cli is None:
        raise NotApplicable(f"the {API} cannot {what}; give the device's inventory entry an ssh: endpoint so the "
                            "CLI over SSH does it")
    return s.cli


def _json(s: Session, method: str, path: str, body: Any = None) -> Any:
    r = s.request(method, path, json=body) if body is not None else s.request(method, path)
    if r.status_code == 401:
        raise VendorApiError(f"{API} {path}: HTTP 401: the credentials were refused", code=401, where=path)
    if r.status_code >= 400:
        try:
            msg = r.json().get("description", r.text)
        except (ValueError, AttributeError):
            msg = r.text
        raise VendorApiError(f"{API} {method} {path}: HTTP {r.status_code}: {msg[:160]}", code=r.status_code,
                             where=path)
    return r.json()


def probe(s: Session) -> Probe:
    r = s.request("GET", "/api/")
    if r.status_code == 200:
        return Probe(True)
    return Probe(False, "auth" if r.status_code == 401 else "unexpected", f"HTTP {r.status_code}")


def identity(s: Session) -> VendorIdentity:
    d = _json(s, "GET", "/api/v1/status")
    rest = VendorIdentity(VENDOR, str(d.get("productType", "")), str(d.get("versionID", "")),
                          str(d.get("macAddress", "")).lower() or None, d.get("serialNumber") or None)
    if s.cli is None:
        return rest
    cli = s.cli.identity()
    diffs = [f"{what}: REST {a!r}, CLI {b!r}" for what, a, b in (
        ("model", rest.model, cli.model), ("firmware", rest.firmware, cli.firmware),
        ("MAC", _plain(rest.mac), _plain(cli.mac)), ("serial", rest.serial, cli.serial)) if a and b and a != b]
    if diffs:
        raise VendorApiError(f"the {API} and the CLI over SSH ({s.cli.where}) report different devices ("
                             f"{'; '.join(diffs)}): check that connection.host and ssh.host name the same device",
                             code="identity", where="ssh.host")
    return replace(rest, source="http-api+ssh-cli")


def _plain(mac: str | None) -> str | None:
    return "".join(ch for ch in mac.lower() if ch in "0123456789abcdef") if mac else None


def port_status(s: Session) -> list[PortStatus]:
    """Every analog port: from ``show voip ports`` over SSH when the session has the CLI, else from REST."""
    if s.cli is not None:
        return s.cli.ports()
    out = []
    for p in _ports(s):
        out.append(PortStatus(int(p["port"]), str(p.get("type", "FXS")), p.get("phoneNumber") or None,
                              p.get("hookState") == "offHook", str(p.get("callState", "idle")),
                              p.get("remoteNumber") or None, p.get("registration") == "Registered",
                              p.get("adminState") == "locked"))
    return out


def reset_port(s: Session, port: int) -> PortStatus:
    return _cli(s, "reset an analog port").reset_port(port)


def lock_port(s: Session, port: int) -> PortStatus:
    return _cli(s, "lock an analog port").lock_port(port)


def unlock_port(s: Session, port: int) -> PortStatus:
    return _cli(s, "unlock an analog port").unlock_port(port)


def device_log(s: Session) -> list[LogEntry]:
    return _cli(s, "read the device's log").device_log()


def _ports(s: Session) -> list[dict[str, Any]]:
    return list(_json(s, "GET", "/api/v1/status/ports").get("ports") or [])


def lines(s: Session) -> list[LineStatus]:
    out = []
    for p in _ports(s):
        ok = p.get("registration") == "Registered"
        out.append(LineStatus(int(p["port"]), ok, 200 if ok else None, 0, p.get("phoneNumber"),
                              f"port {p['port']}: {p.get('registration')}"))
    return out


def calls(s: Session) -> list[VendorCall]:
    out = []
    for p in _ports(s):
        port = int(p["port"])
        state = str(p.get("callState", "idle"))
        if state == "idle":
            s.current.pop(port, None)
            continue
        cur = s.current.get(port)
        if cur is not None and port in s.dialled:  # dialled since: the call seen before ended between two polls
            cur = None
        if cur is None:
            s.counter[port] = s.counter.get(port, 0) + 1
            direction = "out" if port in s.dialled else "in"
            cur = VendorCall(f"port{port}-{s.counter[port]}", CallState.CALLING, direction, line=port)
            s.dialled.pop(port, None)
            s.dial_sent.discard(port)
        cur = VendorCall(cur.handle, _STATES.get(state, CallState.CONFIRMED), cur.direction,
                         str(p.get("remoteNumber", "")), port, False, state == "hold", False,
                         p.get("sipCallId") or None)
        s.current[port] = cur
        out.append(cur)
    return out


def _side(s: Session, what: str) -> Any:
    if s.line_side is None:
        raise NotApplicable(f"an analog port cannot {what} through the {API}: configure an analog line simulator "
                            "(driver option line_side) or use the sip-side/manual driver")
    return s.line_side


def _port(handle: str) -> int:
    return int(handle.removeprefix("port").split("-", 1)[0])


def dial(s: Session, number: str, line: int = 1) -> str | None:
    side = _side(s, "dial")
    s.dialled[line] = number
    side.offhook(line)
    side.dial(line, number)
    s.dial_sent.add(line)
    return None


def ended_calls(s: Session) -> list[VendorCall]:
    """A dialled call that ended before a poll saw it (a feature code's final response): its port is off-hook
    with no call on it (the analog phone hears a reorder tone). The handset is put back on-hook, as a person does
    on hearing that tone. The port status carries no SIP status."""
    if not s.dial_sent:
        return []
    out = []
    for p in _ports(s):
        port = int(p["port"])
        if port in s.dial_sent and port not in s.current and p.get("callState", "idle") == "idle" \
                and p.get("hookState") == "offHook":
            s.dial_sent.discard(port)
            number = s.dialled.pop(port, "")
            s.counter[port] = s.counter.get(port, 0) + 1
            out.append(VendorCall(f"port{port}-{s.counter[port]}", CallState.DISCONNECTED, "out", number, port))
            if s.line_side is not None:
                s.line_side.onhook(port)
    return out


def answer(s: Session, handle: str) -> None:
    _side(s, "answer").offhook(_port(handle))


def reject(s: Session, handle: str, code: int = 486) -> None:
    raise NotApplicable("an analog phone cannot reject a ringing call with a chosen SIP status")


def hangup(s: Session, handle: str) -> None:
    _side(s, "hang up").onhook(_port(handle))


_NO_FLASH = ("which is an analogue action: the MediaPack REST API and CLI offer none, and the analog line simulator "
             "goes off-hook, on-hook and dials only")


def hold(s: Session, handle: str) -> None:
    raise NotApplicable(f"hold from an FXS port is a hook flash on the analogue line, {_NO_FLASH}")


resume = hold


def set_mute(s: Session, handle: str, on: bool) -> None:
    raise NotApplicable("an analog port has no mute")


def send_dtmf(s: Session, handle: str, digits: str) -> None:
    _side(s, "send DTMF").dial(_port(handle), digits)


def transfer(s: Session, handle: str, target: str) -> None:
    raise NotApplicable(f"transfer from an FXS port starts with a hook flash on the analogue line, {_NO_FLASH}")


def reboot(s: Session) -> None:
    _json(s, "POST", "/api/v1/actions/reset", {"saveConfiguration": True, "gracefulTimeout": 0})


def factory_reset(s: Session) -> None:
    raise NotApplicable(f"the {API} has no factory reset")
