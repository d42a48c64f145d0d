"""The parent/worker protocol: configuration, commands, events and the JSON wire format.

Everything that crosses the process boundary is defined here as a frozen dataclass (configuration and
commands, validated when built) or a documented event payload, and travels as one JSON object per
``Connection.send_bytes`` frame.  Every frame carries ``"v": PROTOCOL_VERSION``; a peer speaking another
version is rejected with ``ProtocolError`` instead of being half-understood.

Frames::

    parent -> worker  {"v": 1, "kind": "request",   "id": 7, "cmd": "make_call", "args": {...}}
    worker -> parent  {"v": 1, "kind": "ready",     "info": {...}}             once, after start-up
                      {"v": 1, "kind": "fatal",     "error": {...}}            start-up failed
                      {"v": 1, "kind": "response",  "id": 7, "ok": true,  "result": {...}}
                      {"v": 1, "kind": "response",  "id": 7, "ok": false, "error": {...}}
                      {"v": 1, "kind": "event",     "event": {"type": ..., "seq": ..., "ts": ..., "data": {...}}}
                      {"v": 1, "kind": "heartbeat", "ts": ..., "calls": 2}

``ts`` is ``time.monotonic()`` in the worker, which on Linux is the system-wide CLOCK_MONOTONIC, so
timestamps of different workers and of the parent can be compared directly.

The module imports nothing from pjsua2, so the parent never loads the SIP stack.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import json
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypedDict, TypeVar

from sipua.errors import InvalidArgument, ProtocolError

PROTOCOL_VERSION = 1

#: pjsua's compiled-in limit of simultaneous calls per Endpoint (PJSUA_MAX_CALLS in the wheel).
MAX_CALLS_PER_PROCESS = 4


# --------------------------------------------------------------------------------------------------
# Enumerations
# --------------------------------------------------------------------------------------------------


class TransportKind(enum.StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class DtmfMethod(enum.StrEnum):
    """How digits are sent: RFC 4733 telephone-event packets in the RTP stream, or SIP INFO
    (``application/dtmf-relay``, the de-facto format many desk phones use)."""

    RFC4733 = "rfc4733"
    INFO = "info"


class AnswerMode(enum.StrEnum):
    NEVER = "never"  # incoming calls ring until a command answers or rejects them
    IMMEDIATE = "immediate"  # the configured code is sent as soon as the INVITE arrives
    DELAYED = "delayed"  # 180 Ringing at once (if ``ring``), the configured code after ``delay_ms``


class CallState(enum.StrEnum):
    """INVITE session states (pjsip_inv_state), named as RFC 3261 dialogs are usually described."""

    NULL = "NULL"
    CALLING = "CALLING"
    INCOMING = "INCOMING"
    EARLY = "EARLY"
    CONNECTING = "CONNECTING"
    CONFIRMED = "CONFIRMED"
    DISCONNECTED = "DISCONNECTED"


class MediaStatus(enum.StrEnum):
    NONE = "none"
    ACTIVE = "active"
    LOCAL_HOLD = "local_hold"
    REMOTE_HOLD = "remote_hold"
    ERROR = "error"


class EventType(enum.StrEnum):
    REG_STATE = "reg_state"
    INCOMING_CALL = "incoming_call"
    INCOMING_CALL_REJECTED = "incoming_call_rejected"
    CALL_STATE = "call_state"
    MEDIA_STATE = "media_state"
    DTMF = "dtmf"
    DTMF_END = "dtmf_end"  # a received digit ended: its duration (RFC 4733 end packet, INFO Duration)
    TRANSFER_STATUS = "transfer_status"
    TRANSFER_REQUEST = "transfer_request"
    REPLACED = "replaced"
    MWI = "mwi"
    REDIRECTED = "redirected"
    INSTANT_MESSAGE = "instant_message"
    RECORD_COMPLETE = "record_complete"
    TRANSPORT_STATE = "transport_state"
    ERROR = "error"


class ErrorCode(enum.StrEnum):
    BAD_REQUEST = "bad_request"  # malformed arguments (also raised locally as InvalidArgument)
    UNKNOWN_COMMAND = "unknown_command"
    NO_SUCH_CALL = "no_such_call"
    NO_SUCH_ACCOUNT = "no_such_account"
    DUPLICATE = "duplicate"  # an account id or a recording that already exists
    TOO_MANY_CALLS = "too_many_calls"  # the per-process call limit (at most 4) is reached
    INVALID_STATE = "invalid_state"  # e.g. hold on a call that is not confirmed
    SIP_STACK = "sip_stack"  # pjsua2 raised; see pj_info
    TIMEOUT = "timeout"  # a command that waits inside the worker reached its deadline
    SHUTTING_DOWN = "shutting_down"
    INTERNAL = "internal"


# --------------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 3261 §25.1 token
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_DIGITS_RE = re.compile(r"^[0-9*#A-Da-d]+$")
_SIP_URI_RE = re.compile(r'^(?:"[^"\r\n]*"\s*|[^"<>\r\n]*)?<?(sips?):[^\s<>]+>?$')

Headers = tuple[tuple[str, str], ...]


def _fail(where: str, message: str) -> typing.NoReturn:
    raise InvalidArgument(f"{where}: {message}")


def normalize_headers(value: Any, where: str) -> Headers:
    """Accept a mapping or a sequence of ``(name, value)`` pairs; refuse anything that could inject
    extra header lines (CR, LF, NUL) or is not a valid header name (RFC 3261 §7.3.1)."""
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list | tuple):
        pairs = list(value)
    else:
        _fail(where, f"expected a mapping or a list of (name, value) pairs, got {type(value).__name__}")
    out: list[tuple[str, str]] = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            _fail(f"{where}[{i}]", f"expected a (name, value) pair, got {pair!r}")
        name, val = pair
        if not isinstance(name, str) or not _TOKEN_RE.match(name):
            _fail(f"{where}[{i}]", f"header name {name!r} is not an RFC 3261 token")
        if not isinstance(val, str) or any(c in val for c in "\r\n\0"):
            _fail(f"{where}[{i}]", f"value of header {name!r} must be a string without CR, LF or NUL")
        out.append((name, val))
    return tuple(out)


def check_sip_uri(value: Any, where: str) -> str:
    """A ``sip:``/``sips:`` URI, optionally as a name-addr (``"Bob" <sip:bob@host>``)."""
    if not isinstance(value, str) or not _SIP_URI_RE.match(value.strip()):
        _fail(where, f"{value!r} is not a SIP URI (expected sip:user@host[:port][;params])")
    return value.strip()


def check_ip_literal(value: Any, where: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except (ValueError, TypeError):
        _fail(where, f"{value!r} is not an IPv4 or IPv6 address literal (for example 127.0.0.1 or ::1)")


def _check_int(value: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        _fail(where, f"expected an integer in [{lo}, {hi}], got {value!r}")
    return value


def _check_float(value: Any, where: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        _fail(where, f"expected a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def _check_status(value: Any, where: str, allowed: tuple[range, ...], what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not any(value in r for r in allowed):
        _fail(where, f"{value!r} is not a valid {what} status code")
    return value


def _check_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        _fail(where, f"{value!r} must be 1-64 characters of letters, digits, '_', '.' or '-'")
    return value


def _check_text(value: Any, where: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or any(c in value for c in "\r\n\0") or (not value and not allow_empty):
        _fail(where, f"expected a {'' if allow_empty else 'non-empty '}single-line string, got {value!r}")
    return value


def _check_path(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or "\0" in value:
        _fail(where, f"expected a file path, got {value!r}")
    return value


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


# --------------------------------------------------------------------------------------------------
# Worker configuration
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TlsSettings:
    """TLS parameters of a TLS transport.  The CA file must hold the whole chain to trust
    (intermediates included); a client certificate is optional."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify_server: bool = False
    verify_client: bool = False
    require_client_cert: bool = False

    def __post_init__(self) -> None:
        for name in ("ca_file", "cert_file", "key_file"):
            value = getattr(self, name)
            if value is not None:
                _check_path(value, f"TlsSettings.{name}")
        if (self.cert_file is None) != (self.key_file is None):
            _fail("TlsSettings", "cert_file and key_file must be given together")
        if self.verify_server and self.ca_file is None:
            _fail("TlsSettings.verify_server", "verifying the server needs ca_file")


