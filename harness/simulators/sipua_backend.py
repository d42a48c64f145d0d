"""A ``DeviceBackend`` over a ``sipua.UAWorker``: a pjsua2 user agent registered with a gateway.

Everything it reports comes from the worker's events (``reg_state``, ``incoming_call``, ``call_state``,
``media_state``, ``dtmf``): a call is ``connected`` because the worker saw the 2xx/ACK exchange, held
because the negotiated SDP direction says so (RFC 3264 §8.4), registered because a REGISTER got a 2xx.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from harness.simulators.backend import (
    BackendCall,
    BackendError,
    BackendEvent,
    Busy,
    CallPhase,
    DeviceBackend,
    DeviceIdentity,
    Divert,
    EventKind,
    InvalidArgument,
    InvalidCallState,
    LineInfo,
    LineNotRegistered,
    MessageSummary,
    NoSuchCall,
    Registration,
    check_digits,
    check_number,
    parse_message_summary,
)
from sipua import AnswerMode, CommandError, Event, SipUaError, UAWorker, WorkerConfig

_USER_RE = re.compile(r"sips?:([^@;>]+)@")
ENDED_KEPT = 32
MEDIA_WAIT_S = 3.0


@dataclass(frozen=True)
class SipLine:
    """One line of the emulated device: its tenant user's SIP credentials and number."""

    username: str
    password: str
    number: str | None = None
    display_name: str = ""


def _remote_user(from_header: str) -> str:
    m = _USER_RE.search(from_header or "")
    return m.group(1) if m else (from_header or "")


