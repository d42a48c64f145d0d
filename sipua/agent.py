"""The pjsua2 side of a worker process: Endpoint, transports, accounts, the call registry and media.

Everything here runs on the one thread that created the Endpoint (``threadCnt=0``,
``mainThreadOnly=True``, events pumped by ``libHandleEvents`` in ``sipua.worker``), because pjlib
aborts the process on a call from a thread it does not know - garbage-collector finalizers included.

Lifetimes are explicit (the wheel's traps, see the module docstrings of ``sipua``):

- every ``Call`` lives in ``UserAgent._calls`` from creation until the event loop reaps it after
  DISCONNECTED - never from inside its own callback - because a collected ``Call`` hangs up silently;
  this includes the calls pjsua creates for a transfer (``prm.newCall``) or a Replaces INVITE;
- no exception ever leaves a pjsua2 callback: ``_callback`` logs it and emits an ``error`` event;
- ``destroy`` drops every Call, media port and Account before ``libDestroy``, otherwise a Call
  destructor runs after the library is gone and the process aborts at exit;
- the conference-bridge wiring is recomputed from intent (``sipua.wiring``) after every media
  change, since a re-INVITE re-creates the call's bridge port and loses its connections.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import math
import os
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pjsua2 as pj

from sipua import protocol as p
from sipua import sdp, wiring
from sipua.protocol import AnswerMode, CallState, DtmfMethod, ErrorCode, EventType, MediaStatus, TransportKind
from sipua.realtime import MediaThreadScheduling
from sipua.wav import wav_data_info

log = logging.getLogger("sipua.worker")

PJ_ETOOMANY = 70010  # PJ_ERRNO_START_STATUS + 10 (pj/errno.h)
PJ_EINVALIDOP = 70013  # PJ_ERRNO_START_STATUS + 13: pjsua's answer while the call's media is being renegotiated
#: How long a hold, resume, re-INVITE or UPDATE waits for an offer/answer exchange in progress on its call.
RENEGOTIATION_WAIT_S = 5.0
STOP_RECORD_SETTLE_S = 0.1  # let the bridge hand over its last frame before the WAV is read
ENDED_CALLS_KEPT = 256

_STATE_NAMES = {
    pj.PJSIP_INV_STATE_NULL: CallState.NULL,
    pj.PJSIP_INV_STATE_CALLING: CallState.CALLING,
    pj.PJSIP_INV_STATE_INCOMING: CallState.INCOMING,
    pj.PJSIP_INV_STATE_EARLY: CallState.EARLY,
    pj.PJSIP_INV_STATE_CONNECTING: CallState.CONNECTING,
    pj.PJSIP_INV_STATE_CONFIRMED: CallState.CONFIRMED,
    pj.PJSIP_INV_STATE_DISCONNECTED: CallState.DISCONNECTED,
}
_MEDIA_STATUS = {
    pj.PJSUA_CALL_MEDIA_NONE: MediaStatus.NONE,
    pj.PJSUA_CALL_MEDIA_ACTIVE: MediaStatus.ACTIVE,
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: MediaStatus.LOCAL_HOLD,
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: MediaStatus.REMOTE_HOLD,
    pj.PJSUA_CALL_MEDIA_ERROR: MediaStatus.ERROR,
}
_STREAM_DIR = {
    pj.PJMEDIA_DIR_NONE: "inactive",
    pj.PJMEDIA_DIR_ENCODING: "sendonly",
    pj.PJMEDIA_DIR_DECODING: "recvonly",
    pj.PJMEDIA_DIR_ENCODING_DECODING: "sendrecv",
}
_DTMF_METHODS = {pj.PJSUA_DTMF_METHOD_RFC2833: DtmfMethod.RFC4733, pj.PJSUA_DTMF_METHOD_SIP_INFO: DtmfMethod.INFO}
_DTMF_IS_END = 2  # PJMEDIA_STREAM_DTMF_IS_END (pjmedia/stream.h; not exported by the wheel)
_PJ_DTMF = {DtmfMethod.RFC4733: pj.PJSUA_DTMF_METHOD_RFC2833, DtmfMethod.INFO: pj.PJSUA_DTMF_METHOD_SIP_INFO}
_TRANSPORT_TYPES = {
    (TransportKind.UDP, False): pj.PJSIP_TRANSPORT_UDP,
    (TransportKind.TCP, False): pj.PJSIP_TRANSPORT_TCP,
    (TransportKind.TLS, False): pj.PJSIP_TRANSPORT_TLS,
    (TransportKind.UDP, True): pj.PJSIP_TRANSPORT_UDP6,
    (TransportKind.TCP, True): pj.PJSIP_TRANSPORT_TCP6,
    (TransportKind.TLS, True): pj.PJSIP_TRANSPORT_TLS6,
}
_LIVE_STATES = frozenset(CallState) - {CallState.DISCONNECTED}
PJMEDIA_TYPE_AUDIO = 1


class CommandFailure(Exception):
    """Raised by a command handler; becomes an error response with the same fields."""

    def __init__(self, code: ErrorCode, message: str, pj_info: str = "", pj_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.pj_info = pj_info
        self.pj_status = pj_status

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message, "pj_info": self.pj_info,
                "pj_status": self.pj_status}


def from_pj_error(exc: pj.Error, what: str) -> CommandFailure:
    status = getattr(exc, "status", None)
    code = ErrorCode.TOO_MANY_CALLS if status == PJ_ETOOMANY else ErrorCode.SIP_STACK
    return CommandFailure(code, f"{what}: {exc.reason or exc.title}", exc.info(), status)


@dataclass
class Pending:
    """A reply that has to wait for the event loop (a recorder to settle, calls to disconnect).
    ``poll`` returns the result once ready, else None; at ``deadline`` the command fails."""

    poll: Callable[[], dict[str, Any] | None]
    deadline: float
    what: str


_F = TypeVar("_F", bound=Callable[..., Any])


def _callback(default: Any = None) -> Callable[[_F], _F]:
    """Wrap a pjsua2 callback: an exception must never propagate into the C++ caller (a traceback
    kept alive there would also keep the Call alive past libDestroy)."""

    def wrap(fn: _F) -> _F:
        @functools.wraps(fn)
        def guarded(self: Any, prm: Any) -> Any:
            try:
                return fn(self, prm)
            except Exception:
                self._agent.report_error(f"{type(self).__name__}.{fn.__name__}", traceback.format_exc())
                return default

        return guarded  # type: ignore[return-value]

    return wrap


# --------------------------------------------------------------------------------------------------
# pjsua2 subclasses: thin, they only forward to the UserAgent
# --------------------------------------------------------------------------------------------------


class _LogWriter(pj.LogWriter):
    def __init__(self, sink: Callable[[str], None]) -> None:
        super().__init__()
        self._sink = sink

    def write(self, entry: pj.LogEntry) -> None:
        try:
            self._sink(entry.msg)
        except Exception:  # a log line must never take the stack down
            pass


class _Endpoint(pj.Endpoint):
    def __init__(self, agent: UserAgent) -> None:
        super().__init__()
        self._agent = agent

    @_callback()
    def onRejectedIncomingCall(self, prm: pj.OnRejectedIncomingCallParam) -> None:
        self._agent.on_rejected_incoming(prm)

    @_callback()
    def onTransportState(self, prm: pj.OnTransportStateParam) -> None:
        self._agent.on_transport_state(prm)


class _Account(pj.Account):
    def __init__(self, agent: UserAgent, account_id: str) -> None:
        super().__init__()
        self._agent = agent
        self.account_id = account_id

    @_callback()
    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        self._agent.on_incoming_call(self, prm)

    @_callback()
    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        self._agent.on_reg_state(self, prm)

    @_callback()
    def onMwiInfo(self, prm: pj.OnMwiInfoParam) -> None:
        self._agent.on_mwi(self, prm)

    @_callback()
    def onInstantMessage(self, prm: pj.OnInstantMessageParam) -> None:
        self._agent.on_instant_message(self.account_id, None, prm)


class _Call(pj.Call):
    def __init__(self, agent: UserAgent, handle: int, account: _Account, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self._agent = agent
        self.handle = handle
        self.account = account

    @_callback()
    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        self._agent.on_call_state(self, prm)

    @_callback()
    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        self._agent.on_call_media_state(self)

    @_callback()
    def onCallTsxState(self, prm: pj.OnCallTsxStateParam) -> None:
        self._agent.on_call_tsx_state(self, prm)

    @_callback()
    def onCallSdpCreated(self, prm: pj.OnCallSdpCreatedParam) -> None:
        self._agent.on_sdp_created(self, prm)

    @_callback()
    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        self._agent.on_dtmf(self, prm)

    @_callback()
    def onDtmfEvent(self, prm: pj.OnDtmfEventParam) -> None:
        if int(prm.flags) & _DTMF_IS_END:  # called every packet while a digit lasts: only its end is reported
            self._agent.on_dtmf_end(self, prm)

    @_callback()
    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:
        self._agent.on_transfer_request(self, prm)

    @_callback()
    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:
        self._agent.on_transfer_status(self, prm)

    @_callback()
    def onCallReplaceRequest(self, prm: pj.OnCallReplaceRequestParam) -> None:
        self._agent.on_replace_request(self, prm)

    @_callback()
    def onCallReplaced(self, prm: pj.OnCallReplacedParam) -> None:
        self._agent.on_replaced(self, prm)

    @_callback(default=pj.PJSIP_REDIRECT_STOP)
    def onCallRedirected(self, prm: pj.OnCallRedirectedParam) -> int:
        return self._agent.on_redirected(self, prm)

    @_callback()
    def onInstantMessage(self, prm: pj.OnInstantMessageParam) -> None:
        self._agent.on_instant_message(self.account.account_id, self.handle, prm)


# --------------------------------------------------------------------------------------------------
# Book-keeping records
# --------------------------------------------------------------------------------------------------


@dataclass
class CallRecord:
    handle: int
    account: str
    role: str  # "caller" | "callee"
    call: _Call | None
    state: CallState = CallState.NULL
    slot: int | None = None
    media_index: int | None = None
    held: bool = False
    muted: bool = False
    hangup_on_transfer: bool = False
    local_sdp: str | None = None
    remote_sdp: str | None = None
    media_status: MediaStatus = MediaStatus.NONE
    created: float = field(default_factory=time.monotonic)


@dataclass
class Recording:
    call: int
    path: str
    recorder: pj.AudioMediaRecorder | None
    started: float
    closed_at: float | None = None
    auto_stop: bool = False


@dataclass
class AccountRecord:
    account: _Account
    transport: TransportKind | None
    registered: bool  # has a registrar
    reg_active: bool = False  # last REGISTER outcome: a binding exists at the registrar
    dtmf_method: DtmfMethod | None = None  # None: the worker's


# --------------------------------------------------------------------------------------------------
# The user agent
# --------------------------------------------------------------------------------------------------


def renegotiate(rec: CallRecord, what: str, send: Callable[[], dict[str, Any]]) -> dict[str, Any] | Pending:
    """Send a re-INVITE or UPDATE now, or once the call's offer/answer exchange in progress has completed.

    RFC 3261 §14.1: no new INVITE transaction while one is in progress in either direction (RFC 3311 §5.1
    likewise for UPDATE). pjsua refuses with PJ_EINVALIDOP while the media is being renegotiated, e.g. a
    hold whose 200 has not come back yet: the command then waits in the event loop, tried again at each
    turn, for up to ``RENEGOTIATION_WAIT_S`` (then the worker answers ``timeout``), and fails if the call ends
    first."""
    try:
        return send()
    except pj.Error as exc:
        if getattr(exc, "status", None) != PJ_EINVALIDOP:
            raise
        log.info("call %d: %s waits for the offer/answer exchange in progress", rec.handle, what)

    def poll() -> dict[str, Any] | None:
        if rec.call is None or rec.state not in _LIVE_STATES:
            raise CommandFailure(ErrorCode.INVALID_STATE, f"call {rec.handle} ended before its {what} was sent")
        try:
            return send()
        except pj.Error as exc:
            if getattr(exc, "status", None) == PJ_EINVALIDOP:
                return None
            raise from_pj_error(exc, what) from None
    return Pending(poll, time.monotonic() + RENEGOTIATION_WAIT_S,
                   f"waiting for the offer/answer exchange in progress to send the {what}")


class UserAgent:
    """One pjsua2 Endpoint and everything hanging off it.  Not thread-safe by design."""

    def __init__(self, config: p.WorkerConfig, emit: Callable[[EventType, dict[str, Any]], None],
                 log_sink: Callable[[str], None]) -> None:
        self.config = config
        self._emit = emit
        self._log_sink = log_sink
        self.ep: _Endpoint | None = None
        self._log_writer: _LogWriter | None = None
        self._transports: list[dict[str, Any]] = []
        self._accounts: dict[str, AccountRecord] = {}
        self._calls: dict[int, CallRecord] = {}
        self._ended: dict[int, dict[str, Any]] = {}
        self._handles = itertools.count(1)
        self._tones: dict[int | None, pj.ToneGenerator] = {}
        self._players: dict[int | None, pj.AudioMediaPlayer] = {}
        self._recordings: dict[int, Recording] = {}
        self._closing_recordings: list[Recording] = []
        self._bridges: set[frozenset[int]] = set()
        self._edges: set[wiring.Edge] = set()
        self._timers: list[tuple[float, int, str, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        self._to_reap: list[int] = []
        self._answer_policy: dict[str | None, p.SetAutoAnswer] = {}
        self._follow_redirects = False
        self._replacements: dict[int, int] = {}  # replaced call -> replacing call (RFC 3891)
        self.shutting_down = False
        self._media_sched = MediaThreadScheduling(enabled=config.realtime_media)

    # ---------------------------------------------------------------- life cycle

    def start(self) -> dict[str, Any]:
        """Create and start the Endpoint; return the ready info for the parent."""
        cfg = self.config
        ep = self.ep = _Endpoint(self)
        ep.libCreate()
        ep_cfg = pj.EpConfig()
        ua = ep_cfg.uaConfig
        ua.threadCnt = 0
        ua.mainThreadOnly = True
        ua.maxCalls = cfg.max_calls
        ua.userAgent = cfg.user_agent
        lc = ep_cfg.logConfig
        lc.level = cfg.log_level
        lc.consoleLevel = cfg.log_level
        lc.msgLogging = cfg.log_level >= 4
        writer = _LogWriter(self._log_sink)
        writer.__disown__()  # Endpoint.libDestroy deletes the writer itself
        self._log_writer = writer
        lc.writer = writer
        ep_cfg.medConfig.noVad = cfg.no_vad
        # pjsua closes an idle sound device after 1 s by default; with the null device that stops the
        # bridge's clock, so no RTP (and no RFC 4733 digit) leaves a call with nothing connected to it.
        ep_cfg.medConfig.sndAutoCloseTime = -1
        ep.libInit(ep_cfg)
        ep.audDevManager().setNullDev()  # no sound card: the bridge runs on the null device's clock
        for spec in cfg.transports:
            self._transports.append(self._open_transport(spec))
        codecs = self._apply_codec_priorities()
        ep.libStart()
        self._media_sched.apply_at_start()
        log.info("pjmedia threads: %s", self._media_sched.describe())
        return {
            "pid": os.getpid(),
            "name": cfg.name,
            "pjsip_version": ep.libVersion().full,
            "transports": [{k: v for k, v in t.items() if k != "id"} for t in self._transports],
            "rtp": {"host": cfg.media_host, "port": cfg.rtp_port, "count": cfg.rtp_port_count},
            "codecs": codecs,
            "max_calls": cfg.max_calls,
            "media_scheduling": self._media_sched.describe(),
        }

    def _open_transport(self, spec: p.TransportSpec) -> dict[str, Any]:
        assert self.ep is not None
        tc = pj.TransportConfig()
        tc.port = spec.port
        tc.boundAddress = spec.host
        if spec.kind is TransportKind.TLS and spec.tls is not None:
            tls = tc.tlsConfig
            tls.CaListFile = spec.tls.ca_file or ""
            tls.certFile = spec.tls.cert_file or ""
            tls.privKeyFile = spec.tls.key_file or ""
            tls.verifyServer = spec.tls.verify_server
            tls.verifyClient = spec.tls.verify_client
            tls.requireClientCert = spec.tls.require_client_cert
        tid = self.ep.transportCreate(_TRANSPORT_TYPES[(spec.kind, spec.is_ipv6)], tc)
        info = self.ep.transportGetInfo(tid)
        host, _, port = info.localName.rpartition(":")
        return {"id": tid, "kind": spec.kind.value, "host": host.strip("[]"), "port": int(port),
                "local_name": info.localName}

    def _apply_codec_priorities(self) -> list[dict[str, Any]]:
        """Listed codecs first, in the given order (prefix match); the rest below them, or disabled."""
        assert self.ep is not None
        wanted = [c.lower() for c in self.config.codecs]
        result = []
        for info in self.ep.codecEnum2():
            cid = info.codecId
            rank = next((i for i, w in enumerate(wanted) if cid.lower().startswith(w)), None)
            if rank is not None:
                prio = 254 - rank
            elif self.config.codecs_only:
                prio = 0
            else:
                prio = min(info.priority, 100)
            self.ep.codecSetPriority(cid, prio)
            result.append({"id": cid, "priority": prio})
        result.sort(key=lambda c: -c["priority"])
        unknown = [w for w in wanted if not any(c["id"].lower().startswith(w) for c in result)]
        if unknown:
            log.warning("codecs not available in this build: %s", unknown)
        return result

    def handle_events(self, msec: int) -> None:
        assert self.ep is not None
        self.ep.libHandleEvents(msec)

    def tick(self, now: float) -> None:
        """Work the event loop does between pjsua polls: due timers, then reaping ended calls."""
        while self._timers and self._timers[0][0] <= now:
            _, _, what, fn = heapq.heappop(self._timers)
            try:
                fn()
            except CommandFailure as exc:
                log.info("timer %s: %s", what, exc.message)
            except Exception:
                self.report_error(f"timer {what}", traceback.format_exc())
        if self._to_reap:
            self._reap()

    def _schedule(self, delay_s: float, what: str, fn: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay_s, next(self._timer_seq), what, fn))

    def next_timer_in(self, now: float) -> float:
        """Seconds until the next timer of this agent is due (infinity when none is set)."""
        return self._timers[0][0] - now if self._timers else math.inf

    def live_calls(self) -> int:
        return sum(1 for r in self._calls.values() if r.state in _LIVE_STATES)

    def begin_shutdown(self, cmd: p.Shutdown) -> Pending:
        """Hang up every call, then unregister every registered account.  The returned Pending resolves
        once both are done (or at the deadline); ``destroy`` follows."""
        self.shutting_down = True
        self._answer_policy.clear()
        started = time.monotonic()
        for rec in list(self._calls.values()):
            if rec.call is not None and rec.state in _LIVE_STATES:
                try:
                    rec.call.hangup(pj.CallOpParam())
                except pj.Error as exc:
                    log.info("shutdown: hangup of call %d: %s", rec.handle, exc.info())
        calls_done: float | None = None
        unregistering = False

        def poll() -> dict[str, Any] | None:
            nonlocal calls_done, unregistering
            if self._to_reap:
                self._reap()
            if calls_done is None:
                if any(r.state in _LIVE_STATES for r in self._calls.values()):
                    return None
                calls_done = time.monotonic() - started
            if not unregistering:
                unregistering = True
                for acc in self._accounts.values():
                    if acc.reg_active:
                        try:
                            acc.account.setRegistration(False)
                        except pj.Error as exc:
                            log.info("shutdown: unregister %s: %s", acc.account.account_id, exc.info())
                            acc.reg_active = False
            if any(a.reg_active for a in self._accounts.values()):
                return None
            return {"calls_ended_in_s": round(calls_done, 3),
                    "unregistered_in_s": round(time.monotonic() - started - calls_done, 3)}

        return Pending(poll, started + cmd.timeout_s, "waiting for calls to end and accounts to unregister")

    def destroy(self) -> dict[str, Any]:
        """Drop every pjsua2 object in dependency order, then libDestroy (blocks while accounts
        unregister).  Must be the last thing done with the library in this process."""
        t0 = time.monotonic()
        leftover = [h for h, r in self._calls.items() if r.state in _LIVE_STATES]
        self._timers.clear()
        self._bridges.clear()
        self._edges.clear()
        for target in list(self._tones):
            self._tones.pop(target, None)
        for target in list(self._players):
            self._players.pop(target, None)
        for rec in list(self._recordings.values()):
            rec.recorder = None
        self._recordings.clear()
        self._closing_recordings.clear()
        for rec in self._calls.values():
            rec.call = None
        self._calls.clear()
        import gc

        gc.collect()
        for acc in self._accounts.values():
            try:
                acc.account.shutdown()
            except pj.Error as exc:
                log.info("account shutdown: %s", exc.info())
        self._accounts.clear()
        gc.collect()
        ep, self.ep = self.ep, None
        if ep is not None:
            # Calls and registrations were already wound down while the loop ran, so pjsua's own
            # unconditional one-second wait for late responses is skipped.
            ep.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)
        self._log_writer = None
        return {"destroyed_in_s": round(time.monotonic() - t0, 3), "calls_left": leftover}

    # ---------------------------------------------------------------- events out

    def report_error(self, where: str, tb: str) -> None:
        log.error("exception in %s:\n%s", where, tb)
        last = tb.strip().splitlines()[-1] if tb.strip() else ""
        self._emit(EventType.ERROR, {"where": where, "message": last, "traceback": tb})

    # ---------------------------------------------------------------- command dispatch

    def execute(self, cmd: p.Command) -> dict[str, Any] | Pending:
        if self.shutting_down and not isinstance(cmd, p.Ping):
            raise CommandFailure(ErrorCode.SHUTTING_DOWN, "the worker is shutting down")
        handler = getattr(self, f"cmd_{cmd.NAME}", None)
        if handler is None:
            raise CommandFailure(ErrorCode.UNKNOWN_COMMAND, f"no handler for {cmd.NAME!r}")
        try:
            return handler(cmd)
        except pj.Error as exc:
            raise from_pj_error(exc, cmd.NAME) from None

    def cmd_ping(self, cmd: p.Ping) -> dict[str, Any]:
        return {"pid": os.getpid(), "ts": time.monotonic(), "calls": self.live_calls()}

    # ---------------------------------------------------------------- accounts

    def cmd_add_account(self, cmd: p.AddAccount) -> dict[str, Any]:
        if cmd.id in self._accounts:
            raise CommandFailure(ErrorCode.DUPLICATE, f"account {cmd.id!r} already exists")
        rc = pj.AccountConfig()
        rc.idUri = f'"{cmd.display_name}" <{cmd.uri}>' if cmd.display_name else cmd.uri
        reg = rc.regConfig
        reg.registrarUri = cmd.registrar or ""
        reg.registerOnAdd = cmd.registrar is not None
        reg.timeoutSec = cmd.expires_s
        for name, value in cmd.register_headers:
            reg.headers.append(_sip_header(name, value))
        sip = rc.sipConfig
        if cmd.username is not None:
            # "*" realm answers any challenge; digest per RFC 2617 / RFC 3261 §22.
            sip.authCreds.append(pj.AuthCredInfo("digest", cmd.realm, cmd.username, 0, cmd.password or ""))
        for proxy in cmd.proxies:
            sip.proxies.append(proxy)
        ipv6 = False
        if cmd.transport is not None:
            t = next((t for t in self._transports if t["kind"] == cmd.transport.value), None)
            if t is None:
                raise CommandFailure(ErrorCode.BAD_REQUEST,
                                     f"no {cmd.transport.value} transport is open in this worker "
                                     f"(open: {[x['kind'] for x in self._transports]})")
            sip.transportId = t["id"]
            ipv6 = ":" in t["host"]
        rc.mwiConfig.enabled = cmd.mwi
        rc.natConfig.sipOutboundUse = 0  # no RFC 5626 reg-id/+sip.instance: desk phones rarely send them
        media = rc.mediaConfig.transportConfig
        if self.config.rtp_port is not None:
            media.port = self.config.rtp_port
            media.portRange = self.config.rtp_port_count - 2  # pjsua may use port+range as RTP, +1 as RTCP
        media.boundAddress = self.config.media_host
        if ipv6 or ":" in self.config.media_host:
            sip.ipv6Use = pj.PJSUA_IPV6_ENABLED_PREFER_IPV6
            rc.mediaConfig.ipv6Use = pj.PJSUA_IPV6_ENABLED_USE_IPV6_ONLY
        acc = _Account(self, cmd.id)
        acc.create(rc)
        self._accounts[cmd.id] = AccountRecord(acc, cmd.transport, cmd.registrar is not None,
                                               dtmf_method=cmd.dtmf_method)
        return {"account": cmd.id, "pj_id": acc.getId()}

    def _account(self, account_id: str) -> AccountRecord:
        rec = self._accounts.get(account_id)
        if rec is None:
            raise CommandFailure(ErrorCode.NO_SUCH_ACCOUNT,
                                 f"no account {account_id!r} (accounts: {sorted(self._accounts)})")
        return rec

    def cmd_remove_account(self, cmd: p.RemoveAccount) -> dict[str, Any]:
        rec = self._account(cmd.id)
        hung_up = []
        for c in self._calls.values():
            if c.account == cmd.id and c.call is not None and c.state in _LIVE_STATES:
                try:
                    c.call.hangup(pj.CallOpParam())
                    hung_up.append(c.handle)
                except pj.Error as exc:
                    log.info("remove_account: hangup of call %d: %s", c.handle, exc.info())
        rec.account.shutdown()
        # The Python object stays referenced by its calls' records until they are reaped.
        del self._accounts[cmd.id]
        self._answer_policy.pop(cmd.id, None)
        return {"account": cmd.id, "calls_hung_up": hung_up}

    def cmd_reregister(self, cmd: p.Reregister) -> dict[str, Any]:
        rec = self._account(cmd.id)
        if not rec.registered:
            raise CommandFailure(ErrorCode.INVALID_STATE, f"account {cmd.id!r} has no registrar")
        rec.account.setRegistration(True)
        return {"account": cmd.id}

    def cmd_unregister(self, cmd: p.Unregister) -> dict[str, Any]:
        rec = self._account(cmd.id)
        if not rec.registered:
            raise CommandFailure(ErrorCode.INVALID_STATE, f"account {cmd.id!r} has no registrar")
        rec.account.setRegistration(False)
        return {"account": cmd.id}

    def on_reg_state(self, acc: _Account, prm: pj.OnRegStateParam) -> None:
        info = acc.getInfo()
        rec = self._accounts.get(acc.account_id)
        if rec is not None and rec.account is acc:
            rec.reg_active = bool(info.regIsActive)
        self._emit(EventType.REG_STATE, {
            "account": acc.account_id, "code": int(prm.code), "reason": prm.reason,
            "expires_s": int(prm.expiration), "active": bool(info.regIsActive),
        })

    def on_mwi(self, acc: _Account, prm: pj.OnMwiInfoParam) -> None:
        raw = prm.rdata.wholeMsg
        _, body = sdp.split_message(raw)
        self._emit(EventType.MWI, {
            "account": acc.account_id, "state": str(prm.state),
            "content_type": sdp.header_value(raw, "Content-Type") or "", "body": body, "raw": raw,
        })

    def on_instant_message(self, account_id: str, handle: int | None, prm: pj.OnInstantMessageParam) -> None:
        self._emit(EventType.INSTANT_MESSAGE, {
            "account": account_id, "call": handle, "from": prm.fromUri, "to": prm.toUri,
            "content_type": prm.contentType, "body": prm.msgBody,
        })

    # ---------------------------------------------------------------- call registry

    def _new_call(self, account: _Account, role: str, call_id: int = pj.PJSUA_INVALID_ID) -> CallRecord:
        handle = next(self._handles)
        call = _Call(self, handle, account, call_id)
        rec = CallRecord(handle, account.account_id, role, call)
        self._calls[handle] = rec
        return rec

    def _record(self, handle: int) -> CallRecord:
        rec = self._calls.get(handle)
        if rec is None or rec.call is None:
            ended = " (it has ended)" if handle in self._ended else ""
            raise CommandFailure(ErrorCode.NO_SUCH_CALL, f"no active call {handle}{ended}; "
                                 f"active: {sorted(h for h, r in self._calls.items() if r.call is not None)}")
        return rec

    def _require_state(self, rec: CallRecord, allowed: Iterable[CallState], action: str) -> None:
        allowed = frozenset(allowed)
        if rec.state not in allowed:
            raise CommandFailure(ErrorCode.INVALID_STATE,
                                 f"cannot {action} call {rec.handle} in state {rec.state.value} "
                                 f"(needs {'/'.join(sorted(s.value for s in allowed))})")

    def _reap(self) -> None:
        """Forget disconnected calls.  Runs from the loop, never inside the call's own callback."""
        handles, self._to_reap = self._to_reap, []
        for handle in handles:
            rec = self._calls.pop(handle, None)
            if rec is None:
                continue
            self._ended[handle] = self._snapshot(rec, None)
            while len(self._ended) > ENDED_CALLS_KEPT:
                self._ended.pop(next(iter(self._ended)))
            self._tones.pop(handle, None)
            self._players.pop(handle, None)
            recording = self._recordings.get(handle)
            if recording is not None and recording.recorder is not None:
                # The call is gone, so is its audio: finish the WAV now (header sizes written on close)
                # and report it with record_complete, as a recording with a duration would be.
                self._auto_stop_recording(recording)
            rec.call = None  # the last reference: the Call destructor runs here, on this thread

    # ---------------------------------------------------------------- calls: commands

    def cmd_make_call(self, cmd: p.MakeCall) -> dict[str, Any]:
        acc = self._account(cmd.account)
        if self.live_calls() >= self.config.max_calls:
            raise CommandFailure(ErrorCode.TOO_MANY_CALLS,
                                 f"{self.live_calls()} calls already active; this worker allows "
                                 f"{self.config.max_calls} (pjsua's per-process limit is "
                                 f"{p.MAX_CALLS_PER_PROCESS})")
        rec = self._new_call(acc.account, "caller")
        prm = pj.CallOpParam(True)
        _set_headers(prm, cmd.headers)
        assert rec.call is not None
        try:
            rec.call.makeCall(cmd.target, prm)
        except pj.Error as exc:
            self._calls.pop(rec.handle, None)
            rec.call = None
            raise from_pj_error(exc, f"make_call to {cmd.target}") from None
        return {"call": rec.handle, "call_id": rec.call.getInfo().callIdString}

    def cmd_answer(self, cmd: p.Answer) -> dict[str, Any]:
        rec = self._record(cmd.call)
        self._require_state(rec, (CallState.INCOMING, CallState.EARLY), "answer")
        self._answer(rec, cmd.code, cmd.reason, cmd.headers)
        return {"call": rec.handle, "code": cmd.code}

    def _answer(self, rec: CallRecord, code: int, reason: str | None, headers: p.Headers) -> None:
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        if reason:
            prm.reason = reason
        _set_headers(prm, headers)
        assert rec.call is not None
        if code >= 300:
            rec.call.hangup(prm)  # pjsua sends non-2xx finals through hangup with a status code
        else:
            rec.call.answer(prm)

    def cmd_reject(self, cmd: p.Reject) -> dict[str, Any]:
        rec = self._record(cmd.call)
        self._require_state(rec, (CallState.INCOMING, CallState.EARLY), "reject")
        if rec.role != "callee":
            raise CommandFailure(ErrorCode.INVALID_STATE, f"call {rec.handle} is outgoing: use hangup (CANCEL)")
        self._answer(rec, cmd.code, cmd.reason, cmd.headers)
        return {"call": rec.handle, "code": cmd.code}

    def cmd_hangup(self, cmd: p.Hangup) -> dict[str, Any]:
        rec = self._record(cmd.call)
        self._require_state(rec, _LIVE_STATES, "hang up")
        prm = pj.CallOpParam()
        if cmd.code is not None:
            prm.statusCode = cmd.code
        _set_headers(prm, cmd.headers)
        assert rec.call is not None
        rec.call.hangup(prm)
        return {"call": rec.handle}

    def cmd_hold(self, cmd: p.Hold) -> dict[str, Any] | Pending:
        rec = self._record(cmd.call)
        self._require_state(rec, (CallState.CONFIRMED,), "hold")
        prm = pj.CallOpParam(True)
        _set_headers(prm, cmd.headers)

        def send() -> dict[str, Any]:
            assert rec.call is not None
            rec.call.setHold(prm)
            rec.held = True
            self._rewire()  # silence towards the held party now, not after the answer arrives
            return {"call": rec.handle}
        return renegotiate(rec, "hold", send)

    def cmd_unhold(self, cmd: p.Unhold) -> dict[str, Any] | Pending:
        rec = self._record(cmd.call)
        self._require_state(rec, (CallState.CONFIRMED,), "unhold")
        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        _set_headers(prm, cmd.headers)

        def send() -> dict[str, Any]:
            assert rec.call is not None
            rec.call.reinvite(prm)
            rec.held = False
            self._rewire()
            return {"call": rec.handle}
        return renegotiate(rec, "unhold", send)

    def cmd_reinvite(self, cmd: p.Reinvite) -> dict[str, Any] | Pending:
        rec = self._record(cmd.call)
        self._require_state(rec, (CallState.CONFIRMED,), "re-INVITE")
        prm = pj.CallOpParam(True)
        _set_headers(prm, cmd.headers)

        def send() -> dict[str, Any]:
            assert rec.call is not None
            rec.call.reinvite(prm)
            return {"call": rec.handle}
        return renegotiate(rec, "re-INVITE", send)

    def cmd_update(self, cmd: p.Update) -> dict[str, Any] | Pending:
        rec = self._record(cmd.call)
        self._require_state(rec, (CallState.CONFIRMED, CallState.EARLY, CallState.CONNECTING), "UPDATE")
        prm = pj.CallOpParam(True)
        _set_headers(prm, cmd.headers)

        def send() -> dict[str, Any]:
            assert rec.call is not None
            rec.call.update(prm)
            return {"call": rec.handle}
        return renegotiate(rec, "UPDATE", send)

    def cmd_mute(self, cmd: p.Mute) -> dict[str, Any]:
        rec = self._record(cmd.call)
        rec.muted = True
        self._rewire()
        return {"call": rec.handle}

    def cmd_unmute(self, cmd: p.Unmute) -> dict[str, Any]:
        rec = self._record(cmd.call)
        rec.muted = False
        self._rewire()
        return {"call": rec.handle}

    def cmd_send_dtmf(self, cmd: p.SendDtmf) -> dict[str, Any]:
        rec = self._record(cmd.call)
        self._require_state(rec, (CallState.CONFIRMED,), "send DTMF on")
        method = cmd.method or self.config.dtmf_method
        prm = pj.CallSendDtmfParam()
        prm.method = _PJ_DTMF[method]
        prm.digits = cmd.digits
        prm.duration = cmd.duration_ms
        assert rec.call is not None
        rec.call.sendDtmf(prm)
        return {"call": rec.handle, "digits": cmd.digits, "method": method.value}

    def cmd_transfer(self, cmd: p.Transfer) -> dict[str, Any]:
        rec = self._record(cmd.call)
        self._require_state(rec, (CallState.CONFIRMED,), "transfer")
        prm = pj.CallOpParam(True)
        _set_headers(prm, cmd.headers)
        assert rec.call is not None
        rec.hangup_on_transfer = cmd.hangup_on_success
        rec.call.xfer(cmd.target, prm)
        return {"call": rec.handle, "target": cmd.target}

    def cmd_transfer_replaces(self, cmd: p.TransferReplaces) -> dict[str, Any]:
        rec = self._record(cmd.call)
        other = self._record(cmd.other_call)
        self._require_state(rec, (CallState.CONFIRMED,), "transfer")
        self._require_state(other, (CallState.CONFIRMED,), "transfer to")
        prm = pj.CallOpParam(True)
        _set_headers(prm, cmd.headers)
        assert rec.call is not None and other.call is not None
        rec.hangup_on_transfer = cmd.hangup_on_success
        rec.call.xferReplaces(other.call, prm)
        return {"call": rec.handle, "other_call": other.handle}

    def cmd_conference(self, cmd: p.Conference) -> dict[str, Any]:
        self._record(cmd.call)
        self._record(cmd.other_call)
        self._bridges.add(frozenset((cmd.call, cmd.other_call)))
        self._rewire()
        return {"bridges": sorted(sorted(b) for b in self._bridges)}

    def cmd_unconference(self, cmd: p.Unconference) -> dict[str, Any]:
        self._bridges.discard(frozenset((cmd.call, cmd.other_call)))
        self._rewire()
        return {"bridges": sorted(sorted(b) for b in self._bridges)}

    def cmd_auto_answer(self, cmd: p.SetAutoAnswer) -> dict[str, Any]:
        if cmd.account is not None:
            self._account(cmd.account)
        self._answer_policy[cmd.account] = cmd
        return {"account": cmd.account, "mode": cmd.mode.value}

    def cmd_redirect_policy(self, cmd: p.SetRedirectPolicy) -> dict[str, Any]:
        self._follow_redirects = cmd.follow
        return {"follow": cmd.follow}

    # ---------------------------------------------------------------- calls: queries

    def cmd_call_info(self, cmd: p.GetCallInfo) -> dict[str, Any]:
        rec = self._calls.get(cmd.call)
        if rec is None or rec.call is None:
            if cmd.call in self._ended:
                return self._ended[cmd.call]
            self._record(cmd.call)  # raises with the list of active calls
        assert rec is not None and rec.call is not None
        return self._snapshot(rec, rec.call.getInfo())

    def _snapshot(self, rec: CallRecord, ci: pj.CallInfo | None) -> dict[str, Any]:
        if ci is None and rec.call is not None and rec.state is not CallState.DISCONNECTED:
            try:
                ci = rec.call.getInfo()
            except pj.Error:
                ci = None
        out: dict[str, Any] = {
            "call": rec.handle, "account": rec.account, "role": rec.role, "state": rec.state.value,
            "held": rec.held, "muted": rec.muted,
            "bridged_with": sorted(h for b in self._bridges if rec.handle in b for h in b if h != rec.handle),
            "local_sdp": rec.local_sdp, "remote_sdp": rec.remote_sdp,
        }
        if ci is not None:
            display, uri = sdp.parse_name_addr(ci.remoteUri)
            out.update({
                "pj_id": ci.id, "state": _STATE_NAMES.get(ci.state, rec.state).value,
                "code": int(ci.lastStatusCode), "reason": ci.lastReason,
                "remote_uri": uri, "remote_display": display, "remote_contact": ci.remoteContact,
                "local_uri": ci.localUri, "call_id": ci.callIdString,
                "connect_duration_s": ci.connectDuration.sec + ci.connectDuration.msec / 1000,
                "total_duration_s": ci.totalDuration.sec + ci.totalDuration.msec / 1000,
            })
        elif "remote_uri" in self._ended.get(rec.handle, {}):
            out.update({k: v for k, v in self._ended[rec.handle].items() if k not in out})
        out["media"] = self._media_summary(rec, ci)
        return out

    def _media_summary(self, rec: CallRecord, ci: pj.CallInfo | None) -> dict[str, Any]:
        media: dict[str, Any] = {
            "status": rec.media_status.value, "direction": None, "codec": None, "clock_rate": None,
            "remote_rtp": None, "slot": rec.slot,
            "local_sdp_direction": sdp.audio_direction(rec.local_sdp) if rec.local_sdp else None,
            "remote_sdp_direction": sdp.audio_direction(rec.remote_sdp) if rec.remote_sdp else None,
        }
        if ci is None or rec.call is None:
            return media
        audio = _audio_media(ci)
        if audio is None:
            return media
        media["status"] = _MEDIA_STATUS.get(audio.status, MediaStatus.ERROR).value
        media["direction"] = _STREAM_DIR.get(audio.dir, "inactive")
        if audio.status != pj.PJSUA_CALL_MEDIA_NONE:
            try:
                si = rec.call.getStreamInfo(audio.index)
                media.update(codec=si.codecName, clock_rate=int(si.codecClockRate),
                             remote_rtp=si.remoteRtpAddress)
            except pj.Error:
                pass
        return media

    def cmd_call_stats(self, cmd: p.GetCallStats) -> dict[str, Any]:
        rec = self._record(cmd.call)
        assert rec.call is not None
        audio = _audio_media(rec.call.getInfo())
        if audio is None or audio.status == pj.PJSUA_CALL_MEDIA_NONE:
            raise CommandFailure(ErrorCode.INVALID_STATE, f"call {rec.handle} has no audio stream yet")
        st = rec.call.getStreamStat(audio.index)
        si = rec.call.getStreamInfo(audio.index)
        rtcp = st.rtcp
        tx, rx = rtcp.txStat, rtcp.rxStat
        jb = st.jbuf
        # Where RTP goes and arrives: the stream's destination (from the remote SDP), the transport's own RTP
        # address, and the source of the last packet it received ("" when it has received none).
        local_rtp = last_rx_from = ""
        try:
            mti = rec.call.getMedTransportInfo(audio.index)
            local_rtp, last_rx_from = str(mti.localRtpName), str(mti.srcRtpName)
        except pj.Error:
            pass
        return {
            "call": rec.handle, "codec": si.codecName, "clock_rate": int(si.codecClockRate),
            "remote_rtp": str(si.remoteRtpAddress), "local_rtp": local_rtp, "last_rx_from": last_rx_from,
            "duration_s": _elapsed_since(rtcp.start),
            "tx": {"packets": int(tx.pkt), "bytes": int(tx.bytes),
                   # what the peer reported back in RTCP RR about our stream (RFC 3550 §6.4)
                   "peer_reported_lost": int(tx.loss), "peer_reported_jitter_ms": _math_ms(tx.jitterUsec)},
            "rx": {"packets": int(rx.pkt), "bytes": int(rx.bytes), "lost": int(rx.loss),
                   "discarded": int(rx.discard), "duplicated": int(rx.dup), "reordered": int(rx.reorder),
                   "jitter_ms": _math_ms(rx.jitterUsec)},
            "rtt_ms": _math_ms(rtcp.rttUsec),
            "jitter_buffer": {"lost": int(jb.lost), "discarded": int(jb.discard), "empty": int(jb.empty),
                              "avg_delay_ms": int(jb.avgDelayMsec), "max_delay_ms": int(jb.maxDelayMsec)},
        }

    def cmd_list_calls(self, cmd: p.ListCalls) -> dict[str, Any]:
        return {"calls": [
            {"call": r.handle, "account": r.account, "role": r.role, "state": r.state.value,
             "held": r.held, "muted": r.muted}
            for r in self._calls.values() if r.call is not None
        ], "limit": self.config.max_calls}

    # ---------------------------------------------------------------- calls: callbacks

    def on_incoming_call(self, acc: _Account, prm: pj.OnIncomingCallParam) -> None:
        rec = self._new_call(acc, "callee", prm.callId)
        raw = prm.rdata.wholeMsg
        rec.remote_sdp = sdp.sdp_body(raw)
        rec.state = CallState.INCOMING
        self._emit(EventType.INCOMING_CALL, {
            "call": rec.handle, "account": acc.account_id,
            "from": sdp.header_value(raw, "From") or "", "to": sdp.header_value(raw, "To") or "",
            "call_id": sdp.header_value(raw, "Call-ID") or "", "source": prm.rdata.srcAddress, "raw": raw,
        })
        if self.shutting_down:
            self._schedule(0, f"refuse call {rec.handle}", lambda: self._auto_answer(rec.handle, 503, None, ()))
            return
        policy = self._answer_policy.get(acc.account_id) or self._answer_policy.get(None)
        if policy is None or policy.mode is AnswerMode.NEVER:
            return
        if policy.mode is AnswerMode.IMMEDIATE:
            self._schedule(0, f"answer call {rec.handle}",
                           lambda: self._auto_answer(rec.handle, policy.code, None, policy.headers))
            return
        if policy.ring and policy.code >= 200:
            self._schedule(0, f"ring call {rec.handle}", lambda: self._auto_answer(rec.handle, 180, None, ()))
        self._schedule(policy.delay_ms / 1000, f"answer call {rec.handle}",
                       lambda: self._auto_answer(rec.handle, policy.code, None, policy.headers))

    def _auto_answer(self, handle: int, code: int, reason: str | None, headers: p.Headers) -> None:
        rec = self._calls.get(handle)
        if rec is None or rec.call is None or rec.state not in (CallState.INCOMING, CallState.EARLY):
            return  # cancelled or answered by a command meanwhile
        try:
            self._answer(rec, code, reason, headers)
        except pj.Error as exc:
            raise from_pj_error(exc, f"auto-answer {code} of call {handle}") from None

    def on_rejected_incoming(self, prm: pj.OnRejectedIncomingCallParam) -> None:
        self._emit(EventType.INCOMING_CALL_REJECTED, {
            "code": int(prm.statusCode), "reason": prm.reason, "from": prm.remoteInfo, "to": prm.localInfo,
            "call_id": sdp.header_value(prm.rdata.wholeMsg, "Call-ID") or "",
        })

    def on_transport_state(self, prm: pj.OnTransportStateParam) -> None:
        data: dict[str, Any] = {"state": int(prm.state), "last_error": int(prm.lastError)}
        tls = prm.tlsInfo
        if not tls.isEmpty():
            data["tls"] = {
                "established": bool(tls.established), "protocol": int(tls.protocol), "cipher": tls.cipherName,
                "local": tls.localAddr, "remote": tls.remoteAddr, "verify_status": int(tls.verifyStatus),
                "verify_messages": list(tls.verifyMsgs),
                "peer_subject_cn": "" if tls.remoteCertInfo.isEmpty() else tls.remoteCertInfo.subjectCn,
            }
        self._emit(EventType.TRANSPORT_STATE, data)

    def on_call_state(self, call: _Call, prm: pj.OnCallStateParam | None = None) -> None:
        rec = self._calls.get(call.handle)
        if rec is None:
            return
        ci = call.getInfo()
        rec.state = _STATE_NAMES.get(ci.state, CallState.NULL)
        data: dict[str, Any] = {
            "call": rec.handle, "state": rec.state.value, "code": int(ci.lastStatusCode),
            "reason": ci.lastReason, "role": rec.role,
        }
        warning = _received_header(prm, "Warning")  # what the response that changed the state said (§20.43)
        if warning:
            data["warning"] = warning
        self._emit(EventType.CALL_STATE, data)
        if rec.state is CallState.DISCONNECTED:
            self._ended[rec.handle] = self._snapshot(rec, ci)
            self._bridges = {b for b in self._bridges if rec.handle not in b}
            slot, rec.slot = rec.slot, None
            rec.media_status = MediaStatus.NONE
            self._rewire(forget={slot} if slot is not None else set())
            self._to_reap.append(rec.handle)

    def on_call_media_state(self, call: _Call) -> None:
        self._media_sched.apply()  # a thread that had no name yet at start-up (a no-op once all are raised)
        rec = self._calls.get(call.handle)
        if rec is None:
            return
        ci = call.getInfo()
        audio = _audio_media(ci)
        old_slot = rec.slot
        if audio is None:
            rec.media_status = MediaStatus.NONE
            direction = "inactive"
        else:
            rec.media_status = _MEDIA_STATUS.get(audio.status, MediaStatus.ERROR)
            direction = _STREAM_DIR.get(audio.dir, "inactive")
        self._emit(EventType.MEDIA_STATE, {
            "call": rec.handle, "status": rec.media_status.value, "direction": direction,
            "local_sdp_direction": sdp.audio_direction(rec.local_sdp) if rec.local_sdp else None,
            "remote_sdp_direction": sdp.audio_direction(rec.remote_sdp) if rec.remote_sdp else None,
        })
        # The stream (and its bridge port) may have been re-created: forget what we knew about both the
        # old and the new slot and connect again (connecting is idempotent in the bridge).
        self._rewire(forget={s for s in (old_slot, _slot_of(audio)) if s is not None})

    def on_call_tsx_state(self, call: _Call, prm: pj.OnCallTsxStateParam) -> None:
        rec = self._calls.get(call.handle)
        if rec is None:
            return
        e = prm.e
        if e.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        src_type = e.body.tsxState.type
        if src_type == pj.PJSIP_EVENT_RX_MSG:
            body = sdp.sdp_body(e.body.tsxState.src.rdata.wholeMsg)
            if body:
                rec.remote_sdp = body
        elif src_type == pj.PJSIP_EVENT_TX_MSG:
            body = sdp.sdp_body(e.body.tsxState.src.tdata.wholeMsg)
            if body:
                rec.local_sdp = body

    def on_sdp_created(self, call: _Call, prm: pj.OnCallSdpCreatedParam) -> None:
        rec = self._calls.get(call.handle)
        if rec is None:
            return
        acc = self._accounts.get(rec.account)
        method = (acc.dtmf_method if acc is not None else None) or self.config.dtmf_method
        if method is DtmfMethod.INFO and prm.sdp.wholeSdp:
            # An INFO-only UA offers no telephone-event (pjsua2 parses the changed SDP back).
            stripped = sdp.without_telephone_event(prm.sdp.wholeSdp)
            if stripped != prm.sdp.wholeSdp:
                prm.sdp.wholeSdp = stripped
        rec.local_sdp = prm.sdp.wholeSdp or rec.local_sdp
        if prm.remSdp.wholeSdp:
            rec.remote_sdp = prm.remSdp.wholeSdp

    def on_dtmf(self, call: _Call, prm: pj.OnDtmfDigitParam) -> None:
        duration = int(prm.duration)
        self._emit(EventType.DTMF, {
            "call": call.handle, "digit": prm.digit,
            "method": _DTMF_METHODS.get(prm.method, DtmfMethod.RFC4733).value,
            "duration_ms": duration if 0 <= duration < 60000 else None,
        })

    def on_dtmf_end(self, call: _Call, prm: pj.OnDtmfEventParam) -> None:
        duration = int(prm.duration)
        self._emit(EventType.DTMF_END, {
            "call": call.handle, "digit": prm.digit,
            "method": _DTMF_METHODS.get(prm.method, DtmfMethod.RFC4733).value,
            "duration_ms": duration if 0 <= duration < 60000 else None,
        })

    def on_transfer_request(self, call: _Call, prm: pj.OnCallTransferRequestParam) -> None:
        if self.shutting_down or self.live_calls() >= self.config.max_calls:
            prm.statusCode = pj.PJSIP_SC_BUSY_HERE  # no slot left for the new call
            self._emit(EventType.TRANSFER_REQUEST, {"call": call.handle, "target": prm.dstUri, "new_call": None,
                                                    "accepted": False})
            return
        # The new call pjsua makes for the transfer needs its own Call object, kept in the registry
        # (otherwise the default one would be collected and the transferred call silently dropped).
        new = self._new_call(call.account, "caller")
        prm.newCall = new.call
        self._emit(EventType.TRANSFER_REQUEST, {"call": call.handle, "target": prm.dstUri,
                                                "new_call": new.handle, "accepted": True})

    def on_transfer_status(self, call: _Call, prm: pj.OnCallTransferStatusParam) -> None:
        code = int(prm.statusCode)
        self._emit(EventType.TRANSFER_STATUS, {"call": call.handle, "code": code, "reason": prm.reason,
                                               "final": bool(prm.finalNotify)})
        prm.cont = True
        rec = self._calls.get(call.handle)
        if prm.finalNotify and 200 <= code < 300 and rec is not None and rec.hangup_on_transfer:
            # RFC 5589 §6.1: the transferor ends its dialog with the transferee once the transfer worked.
            prm.cont = False
            self._schedule(0, f"hang up transferred call {call.handle}", lambda: self._hangup_quietly(call.handle))

    def _hangup_quietly(self, handle: int) -> None:
        rec = self._calls.get(handle)
        if rec is not None and rec.call is not None and rec.state in _LIVE_STATES:
            try:
                rec.call.hangup(pj.CallOpParam())
            except pj.Error as exc:
                log.info("hangup of call %d: %s", handle, exc.info())

    def on_replace_request(self, call: _Call, prm: pj.OnCallReplaceRequestParam) -> None:
        # An INVITE with Replaces (RFC 3891) for this call: pjsua answers it itself and ends this call;
        # the replacing call gets its Call object (kept in the registry) here.
        new = self._new_call(call.account, "callee")
        new.remote_sdp = sdp.sdp_body(prm.rdata.wholeMsg)
        prm.newCall = new.call
        self._replacements[call.handle] = new.handle

    def on_replaced(self, call: _Call, prm: pj.OnCallReplacedParam) -> None:
        new_id = int(prm.newCallId)
        new = self._calls.get(self._replacements.pop(call.handle, 0))
        if new is None or new.call is None:
            # pjsua made the call without asking onCallReplaceRequest: adopt it now.
            new = self._new_call(call.account, "callee", new_id)
            prm.newCall = new.call
        self._emit(EventType.REPLACED, {"call": call.handle, "new_call": new.handle})

    def on_redirected(self, call: _Call, prm: pj.OnCallRedirectedParam) -> int:
        follow = self._follow_redirects
        self._emit(EventType.REDIRECTED, {"call": call.handle, "target": prm.targetUri, "followed": follow})
        # ACCEPT_REPLACE re-targets the same call (RFC 3261 §8.1.3.4); STOP ends it with the 3xx.
        return pj.PJSIP_REDIRECT_ACCEPT_REPLACE if follow else pj.PJSIP_REDIRECT_STOP

    # ---------------------------------------------------------------- media: sources and recorders

    def cmd_play_tone(self, cmd: p.PlayTone) -> dict[str, Any]:
        if cmd.call is not None:
            self._record(cmd.call)
        amplitude = 32767 * 10 ** (cmd.level_dbfs / 20)
        if cmd.freq2_hz:
            amplitude /= 2  # two sines summed must not clip
        tone = pj.ToneDesc()
        tone.freq1 = round(cmd.freq_hz)
        tone.freq2 = round(cmd.freq2_hz)
        tone.on_msec = 30000
        tone.off_msec = 0  # no off time: pjmedia disables fading and keeps the phase continuous on loop
        tone.volume = max(1, min(32767, round(amplitude)))
        tones = pj.ToneDescVector()
        tones.append(tone)
        gen = pj.ToneGenerator()
        gen.createToneGenerator(16000, 1)
        gen.play(tones, True)
        self._replace_source(self._tones, cmd.call, gen)
        return {"call": cmd.call, "slot": gen.getPortId()}

    def cmd_stop_tone(self, cmd: p.StopTone) -> dict[str, Any]:
        stopped = self._replace_source(self._tones, cmd.call, None)
        return {"call": cmd.call, "stopped": stopped}

    def cmd_play_wav(self, cmd: p.PlayWav) -> dict[str, Any]:
        if cmd.call is not None:
            self._record(cmd.call)
        if not os.path.isfile(cmd.path):
            raise CommandFailure(ErrorCode.BAD_REQUEST, f"WAV file {cmd.path!r} does not exist")
        player = pj.AudioMediaPlayer()
        player.createPlayer(cmd.path, 0 if cmd.loop else pj.PJMEDIA_FILE_NO_LOOP)
        self._replace_source(self._players, cmd.call, player)
        return {"call": cmd.call, "slot": player.getPortId()}

    def cmd_stop_wav(self, cmd: p.StopWav) -> dict[str, Any]:
        stopped = self._replace_source(self._players, cmd.call, None)
        return {"call": cmd.call, "stopped": stopped}

    def _replace_source(self, table: dict[int | None, Any], target: int | None, new: Any) -> bool:
        old = table.pop(target, None)
        forget = set()
        if old is not None:
            forget.add(old.getPortId())
        if new is not None:
            table[target] = new
            forget.add(new.getPortId())
        # Dropping ``old`` destroys its bridge port (and its connections) on this thread.
        del old
        self._rewire(forget=forget)
        return bool(forget) and (new is None)

    def cmd_record(self, cmd: p.Record) -> dict[str, Any]:
        self._record(cmd.call)
        if cmd.call in self._recordings:
            raise CommandFailure(ErrorCode.DUPLICATE, f"call {cmd.call} is already being recorded to "
                                 f"{self._recordings[cmd.call].path}; stop_record first")
        directory = os.path.dirname(os.path.abspath(cmd.path))
        os.makedirs(directory, exist_ok=True)
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(cmd.path)
        rec = Recording(cmd.call, cmd.path, recorder, time.monotonic(), auto_stop=cmd.duration_ms is not None)
        self._recordings[cmd.call] = rec
        self._rewire(forget={recorder.getPortId()})
        if cmd.duration_ms is not None:
            self._schedule(cmd.duration_ms / 1000, f"end recording of call {cmd.call}",
                           lambda: self._auto_stop_recording(rec))
        return {"call": cmd.call, "path": cmd.path}

    def _close_recording(self, rec: Recording) -> None:
        if self._recordings.get(rec.call) is rec:
            del self._recordings[rec.call]
        recorder, rec.recorder = rec.recorder, None
        if recorder is not None:
            slot = recorder.getPortId()
            del recorder  # destroys the port; pjmedia writes the final WAV sizes on close
            self._rewire(forget={slot})
        rec.closed_at = time.monotonic()

    def _auto_stop_recording(self, rec: Recording) -> None:
        if rec.recorder is None:
            return  # stopped by a command already
        self._close_recording(rec)
        self._closing_recordings.append(rec)

        def finish() -> None:
            result = _wav_complete(rec)
            if result is None and time.monotonic() - (rec.closed_at or 0) < 2.0:
                self._schedule(0.02, f"wait for {rec.path}", finish)
                return
            if rec in self._closing_recordings:
                self._closing_recordings.remove(rec)
            self._emit(EventType.RECORD_COMPLETE, result or {"call": rec.call, "path": rec.path,
                                                             "duration_s": 0.0, "bytes": 0, "complete": False})

        self._schedule(STOP_RECORD_SETTLE_S, f"settle {rec.path}", finish)

    def cmd_stop_record(self, cmd: p.StopRecord) -> Pending:
        rec = self._recordings.get(cmd.call)
        if rec is None:
            raise CommandFailure(ErrorCode.INVALID_STATE, f"call {cmd.call} is not being recorded "
                                 f"(recorded calls: {sorted(self._recordings)})")
        self._close_recording(rec)
        ready_at = (rec.closed_at or time.monotonic()) + STOP_RECORD_SETTLE_S

        def poll() -> dict[str, Any] | None:
            if time.monotonic() < ready_at:
                return None
            return _wav_complete(rec)

        return Pending(poll, ready_at + 2.0, f"WAV file {rec.path} to be complete")

    # ---------------------------------------------------------------- media: wiring

    def _rewire(self, forget: set[int] | None = None) -> None:
        """Bring the bridge's connections in line with the intent (see ``sipua.wiring``)."""
        if self.ep is None:
            return
        objects: dict[int, pj.AudioMedia] = {}
        ports: list[wiring.CallPorts] = []
        for rec in self._calls.values():
            slot = None
            if rec.call is not None and rec.state in (CallState.CONFIRMED, CallState.CONNECTING,
                                                      CallState.EARLY):
                audio = _audio_media(rec.call.getInfo())
                slot = _slot_of(audio)
                if slot is not None and audio is not None:
                    objects[slot] = rec.call.getAudioMedia(audio.index)
            rec.slot = slot
            ports.append(wiring.CallPorts(rec.handle, slot, rec.held, rec.muted))
        tones = {t: g.getPortId() for t, g in self._tones.items()}
        players = {t: pl.getPortId() for t, pl in self._players.items()}
        recorders = {c: r.recorder.getPortId() for c, r in self._recordings.items() if r.recorder is not None}
        for table in (self._tones, self._players):
            for src in table.values():
                objects[src.getPortId()] = src
        for r in self._recordings.values():
            if r.recorder is not None:
                objects[r.recorder.getPortId()] = r.recorder
        wanted = wiring.plan(ports, tones, players, recorders, self._bridges)
        forget = forget or set()
        known = {e for e in self._edges if e[0] not in forget and e[1] not in forget}
        remove, add = wiring.diff(known, wanted)
        for src, dst in remove:
            s, d = objects.get(src), objects.get(dst)
            if s is None or d is None:
                continue  # the port is gone, and its connections with it
            try:
                s.stopTransmit(d)
            except pj.Error as exc:
                log.debug("stopTransmit %d->%d: %s", src, dst, exc.info())
        for src, dst in add:
            try:
                objects[src].startTransmit(objects[dst])
            except (pj.Error, KeyError) as exc:
                info = exc.info() if isinstance(exc, pj.Error) else f"no object for slot {exc}"
                log.warning("startTransmit %d->%d failed: %s", src, dst, info)
                wanted.discard((src, dst))
        self._edges = wanted


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def _received_header(prm: Any, name: str) -> str | None:
    """A header of the message received with a call-state change (None when none was received)."""
    try:
        e = prm.e
        if e.type != pj.PJSIP_EVENT_TSX_STATE or e.body.tsxState.type != pj.PJSIP_EVENT_RX_MSG:
            return None
        return sdp.header_value(e.body.tsxState.src.rdata.wholeMsg, name)
    except Exception:
        return None