@dataclass(frozen=True, kw_only=True)
class TransportSpec:
    """A SIP transport to open: ``port=0`` lets the kernel pick an ephemeral port (reported in the
    worker's ready info)."""

    kind: TransportKind
    host: str = "127.0.0.1"
    port: int = 0
    tls: TlsSettings | None = None

    def __post_init__(self) -> None:
        try:
            _set(self, "kind", TransportKind(self.kind))
        except ValueError:
            _fail("TransportSpec.kind", f"{self.kind!r} is not one of {[k.value for k in TransportKind]}")
        _set(self, "host", check_ip_literal(self.host, "TransportSpec.host"))
        _check_int(self.port, "TransportSpec.port", 0, 65535)
        if self.tls is not None and self.kind is not TransportKind.TLS:
            _fail("TransportSpec.tls", f"TLS settings given for a {self.kind.value} transport")
        if self.kind is TransportKind.TLS and self.tls is None:
            _set(self, "tls", TlsSettings())

    @property
    def is_ipv6(self) -> bool:
        return ipaddress.ip_address(self.host).version == 6


#: Codecs tried first unless a profile says otherwise.  Speex 16 kHz (pjsua's default favourite)
#: mangles test tones, so the G.711 pair and G.722 lead.
DEFAULT_CODECS: tuple[str, ...] = ("PCMU/8000", "PCMA/8000", "G722/16000")


