"""Capability protocols: small ABCs, each naming one thing a device can do.

A driver lists the protocols it fulfils as base classes; a suite asks a device handle for a protocol
(``device[CallControl]``) and never checks whether the device is emulated or physical. Every operation
returns a frozen dataclass of what was *observed* (a SIP response, a state read back from the device),
never what was expected.

Two exceptions cross this boundary:

- :class:`NotApplicable` — the device cannot do this per the catalogue (``device_profiles.capabilities``);
  the reason is the catalogue's. Reports show it as ``not_applicable``.
- :class:`DeviceBroken` — the device's state machine broke earlier; the cause is the first failure.
  Reports show it as ``blocked``.

and lab failures (a worker process that died or hung) are :class:`InfrastructureError`, reported as ``error``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "AudioProbe",
    "CallControl",
    "CallDirection",
    "CallEvent",
    "CallInfo",
    "CallState",
    "Capability",
    "Console",
    "ConsoleResult",
    "DeviceBroken",
    "DeviceIdentity",
    "DtmfDigit",
    "EventKind",
    "Forwarding",
    "ForwardingKind",
    "ForwardingRule",
    "HarnessError",
    "Identity",
    "InfrastructureError",
    "MediaDirection",
    "MessageWaiting",
    "MwiState",
    "NotApplicable",
    "OperationFailed",
    "OperationTimeout",
    "Power",
    "PowerState",
    "Provisioning",
    "ProvisioningInfo",
    "RegistrationInfo",
    "SignIn",
    "SignInState",
    "SignInStatus",
    "StateError",
    "UnknownCall",
    "capability_of",
    "protocols_of",
]


# --- errors -----------------------------------------------------------------------------------------------


class HarnessError(Exception):
    """Base class of the errors drivers raise."""


class NotApplicable(HarnessError, KeyError):
    """The device cannot do this; ``reason`` says why (usually the catalogue's reason, word for word).

    A ``KeyError`` too, so ``device[Protocol]`` on a device without that capability behaves like a mapping.
    """

    def __init__(self, reason: str, *, feature: str | None = None, device_id: str | None = None) -> None:
        self.reason = reason
        self.feature = feature
        self.device_id = device_id
        super().__init__(reason)

    def __str__(self) -> str:  # KeyError would repr() the message
        where = f"{self.device_id}: " if self.device_id else ""
        return f"{where}not applicable: {self.reason}"


class DeviceBroken(HarnessError):
    """The device broke earlier and stays broken; ``cause`` is the first failure (never retried)."""

    def __init__(self, cause: BaseException | str, *, device_id: str | None = None, state: str | None = None,
                 attempted: str | None = None) -> None:
        self.cause = cause
        self.device_id = device_id
        self.state = state
        self.attempted = attempted
        who = device_id or "device"
        at = f" in state {state}" if state else ""
        tried = f"; refused {attempted}" if attempted else ""
        super().__init__(f"{who} is broken{at}{tried}: {_describe(cause)}")


class InfrastructureError(HarnessError):
    """The lab failed, not the device: a worker process died or hung, the gateway went away.

    ``log_tail`` holds the last lines of the worker's log, ``log_path`` where the whole log is.
    """

    def __init__(self, message: str, *, device_id: str | None = None, log_tail: str = "",
                 log_path: str | None = None) -> None:
        self.device_id = device_id
        self.log_tail = log_tail
        self.log_path = log_path
        super().__init__(message)


class OperationFailed(HarnessError):
    """The device refused or failed an operation (e.g. hold on a call that is not established)."""


class StateError(HarnessError):
    """An operation was called in a lifecycle state that does not allow it (e.g. before ``activate()``)."""


class OperationTimeout(HarnessError, TimeoutError):
    """An awaited event did not arrive before its deadline; the message says what was awaited and what was seen."""


class UnknownCall(HarnessError, LookupError):
    """No call with that id on this device; the message lists the calls it has."""


def _describe(cause: BaseException | str) -> str:
    if isinstance(cause, BaseException):
        text = str(cause)
        return f"{type(cause).__name__}: {text}" if text else type(cause).__name__
    return cause


# --- observed values ----------------------------------------------------------------------------------------


class CallState(StrEnum):
    """INVITE session state as observed on the device (RFC 3261 §13, §12 early/confirmed dialogs)."""

    CALLING = "calling"  # INVITE sent, no provisional response yet
    INCOMING = "incoming"  # INVITE received, not yet answered
    EARLY = "early"  # provisional response with To tag (ringing)
    CONNECTING = "connecting"  # 2xx sent/received, ACK outstanding
    CONFIRMED = "confirmed"  # dialog confirmed (RFC 3261 §12)
    DISCONNECTED = "disconnected"

    @property
    def active(self) -> bool:
        return self is not CallState.DISCONNECTED


class CallDirection(StrEnum):
    INCOMING = "in"
    OUTGOING = "out"


class MediaDirection(StrEnum):
    """The negotiated SDP stream direction (RFC 3264 §6.1) from this device's point of view, or none."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"
    NONE = "none"


@dataclass(frozen=True)
class DtmfDigit:
    digit: str
    method: str  # "rfc4733" | "info"
    t: float
    duration_ms: int | None = None


@dataclass(frozen=True)
class CallInfo:
    """One call as the device reports it at the moment it was read."""

    id: str
    state: CallState
    remote: str
    direction: CallDirection
    media_direction: MediaDirection = MediaDirection.NONE
    sip_call_id: str | None = None
    line: int = 0
    status_code: int | None = None
    reason: str | None = None
    local_hold: bool = False
    remote_hold: bool = False
    muted: bool = False
    codec: str | None = None
    dtmf_received: tuple[DtmfDigit, ...] = ()
    started: float | None = None
    answered: float | None = None
    ended: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def active(self) -> bool:
        return self.state.active

    @property
    def held(self) -> bool:
        return self.local_hold or self.remote_hold


class EventKind(StrEnum):
    INCOMING = "incoming"  # a new inbound call
    STATE = "state"  # a call changed state
    MEDIA = "media"  # media direction/hold changed
    DTMF = "dtmf"  # a digit was received
    REGISTRATION = "registration"  # a line's registration changed
    MWI = "mwi"  # message-waiting state changed
    TRANSFER = "transfer"  # progress of a transfer this device started (NOTIFY sipfrag)
    REPLACED = "replaced"  # a call was replaced (consultative transfer target)


@dataclass(frozen=True)
class CallEvent:
    """Something the device observed, in the order it observed it. ``seq`` increases per device."""

    kind: EventKind
    t: float
    seq: int
    call: CallInfo | None = None
    line: int | None = None
    detail: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class RegistrationInfo:
    """The final response to the latest REGISTER of a line (RFC 3261 §10.3), as the device saw it."""

    line: int
    status_code: int
    reason: str
    expires: int
    contact: str | None = None
    registered: bool = False
    aor: str | None = None
    diagnostic: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300 and self.registered


@dataclass(frozen=True)
class DeviceIdentity:
    """Who the device says it is — read back from the device, not copied from the inventory."""

    vendor: str
    model: str
    firmware: str
    mac: str | None
    user_agent: str
    serial: str | None = None
    source: str = "device"  # "sip-user-agent", "http-api", "device"


@dataclass(frozen=True)
class MwiState:
    """Message-summary state (RFC 3842) of a line as the device shows it."""

    line: int
    waiting: bool
    new: int = 0
    old: int = 0
    account: str | None = None
    raw: str = ""
    t: float | None = None


class ForwardingKind(StrEnum):
    ALWAYS = "always"
    BUSY = "busy"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class ForwardingRule:
    kind: ForwardingKind
    target: str
    enabled: bool = True
    timeout_s: int | None = None  # only for ``timeout``
    line: int = 0


class SignInState(StrEnum):
    SIGNED_OUT = "signed_out"
    PAIRING = "pairing"  # code shown, waiting for the user to sign in on the web page
    SIGNED_IN = "signed_in"


@dataclass(frozen=True)
class SignInStatus:
    state: SignInState
    user: str | None = None
    number: str | None = None
    pairing_code: str | None = None
    auth_url: str | None = None


@dataclass(frozen=True)
class ProvisioningInfo:
    """What the device fetched and applied, as it reports it."""

    url: str | None
    status: str  # "factory_default" | "fetched" | "applied" | "failed"
    config_version: str | None = None
    detail: str | None = None


class PowerState(StrEnum):
    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ConsoleResult:
    command: str
    output: str
    exit_status: int | None = None
    duration_s: float = 0.0


# --- capability protocols -----------------------------------------------------------------------------------


class Capability(abc.ABC):  # noqa: B024 - a marker base; subclasses define the abstract methods
    """Marker base of every capability protocol."""


class CallControl(Capability):
    """Lines and calls. ``line`` is the index of the device's line (0 = first); ``call_id`` is the driver's id."""

    @abc.abstractmethod
    def register(self, line: int = 0, *, timeout: float = 10.0) -> RegistrationInfo:
        """Send REGISTER and return the final response observed (a 403 is returned, not raised)."""

    @abc.abstractmethod
    def unregister(self, line: int = 0, *, timeout: float = 10.0) -> RegistrationInfo:
        """REGISTER with Expires: 0 (RFC 3261 §10.2.2) and return the final response observed."""

    @abc.abstractmethod
    def registration(self, line: int = 0) -> RegistrationInfo:
        """The latest observed registration state of ``line``."""

    @abc.abstractmethod
    def dial(self, target: str, *, line: int = 0) -> CallInfo:
        """Dial a number, a SIP URI or a feature code (``*30*``). Returns the call as it is right after sending."""

    @abc.abstractmethod
    def answer(self, call_id: str, *, code: int = 200) -> CallInfo: ...

    @abc.abstractmethod
    def reject(self, call_id: str, *, code: int = 486) -> CallInfo: ...

    @abc.abstractmethod
    def hangup(self, call_id: str) -> CallInfo: ...

    @abc.abstractmethod
    def hold(self, call_id: str) -> CallInfo: ...

    @abc.abstractmethod
    def resume(self, call_id: str) -> CallInfo: ...

    @abc.abstractmethod
    def mute(self, call_id: str) -> CallInfo: ...

    @abc.abstractmethod
    def unmute(self, call_id: str) -> CallInfo: ...

    @abc.abstractmethod
    def send_dtmf(self, call_id: str, digits: str) -> CallInfo: ...

    @abc.abstractmethod
    def blind_transfer(self, call_id: str, target: str) -> CallInfo:
        """REFER the remote party of ``call_id`` to ``target`` (RFC 3515)."""

    @abc.abstractmethod
    def consultative_transfer(self, call_id: str, consult_call_id: str) -> CallInfo:
        """REFER with Replaces (RFC 3891): the remote of ``call_id`` replaces ``consult_call_id``'s dialog."""

    @abc.abstractmethod
    def conference(self, call_id: str, other_call_id: str) -> tuple[CallInfo, CallInfo]:
        """Bridge two calls locally (three-way conference)."""

    @abc.abstractmethod
    def calls(self) -> tuple[CallInfo, ...]:
        """Every call the device knows, including disconnected ones of this session."""

    @abc.abstractmethod
    def call(self, call_id: str) -> CallInfo: ...

    @abc.abstractmethod
    def wait_for_event(self, kinds: set[EventKind] | EventKind | None = None, *, call_id: str | None = None,
                       after_seq: int = 0, timeout: float = 10.0) -> CallEvent:
        """The first event (of ``kinds``, for ``call_id``) with ``seq > after_seq``; ``OperationTimeout`` otherwise."""

    @abc.abstractmethod
    def wait_for_incoming(self, *, line: int | None = None, timeout: float = 10.0) -> CallInfo:
        """The next inbound call not yet returned by this method."""

    @abc.abstractmethod
    def wait_for_state(self, call_id: str, states: set[CallState] | CallState, *, timeout: float = 10.0) -> CallInfo:
        """Wait until the call is in one of ``states`` (returns at once if it already is)."""

    def wait_for_media(self, call_id: str, direction: MediaDirection, *, timeout: float = 10.0) -> CallInfo:
        """Wait until the call's negotiated media direction is ``direction``. Drivers may override."""
        import time

        deadline = time.monotonic() + timeout
        seen = None
        while True:
            info = self.call(call_id)
            seen = info.media_direction
            if info.media_direction == direction:
                return info
            if not info.active:
                raise OperationTimeout(f"call {call_id} ended while waiting for media {direction}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise OperationTimeout(f"call {call_id}: media direction {seen}, waited {timeout} s for {direction}")
            try:
                self.wait_for_event({EventKind.MEDIA, EventKind.STATE}, call_id=call_id,
                                    after_seq=self.last_seq(), timeout=min(left, 0.5))
            except OperationTimeout:
                pass

    def last_seq(self) -> int:
        """The ``seq`` of the latest event so far (0 if none). Drivers override."""
        return 0

    def refresh_session(self, call_id: str) -> CallInfo:
        """Send a session refresh: a re-INVITE with the current SDP, hold state kept (RFC 4028 §7.4).

        Returns the call once the refresh was answered. Drivers that can do this override it.
        """
        raise NotApplicable(f"the {type(self).__name__} driver cannot send a session refresh")


class Identity(Capability):
    @abc.abstractmethod
    def identity(self) -> DeviceIdentity:
        """Model, firmware and MAC as the device reports them, and its SIP User-Agent."""


class AudioProbe(Capability):
    """Emulated devices and media parties: send a known tone, record what arrives."""

    @abc.abstractmethod
    def play_tone(self, call_id: str, hz: float | None = None) -> None:
        """Transmit a steady tone (the device's own tone when ``hz`` is None)."""

    @abc.abstractmethod
    def stop_tone(self, call_id: str) -> None: ...

    @abc.abstractmethod
    def record(self, call_id: str, duration_s: float) -> Path:
        """Record what the device receives on the call for ``duration_s``; the path of a 16-bit PCM WAV."""

    @property
    @abc.abstractmethod
    def tone_hz(self) -> float:
        """The tone this device sends by default."""

    def rtp_stats(self, call_id: str) -> Mapping[str, Any] | None:
        """The call's RTP counters as the device reports them (``tx``/``rx`` packets, ``remote_rtp``,
        ``local_rtp``, ``last_rx_from``), or None when it cannot say (most physical devices)."""
        return None


class Forwarding(Capability):
    @abc.abstractmethod
    def set_forwarding(self, rule: ForwardingRule) -> ForwardingRule:
        """Set a local forwarding rule; returns the rule read back from the device."""

    @abc.abstractmethod
    def clear_forwarding(self, kind: ForwardingKind | None = None, *, line: int = 0) -> None: ...

    @abc.abstractmethod
    def forwarding(self, line: int = 0) -> tuple[ForwardingRule, ...]: ...


class MessageWaiting(Capability):
    @abc.abstractmethod
    def mwi(self, line: int = 0) -> MwiState:
        """The message-waiting state the device currently shows."""

    @abc.abstractmethod
    def wait_for_mwi(self, waiting: bool, *, line: int = 0, timeout: float = 10.0) -> MwiState: ...


class SignIn(Capability):
    @abc.abstractmethod
    def sign_in_status(self) -> SignInStatus: ...

    @abc.abstractmethod
    def start_sign_in(self) -> SignInStatus:
        """Press Sign-in; the status carries the pairing code and URL the device shows."""

    @abc.abstractmethod
    def sign_out(self) -> SignInStatus: ...


class Provisioning(Capability):
    @abc.abstractmethod
    def factory_reset(self) -> ProvisioningInfo: ...

    @abc.abstractmethod
    def provision(self, url: str | None = None) -> ProvisioningInfo:
        """Point the device at ``url`` (or its DHCP-given URL) and wait until it applied the config."""

    @abc.abstractmethod
    def provisioning(self) -> ProvisioningInfo: ...


class Power(Capability):
    @abc.abstractmethod
    def power_on(self) -> PowerState: ...

    @abc.abstractmethod
    def power_off(self) -> PowerState: ...

    @abc.abstractmethod
    def power_cycle(self) -> PowerState: ...

    @abc.abstractmethod
    def power_state(self) -> PowerState: ...


class Console(Capability):
    @abc.abstractmethod
    def run(self, command: str, *, timeout: float = 10.0) -> ConsoleResult: ...

    @abc.abstractmethod
    def read_log(self, max_lines: int = 200) -> str:
        """The tail of the device's own log (or the emulated worker's log)."""


# --- lookup ----------------------------------------------------------------------------------------------------

C = TypeVar("C", bound=Capability)

ALL_PROTOCOLS: tuple[type[Capability], ...] = (
    CallControl, Identity, AudioProbe, Forwarding, MessageWaiting, SignIn, Provisioning, Power, Console,
)


def protocols_of(driver: object) -> list[type[Capability]]:
    """The capability protocols ``driver`` fulfils, in the canonical order."""
    return [p for p in ALL_PROTOCOLS if isinstance(driver, p)]


def capability_of(driver: object, protocol: type[C], *, device_id: str | None = None) -> C:
    """``driver`` as ``protocol``, or :class:`NotApplicable` naming what the driver does offer."""
    if not (isinstance(protocol, type) and issubclass(protocol, Capability)):
        raise TypeError(f"device[...] takes a capability protocol such as CallControl, got {protocol!r}")
    if isinstance(driver, protocol):
        return driver
    offered = ", ".join(p.__name__ for p in protocols_of(driver)) or "none"
    raise NotApplicable(
        f"the {type(driver).__name__} driver has no {protocol.__name__} capability (it offers: {offered})",
        device_id=device_id,
    )