def _sip_header(name: str, value: str) -> pj.SipHeader:
    h = pj.SipHeader()
    h.hName = name
    h.hValue = value
    return h


def _set_headers(prm: pj.CallOpParam, headers: p.Headers) -> None:
    for name, value in headers:
        prm.txOption.headers.append(_sip_header(name, value))


def _audio_media(ci: pj.CallInfo) -> pj.CallMediaInfo | None:
    for m in ci.media:
        if m.type == PJMEDIA_TYPE_AUDIO:
            return m
    return None


def _slot_of(audio: pj.CallMediaInfo | None) -> int | None:
    if audio is None or audio.status in (pj.PJSUA_CALL_MEDIA_NONE, pj.PJSUA_CALL_MEDIA_ERROR):
        return None
    slot = int(audio.audioConfSlot)
    return slot if slot >= 0 else None


def _math_ms(stat: pj.MathStat) -> dict[str, float] | None:
    if stat.n <= 0:
        return None
    return {"mean": stat.mean / 1000, "min": stat.min / 1000, "max": stat.max / 1000, "last": stat.last / 1000,
            "samples": int(stat.n)}


def _elapsed_since(tv: pj.TimeVal) -> float | None:
    started = tv.sec + tv.msec / 1000
    if started <= 0:
        return None
    now = time.time()  # pjsua stamps RTCP start with the wall clock (pj_gettimeofday)
    return round(max(0.0, now - started), 3) if math.isfinite(started) else None


def _wav_complete(rec: Recording) -> dict[str, Any] | None:
    """Result of a finished recording if the WAV header agrees with the file size, else None."""
    try:
        with open(rec.path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    info = wav_data_info(data)
    if info is None:
        return None
    data_bytes, rate, channels, bits = info
    seconds = data_bytes / (rate * channels * bits / 8) if rate and channels and bits else 0.0
    return {"call": rec.call, "path": rec.path, "duration_s": round(seconds, 3), "bytes": len(data),
            "complete": True}