@dataclass(frozen=True, kw_only=True)
class WorkerConfig:
    """Everything a worker process needs at spawn time."""

    name: str
    user_agent: str
    log_path: str
    transports: tuple[TransportSpec, ...] = (TransportSpec(kind=TransportKind.UDP),)
    rtp_port: int | None = None  # None: the client leases a free range (sipua.ports)
    rtp_port_count: int = 24
    rtp_host: str | None = None  # None: the host of the first transport
    codecs: tuple[str, ...] = DEFAULT_CODECS  # priority order; prefix match, case-insensitive
    codecs_only: bool = False  # disable every codec not listed
    dtmf_method: DtmfMethod = DtmfMethod.RFC4733
    max_calls: int = MAX_CALLS_PER_PROCESS
    log_level: int = 4  # pjlib log level 0..6; 4 includes every SIP message
    heartbeat_interval_s: float = 0.5
    no_vad: bool = True  # keep sending RTP during silence, as most desk phones do
    realtime_media: bool = True  # pjmedia's clock and RTP threads on SCHED_RR where allowed (sipua.realtime)

    def __post_init__(self) -> None:
        _check_name(self.name, "WorkerConfig.name")
        _check_text(self.user_agent, "WorkerConfig.user_agent")
        _check_path(self.log_path, "WorkerConfig.log_path")
        transports = tuple(self.transports)
        if not transports:
            _fail("WorkerConfig.transports", "at least one transport is needed")
        for i, t in enumerate(transports):
            if not isinstance(t, TransportSpec):
                _fail(f"WorkerConfig.transports[{i}]", f"expected a TransportSpec, got {t!r}")
        seen: set[tuple[str, str, int]] = set()
        for t in transports:
            key = (t.kind.value, t.host, t.port)
            if t.port and key in seen:
                _fail("WorkerConfig.transports", f"{t.kind.value} {t.host}:{t.port} is listed twice")
            seen.add(key)
        _set(self, "transports", transports)
        _check_int(self.max_calls, "WorkerConfig.max_calls", 1, MAX_CALLS_PER_PROCESS)
        _check_int(self.rtp_port_count, "WorkerConfig.rtp_port_count", 2 * self.max_calls + 2, 10000)
        if self.rtp_port is not None:
            _check_int(self.rtp_port, "WorkerConfig.rtp_port", 1024, 65534)
            if self.rtp_port % 2:
                _fail("WorkerConfig.rtp_port", f"{self.rtp_port} is odd; RTP uses the even port of a pair")
            if self.rtp_port + self.rtp_port_count > 65536:
                _fail("WorkerConfig.rtp_port_count", "the RTP range runs past port 65535")
        if self.rtp_host is not None:
            _set(self, "rtp_host", check_ip_literal(self.rtp_host, "WorkerConfig.rtp_host"))
        codecs = tuple(self.codecs)
        for i, c in enumerate(codecs):
            _check_text(c, f"WorkerConfig.codecs[{i}]")
        if self.codecs_only and not codecs:
            _fail("WorkerConfig.codecs", "codecs_only needs at least one codec")
        _set(self, "codecs", codecs)
        _set(self, "dtmf_method", DtmfMethod(self.dtmf_method))
        _check_int(self.log_level, "WorkerConfig.log_level", 0, 6)
        _check_float(self.heartbeat_interval_s, "WorkerConfig.heartbeat_interval_s", 0.05, 5.0)

    @property
    def media_host(self) -> str:
        return self.rtp_host or self.transports[0].host


