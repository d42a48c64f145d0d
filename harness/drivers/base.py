"""What every driver shares: its context (device, lines, gateway), the lifecycle guard and the call book.

Lifecycle (labgrid's create → activate → use → deactivate): a driver is created with a
:class:`DriverContext`, ``activate()`` opens its sessions or spawns its worker, operations are allowed only
while active (``StateError`` names the method and the state otherwise), ``deactivate()`` releases everything.

:class:`CallBook` keeps the calls and events a driver observed, thread-safe, with waits that have
deadlines; ``liveness`` is called while waiting so a dead worker is reported within a fraction of a second.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from device_profiles.capabilities import applicability
from device_profiles.catalogue import ModelProfile
from harness.protocols import (
    CallEvent,
    CallInfo,
    CallState,
    EventKind,
    MwiState,
    NotApplicable,
    OperationTimeout,
    RegistrationInfo,
    StateError,
    UnknownCall,
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class GatewayTarget:
    """Where the gateway's SIP service is, as a device is configured to reach it."""

    host: str
    udp_port: int
    tcp_port: int
    tls_port: int
    domain: str = "sipgw.lab"
    ca_file: str | None = None

    def port(self, transport: str) -> int:
        return {"udp": self.udp_port, "tcp": self.tcp_port, "tls": self.tls_port}[transport]


@dataclass(frozen=True)
class LineAccount:
    """One line of a device with the SIP credentials the tenant gave it."""

    index: int
    number: str
    name: str
    username: str
    password: str
    port: int | None = None  # ATA port
    handset_model: str | None = None
    handset_firmware: str | None = None


@dataclass
class DriverContext:
    device_id: str
    vendor: str
    model: str
    firmware: str | None
    profile: ModelProfile
    lines: tuple[LineAccount, ...]
    transport: str = "udp"
    mac: str | None = None
    gateway: GatewayTarget | None = None
    work_dir: Path = field(default_factory=lambda: Path("."))
    allocator: Any = None  # sipua.PortAllocator for emulated drivers
    options: dict[str, Any] = field(default_factory=dict)


def requires_active(fn: F) -> F:
    """Guard: the method may only run while the driver is active."""

    @functools.wraps(fn)
    def wrapper(self: Driver, *a: Any, **kw: Any) -> Any:
        if not self.active:
            raise StateError(f"{self.device_id}: {type(self).__name__}.{fn.__name__}() called while the driver is "
                             f"{self.lifecycle}; call activate() first")
        return fn(self, *a, **kw)

    return wrapper  # type: ignore[return-value]


class Driver:
    """Base of all drivers. Subclasses add capability protocols as base classes."""

    def __init__(self, ctx: DriverContext) -> None:
        self.ctx = ctx
        self.device_id = ctx.device_id
        self.lifecycle = "idle"
        #: Called once with the first infrastructure failure (the Lab breaks the device's state machine).
        self.on_failure: Callable[[BaseException], None] | None = None

    def failed(self, exc: BaseException) -> BaseException:
        """Report an infrastructure failure to ``on_failure`` (never raises) and return it for ``raise``."""
        hook = self.on_failure
        if hook is not None:
            try:
                hook(exc)
            except Exception:  # the hook must not hide the failure itself
                pass
        return exc

    @property
    def active(self) -> bool:
        return self.lifecycle == "active"

    def activate(self) -> None:
        self.lifecycle = "active"

    def deactivate(self) -> None:
        self.lifecycle = "idle"

    def require(self, feature: str) -> None:
        """Raise ``NotApplicable`` with the catalogue's reason when ``feature`` does not apply to this model."""
        a = applicability(self.ctx.profile, feature)
        if not a.applicable:
            raise NotApplicable(a.reason or f"{feature} does not apply to {self.ctx.vendor} {self.ctx.model}",
                                feature=feature, device_id=self.device_id)

    def line(self, index: int) -> LineAccount:
        try:
            return self.ctx.lines[index]
        except (IndexError, TypeError):
            raise ValueError(f"{self.device_id} has {len(self.ctx.lines)} line(s) (0..{len(self.ctx.lines) - 1}); "
                             f"there is no line {index!r}") from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.device_id!r}, {self.lifecycle})"


