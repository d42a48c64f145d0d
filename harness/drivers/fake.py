"""The ``fake`` driver: an in-memory device with scripted behaviour and fault injection.

For tests of the pytest plugin, the reports and the harness itself: no processes, no sockets. Fake devices
on the same :class:`FakeNetwork` call each other by number; the network plays the gateway (registration
with firmware gating by the device's User-Agent, routing by number, 404 for unknown numbers).

Scripting, per device through ``DriverContext.options`` (or the inventory's ``options``):

- ``register_status``: the final response every REGISTER gets (e.g. 403), instead of the gating verdict;
- ``answer``: ``"manual"`` (default, the test answers), ``"auto"`` or ``"busy"`` (486 Busy Here);
- ``mwi``: initial message-waiting state (bool).

Fault injection at run time: ``driver.inject_fault("dial", OperationFailed("..."))`` makes the next
``dial`` raise; ``driver.kill()`` makes the device look like a dead worker — every later operation and
every wait raise :class:`~harness.protocols.InfrastructureError` with the fake log's tail.
"""

from __future__ import annotations

import array
import itertools
import math
import sys
import threading
import time
import wave
from pathlib import Path
from typing import Any

from device_profiles.ua_format import NoUserAgent, format_user_agent
from device_profiles.user_agent import parse_user_agent
from device_profiles.verdict import check_user_agent
from harness.drivers.base import CallBook, Driver, DriverContext, requires_active, user_part
from harness.drivers.registry import register_driver
from harness.protocols import (
    AudioProbe,
    CallControl,
    CallDirection,
    CallInfo,
    CallState,
    Console,
    ConsoleResult,
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
    Provisioning,
    ProvisioningInfo,
    RegistrationInfo,
    SignIn,
    SignInState,
    SignInStatus,
    StateError,
)
from harness.steps import step


