"""The ``emulated`` driver: one pjsua2 worker process (``sipua.UAWorker``) per device.

The device is what its catalogue profile says: the worker sends the vendor's SIP ``User-Agent`` for the
declared firmware and MAC (:mod:`device_profiles.ua_format`), so the gateway's firmware gating sees what it
would see from the real device; codecs and DTMF method follow the vendor (:mod:`harness.emulated.profiles`);
a DECT base or IP-DECT server registers one account per handset line, an ATA one per usable port; TLS
trusts the gateway's lab CA. Operations the catalogue excludes raise ``NotApplicable`` with its reason.

Everything returned is observed: call states, media direction and DTMF come from the worker's events
(pjsua2 callbacks on received SIP messages and RTP), registrations from the final REGISTER response.
A worker that dies or hangs is reported as :class:`~harness.protocols.InfrastructureError` carrying the tail
of its log (sipua notices a dead process at once and a silent one after 3 s).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from device_profiles.ua_format import NoUserAgent, format_user_agent
from device_profiles.user_agent import parse_user_agent
from harness.drivers.base import CallBook, Driver, DriverContext, requires_active, user_part
from harness.drivers.registry import register_driver
from harness.emulated.profiles import behaviour_for, tone_for
from harness.emulated.provisioning import EmulatedProvisioning
from harness.protocols import (
    AudioProbe,
    CallControl,
    CallDirection,
    CallInfo,
    CallState,
    Console,
    DeviceIdentity,
    DtmfDigit,
    EventKind,
    Forwarding,
    ForwardingKind,
    ForwardingRule,
    Identity,
    InfrastructureError,
    MediaDirection,
    MessageWaiting,
    MwiState,
    NotApplicable,
    OperationFailed,
    Power,
    PowerState,
    RegistrationInfo,
    StateError,
    UnknownCall,
)
from harness.steps import step

T = TypeVar("T")

_STATES = {
    "NULL": CallState.CALLING, "CALLING": CallState.CALLING, "INCOMING": CallState.INCOMING,
    "EARLY": CallState.EARLY, "CONNECTING": CallState.CONNECTING, "CONFIRMED": CallState.CONFIRMED,
    "DISCONNECTED": CallState.DISCONNECTED,
}
_DIRS = {d.value: d for d in MediaDirection}


def _worker_name(device_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", device_id)[:64]


@register_driver("emulated")
class EmulatedDriver(Driver, CallControl, Identity, AudioProbe, MessageWaiting, Forwarding, Power, Console,
                     EmulatedProvisioning):
    """A device emulated by a sipua worker process."""

    def __init__(self, ctx: DriverContext) -> None:
        super().__init__(ctx)
        self.worker: Any = None
        self.behaviour = behaviour_for(ctx.vendor, ctx.profile.kind)
        opts = ctx.options
        self.dtmf_method: str = opts.get("dtmf_method", self.behaviour.dtmf_method)
        self.codecs: tuple[str, ...] = tuple(opts.get("codecs", self.behaviour.codecs))
        self._tone_hz = float(opts.get("tone_hz", tone_for(int(opts.get("index", 0)))))
        self.book = CallBook(ctx.device_id, liveness=self._liveness)
        self._accounts: set[int] = set()
        self._closing = False
        # Like a phone's microphone, the device transmits on every call: its own tone, started as soon as the
        # call's media is up. (pjsua only clocks RTP, RFC 4733 digits included, while audio flows.)
        self.transmit_tone = bool(opts.get("transmit_tone", True))
        self._toned: set[str] = set()
        self._bg: Any = None
        self._forwarding: dict[tuple[int, ForwardingKind], ForwardingRule] = {}
        self._boot = 0
        self._powered = True
        try:
            self.user_agent = format_user_agent(ctx.profile, ctx.firmware, ctx.mac)
        except NoUserAgent as exc:
            raise NotApplicable(exc.reason, device_id=ctx.device_id) from None

    # ------------------------------------------------------------------------------------------ lifecycle
    @step("emulated.activate")
    def activate(self) -> None:
        if self.active:
            return
        self._boot_worker()
        super().activate()

    def _boot_worker(self) -> None:
        from sipua import TlsSettings, TransportKind, TransportSpec, UAWorker, WorkerConfig
        from sipua.errors import SipUaError

        self._boot += 1
        self._closing = False
        self._powered = True
        suffix = "" if self._boot == 1 else f"-boot{self._boot}"
        gw = self.ctx.gateway
        kind = TransportKind(self.ctx.transport)
        host = gw.host if gw is not None else "127.0.0.1"
        tls = None
        if kind is TransportKind.TLS:
            ca = gw.ca_file if gw is not None else None
            # Trust the gateway's lab CA and verify its certificate, as a provisioned phone does.
            tls = TlsSettings(ca_file=ca, verify_server=bool(ca) and self.ctx.options.get("verify_server", True))
        self.ctx.work_dir.mkdir(parents=True, exist_ok=True)
        config = WorkerConfig(
            name=_worker_name(self.device_id), user_agent=self.user_agent,
            log_path=str(self.ctx.work_dir / f"{_worker_name(self.device_id)}{suffix}.log"),
            transports=(TransportSpec(kind=kind, host=host if host != "localhost" else "127.0.0.1", tls=tls),),
            codecs=self.codecs, dtmf_method=self.dtmf_method,
        )
        try:
            self.worker = UAWorker.spawn(config, allocator=self.ctx.allocator, hang_timeout=3.0)
        except SipUaError as exc:
            raise InfrastructureError(f"{self.device_id}: emulated device could not start: {exc}",
                                      device_id=self.device_id, log_tail=getattr(exc, "log_tail", ""),
                                      log_path=config.log_path) from exc
        from concurrent.futures import ThreadPoolExecutor

        self._bg = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"emulated-{_worker_name(self.device_id)}")
        self.worker.add_listener(self._on_event)
        self._rpc(lambda w: w.auto_answer("never"))
        # Phones follow a 3xx to its Contact (RFC 3261 §8.1.3.4); the gateway relays a forwarding device's 302.
        follow = bool(self.ctx.options.get("follow_redirects", True))
        self._rpc(lambda w: w.redirect_policy(follow))

    @step("emulated.deactivate")
    def deactivate(self) -> None:
        self._closing = True
        if self._bg is not None:
            self._bg.shutdown(wait=True, cancel_futures=True)
        if self.worker is not None:
            with contextlib.suppress(Exception):
                self.worker.close()
        self._accounts.clear()
        super().deactivate()

    @property
    def pid(self) -> int | None:
        return self.worker.pid if self.worker is not None else None

    @property
    def log_path(self) -> str | None:
        return self.worker.log_path if self.worker is not None else None

    # ------------------------------------------------------------------------------------------ plumbing
    def _infra(self, exc: BaseException) -> InfrastructureError:
        err = InfrastructureError(f"{self.device_id}: emulated device failed: {exc}", device_id=self.device_id,
                                  log_tail=getattr(exc, "log_tail", ""), log_path=getattr(exc, "log_path", None))
        self.failed(err)
        return err

    def _liveness(self) -> None:
        w = self.worker
        if w is None or self._closing or w.alive:
            return
        failure = getattr(w, "_failure", None)
        if failure is not None:
            raise self._infra(failure)
        from sipua.client import read_log_tail

        raise self.failed(InfrastructureError(f"{self.device_id}: emulated device's worker process is gone",
                                              device_id=self.device_id, log_tail=read_log_tail(w.log_path),
                                              log_path=w.log_path))

    def _rpc(self, fn: Callable[[Any], T]) -> T:
        from sipua.errors import CommandError, RequestTimeout, WorkerDied, WorkerHung

        if self.worker is None:
            raise StateError(f"{self.device_id}: the emulated device is not started")
        if not self._powered:
            raise StateError(f"{self.device_id} is powered off; power_on() first")
        try:
            return fn(self.worker)
        except (WorkerDied, WorkerHung) as exc:
            self.book.poke()
            raise self._infra(exc) from exc
        except RequestTimeout as exc:
            raise self._infra(exc) from exc
        except CommandError as exc:
            if exc.code == "no_such_call":
                raise UnknownCall(f"{self.device_id}: {exc.message}") from exc
            raise OperationFailed(f"{self.device_id}: {exc.command} refused: {exc.message}"
                                  + (f" [{exc.pj_info}]" if exc.pj_info else "")) from exc

    def _cid(self, handle: Any) -> str:
        """The call id for a worker call handle; calls of earlier boots (before a power cycle) keep theirs."""
        return str(handle) if self._boot <= 1 else f"{handle}@boot{self._boot}"

    def _handle(self, call_id: str) -> int:
        self.book.call(call_id)
        if not self._powered:
            raise StateError(f"{self.device_id} is powered off")
        h, _, boot = call_id.partition("@boot")
        if (int(boot) if boot else 1) != self._boot:
            raise UnknownCall(f"{self.device_id}: call {call_id} ended when the device lost power")
        return int(h)

    def _line_of(self, account: Any) -> int:
        try:
            return int(str(account)[1:])
        except ValueError:
            return 0

    def _ensure_call(self, call_id: str, **defaults: Any) -> None:
        try:
            self.book.call(call_id)
        except UnknownCall:
            base = {"state": CallState.CALLING, "remote": "", "direction": CallDirection.OUTGOING,
                    "started": time.time()}
            base.update(defaults)
            self.book.put_call(CallInfo(id=call_id, **base), None)

    def _on_event(self, ev: Any) -> None:  # runs on the worker's reader thread: must not block
        try:
            self._apply(ev)
        except Exception:  # never let a bad event kill the reader
            import logging

            logging.getLogger(__name__).exception("%s: cannot apply event %s", self.device_id, ev)

    def _apply(self, ev: Any) -> None:
        d = ev.data
        t = ev.type
        if t == "reg_state":
            line = self._line_of(d.get("account"))
            self.book.put_registration(RegistrationInfo(
                line=line, status_code=int(d.get("code", 0)), reason=str(d.get("reason", "")),
                expires=int(d.get("expires_s", 0)), registered=bool(d.get("active")),
                aor=self.line(line).username if line < len(self.ctx.lines) else None))
        elif t == "incoming_call":
            cid = self._cid(d["call"])
            self.book.put_call(CallInfo(
                id=cid, state=CallState.INCOMING, remote=user_part(str(d.get("from", ""))),
                direction=CallDirection.INCOMING, sip_call_id=d.get("call_id") or None,
                line=self._line_of(d.get("account")), started=time.time(),
                extra={"from": d.get("from"), "to": d.get("to")}), EventKind.INCOMING)
            busy_rule = self._forwarding.get((self._line_of(d.get("account")), ForwardingKind.BUSY))
            others = [c for c in self.book.calls() if c.active and c.id != cid]
            if busy_rule is not None and busy_rule.enabled and others and self._bg is not None:
                self._bg.submit(self._redirect, cid, busy_rule.target)
        elif t == "call_state":
            cid = self._cid(d["call"])
            self._ensure_call(cid, direction=CallDirection.INCOMING if d.get("role") == "callee"
                              else CallDirection.OUTGOING)
            state = _STATES.get(str(d.get("state")), CallState.CALLING)
            old = self.book.call(cid)
            changes: dict[str, Any] = {"state": state, "status_code": int(d.get("code") or 0) or old.status_code,
                                       "reason": d.get("reason") or old.reason}
            if state is CallState.CONFIRMED and old.answered is None:
                changes["answered"] = time.time()
            if state is CallState.DISCONNECTED:
                changes["ended"] = time.time()
                changes["media_direction"] = MediaDirection.NONE
            self.book.update_call(cid, EventKind.STATE, {"state": state.value}, **changes)
        elif t == "media_state":
            cid = self._cid(d["call"])
            self._ensure_call(cid)
            status = str(d.get("status"))
            direction = _DIRS.get(str(d.get("direction") or "none"), MediaDirection.NONE)
            self.book.update_call(cid, EventKind.MEDIA, {"status": status}, media_direction=direction,
                                  local_hold=status == "local_hold", remote_hold=status == "remote_hold")
            if self.transmit_tone and status == "active" and cid not in self._toned and self._bg is not None:
                self._toned.add(cid)
                self._bg.submit(self._start_own_tone, cid)
        elif t == "dtmf":
            cid = self._cid(d["call"])
            self._ensure_call(cid)
            digit = DtmfDigit(str(d.get("digit")), str(d.get("method")), time.time(), d.get("duration_ms"))
            old = self.book.call(cid)
            self.book.update_call(cid, EventKind.DTMF, {"digit": digit.digit, "method": digit.method},
                                  dtmf_received=(*old.dtmf_received, digit))
        elif t == "transfer_status":
            cid = self._cid(d["call"])
            self._ensure_call(cid)
            self.book.event(EventKind.TRANSFER, self.book.call(cid), None, code=d.get("code"),
                            reason=d.get("reason"), final=d.get("final"))
        elif t == "transfer_request":
            new = self._cid(d.get("new_call"))
            self._ensure_call(new, remote=user_part(str(d.get("target", ""))), direction=CallDirection.OUTGOING)
            self.book.event(EventKind.TRANSFER, self.book.call(new), None, referred_to=d.get("target"))
        elif t == "replaced":
            new = self._cid(d.get("new_call"))
            self._ensure_call(new, direction=CallDirection.INCOMING, state=CallState.CONFIRMED)
            self.book.event(EventKind.REPLACED, self.book.call(new), None, replaced=self._cid(d.get("call")))
        elif t == "mwi":
            line = self._line_of(d.get("account"))
            body = str(d.get("body", ""))
            self.book.put_mwi(_parse_mwi(line, body, d.get("account")))

    def _start_own_tone(self, call_id: str) -> None:  # on the background thread, never the reader's
        with contextlib.suppress(Exception):  # the call may already be gone
            if not self._closing and self.worker is not None and self.book.call(call_id).active:
                self.worker.play_tone(self._tone_hz, call=self._handle(call_id))

    # ------------------------------------------------------------------------------------------ Identity
    @step("identity")
    @requires_active
    def identity(self) -> DeviceIdentity:
        ua = self.worker.config.user_agent  # what the worker process sends in every request
        m = parse_user_agent(ua, source="sip")
        if m is None:
            raise OperationFailed(f"{self.device_id}: its User-Agent {ua!r} is not recognised")
        return DeviceIdentity(vendor=m.vendor, model=m.model, firmware=m.firmware or "", mac=m.mac,
                              user_agent=ua, source="sip-user-agent")

    # ------------------------------------------------------------------------------------------ CallControl
    @step("register")
    @requires_active
    def register(self, line: int = 0, *, timeout: float = 10.0) -> RegistrationInfo:
        acc = self.line(line)
        gw = self.ctx.gateway
        if gw is None:
            raise StateError(f"{self.device_id}: no gateway configured to register with")
        mark = self.book.last_seq
        tp = self.ctx.transport
        suffix = "" if tp == "udp" else f";transport={tp}"
        if line in self._accounts:
            self._rpc(lambda w: w.reregister(f"l{line}"))
        else:
            registrar = f"sip:{gw.host}:{gw.port(tp)}{suffix}"
            self._rpc(lambda w: w.add_account(
                f"l{line}", f"sip:{acc.username}@{gw.domain}", registrar=registrar, username=acc.username,
                password=acc.password, proxies=(f"sip:{gw.host}:{gw.port(tp)};lr{suffix}",),
                transport=tp, display_name=acc.name, register_headers=self._network_headers(),
                mwi=bool(self.ctx.options.get("mwi_subscribe", False))))
            self._accounts.add(line)

        def final() -> RegistrationInfo | None:
            for e in self.book.events(mark):
                if e.kind is EventKind.REGISTRATION and e.line == line and e.detail.get("status_code", 0) >= 200:
                    return self.book.registration(line)
            return None

        return self.book.wait(final, f"final REGISTER response for line {line}", timeout)

    @step("unregister")
    @requires_active
    def unregister(self, line: int = 0, *, timeout: float = 10.0) -> RegistrationInfo:
        if line not in self._accounts:
            raise StateError(f"{self.device_id}: line {line} was never registered")
        mark = self.book.last_seq
        self._rpc(lambda w: w.unregister(f"l{line}"))

        def final() -> RegistrationInfo | None:
            for e in self.book.events(mark):
                if e.kind is EventKind.REGISTRATION and e.line == line and e.detail.get("status_code", 0) >= 200:
                    return self.book.registration(line)
            return None

        return self.book.wait(final, f"final response to the un-REGISTER of line {line}", timeout)

    def _network_headers(self) -> tuple[tuple[str, str], ...]:
        """The inventory's network attributes (subnet, LLDP chassis/port) as the lab header the embedded gateway
        reads for dynamic E911 (a loopback device cannot sit in its subnet; README, "Dynamic E911")."""
        from gateway.services.e911 import LAB_NETWORK_HEADER

        net = self.ctx.options.get("network")
        if net is None:
            return ()
        lldp = getattr(net, "lldp", None)
        items = [("subnet", getattr(net, "subnet", None)), ("chassis", getattr(lldp, "chassis", None)),
                 ("port", getattr(lldp, "port", None))]
        value = "; ".join(f"{k}={v}" for k, v in items if v)
        return ((LAB_NETWORK_HEADER, value),) if value else ()

    def registration(self, line: int = 0) -> RegistrationInfo:
        self.line(line)
        info = self.book.registration(line)
        return info or RegistrationInfo(line=line, status_code=0, reason="not registered", expires=0)

    def _target_uri(self, target: str) -> str:
        if target.startswith(("sip:", "sips:")):
            return target
        gw = self.ctx.gateway
        domain = gw.domain if gw is not None else "127.0.0.1"
        return f"sip:{target}@{domain}"

    @step("dial")
    @requires_active
    def dial(self, target: str, *, line: int = 0) -> CallInfo:
        self.line(line)
        if line not in self._accounts:
            raise StateError(f"{self.device_id}: line {line} is not registered; register before dialling")
        uri = self._target_uri(target)
        from sipua import protocol as sp

        res = self._rpc(lambda w: w.request(sp.MakeCall(account=f"l{line}", target=uri)))
        cid = self._cid(res["call"])
        self._ensure_call(cid)
        info = self.book.update_call(cid, None, remote=user_part(uri), sip_call_id=res.get("call_id") or None,
                                     line=line, direction=CallDirection.OUTGOING)
        assert info is not None
        return info

    def _op(self, call_id: str, fn: Callable[[Any, int], Any]) -> CallInfo:
        h = self._handle(call_id)
        self._rpc(lambda w: fn(w, h))
        return self.book.call(call_id)

    @step("answer")
    @requires_active
    def answer(self, call_id: str, *, code: int = 200) -> CallInfo:
        info = self._op(call_id, lambda w, h: w.answer(h, code))
        if 200 <= code < 300:
            return self.book.wait_state(call_id, {CallState.CONFIRMED, CallState.DISCONNECTED}, 5.0)
        return info

    @step("reject")
    @requires_active
    def reject(self, call_id: str, *, code: int = 486) -> CallInfo:
        self._op(call_id, lambda w, h: w.reject(h, code))
        return self.book.wait_state(call_id, {CallState.DISCONNECTED}, 5.0)

    @step("hangup")
    @requires_active
    def hangup(self, call_id: str) -> CallInfo:
        if self.book.call(call_id).state is CallState.DISCONNECTED:
            return self.book.call(call_id)
        try:
            self._op(call_id, lambda w, h: w.hangup(h))
        except (OperationFailed, UnknownCall):
            # The call ended on its own meanwhile (the far end hung up, a transfer completed): hanging up an
            # ended call is a no-op, once the DISCONNECTED event confirms it.
            with contextlib.suppress(Exception):
                return self.book.wait_state(call_id, {CallState.DISCONNECTED}, 2.0)
            raise
        return self.book.wait_state(call_id, {CallState.DISCONNECTED}, 5.0)

    @step("hold")
    @requires_active
    def hold(self, call_id: str) -> CallInfo:
        self.require("hold_resume")
        self._op(call_id, lambda w, h: w.hold(h))
        return self.book.wait(lambda: (c := self.book.call(call_id)).local_hold and c,
                              f"local hold of call {call_id} (re-INVITE answered)", 5.0)

    @step("resume")
    @requires_active
    def resume(self, call_id: str) -> CallInfo:
        self.require("hold_resume")
        self._op(call_id, lambda w, h: w.unhold(h))
        return self.book.wait(lambda: not (c := self.book.call(call_id)).local_hold and
                              c.media_direction is MediaDirection.SENDRECV and c,
                              f"resumed media (sendrecv) on call {call_id}", 5.0)

    @step("mute")
    @requires_active
    def mute(self, call_id: str) -> CallInfo:
        self.require("mute_unmute")
        self._op(call_id, lambda w, h: w.mute(h))
        info = self.book.update_call(call_id, None, muted=True)
        assert info is not None
        return info

    @step("unmute")
    @requires_active
    def unmute(self, call_id: str) -> CallInfo:
        self.require("mute_unmute")
        self._op(call_id, lambda w, h: w.unmute(h))
        info = self.book.update_call(call_id, None, muted=False)
        assert info is not None
        return info

    @step("refresh_session")
    @requires_active
    def refresh_session(self, call_id: str) -> CallInfo:
        """A session-refresh re-INVITE (the worker keeps the hold state); returns once its answer was applied."""
        mark = self.book.last_seq
        self._op(call_id, lambda w, h: w.reinvite(h))
        self.book.wait(lambda: any(e.kind is EventKind.MEDIA and e.call is not None and e.call.id == call_id
                                   for e in self.book.events(mark)),
                       f"the answer to the session refresh of call {call_id}", 5.0)
        return self.book.call(call_id)

    @step("send_dtmf")
    @requires_active
    def send_dtmf(self, call_id: str, digits: str) -> CallInfo:
        self.require("dtmf")
        # RFC 4733 digits travel in the RTP stream: wait until the call's media is up (observed).
        self.book.wait(lambda: self.book.call(call_id).media_direction is not MediaDirection.NONE,
                       f"active media on call {call_id} before sending DTMF", 3.0)
        return self._op(call_id, lambda w, h: w.send_dtmf(h, digits, method=self.dtmf_method))

    @step("blind_transfer")
    @requires_active
    def blind_transfer(self, call_id: str, target: str) -> CallInfo:
        self.require("call_transfer")
        return self._op(call_id, lambda w, h: w.transfer(h, self._target_uri(target)))

    @step("consultative_transfer")
    @requires_active
    def consultative_transfer(self, call_id: str, consult_call_id: str) -> CallInfo:
        self.require("call_transfer")
        other = self._handle(consult_call_id)
        return self._op(call_id, lambda w, h: w.transfer_replaces(h, other))

    @step("conference")
    @requires_active
    def conference(self, call_id: str, other_call_id: str) -> tuple[CallInfo, CallInfo]:
        self.require("multiple_calls")
        other = self._handle(other_call_id)
        self._op(call_id, lambda w, h: w.conference(h, other))
        return self.book.call(call_id), self.book.call(other_call_id)

    def calls(self) -> tuple[CallInfo, ...]:
        return self.book.calls()

    def call(self, call_id: str) -> CallInfo:
        return self.book.call(call_id)

    def last_seq(self) -> int:
        return self.book.last_seq

    def wait_for_event(self, kinds: set[EventKind] | EventKind | None = None, *, call_id: str | None = None,
                       after_seq: int = 0, timeout: float = 10.0):
        ks = {kinds} if isinstance(kinds, EventKind) else kinds
        return self.book.wait_event(ks, call_id, after_seq, timeout)

    @step("wait_for_incoming")
    def wait_for_incoming(self, *, line: int | None = None, timeout: float = 10.0) -> CallInfo:
        return self.book.wait_incoming(line, timeout)

    @step("wait_for_state")
    def wait_for_state(self, call_id: str, states: set[CallState] | CallState, *, timeout: float = 10.0) -> CallInfo:
        ss = {states} if isinstance(states, CallState) else set(states)
        return self.book.wait_state(call_id, ss, timeout)

    # ------------------------------------------------------------------------------------------ AudioProbe
    @property
    def tone_hz(self) -> float:
        return self._tone_hz

    @step("play_tone")
    @requires_active
    def play_tone(self, call_id: str, hz: float | None = None) -> None:
        f = float(hz or self._tone_hz)
        self._op(call_id, lambda w, h: w.play_tone(f, call=h))

    @step("stop_tone")
    @requires_active
    def stop_tone(self, call_id: str) -> None:
        self._op(call_id, lambda w, h: w.stop_tone(call=h))

    @step("record")
    @requires_active
    def record(self, call_id: str, duration_s: float) -> Path:
        if not 0.02 <= duration_s <= 600:
            raise ValueError(f"record duration {duration_s!r} s must be between 0.02 and 600")
        h = self._handle(call_id)
        path = self.ctx.work_dir / f"{_worker_name(self.device_id)}-call{h}-{time.time_ns()}.wav"
        mark = self.worker.mark()
        self._rpc(lambda w: w.record(h, str(path), int(duration_s * 1000)))
        ev = self._rpc(lambda w: w.wait_event("record_complete", timeout=duration_s + 5.0, since=mark, call=h))
        return Path(ev.data.get("path") or path)

    def rtp_stats(self, call_id: str) -> dict | None:
        """The worker's RTP counters of the call (pjsua2 stream statistics); None once the call has no stream."""
        h = self._handle(call_id)
        try:
            return self._rpc(lambda w: w.call_stats(h))
        except (OperationFailed, UnknownCall):
            return None

    # ------------------------------------------------------------------------------------------ MessageWaiting
    def mwi(self, line: int = 0) -> MwiState:
        self.require("message_waiting")
        self.line(line)
        return self.book.mwi(line) or MwiState(line=line, waiting=False, raw="")

    @step("wait_for_mwi")
    def wait_for_mwi(self, waiting: bool, *, line: int = 0, timeout: float = 10.0) -> MwiState:
        self.require("message_waiting")
        return self.book.wait(lambda: (s := self.book.mwi(line)) is not None and s.waiting == waiting and s,
                              f"message-waiting {'on' if waiting else 'off'} on line {line}", timeout)

    # ------------------------------------------------------------------------------------------ Forwarding
    # Local call forwarding as phones do it: the device answers the INVITE with 302 Moved Temporarily and a
    # Contact naming the target (RFC 3261 §8.3, §21.3.3) — at once (always), after ringing for the timeout
    # (timeout), or when another call is up (busy). The gateway decides whether to follow it (AllowCallRedirect).

    def _contact(self, target: str) -> tuple[tuple[str, str], ...]:
        return (("Contact", f"<{self._target_uri(target)}>"),)

    def _redirect(self, call_id: str, target: str) -> None:  # on the background thread
        with contextlib.suppress(Exception):
            self.worker.answer(self._handle(call_id), 302, headers=self._contact(target))

    def _apply_forwarding(self, line: int) -> None:
        acc = f"l{line}"
        always = self._forwarding.get((line, ForwardingKind.ALWAYS))
        timeout = self._forwarding.get((line, ForwardingKind.TIMEOUT))
        if always is not None and always.enabled:
            self._rpc(lambda w: w.auto_answer("immediate", 302, headers=self._contact(always.target), account=acc))
        elif timeout is not None and timeout.enabled:
            delay = int((timeout.timeout_s or 20) * 1000)
            self._rpc(lambda w: w.auto_answer("delayed", 302, delay_ms=delay, ring=True,
                                              headers=self._contact(timeout.target), account=acc))
        else:
            self._rpc(lambda w: w.auto_answer("never", account=acc))

    @step("set_forwarding")
    @requires_active
    def set_forwarding(self, rule: ForwardingRule) -> ForwardingRule:
        self.require("local_call_forwarding")
        self.line(rule.line)
        if rule.kind is ForwardingKind.TIMEOUT and rule.timeout_s is not None and not 1 <= rule.timeout_s <= 600:
            raise ValueError(f"forwarding timeout {rule.timeout_s!r} s must be between 1 and 600")
        self._forwarding[(rule.line, ForwardingKind(rule.kind))] = rule
        self._apply_forwarding(rule.line)
        return rule

    @step("clear_forwarding")
    @requires_active
    def clear_forwarding(self, kind: ForwardingKind | None = None, *, line: int = 0) -> None:
        self.require("local_call_forwarding")
        for key in [k for k in self._forwarding if k[0] == line and (kind is None or k[1] == kind)]:
            del self._forwarding[key]
        self._apply_forwarding(line)

    def forwarding(self, line: int = 0) -> tuple[ForwardingRule, ...]:
        return tuple(r for (ln, _), r in self._forwarding.items() if ln == line)

    # ------------------------------------------------------------------------------------------ Power
    # A power cut: the worker is killed (no un-REGISTER, calls vanish without BYE), as a device pulled from its
    # PoE switch. Power on boots a new worker, which registers the lines that were registered before.

    @step("power_off")
    @requires_active
    def power_off(self) -> PowerState:
        import os
        import signal

        if not self._powered:
            return PowerState.OFF
        self._closing = True
        self._powered = False
        if self._bg is not None:
            self._bg.shutdown(wait=True, cancel_futures=True)
            self._bg = None
        w = self.worker
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.kill(w.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            w.close(timeout=2.0)
        now = time.time()
        for c in self.book.calls():
            if c.active:
                self.book.update_call(c.id, EventKind.STATE, {"state": "disconnected", "cause": "power off"},
                                      state=CallState.DISCONNECTED, ended=now, reason="power off",
                                      media_direction=MediaDirection.NONE)
        return PowerState.OFF

    @step("power_on")
    @requires_active
    def power_on(self) -> PowerState:
        if self._powered:
            return PowerState.ON
        lines = sorted(self._accounts)
        self._accounts.clear()
        self._toned.clear()
        self._boot_worker()
        for line in lines:
            self.register(line)
        return PowerState.ON

    def power_cycle(self) -> PowerState:
        self.power_off()
        return self.power_on()

    def power_state(self) -> PowerState:
        return PowerState.ON if self._powered else PowerState.OFF

    # ------------------------------------------------------------------------------------------ Console
    def run(self, command: str, *, timeout: float = 10.0):
        raise NotApplicable("an emulated device has no command console; its log is available with read_log()",
                            device_id=self.device_id)

    def read_log(self, max_lines: int = 200) -> str:
        from sipua.client import read_log_tail

        if self.worker is None:
            return ""
        return read_log_tail(self.worker.log_path, max_lines)


def _parse_mwi(line: int, body: str, account: Any) -> MwiState:
    """RFC 3842 message-summary: ``Messages-Waiting: yes`` and ``Voice-Message: new/old``."""
    waiting = bool(re.search(r"(?im)^Messages-Waiting:\s*yes\b", body))
    new = old = 0
    m = re.search(r"(?im)^Voice-Message:\s*(\d+)\s*/\s*(\d+)", body)
    if m:
        new, old = int(m.group(1)), int(m.group(2))
    return MwiState(line=line, waiting=waiting, new=new, old=old, account=str(account), raw=body, t=time.time())