class CallBook:
    """Calls, registrations, MWI and the event log of one device; every method is thread-safe."""

    def __init__(self, device_id: str, liveness: Callable[[], None] | None = None) -> None:
        self.device_id = device_id
        self._cond = threading.Condition()
        self._calls: dict[str, CallInfo] = {}
        self._events: list[CallEvent] = []
        self._regs: dict[int, RegistrationInfo] = {}
        self._mwi: dict[int, MwiState] = {}
        self._seq = 0
        self._incoming_taken: set[str] = set()
        self._liveness = liveness

    # --- writes ----------------------------------------------------------------------------------------
    def put_call(self, info: CallInfo, kind: EventKind | None, **detail: Any) -> CallInfo:
        with self._cond:
            self._calls[info.id] = info
            if kind is not None:
                self._emit(kind, info, info.line, detail)
            return info

    def update_call(self, call_id: str, kind: EventKind | None, detail: dict[str, Any] | None = None,
                    **changes: Any) -> CallInfo | None:
        with self._cond:
            old = self._calls.get(call_id)
            if old is None:
                return None
            new = dataclasses.replace(old, **changes)
            self._calls[call_id] = new
            if kind is not None:
                self._emit(kind, new, new.line, detail or {})
            return new

    def put_registration(self, info: RegistrationInfo) -> None:
        with self._cond:
            self._regs[info.line] = info
            self._emit(EventKind.REGISTRATION, None, info.line, {"status_code": info.status_code})

    def put_mwi(self, state: MwiState) -> None:
        with self._cond:
            self._mwi[state.line] = state
            self._emit(EventKind.MWI, None, state.line, {"waiting": state.waiting})

    def event(self, kind: EventKind, call: CallInfo | None = None, line: int | None = None, **detail: Any) -> None:
        with self._cond:
            self._emit(kind, call, line, detail)

    def _emit(self, kind: EventKind, call: CallInfo | None, line: int | None, detail: dict[str, Any]) -> None:
        self._seq += 1
        self._events.append(CallEvent(kind, time.time(), self._seq, call, line, dict(detail)))
        self._cond.notify_all()

    def poke(self) -> None:
        """Wake every waiter (e.g. because the worker died) so it re-checks liveness."""
        with self._cond:
            self._cond.notify_all()

    # --- reads --------------------------------------------------------------------------------------------
    @property
    def last_seq(self) -> int:
        with self._cond:
            return self._seq

    def calls(self) -> tuple[CallInfo, ...]:
        with self._cond:
            return tuple(self._calls.values())

    def call(self, call_id: str) -> CallInfo:
        with self._cond:
            info = self._calls.get(call_id)
            if info is None:
                known = ", ".join(self._calls) or "none"
                raise UnknownCall(f"{self.device_id}: no call {call_id!r}; calls: {known}")
            return info

    def registration(self, line: int) -> RegistrationInfo | None:
        with self._cond:
            return self._regs.get(line)

    def mwi(self, line: int) -> MwiState | None:
        with self._cond:
            return self._mwi.get(line)

    def events(self, after_seq: int = 0) -> list[CallEvent]:
        with self._cond:
            return [e for e in self._events if e.seq > after_seq]

    # --- waits ---------------------------------------------------------------------------------------------
    def wait(self, test: Callable[[], Any], what: str, timeout: float) -> Any:
        """Wait until ``test()`` returns something truthy (re-evaluated on every event); raise on deadline."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._liveness is not None:
                    self._liveness()
                got = test()
                if got:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    recent = "\n".join(
                        f"  #{e.seq} {e.kind.value} {e.call.id + ' ' + e.call.state.value if e.call else ''}"
                        f" {e.detail}" for e in self._events[-8:]) or "  (none)"
                    raise OperationTimeout(f"{self.device_id}: no {what} within {timeout} s; latest events:\n{recent}")
                self._cond.wait(min(left, 0.25))

    def wait_event(self, kinds: Iterable[EventKind] | None, call_id: str | None, after_seq: int,
                   timeout: float) -> CallEvent:
        wanted = set(kinds) if kinds is not None else None

        def test() -> CallEvent | None:
            for e in self._events:
                if e.seq > after_seq and (wanted is None or e.kind in wanted) and \
                        (call_id is None or (e.call is not None and e.call.id == call_id)):
                    return e
            return None

        names = ",".join(sorted(k.value for k in wanted)) if wanted else "event"
        return self.wait(test, f"{names} event" + (f" for call {call_id}" if call_id else ""), timeout)

    def wait_incoming(self, line: int | None, timeout: float) -> CallInfo:
        def test() -> CallInfo | None:
            for e in self._events:
                if e.kind is EventKind.INCOMING and e.call is not None and e.call.id not in self._incoming_taken \
                        and (line is None or e.call.line == line):
                    self._incoming_taken.add(e.call.id)
                    return self._calls[e.call.id]
            return None

        return self.wait(test, "incoming call", timeout)

    def wait_state(self, call_id: str, states: set[CallState], timeout: float) -> CallInfo:
        self.call(call_id)  # unknown id → UnknownCall at once

        def test() -> CallInfo | None:
            info = self._calls[call_id]
            return info if info.state in states else None

        return self.wait(test, f"state {'/'.join(sorted(s.value for s in states))} of call {call_id}", timeout)

    def wait_for(self, test: Callable[[], Any], what: str, timeout: float) -> Any:
        return self.wait(test, what, timeout)


def user_part(uri: str) -> str:
    """``"Bob" <sip:+1425@host;x>`` → ``+1425``; anything else unchanged."""
    text = uri.strip()
    if "<" in text and ">" in text:
        text = text[text.index("<") + 1:text.index(">")]
    for scheme in ("sips:", "sip:", "tel:"):
        if text.startswith(scheme):
            text = text[len(scheme):]
            break
    return text.split("@", 1)[0].split(";", 1)[0]