# --------------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Command:
    """Base of all commands; ``NAME`` is the wire name."""

    NAME: ClassVar[str] = ""


COMMANDS: dict[str, type[Command]] = {}

_C = TypeVar("_C", bound=type[Command])


def _command(name: str) -> typing.Callable[[_C], _C]:
    def register(cls: _C) -> _C:
        if name in COMMANDS:
            raise RuntimeError(f"command {name!r} registered twice")
        cls.NAME = name
        COMMANDS[name] = cls
        return cls

    return register


_FINAL_OR_PROVISIONAL_ANSWER = (range(180, 200), range(200, 300), range(300, 400))
_REJECT = (range(400, 700),)


def _check_call(value: Any, where: str) -> int:
    return _check_int(value, where, 1, 2**31 - 1)


@_command("ping")
@dataclass(frozen=True, kw_only=True)
class Ping(Command):
    """Liveness probe; the result carries the worker's pid, monotonic time and call count."""


@_command("shutdown")
@dataclass(frozen=True, kw_only=True)
class Shutdown(Command):
    """Hang up every call, wait for DISCONNECTED, unregister every registered account, drop every
    pjsua2 object, libDestroy.  (A device that vanishes without unregistering - a power cut - is
    emulated by killing the worker instead.)"""

    timeout_s: float = 4.0

    def __post_init__(self) -> None:
        _check_float(self.timeout_s, "Shutdown.timeout_s", 0.1, 60.0)


@_command("add_account")
@dataclass(frozen=True, kw_only=True)
class AddAccount(Command):
    """Create a SIP account.  Without ``registrar`` the account does not register and is bound to a
    transport only (direct calls to ``sip:user@host:port``)."""

    id: str
    uri: str
    registrar: str | None = None
    username: str | None = None
    password: str | None = None
    realm: str = "*"
    register_headers: Headers = ()
    expires_s: int = 300
    proxies: tuple[str, ...] = ()
    mwi: bool = False
    transport: TransportKind | None = None
    display_name: str | None = None
    #: How this account's calls carry DTMF (None: the worker's ``dtmf_method``). With ``info`` the SDP the
    #: account's calls create offers no ``telephone-event`` (an INFO-only device, RFC 4733 §7.1.1).
    dtmf_method: DtmfMethod | None = None

    def __post_init__(self) -> None:
        _check_name(self.id, "AddAccount.id")
        check_sip_uri(self.uri, "AddAccount.uri")
        if self.registrar is not None:
            check_sip_uri(self.registrar, "AddAccount.registrar")
        if (self.username is None) != (self.password is None):
            _fail("AddAccount", "username and password must be given together")
        if self.username is not None:
            _check_text(self.username, "AddAccount.username")
            _check_text(self.password, "AddAccount.password", allow_empty=True)
        _check_text(self.realm, "AddAccount.realm")
        _set(self, "register_headers", normalize_headers(self.register_headers, "AddAccount.register_headers"))
        _check_int(self.expires_s, "AddAccount.expires_s", 10, 86400)
        _set(self, "proxies", tuple(check_sip_uri(p, "AddAccount.proxies") for p in self.proxies))
        if self.mwi and self.registrar is None:
            _fail("AddAccount.mwi", "MWI subscription needs a registrar (pjsua subscribes after REGISTER)")
        if self.transport is not None:
            _set(self, "transport", TransportKind(self.transport))
        if self.display_name is not None:
            _check_text(self.display_name, "AddAccount.display_name")
        if self.dtmf_method is not None:
            _set(self, "dtmf_method", DtmfMethod(self.dtmf_method))