class FakeNetwork:
    """The in-memory 'gateway' fake devices register with and call through."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.bindings: dict[str, tuple[FakeDriver, int]] = {}  # number and username → (driver, line)
        self.links: dict[tuple[str, str], tuple[FakeDriver, str]] = {}  # (device, call) → (peer, peer call)
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        return f"f{next(self._ids)}"

    def lookup(self, target: str) -> tuple[FakeDriver, int] | None:
        with self.lock:
            return self.bindings.get(user_part(target))

    def link(self, a: FakeDriver, a_call: str, b: FakeDriver, b_call: str) -> None:
        with self.lock:
            self.links[(a.device_id, a_call)] = (b, b_call)
            self.links[(b.device_id, b_call)] = (a, a_call)

    def peer(self, a: FakeDriver, call_id: str) -> tuple[FakeDriver, str] | None:
        with self.lock:
            return self.links.get((a.device_id, call_id))


DEFAULT_NETWORK = FakeNetwork()


@register_driver("fake")
class FakeDriver(Driver, CallControl, Identity, AudioProbe, MessageWaiting, Forwarding, SignIn, Provisioning,
                 Power, Console):
    def __init__(self, ctx: DriverContext, network: FakeNetwork | None = None) -> None:
        super().__init__(ctx)
        self.network = network or ctx.options.get("network") or DEFAULT_NETWORK
        self.book = CallBook(ctx.device_id, liveness=self._liveness)
        self.log: list[str] = []
        self._faults: dict[str, BaseException] = {}
        self._dead: str | None = None
        self._forwarding: dict[tuple[int, ForwardingKind], ForwardingRule] = {}
        self._sign_in = SignInStatus(SignInState.SIGNED_OUT)
        self._prov = ProvisioningInfo(url=None, status="factory_default")
        self._power = PowerState.ON
        self._tone_hz = float(ctx.options.get("tone_hz", 700.0 + 200.0 * (int(ctx.options.get("index", 0)) % 8)))
        try:
            self.user_agent = format_user_agent(ctx.profile, ctx.firmware or "1.0", ctx.mac)
        except NoUserAgent as exc:
            raise NotApplicable(exc.reason, device_id=ctx.device_id) from None
        for i in range(len(ctx.lines)):
            if ctx.options.get("mwi"):
                self.book.put_mwi(MwiState(line=i, waiting=True, new=1, t=time.time()))

    # ------------------------------------------------------------------------------------------ faults
    def inject_fault(self, operation: str, error: BaseException) -> None:
        """The next call of ``operation`` (a method name) raises ``error``."""
        self._faults[operation] = error

    def kill(self, cause: str = "killed by SIGKILL") -> None:
        """Make the device look like a dead worker process."""
        self._dead = cause
        self._log(f"FATAL worker process {cause}")
        self.book.poke()

    def _log(self, line: str) -> None:
        self.log.append(f"{time.strftime('%H:%M:%S')} {self.device_id}: {line}")

    def _liveness(self) -> None:
        if self._dead is not None:
            raise self.failed(InfrastructureError(f"{self.device_id}: fake worker process {self._dead}",
                                                  device_id=self.device_id, log_tail="\n".join(self.log[-40:])))

    def _enter(self, op: str) -> None:
        self._liveness()
        err = self._faults.pop(op, None)
        if err is not None:
            self._log(f"injected fault in {op}: {err!r}")
            raise err
        self._log(op)

    # ------------------------------------------------------------------------------------------ lifecycle
    def activate(self) -> None:
        self._enter("activate")
        super().activate()

    def deactivate(self) -> None:
        with self.network.lock:
            for key in [k for k, (d, _) in self.network.bindings.items() if d is self]:
                del self.network.bindings[key]
        for c in self.book.calls():
            if c.active:
                self._end(c.id, 200, "device stopped", notify_peer=True)
        super().deactivate()

    # ------------------------------------------------------------------------------------------ Identity
    @step("identity")
    @requires_active
    def identity(self) -> DeviceIdentity:
        self._enter("identity")
        m = parse_user_agent(self.user_agent)
        assert m is not None
        return DeviceIdentity(m.vendor, m.model, m.firmware or "", m.mac, self.user_agent, source="sip-user-agent")

    # ------------------------------------------------------------------------------------------ registration
    @step("register")
    @requires_active
    def register(self, line: int = 0, *, timeout: float = 10.0) -> RegistrationInfo:
        self._enter("register")
        acc = self.line(line)
        scripted = self.ctx.options.get("register_status")
        verdict = check_user_agent(self.user_agent)
        if scripted is not None:
            code, reason = int(scripted), "scripted"
        elif not verdict.acceptable:
            code, reason = 403, verdict.reason
        else:
            code, reason = 200, "OK"
        ok = 200 <= code < 300
        if ok:
            with self.network.lock:
                self.network.bindings[acc.number] = (self, line)
                self.network.bindings[acc.username] = (self, line)
        info = RegistrationInfo(line=line, status_code=code, reason=reason, expires=3600 if ok else 0,
                                contact=f"sip:{acc.username}@fake", registered=ok, aor=acc.username)
        self.book.put_registration(info)
        return info

    @step("unregister")
    @requires_active
    def unregister(self, line: int = 0, *, timeout: float = 10.0) -> RegistrationInfo:
        self._enter("unregister")
        acc = self.line(line)
        with self.network.lock:
            for key in (acc.number, acc.username):
                if self.network.bindings.get(key, (None,))[0] is self:
                    del self.network.bindings[key]
        info = RegistrationInfo(line=line, status_code=200, reason="OK", expires=0, registered=False,
                                aor=acc.username)
        self.book.put_registration(info)
        return info

    def registration(self, line: int = 0) -> RegistrationInfo:
        self.line(line)
        return self.book.registration(line) or RegistrationInfo(line, 0, "not registered", 0)

    # ------------------------------------------------------------------------------------------ calls
    def _new_call(self, call_id: str, state: CallState, remote: str, direction: CallDirection, line: int,
                  kind: EventKind | None) -> CallInfo:
        return self.book.put_call(CallInfo(id=call_id, state=state, remote=remote, direction=direction, line=line,
                                           sip_call_id=f"{call_id}@fake", started=time.time()), kind)

    def _end(self, call_id: str, code: int, reason: str, *, notify_peer: bool) -> None:
        c = self.book.call(call_id)
        if c.state is CallState.DISCONNECTED:
            return
        self.book.update_call(call_id, EventKind.STATE, {"state": "disconnected"}, state=CallState.DISCONNECTED,
                              status_code=code, reason=reason, ended=time.time(), media_direction=MediaDirection.NONE)
        peer = self.network.peer(self, call_id)
        if notify_peer and peer is not None:
            peer[0]._end(peer[1], code, reason, notify_peer=False)

    def _set_media(self, call_id: str, direction: MediaDirection, **flags: Any) -> None:
        self.book.update_call(call_id, EventKind.MEDIA, {"direction": direction.value},
                              media_direction=direction, **flags)

    @step("dial")
    @requires_active
    def dial(self, target: str, *, line: int = 0) -> CallInfo:
        self._enter("dial")
        self.line(line)
        if not (self.book.registration(line) or RegistrationInfo(line, 0, "", 0)).ok:
            raise StateError(f"{self.device_id}: line {line} is not registered; register before dialling")
        cid = self.network.new_id()
        remote = user_part(target)
        self._new_call(cid, CallState.CALLING, remote, CallDirection.OUTGOING, line, EventKind.STATE)
        dest = self.network.lookup(target)
        if dest is None:
            self._end(cid, 404, "Not Found", notify_peer=False)
            return self.book.call(cid)
        callee, cline = dest
        mode = callee.ctx.options.get("answer", "manual")
        if mode == "busy" or callee._dead is not None:
            self._end(cid, 486 if mode == "busy" else 480, "Busy Here" if mode == "busy" else "Unavailable",
                      notify_peer=False)
            return self.book.call(cid)
        peer_id = self.network.new_id()
        callee._new_call(peer_id, CallState.INCOMING, self.ctx.lines[line].number, CallDirection.INCOMING, cline,
                         EventKind.INCOMING)
        self.network.link(self, cid, callee, peer_id)
        self.book.update_call(cid, EventKind.STATE, {"state": "early"}, state=CallState.EARLY, status_code=180,
                              reason="Ringing")
        if mode == "auto":
            callee.answer(peer_id)
        return self.book.call(cid)

    @step("answer")
    @requires_active
    def answer(self, call_id: str, *, code: int = 200) -> CallInfo:
        self._enter("answer")
        c = self.book.call(call_id)
        if c.state is not CallState.INCOMING:
            raise OperationFailed(f"{self.device_id}: call {call_id} is {c.state.value}, not incoming")
        peer = self.network.peer(self, call_id)
        now = time.time()
        for drv, cid in [(self, call_id)] + ([peer] if peer else []):
            drv.book.update_call(cid, EventKind.STATE, {"state": "confirmed"}, state=CallState.CONFIRMED,
                                 status_code=code, reason="OK", answered=now)
            drv._set_media(cid, MediaDirection.SENDRECV)
        return self.book.call(call_id)

    @step("reject")
    @requires_active
    def reject(self, call_id: str, *, code: int = 486) -> CallInfo:
        self._enter("reject")
        self._end(call_id, code, "Rejected", notify_peer=True)
        return self.book.call(call_id)

    @step("hangup")
    @requires_active
    def hangup(self, call_id: str) -> CallInfo:
        self._enter("hangup")
        self._end(call_id, 200, "Normal call clearing", notify_peer=True)
        return self.book.call(call_id)

    def _confirmed(self, call_id: str, op: str) -> tuple[FakeDriver, str] | None:
        c = self.book.call(call_id)
        if c.state is not CallState.CONFIRMED:
            raise OperationFailed(f"{self.device_id}: cannot {op} call {call_id}: it is {c.state.value}")
        return self.network.peer(self, call_id)

    @step("hold")
    @requires_active
    def hold(self, call_id: str) -> CallInfo:
        self.require("hold_resume")
        self._enter("hold")
        peer = self._confirmed(call_id, "hold")
        self._set_media(call_id, MediaDirection.SENDONLY, local_hold=True)
        if peer:
            peer[0]._set_media(peer[1], MediaDirection.RECVONLY, remote_hold=True)
        return self.book.call(call_id)

    @step("resume")
    @requires_active
    def resume(self, call_id: str) -> CallInfo:
        self.require("hold_resume")
        self._enter("resume")
        peer = self._confirmed(call_id, "resume")
        self._set_media(call_id, MediaDirection.SENDRECV, local_hold=False)
        if peer:
            peer[0]._set_media(peer[1], MediaDirection.SENDRECV, remote_hold=False)
        return self.book.call(call_id)

    @step("mute")
    @requires_active
    def mute(self, call_id: str) -> CallInfo:
        self.require("mute_unmute")
        self._enter("mute")
        self._confirmed(call_id, "mute")
        info = self.book.update_call(call_id, None, muted=True)
        assert info is not None
        return info

    @step("unmute")
    @requires_active
    def unmute(self, call_id: str) -> CallInfo:
        self.require("mute_unmute")
        self._enter("unmute")
        info = self.book.update_call(call_id, None, muted=False)
        assert info is not None
        return info

    @step("send_dtmf")
    @requires_active
    def send_dtmf(self, call_id: str, digits: str) -> CallInfo:
        self.require("dtmf")
        self._enter("send_dtmf")
        if not digits or any(ch not in "0123456789*#ABCDabcd" for ch in digits):
            raise ValueError(f"DTMF digits {digits!r} must be one or more of 0-9 * # A-D")
        peer = self._confirmed(call_id, "send DTMF on")
        if peer:
            drv, pid = peer
            for ch in digits:
                old = drv.book.call(pid)
                d = DtmfDigit(ch, self.ctx.options.get("dtmf_method", "rfc4733"), time.time(), 160)
                drv.book.update_call(pid, EventKind.DTMF, {"digit": ch}, dtmf_received=(*old.dtmf_received, d))
        return self.book.call(call_id)

    @step("blind_transfer")
    @requires_active
    def blind_transfer(self, call_id: str, target: str) -> CallInfo:
        self.require("call_transfer")
        self._enter("blind_transfer")
        peer = self._confirmed(call_id, "transfer")
        if peer is None:
            raise OperationFailed(f"{self.device_id}: call {call_id} has no remote party to transfer")
        drv, pid = peer
        new = drv.dial(target, line=drv.book.call(pid).line)
        self.book.event(EventKind.TRANSFER, self.book.call(call_id), None, code=200, final=True,
                        referred_to=target, new_call=new.id)
        self._end(call_id, 200, "transferred", notify_peer=True)
        return self.book.call(call_id)

    @step("consultative_transfer")
    @requires_active
    def consultative_transfer(self, call_id: str, consult_call_id: str) -> CallInfo:
        self.require("call_transfer")
        self._enter("consultative_transfer")
        a = self._confirmed(call_id, "transfer")
        b = self._confirmed(consult_call_id, "transfer to")
        if a is None or b is None:
            raise OperationFailed(f"{self.device_id}: both calls need a remote party")
        (da, ca), (db, cb) = a, b
        with self.network.lock:
            self.network.link(da, ca, db, cb)
            self.network.links.pop((self.device_id, call_id), None)
            self.network.links.pop((self.device_id, consult_call_id), None)
        for drv, cid, other in ((da, ca, db), (db, cb, da)):
            drv.book.update_call(cid, EventKind.REPLACED, {"replaced_by": other.device_id},
                                 remote=other.ctx.lines[0].number)
        for cid in (call_id, consult_call_id):
            self._end(cid, 200, "transferred", notify_peer=False)
        return self.book.call(call_id)

    @step("conference")
    @requires_active
    def conference(self, call_id: str, other_call_id: str) -> tuple[CallInfo, CallInfo]:
        self.require("multiple_calls")
        self._enter("conference")
        self._confirmed(call_id, "conference")
        self._confirmed(other_call_id, "conference")
        a = self.book.update_call(call_id, None, extra={"bridged_with": other_call_id})
        b = self.book.update_call(other_call_id, None, extra={"bridged_with": call_id})
        assert a is not None and b is not None
        return a, b

    def calls(self) -> tuple[CallInfo, ...]:
        return self.book.calls()

    def call(self, call_id: str) -> CallInfo:
        return self.book.call(call_id)

    def last_seq(self) -> int:
        return self.book.last_seq

    def wait_for_event(self, kinds=None, *, call_id=None, after_seq=0, timeout=10.0):
        ks = {kinds} if isinstance(kinds, EventKind) else kinds
        return self.book.wait_event(ks, call_id, after_seq, timeout)

    @step("wait_for_incoming")
    def wait_for_incoming(self, *, line: int | None = None, timeout: float = 10.0) -> CallInfo:
        return self.book.wait_incoming(line, timeout)

    @step("wait_for_state")
    def wait_for_state(self, call_id: str, states, *, timeout: float = 10.0) -> CallInfo:
        ss = {states} if isinstance(states, CallState) else set(states)
        return self.book.wait_state(call_id, ss, timeout)

    # ------------------------------------------------------------------------------------------ audio
    @property
    def tone_hz(self) -> float:
        return self._tone_hz

    def play_tone(self, call_id: str, hz: float | None = None) -> None:
        self._enter("play_tone")
        self.book.update_call(call_id, None, extra={"tone_hz": float(hz or self._tone_hz)})

    def stop_tone(self, call_id: str) -> None:
        self._enter("stop_tone")
        self.book.update_call(call_id, None, extra={})

    @step("record")
    @requires_active
    def record(self, call_id: str, duration_s: float) -> Path:
        """A WAV of what the far end sends: its tone unless it is muted, on hold or the call is down."""
        self._enter("record")
        c = self.book.call(call_id)
        peer = self.network.peer(self, call_id)
        hz = 0.0
        if peer is not None and c.state is CallState.CONFIRMED and not c.held:
            pc = peer[0].book.call(peer[1])
            if not pc.muted:
                hz = float(pc.extra.get("tone_hz", peer[0].tone_hz))
        self.ctx.work_dir.mkdir(parents=True, exist_ok=True)
        path = self.ctx.work_dir / f"{self.device_id}-{call_id}-{time.time_ns()}.wav"
        n = int(8000 * duration_s)
        samples = array.array("h", (int(8000 * math.sin(2 * math.pi * hz * i / 8000)) for i in range(n)))
        if sys.byteorder != "little":
            samples.byteswap()
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(samples.tobytes())
        return path

    # ------------------------------------------------------------------------------------------ MWI
    def mwi(self, line: int = 0) -> MwiState:
        self.require("message_waiting")
        self._enter("mwi")
        return self.book.mwi(line) or MwiState(line=line, waiting=False)

    def set_mwi(self, waiting: bool, *, line: int = 0, new: int = 1) -> None:
        """Script a NOTIFY message-summary arriving at the device."""
        self.book.put_mwi(MwiState(line=line, waiting=waiting, new=new if waiting else 0, t=time.time()))

    def wait_for_mwi(self, waiting: bool, *, line: int = 0, timeout: float = 10.0) -> MwiState:
        self.require("message_waiting")
        return self.book.wait(lambda: (s := self.book.mwi(line)) is not None and s.waiting == waiting and s,
                              f"message-waiting {'on' if waiting else 'off'}", timeout)

    # ------------------------------------------------------------------------------------------ forwarding
    def set_forwarding(self, rule: ForwardingRule) -> ForwardingRule:
        self.require("local_call_forwarding")
        self._enter("set_forwarding")
        self._forwarding[(rule.line, rule.kind)] = rule
        return rule

    def clear_forwarding(self, kind: ForwardingKind | None = None, *, line: int = 0) -> None:
        self.require("local_call_forwarding")
        for key in [k for k in self._forwarding if k[0] == line and (kind is None or k[1] == kind)]:
            del self._forwarding[key]

    def forwarding(self, line: int = 0) -> tuple[ForwardingRule, ...]:
        return tuple(r for (ln, _), r in self._forwarding.items() if ln == line)

    # ------------------------------------------------------------------------------------------ sign-in
    def sign_in_status(self) -> SignInStatus:
        return self._sign_in

    def start_sign_in(self) -> SignInStatus:
        self.require("sign_in_out.local")
        self._enter("start_sign_in")
        self._sign_in = SignInStatus(SignInState.PAIRING, pairing_code="FAKE12345",
                                     auth_url="https://login.example.invalid/devicelogin")
        return self._sign_in

    def complete_sign_in(self) -> SignInStatus:
        """Script the user finishing the web sign-in."""
        line = self.ctx.lines[0] if self.ctx.lines else None
        self._sign_in = SignInStatus(SignInState.SIGNED_IN, user=line.username if line else None,
                                     number=line.number if line else None)
        return self._sign_in

    def sign_out(self) -> SignInStatus:
        self._enter("sign_out")
        self._sign_in = SignInStatus(SignInState.SIGNED_OUT)
        return self._sign_in

    # ------------------------------------------------------------------------------------------ provisioning
    def factory_reset(self) -> ProvisioningInfo:
        self._enter("factory_reset")
        self._prov = ProvisioningInfo(url=None, status="factory_default")
        return self._prov

    def provision(self, url: str | None = None) -> ProvisioningInfo:
        self._enter("provision")
        self._prov = ProvisioningInfo(url=url or "http://fake/provisioning", status="applied", config_version="1")
        return self._prov

    def provisioning(self) -> ProvisioningInfo:
        return self._prov

    # ------------------------------------------------------------------------------------------ power/console
    def power_on(self) -> PowerState:
        self._power = PowerState.ON
        return self._power

    def power_off(self) -> PowerState:
        self._power = PowerState.OFF
        return self._power

    def power_cycle(self) -> PowerState:
        self._enter("power_cycle")
        return self.power_on()

    def power_state(self) -> PowerState:
        return self._power

    def run(self, command: str, *, timeout: float = 10.0) -> ConsoleResult:
        self._enter("run")
        return ConsoleResult(command=command, output=f"fake: {command}", exit_status=0)

    def read_log(self, max_lines: int = 200) -> str:
        return "\n".join(self.log[-max_lines:])
