"""The device behind a vendor-API simulator: a small call-control interface and an in-memory fake.

A simulator translates a vendor's HTTP/WebSocket API into calls on a ``DeviceBackend``; what it reports
(call states, registration, identity) is read back from the backend, which in turn reports what its SIP
stack observed (``harness.simulators.sipua_backend``) or what a test told the fake to do (``FakeBackend``).

Calls are identified by small integers (``BackendCall.id``), the handle a vendor API hands out
(Poly ``CallHandle``, Yealink ``$call_id``, Cisco ``callId``).
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class CallPhase(StrEnum):
    OUTGOING = "outgoing"  # INVITE sent, no answer yet (dialling / ringback)
    INCOMING = "incoming"  # INVITE received, ringing, not answered
    CONNECTED = "connected"  # 2xx exchanged (RFC 3261 §13.2.2.4 / §13.3.1.4)
    ENDED = "ended"


class EventKind(StrEnum):
    INCOMING = "incoming"
    RINGBACK = "ringback"
    CONNECTED = "connected"
    HELD = "held"
    RESUMED = "resumed"
    ENDED = "ended"
    REGISTRATION = "registration"
    DTMF = "dtmf"
    MWI = "mwi"


@dataclass(frozen=True)
class BackendCall:
    id: int
    line: int
    direction: str  # "in" | "out"
    phase: CallPhase
    remote: str  # the other party's number (or URI user part)
    muted: bool = False
    held: bool = False  # we put it on hold
    remote_held: bool = False  # the other party put it on hold
    early: bool = False  # outgoing: 18x received
    started: float = 0.0
    answered: float | None = None
    ended: float | None = None
    end_code: int | None = None
    sip_call_id: str | None = None

    @property
    def active(self) -> bool:
        return self.phase is not CallPhase.ENDED


@dataclass(frozen=True)
class LineInfo:
    index: int  # 1-based, as vendor APIs number lines
    username: str
    number: str | None
    domain: str
    display_name: str = ""

    @property
    def address(self) -> str:
        return f"{self.username}@{self.domain}"


@dataclass(frozen=True)
class DeviceIdentity:
    vendor: str
    model: str
    firmware: str
    mac: str  # "00:04:f2:8e:5a:79"
    user_agent: str
    serial: str = ""
    lines: tuple[LineInfo, ...] = ()

    @property
    def mac_plain(self) -> str:
        return self.mac.replace(":", "").replace("-", "").lower()


@dataclass(frozen=True)
class Registration:
    line: int
    registered: bool
    code: int | None = None  # status of the last REGISTER transaction
    reason: str = ""
    expires_s: int = 0
    registrar: str | None = None


@dataclass(frozen=True)
class Divert:
    """The device's own call forwarding on a line: every call at once (``always``), or after ringing
    ``no_answer_s`` seconds (``no_answer``); the device answers the INVITE with 302 and a Contact naming the
    target (RFC 3261 §8.3, §21.3.3)."""

    always: str | None = None
    no_answer: str | None = None
    no_answer_s: float = 20.0


@dataclass(frozen=True)
class MessageSummary:
    """The message-waiting state a line shows: the last RFC 3842 ``message-summary`` body the device received
    (``Messages-Waiting: yes|no``, ``Voice-Message: <new>/<old>``)."""

    line: int
    waiting: bool = False
    new: int = 0
    old: int = 0
    raw: str = ""
    t: float | None = None


def parse_message_summary(line: int, body: str, t: float | None = None) -> MessageSummary:
    """RFC 3842 §5.2: ``Messages-Waiting`` and the ``Voice-Message: new/old`` counts."""
    waiting = bool(re.search(r"(?im)^Messages-Waiting:\s*yes\b", body))
    m = re.search(r"(?im)^Voice-Message:\s*(\d+)\s*/\s*(\d+)", body)
    new, old = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    return MessageSummary(line, waiting, new, old, body, t)


@dataclass(frozen=True)
class BackendEvent:
    kind: EventKind
    t: float
    call: BackendCall | None = None
    data: dict[str, Any] = field(default_factory=dict)


class BackendError(Exception):
    """A backend refused an operation; ``kind`` lets simulators map it to their vendor's status code."""

    kind = "failed"