@dataclass(frozen=True, kw_only=True)
class _AccountRef(Command):
    id: str

    def __post_init__(self) -> None:
        _check_name(self.id, f"{type(self).__name__}.id")


@_command("remove_account")
@dataclass(frozen=True, kw_only=True)
class RemoveAccount(_AccountRef):
    """Hang up the account's calls and delete it (unregistering if it was registered)."""


@_command("reregister")
@dataclass(frozen=True, kw_only=True)
class Reregister(_AccountRef):
    """Send a fresh REGISTER now."""


@_command("unregister")
@dataclass(frozen=True, kw_only=True)
class Unregister(_AccountRef):
    """Send REGISTER with Expires: 0 and stop refreshing."""


@_command("make_call")
@dataclass(frozen=True, kw_only=True)
class MakeCall(Command):
    """Send an INVITE; the result's ``call`` is the worker-unique handle used by every later command."""

    account: str
    target: str
    headers: Headers = ()

    def __post_init__(self) -> None:
        _check_name(self.account, "MakeCall.account")
        check_sip_uri(self.target, "MakeCall.target")
        _set(self, "headers", normalize_headers(self.headers, "MakeCall.headers"))


@dataclass(frozen=True, kw_only=True)
class _CallOp(Command):
    call: int
    headers: Headers = ()

    def __post_init__(self) -> None:
        n = type(self).__name__
        _check_call(self.call, f"{n}.call")
        _set(self, "headers", normalize_headers(self.headers, f"{n}.headers"))


@_command("answer")
@dataclass(frozen=True, kw_only=True)
class Answer(_CallOp):
    """Answer an incoming call: 180/183 (early), 2xx, or a 3xx with a Contact header (local forwarding,
    RFC 3261 §8.3)."""

    code: int = 200
    reason: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_status(self.code, "Answer.code", _FINAL_OR_PROVISIONAL_ANSWER, "answer (180-399)")
        if self.reason is not None:
            _check_text(self.reason, "Answer.reason")
        if 300 <= self.code < 400 and not any(n.lower() in ("contact", "m") for n, _ in self.headers):
            _fail("Answer.headers", f"a {self.code} redirect needs a Contact header naming the new target")


@_command("reject")
@dataclass(frozen=True, kw_only=True)
class Reject(_CallOp):
    """Refuse an incoming call with a final 4xx-6xx response."""

    code: int = 486
    reason: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_status(self.code, "Reject.code", _REJECT, "rejection (400-699)")
        if self.reason is not None:
            _check_text(self.reason, "Reject.reason")


@_command("hangup")
@dataclass(frozen=True, kw_only=True)
class Hangup(_CallOp):
    """End a call: BYE when established, CANCEL when outgoing and unanswered, the given final code
    (default 603) when incoming and unanswered."""

    code: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.code is not None:
            _check_status(self.code, "Hangup.code", _REJECT, "final")


@_command("hold")
@dataclass(frozen=True, kw_only=True)
class Hold(_CallOp):
    """re-INVITE with a=sendonly (RFC 3264 §8.4) and stop sending audio to the held party."""


@_command("unhold")
@dataclass(frozen=True, kw_only=True)
class Unhold(_CallOp):
    """re-INVITE with a=sendrecv and restore the audio sent to the party."""


@_command("reinvite")
@dataclass(frozen=True, kw_only=True)
class Reinvite(_CallOp):
    """A session refresh re-INVITE with a fresh SDP offer (the current hold state is kept)."""


@_command("update")
@dataclass(frozen=True, kw_only=True)
class Update(_CallOp):
    """An UPDATE (RFC 3311) with an SDP offer."""


@_command("mute")
@dataclass(frozen=True, kw_only=True)
class Mute(_CallOp):
    """Stop sending audio to the party without any signalling."""


@_command("unmute")
@dataclass(frozen=True, kw_only=True)
class Unmute(_CallOp):
    """Resume sending audio to the party."""


