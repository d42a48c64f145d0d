"""The registrar (RFC 3261 §10.3) with digest authentication and firmware gating.

A REGISTER is authenticated against the user's credentials (unknown users and wrong passwords get the
same answer, so names cannot be enumerated), its ``User-Agent`` is checked against the device catalogue
(below the minimum or on the wrong firmware family: ``403`` with a ``Warning: 399`` naming model, found and
required firmware, unless the policy is ``warn``), and its contacts are stored as bindings with the flow the
request arrived on, so requests to the device go back the same way (NAT, TCP/TLS connection reuse).

Pure logic: the caller passes the request, its flow and the time, and sends the returned response.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from device_profiles.verdict import FirmwareVerdict, Verdict, check_user_agent
from gateway.services.diagnostics import warning_header
from gateway.services.directory import Directory, number_key
from gateway.services.model import Device, Flow, PairState, User
from gateway.sip import NameAddr, Request, Response, SipParseError
from gateway.sip.auth import DigestCredentials, DigestParseError, DigestServer, parse_credentials

FirmwarePolicy = Literal["enforce", "warn"]

_VERDICT_CODES = {
    Verdict.BELOW_MINIMUM: "SGW-FW-BELOW-MINIMUM",
    Verdict.WRONG_FAMILY: "SGW-FW-WRONG-FAMILY",
    Verdict.UNKNOWN_MODEL: "SGW-FW-UNKNOWN-MODEL",
    Verdict.UNPARSEABLE: "SGW-FW-UNPARSEABLE",
}


@dataclass
class RegistrarConfig:
    default_expires: int = 3600
    min_expires: int = 60
    max_expires: int = 7200
    firmware_policy: FirmwarePolicy = "enforce"
    #: Failed authentications from one address within ``throttle_window`` seconds before it is refused.
    throttle_failures: int = 10
    throttle_window: float = 60.0
    agent: str = "sipgw-lab"


@dataclass(init=False)
class Binding:
    """One contact of an address of record (RFC 3261 §10.3).

    ``__init__`` is written out: compiled, the one the dataclass decorator generates would run as interpreted
    Python (a REGISTER makes one binding)."""

    username: str
    contact: NameAddr
    uri: str
    expires_at: float  # monotonic
    call_id: str
    cseq: int
    flow: Flow
    user_agent: str | None
    device_key: str
    registered_at: float  # wall clock
    instance: str | None = None
    q: float = 1.0
    #: What the REGISTER declared it takes: ``Recv-Info`` packages (RFC 6086 §5.2.3, §9; () for an empty header)
    #: and ``Allow`` methods (RFC 3261 §20.5), upper-cased; None when the header was absent.
    recv_info: tuple[str, ...] | None = None
    allow: tuple[str, ...] | None = None

    def __init__(self, username: str, contact: NameAddr, uri: str, expires_at: float, call_id: str, cseq: int,
                 flow: Flow, user_agent: str | None, device_key: str, registered_at: float,
                 instance: str | None = None, q: float = 1.0, recv_info: tuple[str, ...] | None = None,
                 allow: tuple[str, ...] | None = None) -> None:
        self.username = username
        self.contact = contact
        self.uri = uri
        self.expires_at = expires_at
        self.call_id = call_id
        self.cseq = cseq
        self.flow = flow
        self.user_agent = user_agent
        self.device_key = device_key
        self.registered_at = registered_at
        self.instance = instance
        self.q = q
        self.recv_info = recv_info
        self.allow = allow

    def expires_in(self, now: float) -> int:
        return max(0, int(self.expires_at - now + 0.5))


@dataclass
class RegistrarStats:
    registered: int = 0
    unregistered: int = 0
    challenged: int = 0
    auth_failed: int = 0
    throttled: int = 0
    firmware_rejected: int = 0


@functools.lru_cache(maxsize=4096)
def _cached_verdict(user_agent: str) -> FirmwareVerdict:
    return check_user_agent(user_agent, source="sip")


@dataclass
class _Throttle:
    failures: dict[str, deque] = field(default_factory=dict)

    def failed(self, host: str, now: float, window: float) -> None:
        q = self.failures.setdefault(host, deque())
        q.append(now)
        while q and q[0] < now - window:
            q.popleft()

    def count(self, host: str, now: float, window: float) -> int:
        q = self.failures.get(host)
        if not q:
            return 0
        while q and q[0] < now - window:
            q.popleft()
        if not q:
            del self.failures[host]
            return 0
        return len(q)


class Registrar:
    def __init__(
        self,
        directory: Directory,
        auth: DigestServer,
        devices: DeviceRegistry,
        config: RegistrarConfig | None = None,
        *,
        verdict_for: Callable[[str], FirmwareVerdict] = _cached_verdict,
    ):
        self.directory = directory
        self.auth = auth
        self.devices = devices
        self.config = config or RegistrarConfig()
        self.stats = RegistrarStats()
        self._verdict_for = verdict_for
        self._bindings: dict[str, list[Binding]] = {}
        self._throttle = _Throttle()
        self._lock = threading.Lock()
        #: Called with (username, bindings) after every change; the MWI and presence services listen.
        self.listeners: list[Callable[[str, list[Binding]], None]] = []
        #: The registrar workers (:mod:`gateway.shards`), told of the changes made here that they must repeat:
        #: ``dropped_device(key)``, ``removed_user(username)``, ``cleared()``, ``auth_failed(host, now)``.
        self.mirror: Any = None

    # --- queries -----------------------------------------------------------------------------------------
    def bindings(self, username: str, now: float) -> list[Binding]:
        """Live bindings of a user, best q first."""
        with self._lock:
            live = [b for b in self._bindings.get(username, ()) if b.expires_at > now]
            return sorted(live, key=lambda b: -b.q)

    def all_bindings(self, now: float) -> dict[str, list[Binding]]:
        with self._lock:
            return {u: [b for b in bs if b.expires_at > now] for u, bs in self._bindings.items()}

    def binding_for_flow(self, flow: Flow, now: float) -> Binding | None:
        with self._lock:
            for bs in self._bindings.values():
                for b in bs:
                    if b.flow == flow and b.expires_at > now:
                        return b
        return None

    def expire(self, now: float) -> list[str]:
        """Drop expired bindings; returns the users whose bindings changed."""
        changed = []
        with self._lock:
            for username, bs in list(self._bindings.items()):
                live = [b for b in bs if b.expires_at > now]
                if len(live) != len(bs):
                    changed.append(username)
                    if live:
                        self._bindings[username] = live
                    else:
                        del self._bindings[username]
        for username in changed:
            self._notify(username, now)
        return changed

    def clear(self) -> None:
        with self._lock:
            self._bindings.clear()
            self._throttle = _Throttle()
        if self.mirror is not None:
            self.mirror.cleared()

    def drop_device(self, device_key: str, now: float) -> list[str]:
        """Forget every binding of one device (sign-out, offboarding, factory reset); returns the users whose
        bindings changed (their listeners are told, as after any change)."""
        changed = []
        with self._lock:
            for username, bs in list(self._bindings.items()):
                keep = [b for b in bs if b.device_key != device_key]
                if len(keep) != len(bs):
                    changed.append(username)
                    if keep:
                        self._bindings[username] = keep
                    else:
                        del self._bindings[username]
        for username in changed:
            self._notify(username, now)
        if self.mirror is not None:
            self.mirror.dropped_device(device_key)
        return changed

    def verdict_for(self, user_agent: str) -> FirmwareVerdict:
        """The firmware verdict of a User-Agent, as the registrar judges it (cached by the string)."""
        return self._verdict_for(user_agent)

    def bind(self, req: Request, user: User, flow: Flow, now: float, wall: float, device_key: str,
             user_agent: str | None) -> Response:
        """Apply the contacts of an already authenticated REGISTER for ``user`` (RFC 3261 §10.3 steps 6–8) and
        return the 200 with the current bindings; raises :class:`RegisterError` with the response to send
        instead. For services that authenticate a REGISTER themselves (sign-in credentials)."""
        return self._update_bindings(req, user, flow, now, wall, device_key, user_agent)

    def remove_user(self, username: str, now: float) -> int:
        """Drop every binding of a user (the user was deleted); returns how many there were."""
        with self._lock:
            removed = len(self._bindings.pop(username, ()))
        if removed:
            self._notify(username, now)
        if self.mirror is not None:
            self.mirror.removed_user(username)
        return removed

    def adopt(self, username: str, bindings: list[Binding], now: float) -> None:
        """Take a user's bindings as another registrar process made them (:mod:`gateway.shards`): they replace
        what was known of that user, and the listeners are told as after any change."""
        with self._lock:
            if bindings:
                self._bindings[username] = bindings
            else:
                self._bindings.pop(username, None)
        self._notify(username, now)

    def note_failure(self, host: str, now: float) -> None:
        """A failed authentication from ``host`` that another registrar process saw: it counts towards the
        throttle here too, so a source cannot multiply its tries by the number of processes."""
        self._throttle.failed(host, now, self.config.throttle_window)

    # --- REGISTER ------------------------------------------------------------------------------------------
    def handle(self, req: Request, flow: Flow, now: float, wall: float) -> Response:
        """Process a REGISTER and return the response to send."""
        cfg = self.config
        if self._throttled(flow, now):
            self.stats.throttled += 1
            return self._reject(req, 503, "SGW-AUTH-THROTTLED",
                                f"too many failed authentications from {flow.host}; retry later",
                                extra=[("Retry-After", str(int(cfg.throttle_window)))])
        authz = req.headers.get("Authorization")
        if authz is None:
            self.stats.challenged += 1
            return self._challenge(req, now=wall)
        creds = _credentials(authz)  # parsed once: the user name here, the check in verify
        user = self.directory.user(creds.username) if creds is not None and creds.username else None
        if creds is None or user is None or not user.ha1:
            # Same treatment as a wrong password: verify against a throwaway HA1 so timing matches too.
            self.auth.verify(creds or authz, method="REGISTER", now=wall, ha1={"MD5": "0" * 32, "SHA-256": "0" * 64})
            return self._auth_failed(req, flow, now)
        result = self.auth.verify(creds, method="REGISTER", now=wall, ha1=user.ha1)
        if not result.ok:
            if result.stale:
                self.stats.challenged += 1
                return self._challenge(req, now=wall, stale=True)
            return self._auth_failed(req, flow, now)
        if not _to_matches(req, user):
            return self._reject(req, 403, "SGW-REG-FOREIGN-AOR",
                                f"credentials of {user.username} cannot register {req.to.uri}")

        user_agent = req.headers.get("User-Agent")
        verdict = self._verdict_for(user_agent or "")
        device_key = self.devices.key_for(req, user_agent, verdict, user.username)
        device = self.devices.get(device_key)
        if (device is not None and device.pair_state is PairState.OFFBOARDED) or self.devices.all_ports_offboarded(
                device_key):
            return self._reject(req, 403, "SGW-DEVICE-OFFBOARDED",
                                f"device {device_key} was offboarded; factory-reset it to onboard again")
        warn_text = None
        if not verdict.acceptable:
            code = _VERDICT_CODES[verdict.verdict]
            self.devices.record(device_key, user, user_agent, verdict, wall)
            if cfg.firmware_policy == "enforce":
                self.stats.firmware_rejected += 1
                return self._reject(req, 403, code, verdict.reason)
            warn_text = warning_header(code, verdict.reason, cfg.agent)

        try:
            response = self._update_bindings(req, user, flow, now, wall, device_key, user_agent)
        except _RegisterError as exc:
            return self._reject(req, exc.status, exc.code, exc.text, extra=exc.extra)
        self.devices.record(device_key, user, user_agent, verdict, wall)
        if warn_text:
            response.headers.add("Warning", warn_text)
        return response

    def stateless_challenge(self, req: Request, flow: Flow, now: float, wall: float) -> Response | None:
        """The 401 for a REGISTER without credentials, or None when ``handle`` must see it (credentials present,
        or the source is throttled and gets 503). What ``handle`` would answer, for a reply without a
        transaction (RFC 3261 §8.2.7): a retransmission simply gets another challenge."""
        if req.headers.get("Authorization") is not None or self._throttled(flow, now):
            return None
        self.stats.challenged += 1
        return self._challenge(req, now=wall)

    # --- internals ---------------------------------------------------------------------------------------
    def _throttled(self, flow: Flow, now: float) -> bool:
        cfg = self.config
        return self._throttle.count(flow.host, now, cfg.throttle_window) >= cfg.throttle_failures

    def _challenge(self, req: Request, *, now: float, stale: bool = False) -> Response:
        resp = Response.for_request(req, 401, to_tag=_tag(req))
        for value in self.auth.challenge_values(now, stale=stale):
            resp.headers.add("WWW-Authenticate", value)
        return resp

    def _auth_failed(self, req: Request, flow: Flow, now: float) -> Response:
        self.stats.auth_failed += 1
        self._throttle.failed(flow.host, now, self.config.throttle_window)
        if self.mirror is not None:
            self.mirror.auth_failed(flow.host, now)
        return self._reject(req, 403, "SGW-AUTH-FAILED", "authentication failed")

    def _reject(self, req: Request, status: int, code: str, text: str,
                extra: list[tuple[str, str]] | None = None) -> Response:
        resp = Response.for_request(req, status, to_tag=_tag(req))
        resp.headers.add("Warning", warning_header(code, text, self.config.agent))
        for name, value in extra or ():
            resp.headers.add(name, value)
        return resp

    def _update_bindings(self, req: Request, user: User, flow: Flow, now: float, wall: float,
                         device_key: str, user_agent: str | None) -> Response:
        cfg = self.config
        try:
            contacts = req.contact
            header_expires = req.expires
        except SipParseError as exc:
            raise _RegisterError(400, "SGW-REG-BAD-CONTACT", exc.reason) from None
        raw_contacts = req.headers.get_all("Contact")
        wildcard = False
        for raw in raw_contacts:
            if raw.strip() == "*":
                wildcard = True
                break
        call_id = req.call_id
        cseq = req.cseq.seq
        recv_info, allow = _declared(req, "Recv-Info"), _declared(req, "Allow")
        with self._lock:
            current = [b for b in self._bindings.get(user.username, ()) if b.expires_at > now]
            if wildcard:
                # RFC 3261 §10.3 step 6: "*" only alone and only with Expires: 0.
                if len(raw_contacts) != 1 or header_expires != 0:
                    raise _RegisterError(400, "SGW-REG-BAD-CONTACT",
                                         "Contact: * must be the only contact and needs Expires: 0")
                for b in current:
                    if b.call_id == call_id and cseq <= b.cseq:
                        raise _RegisterError(500, "SGW-REG-OUT-OF-ORDER",
                                             f"CSeq {cseq} is not higher than {b.cseq}")
                removed = len(current)
                current = []
                self.stats.unregistered += removed
            else:
                for contact in contacts:
                    expires = _contact_expires(contact, header_expires, cfg.default_expires)
                    if expires is None:
                        raise _RegisterError(400, "SGW-REG-BAD-CONTACT",
                                             f"expires of {contact.uri} is not a number of seconds")
                    if 0 < expires < cfg.min_expires:
                        raise _RegisterError(423, "SGW-REG-INTERVAL",
                                             f"expiry {expires} s is shorter than {cfg.min_expires} s",
                                             extra=[("Min-Expires", str(cfg.min_expires))])
                    expires = min(expires, cfg.max_expires)
                    uri = str(contact.uri)
                    instance = contact.params.get("+sip.instance")
                    existing = None
                    for b in current:
                        if _same_contact(b, contact, uri, instance):
                            existing = b
                            break
                    if existing is not None and existing.call_id == call_id and cseq <= existing.cseq:
                        # §10.3 step 7: an out-of-order or retransmitted REGISTER must not win.
                        raise _RegisterError(500, "SGW-REG-OUT-OF-ORDER",
                                             f"CSeq {cseq} is not higher than {existing.cseq}")
                    if existing is not None:
                        current.remove(existing)
                    if expires == 0:
                        self.stats.unregistered += 1
                        continue
                    q = _q_value(contact)
                    current.append(Binding(user.username, contact, uri, now + expires, call_id, cseq, flow,
                                           user_agent, device_key, wall, instance, q, recv_info, allow))
                    self.stats.registered += 1
            if current:
                self._bindings[user.username] = current
            else:
                self._bindings.pop(user.username, None)
            live = list(current)
        resp = Response.for_request(req, 200, to_tag=_tag(req))
        for b in live:
            resp.headers.add("Contact", f"<{b.uri}>;expires={b.expires_in(now)}")
        self._notify(user.username, now)
        return resp

    def _notify(self, username: str, now: float) -> None:
        if not self.listeners:
            return
        live = self.bindings(username, now)
        for listener in self.listeners:
            listener(username, live)


class _RegisterError(Exception):
    """A REGISTER refused: ``status``, the ``Warning`` code and text, and extra header fields of the answer."""

    def __init__(self, status: int, code: str, text: str, extra: list[tuple[str, str]] | None = None):
        self.status, self.code, self.text, self.extra = status, code, text, extra
        super().__init__(text)


RegisterError = _RegisterError  # the public name (Registrar.bind raises it)


def _tag(req: Request) -> str:
    """``r`` and ten digits: a deterministic tag per transaction, so a retransmitted REGISTER gets the same answer.
    (Spelled out: compiled, a format specification is a generic call, this is four primitives.)"""
    digits = str(abs(hash((req.call_id, req.cseq.seq))) % 10**10)
    return "r" + "0" * (10 - len(digits)) + digits


def _credentials(value: str) -> DigestCredentials | None:
    try:
        return parse_credentials(value)
    except DigestParseError:
        return None


def _to_matches(req: Request, user: User) -> bool:
    """The address of record (To) names the authenticated user, by user name or by number."""
    try:
        uri = req.to.uri
    except SipParseError:
        return False
    name = uri.user or ""
    return name == user.username or (user.number is not None and number_key(name) == number_key(user.number))


def _contact_expires(contact: NameAddr, header_expires: int | None, default: int) -> int | None:
    raw = contact.params.get("expires")
    if raw is not None:
        try:
            return int(raw)
        except (TypeError, ValueError):
            return None
    return header_expires if header_expires is not None else default


def _declared(req: Request, name: str) -> tuple[str, ...] | None:
    """The comma-separated tokens of every ``name`` header of a REGISTER, upper-cased for Allow (methods are
    case-sensitive tokens, RFC 3261 §7.1, but devices vary) and lower-cased for Recv-Info (package names are
    case-insensitive, RFC 6086 §9); None when the header is absent."""
    headers = req.headers
    if headers.get(name) is None:
        return None  # the common REGISTER: one look-up
    tokens = (t.strip() for v in headers.get_fields(name) for t in v.split(","))
    return tuple(t.upper() if name == "Allow" else t.lower() for t in tokens if t)


def _q_value(contact: NameAddr) -> float:
    try:
        return float(contact.params.get("q") or 1.0)
    except ValueError:
        return 1.0


def _same_contact(b: Binding, contact: NameAddr, uri: str, instance: str | None) -> bool:
    if instance is not None and b.instance == instance:
        return True
    # The same text is the same URI (a refresh, the usual case); other texts are compared by RFC 3261 §19.1.4.
    return b.uri == uri or b.contact.uri == contact.uri


class DeviceRegistry:
    """Devices as the registrar sees them, cached in memory; writes only what changed to the store."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._cache: dict[str, Device] = {d.key: d for d in store.devices()}
        self._lock = threading.Lock()
        #: Called with a device's key after every change written to the store but the last-connected time (the
        #: registrar workers of :mod:`gateway.shards` keep copies).
        self.listeners: list[Callable[[str], None]] = []
        #: Called with (key, time) when only a device's last-connected time changed (a registrar worker tells the
        #: gateway's process, whose offboarding reads that time).
        self.on_touch: Callable[[str, float], None] | None = None

    def key_for(self, req: Request, user_agent: str | None, verdict: FirmwareVerdict, username: str) -> str:
        if verdict.mac:
            return verdict.mac
        for contact in _safe_contacts(req):
            instance = contact.params.get("+sip.instance")
            if instance:
                return instance.strip('"<>').removeprefix("urn:uuid:")
        return f"{username}/{(verdict.model or user_agent or 'unknown').replace(' ', '_')}"

    def get(self, key: str) -> Device | None:
        return self._cache.get(key)

    def all_ports_offboarded(self, mac: str) -> bool:
        """A multi-port ATA known by its MAC (a REGISTER that names no port) whose every port record
        (``<mac>:001``, ``<mac>:002`` …) is offboarded: the ATA as a whole is refused until its factory reset.
        One dictionary look-up for a device without port records."""
        port = 1
        while (rec := self._cache.get(f"{mac}:{port:03d}")) is not None:
            if rec.pair_state is not PairState.OFFBOARDED:
                return False
            port += 1
        return port > 1

    def ports_of(self, mac: str) -> list[str]:
        """The port keys (``<mac>:001`` …) under which a multi-port ATA's lines are known, in port order."""
        prefix = mac + ":"
        return sorted(k for k in self._cache if k.startswith(prefix))

    def all(self) -> list[Device]:
        return sorted(self._cache.values(), key=lambda d: d.key)

    def record(self, key: str, user: User, user_agent: str | None, verdict: FirmwareVerdict, wall: float) -> Device:
        with self._lock:
            old = self._cache.get(key)
            if (old is not None and old.username and old.user_agent == user_agent and old.vendor == verdict.vendor
                    and old.model == verdict.model and old.firmware == verdict.found and old.mac == verdict.mac
                    and old.verdict == verdict.verdict.value and old.verdict_reason == verdict.reason):
                # A refresh from the same device as before: only the last-connected time changes (batched).
                new = _touched(old, wall)
                changed = False
            else:
                new = Device(
                    key=key, vendor=verdict.vendor, model=verdict.model, firmware=verdict.found,
                    user_agent=user_agent, verdict=verdict.verdict.value, verdict_reason=verdict.reason,
                    pair_state=old.pair_state if old is not None else PairState.PAIRED,
                    username=old.username if old is not None and old.username else user.username,
                    mac=verdict.mac, last_connected=wall, created=old.created if old is not None else wall,
                    id=old.id if old is not None else None,
                )
                changed = old is None or _touched(old, wall) != new
            if changed:
                new = self._store.upsert_device(new)
            else:
                self._store.touch_device(key, wall)
            self._cache[key] = new
        if changed:
            self._changed(key)
        elif self.on_touch is not None:
            self.on_touch(key, wall)
        return new

    def put(self, device: Device) -> Device:
        with self._lock:
            saved = self._store.upsert_device(device)
            self._cache[saved.key] = saved
        self._changed(saved.key)
        return saved

    def remove(self, key: str) -> bool:
        """Forget a device (control API); it is recorded again if it registers again."""
        with self._lock:
            found = self._store.delete_device(key)
            found = self._cache.pop(key, None) is not None or found
        self._changed(key)
        return found

    def adopt(self, device: Device) -> None:
        """Take a device record another process already wrote to the store (no write, no listener)."""
        with self._lock:
            self._cache[device.key] = device

    def touched(self, key: str, wall: float) -> None:
        """Another process saw the device connect at ``wall`` (and wrote it to the store)."""
        with self._lock:
            old = self._cache.get(key)
            if old is not None:
                self._cache[key] = _touched(old, wall)

    def refresh(self, key: str) -> Device | None:
        """Read one device again from the store (another process changed it); None when it is gone."""
        device = self._store.device(key)
        with self._lock:
            if device is None:
                self._cache.pop(key, None)
            else:
                self._cache[key] = device
        return device

    def _changed(self, key: str) -> None:
        for listener in self.listeners:
            listener(key)


def _touched(device: Device, wall: float) -> Device:
    """``dataclasses.replace(device, last_connected=wall)`` for the refresh of every REGISTER, without its
    per-call look-up of the fields and keyword call (nor copy.copy's reduce protocol)."""
    new = object.__new__(Device)
    state = new.__dict__
    state.update(device.__dict__)
    state["last_connected"] = wall
    return new


def _safe_contacts(req: Request) -> list[NameAddr]:
    try:
        return req.contact
    except SipParseError:
        return []