class NoSuchCall(BackendError):
    kind = "no_such_call"


class NoSuchLine(BackendError):
    kind = "no_such_line"


class LineNotRegistered(BackendError):
    kind = "not_registered"


class Busy(BackendError):
    kind = "busy"  # the device's call limit is reached


class InvalidCallState(BackendError):
    kind = "invalid_state"


class InvalidArgument(BackendError):
    kind = "invalid_argument"


class NotSupported(BackendError):
    kind = "not_supported"


Listener = Callable[[BackendEvent], None]


class DeviceBackend(ABC):
    """What a simulated device can do. Methods block for at most a few seconds (an RPC to a SIP worker);
    simulators call them off their event loop. Listeners run on a backend thread and must not block."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()

    # -- identity and registration --------------------------------------------------------------------
    @abstractmethod
    def identity(self) -> DeviceIdentity: ...

    @abstractmethod
    def registrations(self) -> list[Registration]: ...

    def registration(self, line: int = 1) -> Registration:
        for reg in self.registrations():
            if reg.line == line:
                return reg
        raise NoSuchLine(f"line {line} does not exist (lines: {[r.line for r in self.registrations()]})")

    def line(self, index: int) -> LineInfo:
        for ln in self.identity().lines:
            if ln.index == index:
                return ln
        raise NoSuchLine(f"line {index} does not exist (lines: {[x.index for x in self.identity().lines]})")

    # -- calls ----------------------------------------------------------------------------------------
    @abstractmethod
    def dial(self, number: str, line: int = 1) -> BackendCall: ...

    @abstractmethod
    def answer(self, call_id: int) -> None: ...

    @abstractmethod
    def reject(self, call_id: int, code: int = 486) -> None: ...

    @abstractmethod
    def hangup(self, call_id: int) -> None: ...

    @abstractmethod
    def hold(self, call_id: int) -> None: ...

    @abstractmethod
    def resume(self, call_id: int) -> None: ...

    @abstractmethod
    def set_mute(self, muted: bool) -> None:
        """Device-wide microphone mute (applies to every call, as a desk phone's mute key does)."""

    @property
    @abstractmethod
    def muted(self) -> bool: ...

    @abstractmethod
    def send_dtmf(self, call_id: int, digits: str) -> None: ...

    @abstractmethod
    def transfer(self, call_id: int, target: str) -> None:
        """Blind transfer (REFER, RFC 3515) of ``call_id`` to the number ``target``."""

    def conference(self, call_id: int, other_call_id: int) -> None:
        """Bridge two connected calls locally (a three-party conference hosted on the device)."""
        raise NotSupported(f"{type(self).__name__}: local conferences are not supported")

    def conferences(self) -> list[tuple[int, int]]:
        """Pairs of calls bridged on the device."""
        return []

    @abstractmethod
    def calls(self, include_ended: bool = False) -> list[BackendCall]: ...

    def call(self, call_id: int) -> BackendCall:
        for c in self.calls(include_ended=True):
            if c.id == call_id:
                return c
        raise NoSuchCall(f"call {call_id} does not exist")

    def mwi(self, line: int = 1) -> MessageSummary:
        """The message-waiting state ``line`` shows (lamp off until a message-summary arrives)."""
        self.line(line)
        return MessageSummary(line)

    def set_divert(self, line: int, divert: Divert) -> None:
        """Forward the line's calls as ``divert`` says (a device setting applied by its configuration)."""
        raise NotSupported(f"{type(self).__name__}: call forwarding is not supported")

    def restart(self) -> None:  # noqa: B027 - optional hook
        """A reboot or re-provisioning: the device registers again."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the backend holds (a worker process)."""

    # -- events ---------------------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        with self._listeners_lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._listeners_lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _emit(self, event: BackendEvent) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a listener's failure never breaks the device
                continue


_DIAL_CHARS = set("0123456789*#+")
_DTMF_CHARS = set("0123456789*#ABCDabcd")


def check_number(number: object, where: str = "number") -> str:
    if not isinstance(number, str) or not number or not set(number) <= _DIAL_CHARS | set(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._-@:"):
        raise InvalidArgument(f"{where}: {number!r} is not a dialable number or SIP user")
    return number


def check_digits(digits: object, where: str = "digits") -> str:
    if not isinstance(digits, str) or not digits or not set(digits) <= _DTMF_CHARS:
        raise InvalidArgument(f"{where}: {digits!r} is not a DTMF string (0-9, *, #, A-D)")
    return digits


class FakeBackend(DeviceBackend):
    """An in-memory device for fast tests: dials always ring out, and the test plays the far end with
    ``inject_incoming``, ``far_answer``, ``far_hangup`` and ``far_hold``."""

    def __init__(self, identity: DeviceIdentity, *, registered: bool = True, max_calls: int = 4) -> None:
        super().__init__()
        if not identity.lines:
            raise InvalidArgument("FakeBackend: the identity has no lines")
        self._identity = identity
        self._registered = {ln.index: registered for ln in identity.lines}
        self._max_calls = max_calls
        self._lock = threading.RLock()
        self._calls: dict[int, BackendCall] = {}
        self._ids = itertools.count(1)
        self._muted = False
        self.dtmf_sent: list[tuple[int, str]] = []
        self.transfers: list[tuple[int, str]] = []
        self._bridges: set[tuple[int, int]] = set()
        self._mwi: dict[int, MessageSummary] = {}
        self.diverts: dict[int, Divert] = {}
        self.restarts = 0

    def identity(self) -> DeviceIdentity:
        return self._identity

    def registrations(self) -> list[Registration]:
        return [Registration(line=i, registered=r, code=200 if r else None, reason="OK" if r else "",
                             expires_s=300 if r else 0, registrar="sip:127.0.0.1")
                for i, r in sorted(self._registered.items())]

    def set_registered(self, registered: bool, line: int = 1) -> None:
        self.line(line)
        self._registered[line] = registered
        self._emit(BackendEvent(EventKind.REGISTRATION, time.time(), data={"line": line, "registered": registered}))

    # -- helpers --------------------------------------------------------------------------------------
    def _get(self, call_id: int) -> BackendCall:
        with self._lock:
            c = self._calls.get(call_id)
            if c is None or not c.active:
                raise NoSuchCall(f"call {call_id} does not exist (active: {self._active_ids()})")
            return c

    def _active_ids(self) -> list[int]:
        return [c.id for c in self._calls.values() if c.active]

    def _put(self, call: BackendCall, kind: EventKind | None) -> BackendCall:
        with self._lock:
            self._calls[call.id] = call
        if kind is not None:
            self._emit(BackendEvent(kind, time.time(), call))
        return call

    def _new(self, line: int, direction: str, remote: str, phase: CallPhase) -> BackendCall:
        self.line(line)
        with self._lock:
            if len(self._active_ids()) >= self._max_calls:
                raise Busy(f"{self._max_calls} calls are up already")
            cid = next(self._ids)
            return BackendCall(id=cid, line=line, direction=direction, phase=phase, remote=remote,
                               muted=self._muted, started=time.time(), sip_call_id=f"fake-{cid}@sim")

    # -- DeviceBackend --------------------------------------------------------------------------------
    def dial(self, number: str, line: int = 1) -> BackendCall:
        check_number(number)
        self.line(line)
        if not self._registered[line]:
            raise LineNotRegistered(f"line {line} is not registered")
        return self._put(self._new(line, "out", number, CallPhase.OUTGOING), EventKind.RINGBACK)

    def answer(self, call_id: int) -> None:
        c = self._get(call_id)
        if c.direction != "in" or c.phase is not CallPhase.INCOMING:
            raise InvalidCallState(f"call {call_id} is {c.phase.value}, not ringing in")
        self._put(replace(c, phase=CallPhase.CONNECTED, answered=time.time()), EventKind.CONNECTED)

    def reject(self, call_id: int, code: int = 486) -> None:
        c = self._get(call_id)
        if c.phase is not CallPhase.INCOMING:
            raise InvalidCallState(f"call {call_id} is {c.phase.value}, not ringing in")
        self._put(replace(c, phase=CallPhase.ENDED, ended=time.time(), end_code=code), EventKind.ENDED)

    def hangup(self, call_id: int) -> None:
        c = self._get(call_id)
        self._put(replace(c, phase=CallPhase.ENDED, ended=time.time(), end_code=200), EventKind.ENDED)

    def hold(self, call_id: int) -> None:
        c = self._get(call_id)
        if c.phase is not CallPhase.CONNECTED:
            raise InvalidCallState(f"call {call_id} is {c.phase.value}, not connected")
        self._put(replace(c, held=True), EventKind.HELD)

    def resume(self, call_id: int) -> None:
        c = self._get(call_id)
        if not c.held:
            raise InvalidCallState(f"call {call_id} is not on hold")
        self._put(replace(c, held=False), EventKind.RESUMED)

    def set_mute(self, muted: bool) -> None:
        with self._lock:
            self._muted = bool(muted)
            for c in list(self._calls.values()):
                if c.active:
                    self._calls[c.id] = replace(c, muted=self._muted)

    @property
    def muted(self) -> bool:
        return self._muted

    def send_dtmf(self, call_id: int, digits: str) -> None:
        check_digits(digits)
        c = self._get(call_id)
        if c.phase is not CallPhase.CONNECTED:
            raise InvalidCallState(f"call {call_id} is {c.phase.value}, not connected")
        self.dtmf_sent.append((call_id, digits))

    def transfer(self, call_id: int, target: str) -> None:
        check_number(target, "target")
        c = self._get(call_id)
        if c.phase is not CallPhase.CONNECTED:
            raise InvalidCallState(f"call {call_id} is {c.phase.value}, not connected")
        self.transfers.append((call_id, target))
        self._put(replace(c, phase=CallPhase.ENDED, ended=time.time(), end_code=202), EventKind.ENDED)

    def conference(self, call_id: int, other_call_id: int) -> None:
        for cid in (call_id, other_call_id):
            c = self._get(cid)
            if c.phase is not CallPhase.CONNECTED or c.held:
                raise InvalidCallState(f"call {cid} is not connected and off hold")
        self._bridges.add((min(call_id, other_call_id), max(call_id, other_call_id)))

    def conferences(self) -> list[tuple[int, int]]:
        active = {c.id for c in self.calls()}
        return sorted(b for b in self._bridges if set(b) <= active)

    def calls(self, include_ended: bool = False) -> list[BackendCall]:
        with self._lock:
            return [c for c in sorted(self._calls.values(), key=lambda c: c.id) if include_ended or c.active]

    def restart(self) -> None:
        self.restarts += 1
        with self._lock:
            for c in list(self._calls.values()):
                if c.active:
                    self._calls[c.id] = replace(c, phase=CallPhase.ENDED, ended=time.time())

    def mwi(self, line: int = 1) -> MessageSummary:
        self.line(line)
        return self._mwi.get(line) or MessageSummary(line)

    def set_divert(self, line: int, divert: Divert) -> None:
        self.line(line)
        self.diverts[line] = divert

    # -- the far end, played by a test ------------------------------------------------------------------
    def set_mwi(self, body: str, line: int = 1) -> MessageSummary:
        """A message-summary NOTIFY arrives with ``body`` (RFC 3842)."""
        self.line(line)
        summary = parse_message_summary(line, body, time.time())
        self._mwi[line] = summary
        self._emit(BackendEvent(EventKind.MWI, time.time(), data={"line": line, "waiting": summary.waiting}))
        return summary

    def inject_incoming(self, remote: str, line: int = 1) -> BackendCall:
        return self._put(self._new(line, "in", remote, CallPhase.INCOMING), EventKind.INCOMING)

    def far_answer(self, call_id: int) -> None:
        c = self._get(call_id)
        self._put(replace(c, phase=CallPhase.CONNECTED, answered=time.time()), EventKind.CONNECTED)

    def far_hangup(self, call_id: int) -> None:
        c = self._get(call_id)
        self._put(replace(c, phase=CallPhase.ENDED, ended=time.time(), end_code=200), EventKind.ENDED)

    def far_hold(self, call_id: int, held: bool = True) -> None:
        c = self._get(call_id)
        self._put(replace(c, remote_held=held), EventKind.HELD if held else EventKind.RESUMED)