@_command("send_dtmf")
@dataclass(frozen=True, kw_only=True)
class SendDtmf(_CallOp):
    digits: str
    method: DtmfMethod | None = None  # None: the worker's configured default
    duration_ms: int = 160

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.digits, str) or not _DIGITS_RE.match(self.digits):
            _fail("SendDtmf.digits", f"{self.digits!r} must be one or more of 0-9 * # A-D")
        if self.method is not None:
            _set(self, "method", DtmfMethod(self.method))
        _check_int(self.duration_ms, "SendDtmf.duration_ms", 40, 5000)


@_command("transfer")
@dataclass(frozen=True, kw_only=True)
class Transfer(_CallOp):
    """Blind transfer: REFER with Refer-To: target (RFC 3515); by default hang up once the NOTIFY
    sipfrag reports success, as a phone does."""

    target: str
    hangup_on_success: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_sip_uri(self.target, "Transfer.target")


@_command("transfer_replaces")
@dataclass(frozen=True, kw_only=True)
class TransferReplaces(_CallOp):
    """Attended transfer: REFER to ``call``'s party with Refer-To naming ``other_call``'s party and a
    Replaces parameter for ``other_call``'s dialog (RFC 5589 §7, RFC 3891)."""

    other_call: int
    hangup_on_success: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_call(self.other_call, "TransferReplaces.other_call")
        if self.other_call == self.call:
            _fail("TransferReplaces.other_call", "must differ from call")


@dataclass(frozen=True, kw_only=True)
class _CallPair(Command):
    call: int
    other_call: int

    def __post_init__(self) -> None:
        n = type(self).__name__
        _check_call(self.call, f"{n}.call")
        _check_call(self.other_call, f"{n}.other_call")
        if self.call == self.other_call:
            _fail(f"{n}.other_call", "must differ from call")


@_command("conference")
@dataclass(frozen=True, kw_only=True)
class Conference(_CallPair):
    """Bridge two calls in this worker's conference bridge so all three parties hear each other."""


@_command("unconference")
@dataclass(frozen=True, kw_only=True)
class Unconference(_CallPair):
    """Undo ``conference``."""


@_command("play_tone")
@dataclass(frozen=True, kw_only=True)
class PlayTone(Command):
    """Play a continuous tone (one or two frequencies) to one call, or to every call when ``call`` is
    None.  A new tone for the same target replaces the previous one."""

    freq_hz: float
    freq2_hz: float = 0.0
    level_dbfs: float = -12.0
    call: int | None = None

    def __post_init__(self) -> None:
        _check_float(self.freq_hz, "PlayTone.freq_hz", 20.0, 7000.0)
        if self.freq2_hz:
            _check_float(self.freq2_hz, "PlayTone.freq2_hz", 20.0, 7000.0)
        _check_float(self.level_dbfs, "PlayTone.level_dbfs", -60.0, 0.0)
        if self.call is not None:
            _check_call(self.call, "PlayTone.call")


@dataclass(frozen=True, kw_only=True)
class _MediaTarget(Command):
    call: int | None = None

    def __post_init__(self) -> None:
        if self.call is not None:
            _check_call(self.call, f"{type(self).__name__}.call")


@_command("stop_tone")
@dataclass(frozen=True, kw_only=True)
class StopTone(_MediaTarget):
    pass


@_command("play_wav")
@dataclass(frozen=True, kw_only=True)
class PlayWav(_MediaTarget):
    """Play a WAV file (16-bit PCM) to one call or to every call."""

    path: str
    loop: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_path(self.path, "PlayWav.path")


@_command("stop_wav")
@dataclass(frozen=True, kw_only=True)
class StopWav(_MediaTarget):
    pass


@_command("record")
@dataclass(frozen=True, kw_only=True)
class Record(Command):
    """Record what this UA receives from a call into a WAV file.  With ``duration_ms`` the worker stops
    the recording itself and emits ``record_complete`` once the file is complete on disk."""

    call: int
    path: str
    duration_ms: int | None = None

    def __post_init__(self) -> None:
        _check_call(self.call, "Record.call")
        _check_path(self.path, "Record.path")
        if not self.path.lower().endswith(".wav"):
            _fail("Record.path", f"{self.path!r} must end in .wav")
        if self.duration_ms is not None:
            _check_int(self.duration_ms, "Record.duration_ms", 20, 3_600_000)


@_command("stop_record")
@dataclass(frozen=True, kw_only=True)
class StopRecord(Command):
    """Close the recording of a call; returns only once the WAV file is complete."""

    call: int

    def __post_init__(self) -> None:
        _check_call(self.call, "StopRecord.call")