class SipuaBackend(DeviceBackend):
    """Owns one worker (one pjsua2 Endpoint, at most 4 calls) with one account per line."""

    def __init__(self, worker: UAWorker, identity: DeviceIdentity, *, registrar: str | None,
                 proxy: str | None, own_worker: bool = True) -> None:
        super().__init__()
        self.worker = worker
        self._identity = identity
        self._registrar = registrar
        self._proxy = proxy
        self._own = own_worker
        self._lock = threading.RLock()
        self._calls: dict[int, BackendCall] = {}
        self._regs: dict[int, Registration] = {ln.index: Registration(line=ln.index, registered=False,
                                                                       registrar=registrar)
                                                for ln in identity.lines}
        self._reg_cond = threading.Condition(self._lock)
        self._muted = False
        self._bridges: set[tuple[int, int]] = set()
        self._media: dict[int, str] = {}  # call -> last media status the worker reported
        self._dialling: tuple[str, int] | None = None  # (number, line) while make_call is outstanding
        self._mwi_state: dict[int, MessageSummary] = {}  # line -> the last message-summary it received
        self.dtmf_received: list[tuple[int, str]] = []
        worker.add_listener(self._on_event)

    # ------------------------------------------------------------------ construction

    @classmethod
    def spawn(cls, *, name: str, vendor: str, model: str, firmware: str, mac: str, user_agent: str,
              lines: list[SipLine], gateway: tuple[str, int], domain: str, log_dir: str | Path,
              serial: str = "", register_timeout: float = 10.0, dtmf_method: str = "rfc4733") -> SipuaBackend:
        """Spawn a worker, add one account per line registered at ``gateway`` (host, port) with every
        request routed through it (outbound proxy, RFC 3261 §8.1.2), and wait until each line is
        registered (raises ``LineNotRegistered`` with the observed status otherwise). ``dtmf_method`` is how the
        device carries digits (``info``: no ``telephone-event`` offered or answered, digits as SIP INFO)."""
        if not lines:
            raise InvalidArgument(f"{name}: a device needs at least one line")
        host, port = gateway
        hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        registrar, proxy = f"sip:{hostport}", f"sip:{hostport};lr"
        identity = DeviceIdentity(
            vendor=vendor, model=model, firmware=firmware, mac=mac, user_agent=user_agent, serial=serial,
            lines=tuple(LineInfo(index=i, username=ln.username, number=ln.number, domain=domain,
                                 display_name=ln.display_name) for i, ln in enumerate(lines, 1)))
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        worker = UAWorker.spawn(WorkerConfig(name=name, user_agent=user_agent,
                                             log_path=str(Path(log_dir) / f"{name}.log"), dtmf_method=dtmf_method))
        backend = cls(worker, identity, registrar=registrar, proxy=proxy)
        try:
            worker.auto_answer(AnswerMode.NEVER)  # the API (a person at the phone) answers
            for i, ln in enumerate(lines, 1):
                worker.add_account(f"line{i}", f"sip:{ln.username}@{domain}", registrar=registrar,
                                   username=ln.username, password=ln.password, proxies=(proxy,),
                                   display_name=ln.display_name or None)
            backend.wait_registered(timeout=register_timeout)
        except BaseException:
            backend.close()
            raise
        return backend

    def wait_registered(self, line: int | None = None, timeout: float = 10.0) -> None:
        wanted = [line] if line is not None else list(self._regs)
        deadline = time.monotonic() + timeout
        with self._reg_cond:
            while not all(self._regs[i].registered for i in wanted):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    states = {i: (self._regs[i].code, self._regs[i].reason) for i in wanted}
                    raise LineNotRegistered(f"{self.worker.name}: not registered within {timeout} s "
                                            f"(last REGISTER status per line: {states})")
                self._reg_cond.wait(remaining)

    # ------------------------------------------------------------------ worker events (reader thread)

    def _on_event(self, ev: Event) -> None:
        d = ev.data
        out: BackendEvent | None = None
        with self._lock:
            if ev.type == "reg_state":
                line = int(str(d.get("account", "line0"))[4:] or 0)
                if line in self._regs:
                    code = int(d.get("code", 0))
                    registered = bool(d.get("active")) and 200 <= code < 300
                    self._regs[line] = replace(self._regs[line], registered=registered, code=code,
                                               reason=str(d.get("reason", "")), expires_s=int(d.get("expires_s", 0)))
                    self._reg_cond.notify_all()
                    out = BackendEvent(EventKind.REGISTRATION, ev.ts, None,
                                       {"line": line, "registered": registered, "code": code})
            elif ev.type == "incoming_call":
                cid = int(d["call"])
                line = int(str(d.get("account", "line1"))[4:] or 1)
                call = BackendCall(id=cid, line=line, direction="in", phase=CallPhase.INCOMING,
                                   remote=_remote_user(str(d.get("from", ""))), muted=self._muted,
                                   started=time.time(), sip_call_id=str(d.get("call_id") or "") or None)
                self._calls[cid] = call
                out = BackendEvent(EventKind.INCOMING, ev.ts, call)
            elif ev.type == "call_state":
                out = self._on_call_state(ev)
            elif ev.type == "media_state":
                cid = int(d["call"])
                self._media[cid] = str(d.get("status"))
                self._reg_cond.notify_all()
                call = self._calls.get(cid)
                if call is not None and call.active:
                    status = str(d.get("status"))
                    held, remote_held = status == "local_hold", status == "remote_hold"
                    if (held, remote_held) != (call.held, call.remote_held):
                        was_held = call.held or call.remote_held
                        call = replace(call, held=held, remote_held=remote_held)
                        self._calls[cid] = call
                        if (held or remote_held) != was_held:
                            out = BackendEvent(EventKind.HELD if held or remote_held else EventKind.RESUMED,
                                               ev.ts, call)
            elif ev.type == "mwi":  # a message-summary NOTIFY (RFC 3842), subscribed or unsolicited
                line = int(str(d.get("account", "line1"))[4:] or 1)
                if line in self._regs:
                    summary = parse_message_summary(line, str(d.get("body", "")), ev.ts)
                    self._mwi_state[line] = summary
                    out = BackendEvent(EventKind.MWI, ev.ts, None, {"line": line, "waiting": summary.waiting,
                                                                   "new": summary.new, "old": summary.old})
            elif ev.type == "dtmf":
                cid = int(d["call"])
                self.dtmf_received.append((cid, str(d.get("digit"))))
                out = BackendEvent(EventKind.DTMF, ev.ts, self._calls.get(cid), {"digit": d.get("digit"),
                                                                                 "method": d.get("method")})
        if out is not None:
            self._emit(out)

    def _on_call_state(self, ev: Event) -> BackendEvent | None:
        d = ev.data
        cid = int(d["call"])
        state = str(d.get("state"))
        call = self._calls.get(cid)
        if call is None:  # an outgoing call whose first event beat make_call's response (a final response at once)
            out = d.get("role") == "caller"
            call = BackendCall(id=cid, line=self._dialling[1] if out and self._dialling else 1,
                               direction="out" if out else "in", phase=CallPhase.OUTGOING,
                               remote=self._dialling[0] if out and self._dialling else "", muted=self._muted,
                               started=time.time())
        if not call.active:
            return None
        if state == "CONFIRMED" and call.phase is not CallPhase.CONNECTED:
            call = replace(call, phase=CallPhase.CONNECTED, answered=time.time())
            kind: EventKind | None = EventKind.CONNECTED
        elif state == "DISCONNECTED":
            call = replace(call, phase=CallPhase.ENDED, ended=time.time(), end_code=int(d.get("code", 0)))
            kind = EventKind.ENDED
        elif state == "EARLY" and call.direction == "out" and not call.early:
            call = replace(call, early=True)
            kind = EventKind.RINGBACK
        else:
            kind = None
        self._calls[cid] = call
        ended = [c for c in self._calls.values() if not c.active]
        for old in sorted(ended, key=lambda c: c.id)[:-ENDED_KEPT]:
            del self._calls[old.id]
        return BackendEvent(kind, ev.ts, call) if kind is not None else None

    # ------------------------------------------------------------------ DeviceBackend

    def identity(self) -> DeviceIdentity:
        return self._identity

    def registrations(self) -> list[Registration]:
        with self._lock:
            return [self._regs[i] for i in sorted(self._regs)]

    def mwi(self, line: int = 1) -> MessageSummary:
        self.line(line)
        with self._lock:
            return self._mwi_state.get(line) or MessageSummary(line)

    def set_divert(self, line: int, divert: Divert) -> None:
        """The worker answers the line's INVITEs with 302 and a Contact naming the target: at once, or after
        ringing (180) for the no-answer time."""
        self.line(line)
        acc = f"line{line}"
        if divert.always:
            check_number(divert.always, "always")
            contact = (("Contact", f"<{self._target(divert.always)}>"),)
            self._rpc(self.worker.auto_answer, "immediate", 302, headers=contact, account=acc)
        elif divert.no_answer:
            check_number(divert.no_answer, "no_answer")
            self._rpc(self.worker.auto_answer, "delayed", 302, delay_ms=int(divert.no_answer_s * 1000), ring=True,
                      headers=(("Contact", f"<{self._target(divert.no_answer)}>"),), account=acc)
        else:
            self._rpc(self.worker.auto_answer, "never", account=acc)

    def _get(self, call_id: int) -> BackendCall:
        with self._lock:
            c = self._calls.get(call_id)
            if c is None or not c.active:
                active = [x.id for x in self._calls.values() if x.active]
                raise NoSuchCall(f"call {call_id} does not exist (active: {active})")
            return c

    def _rpc(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CommandError as exc:
            if exc.code == "too_many_calls":
                raise Busy(str(exc)) from None
            if exc.code == "no_such_call":
                raise NoSuchCall(str(exc)) from None
            if exc.code == "invalid_state":
                raise InvalidCallState(str(exc)) from None
            if exc.code == "bad_request":
                raise InvalidArgument(str(exc)) from None
            raise BackendError(str(exc)) from None
        except SipUaError as exc:
            raise BackendError(f"{self.worker.name}: {exc}") from None

    def _target(self, number: str) -> str:
        return f"sip:{number}@{self._identity.lines[0].domain}"

    def dial(self, number: str, line: int = 1) -> BackendCall:
        check_number(number)
        self.line(line)
        if not self.registration(line).registered:
            raise LineNotRegistered(f"line {line} is not registered")
        with self._lock:
            self._dialling = (number, line)
        try:
            cid = int(self._rpc(self.worker.make_call, f"line{line}", self._target(number)))
        finally:
            with self._lock:
                self._dialling = None
        sip_call_id = None
        with contextlib.suppress(BackendError):
            sip_call_id = self._rpc(self.worker.call_info, cid).get("call_id")
        with self._lock:
            base = self._calls.get(cid) or BackendCall(id=cid, line=line, direction="out",
                                                       phase=CallPhase.OUTGOING, remote=number,
                                                       started=time.time())
            call = replace(base, line=line, direction="out", remote=number, muted=self._muted,
                           sip_call_id=sip_call_id)
            self._calls[cid] = call
        if self._muted:
            with contextlib.suppress(BackendError):
                self._rpc(self.worker.mute, cid)
        return call

    def answer(self, call_id: int) -> None:
        c = self._get(call_id)
        if c.phase is not CallPhase.INCOMING:
            raise InvalidCallState(f"call {call_id} is {c.phase.value}, not ringing in")
        self._rpc(self.worker.answer, call_id, 200)

    def reject(self, call_id: int, code: int = 486) -> None:
        c = self._get(call_id)
        if c.phase is not CallPhase.INCOMING:
            raise InvalidCallState(f"call {call_id} is {c.phase.value}, not ringing in")
        self._rpc(self.worker.reject, call_id, code)

    def hangup(self, call_id: int) -> None:
        self._get(call_id)
        self._rpc(self.worker.hangup, call_id)

    def hold(self, call_id: int) -> None:
        c = self._get(call_id)
        if c.phase is not CallPhase.CONNECTED:
            raise InvalidCallState(f"call {call_id} is {c.phase.value}, not connected")
        self._rpc(self.worker.hold, call_id)

    def resume(self, call_id: int) -> None:
        self._get(call_id)
        self._rpc(self.worker.unhold, call_id)

    def set_mute(self, muted: bool) -> None:
        with self._lock:
            self._muted = bool(muted)
            calls = [c for c in self._calls.values() if c.active]
            for c in calls:
                self._calls[c.id] = replace(c, muted=self._muted)
        for c in calls:
            with contextlib.suppress(BackendError):
                self._rpc(self.worker.mute if muted else self.worker.unmute, c.id)

    @property
    def muted(self) -> bool:
        return self._muted

    def send_dtmf(self, call_id: int, digits: str) -> None:
        check_digits(digits)
        c = self._get(call_id)
        if c.phase is not CallPhase.CONNECTED:
            raise InvalidCallState(f"call {call_id} is {c.phase.value}, not connected")
        # RFC 4733 digits ride in the RTP stream: wait (briefly) until the worker reports the stream
        # active, as a phone does not send digits before its media is up or while a re-INVITE is pending.
        deadline = time.monotonic() + MEDIA_WAIT_S
        with self._reg_cond:
            while self._media.get(call_id) != "active" and time.monotonic() < deadline:
                self._reg_cond.wait(deadline - time.monotonic())
        self._rpc(self.worker.send_dtmf, call_id, digits)

    def transfer(self, call_id: int, target: str) -> None:
        check_number(target, "target")
        c = self._get(call_id)
        if c.phase is not CallPhase.CONNECTED:
            raise InvalidCallState(f"call {call_id} is {c.phase.value}, not connected")
        self._rpc(self.worker.transfer, call_id, self._target(target))

    def conference(self, call_id: int, other_call_id: int) -> None:
        for cid in (call_id, other_call_id):
            c = self._get(cid)
            if c.phase is not CallPhase.CONNECTED or c.held:
                raise InvalidCallState(f"call {cid} is not connected and off hold")
        self._rpc(self.worker.conference, call_id, other_call_id)  # both legs mixed in the worker's bridge
        with self._lock:
            self._bridges.add((min(call_id, other_call_id), max(call_id, other_call_id)))

    def conferences(self) -> list[tuple[int, int]]:
        active = {c.id for c in self.calls()}
        with self._lock:
            return sorted(b for b in self._bridges if set(b) <= active)

    def calls(self, include_ended: bool = False) -> list[BackendCall]:
        with self._lock:
            return [c for c in sorted(self._calls.values(), key=lambda c: c.id) if include_ended or c.active]

    def restart(self) -> None:
        for c in self.calls():
            with contextlib.suppress(BackendError):
                self._rpc(self.worker.hangup, c.id)
        for i in list(self._regs):
            with contextlib.suppress(BackendError):
                self._rpc(self.worker.reregister, f"line{i}")

    def close(self) -> None:
        if self._own:
            self.worker.close()