@_command("call_info")
@dataclass(frozen=True, kw_only=True)
class GetCallInfo(Command):
    call: int

    def __post_init__(self) -> None:
        _check_call(self.call, "GetCallInfo.call")


@_command("call_stats")
@dataclass(frozen=True, kw_only=True)
class GetCallStats(Command):
    call: int

    def __post_init__(self) -> None:
        _check_call(self.call, "GetCallStats.call")


@_command("list_calls")
@dataclass(frozen=True, kw_only=True)
class ListCalls(Command):
    pass


@_command("auto_answer")
@dataclass(frozen=True, kw_only=True)
class SetAutoAnswer(Command):
    """How incoming calls are answered, for one account or (``account=None``) as the default."""

    mode: AnswerMode
    code: int = 200
    delay_ms: int = 0
    ring: bool = True
    headers: Headers = ()
    account: str | None = None

    def __post_init__(self) -> None:
        _set(self, "mode", AnswerMode(self.mode))
        _check_status(self.code, "SetAutoAnswer.code", _FINAL_OR_PROVISIONAL_ANSWER + _REJECT, "answer")
        _check_int(self.delay_ms, "SetAutoAnswer.delay_ms", 0, 600_000)
        if self.mode is AnswerMode.DELAYED and self.delay_ms == 0:
            _fail("SetAutoAnswer.delay_ms", "mode 'delayed' needs delay_ms > 0")
        _set(self, "headers", normalize_headers(self.headers, "SetAutoAnswer.headers"))
        if 300 <= self.code < 400 and not any(n.lower() in ("contact", "m") for n, _ in self.headers):
            _fail("SetAutoAnswer.headers", f"a {self.code} redirect needs a Contact header")
        if self.account is not None:
            _check_name(self.account, "SetAutoAnswer.account")


@_command("redirect_policy")
@dataclass(frozen=True, kw_only=True)
class SetRedirectPolicy(Command):
    """Whether an outgoing call follows a 3xx to its Contact (RFC 3261 §8.1.3.4)."""

    follow: bool


# --------------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something that happened in a worker.  ``seq`` counts from 1 per worker; ``ts`` is monotonic."""

    type: str
    seq: int
    ts: float
    data: Mapping[str, Any] = field(default_factory=dict)
    worker: str = ""

    @property
    def call(self) -> int | None:
        return self.data.get("call")

    def matches(self, **fields: Any) -> bool:
        return all(self.data.get(k) == v for k, v in fields.items())

    def __str__(self) -> str:
        shown = {k: v for k, v in self.data.items() if k not in ("raw", "body", "traceback")}
        return f"#{self.seq} {self.ts:.3f} {self.worker} {self.type} {shown}"


class RegStateData(TypedDict):
    account: str
    code: int
    reason: str
    expires_s: int
    active: bool


#: ``raw`` is the whole INVITE as received; ``from``/``to`` are the header values.
IncomingCallData = TypedDict(
    "IncomingCallData",
    {"call": int, "account": str, "from": str, "to": str, "call_id": str, "source": str, "raw": str},
)


class CallStateData(TypedDict, total=False):
    call: int
    state: str  # CallState
    code: int
    reason: str
    role: str  # "caller" | "callee"
    warning: str  # the Warning header of the response that changed the state, when it had one


class MediaStateData(TypedDict):
    call: int
    status: str  # MediaStatus
    direction: str  # negotiated stream direction: sendrecv | sendonly | recvonly | inactive
    local_sdp_direction: str | None
    remote_sdp_direction: str | None


class DtmfData(TypedDict):
    call: int
    digit: str
    method: str  # DtmfMethod
    duration_ms: int


class TransferStatusData(TypedDict):
    call: int
    code: int
    reason: str
    final: bool


class TransferRequestData(TypedDict):
    call: int
    target: str
    new_call: int


class ReplacedData(TypedDict):
    call: int
    new_call: int


class MwiData(TypedDict):
    account: str
    state: str
    content_type: str
    body: str
    raw: str


class RedirectedData(TypedDict):
    call: int
    target: str
    followed: bool


class RecordCompleteData(TypedDict):
    call: int
    path: str
    duration_s: float
    bytes: int


class ErrorData(TypedDict):
    where: str
    message: str
    traceback: str


# --------------------------------------------------------------------------------------------------
# JSON codec for the dataclasses above
# --------------------------------------------------------------------------------------------------


def to_wire(value: Any) -> Any:
    """Turn configuration/command dataclasses (and what they contain) into JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_wire(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ProtocolError(f"cannot encode {type(value).__name__} for the wire: {value!r}")


_T = TypeVar("_T")


def from_wire(tp: type[_T], data: Any, where: str = "") -> _T:
    """Rebuild a value of type ``tp`` from JSON data, checking types on the way.  Errors name the
    field path (``MakeCall.headers[0]``)."""
    return typing.cast(_T, _decode(tp, data, where or getattr(tp, "__name__", str(tp))))


def _decode(tp: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return data
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if data is None:
            if type(None) in args:
                return None
            _fail(where, "must not be null")
        non_null = [a for a in args if a is not type(None)]
        if len(non_null) != 1:
            raise ProtocolError(f"{where}: unsupported union type {tp}")
        return _decode(non_null[0], data, where)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(data, list | tuple):
            _fail(where, f"expected a list, got {type(data).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(data))
        if len(args) != len(data):
            _fail(where, f"expected {len(args)} items, got {len(data)}")
        return tuple(_decode(a, item, f"{where}[{i}]") for i, (a, item) in enumerate(zip(args, data, strict=True)))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(data, dict):
            _fail(where, f"expected an object, got {type(data).__name__}")
        vt = typing.get_args(tp)[1] if typing.get_args(tp) else Any
        return {str(k): _decode(vt, v, f"{where}.{k}") for k, v in data.items()}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(data)
        except ValueError:
            _fail(where, f"{data!r} is not one of {[m.value for m in tp]}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            _fail(where, f"expected an object, got {type(data).__name__}")
        hints = _hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            _fail(where, f"unknown field(s) {unknown}; known: {sorted(fields)}")
        kwargs = {name: _decode(hints[name], value, f"{where}.{name}") for name, value in data.items()}
        missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            _fail(where, f"missing required field(s) {missing}")
        return tp(**kwargs)
    if tp is bool:
        if not isinstance(data, bool):
            _fail(where, f"expected true or false, got {data!r}")
        return data
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            _fail(where, f"expected an integer, got {data!r}")
        return data
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            _fail(where, f"expected a number, got {data!r}")
        return float(data)
    if tp is str:
        if not isinstance(data, str):
            _fail(where, f"expected a string, got {data!r}")
        return data
    raise ProtocolError(f"{where}: unsupported field type {tp}")


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = typing.get_type_hints(cls)
        _HINTS[cls] = hints
    return hints


# --------------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------------


def encode_frame(kind: str, **body: Any) -> bytes:
    return json.dumps({"v": PROTOCOL_VERSION, "kind": kind, **body}, separators=(",", ":")).encode()


def decode_frame(raw: bytes) -> dict[str, Any]:
    try:
        frame = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"frame is not JSON: {exc}; first bytes {raw[:80]!r}") from None
    if not isinstance(frame, dict) or "kind" not in frame:
        raise ProtocolError(f"frame is not an object with a 'kind': {raw[:80]!r}")
    if frame.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version {frame.get('v')!r} received, this side speaks {PROTOCOL_VERSION}")
    return frame


def encode_request(request_id: int, command: Command) -> bytes:
    return encode_frame("request", id=request_id, cmd=command.NAME, args=to_wire(command))


def decode_command(name: Any, args: Any) -> Command:
    """Rebuild a command received on the wire; unknown names and bad arguments raise."""
    cls = COMMANDS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ProtocolError(f"unknown command {name!r}; known: {sorted(COMMANDS)}")
    return from_wire(cls, args if args is not None else {}, cls.__name__)


def event_from_wire(data: Mapping[str, Any], worker: str) -> Event:
    try:
        return Event(type=str(data["type"]), seq=int(data["seq"]), ts=float(data["ts"]),
                     data=dict(data.get("data") or {}), worker=worker)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed event frame from {worker}: {data!r} ({exc})") from None
