"""Devices with no call-control API (DECT systems, ATAs without a line simulator, intercoms):

- ``sip-side``: acts through what SIP allows and observes through the gateway's control API. Calls, their
  states and Call-IDs are read from ``GET /api/v1/calls`` (the B2BUA's view: what the device sent and
  answered), registrations and the User-Agent from ``GET /api/v1/registrations``. Feature codes (``*30*``)
  and numbers are dialled by a person when the device has no way to be told (a manual step); answering is
  the device's auto-answer when the far side asks for it (``Call-Info: answer-after=0`` / ``Alert-Info``,
  driver option ``auto_answer: true``), otherwise a manual step. Hold, mute, DTMF and transfer are manual
  steps whose effect is read back from the gateway where SIP shows it; hold by the far end is read from the SDP
  of the re-INVITE the gateway sent to the device and the device accepted (:class:`RemoteHoldObserver`).
- ``manual``: the same observations, every action done by a person.

Audio is judged at the far end (the media node's recording), never on the device.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from typing import Any

from harness.drivers.base import CallBook, Driver, DriverContext, requires_active, user_part
from harness.drivers.physical.manual import ask
from harness.drivers.registry import register_driver
from harness.protocols import (
    CallControl,
    CallDirection,
    CallEvent,
    CallInfo,
    CallState,
    DeviceIdentity,
    EventKind,
    Identity,
    InfrastructureError,
    MediaDirection,
    NotApplicable,
    RegistrationInfo,
)
from harness.steps import step

_GW_STATES = {"trying": CallState.CALLING, "early": CallState.EARLY, "confirmed": CallState.CONFIRMED,
              "ended": CallState.DISCONNECTED}
_TO = re.compile(r"^(?:To|t)\s*:(.*)$", re.M | re.I)
_CSEQ_INVITE = re.compile(r"^CSeq\s*:\s*(\d+)\s+INVITE\s*$", re.M | re.I)
_SDP_DIRECTION = re.compile(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", re.M)
_HOLD_ADDRESS = re.compile(r"^c=IN IP4 0\.0\.0\.0\s*$", re.M)


class RemoteHoldObserver:
    """Hold by the far end, observed through the gateway: the SDP of the last re-INVITE the gateway sent on a
    device's leg that the device accepted with a 2xx (RFC 3264 §8.4: ``sendonly`` or ``inactive`` offered to the
    device, or the old ``c=0.0.0.0`` form, RFC 3264 §8.4 last paragraph; RFC 3261 §14: a re-INVITE carries the
    dialog's To tag). A re-INVITE refused (491 glare, RFC 3261 §14.1) changes nothing. For devices whose own
    interface does not report being held (analogue ports, devices without an API).

    ``held(call_id)`` reads only the trace entries after the last one it saw for that Call-ID (``after_seq``).
    """

    def __init__(self, control: Any) -> None:
        self.control = control
        self._seen: dict[str, tuple[int, bool, dict[str, bool]]] = {}  # Call-ID -> (last seq, held, pending)

    def held(self, sip_call_id: str) -> bool | None:
        """Whether the far end holds the device on that leg, from the messages seen so far; None before any
        accepted re-INVITE (the device's own view, if any, stands)."""
        last, state, pending = self._seen.get(sip_call_id, (0, None, {}))
        entries = self.control.trace(call_id=sip_call_id, after_seq=last)
        for e in entries:
            last = max(last, int(e["seq"]))
            msg, first = e["message"], e["first_line"]
            cseq = _CSEQ_INVITE.search(msg)
            if cseq is None:
                continue
            if first.startswith("INVITE ") and e["direction"] == "out":
                to = _TO.search(msg)
                hold = _offers_hold(msg)
                if to and ";tag=" in to.group(1).replace(" ", "") and hold is not None:
                    pending[cseq.group(1)] = hold
            elif first.startswith("SIP/2.0 ") and e["direction"] == "in" and cseq.group(1) in pending:
                code = int(first.split()[1])
                if code >= 200:
                    offered = pending.pop(cseq.group(1))
                    if code < 300:
                        state = offered
        self._seen[sip_call_id] = (last, state, pending)
        return state

    def forget(self, sip_call_id: str) -> None:
        self._seen.pop(sip_call_id, None)


def _offers_hold(message: str) -> bool | None:
    _head, sep, body = message.partition("\r\n\r\n")
    if not sep or "v=0" not in body:
        return None  # an offerless re-INVITE (RFC 3261 §14.1): the device makes the offer; says nothing of hold
    body = body.replace("\r\n", "\n")
    m = _SDP_DIRECTION.search(body)
    return (m is not None and m.group(1) in ("sendonly", "inactive")) or bool(_HOLD_ADDRESS.search(body))


@register_driver("sip-side")
class SipSideDriver(Driver, CallControl, Identity):
    manual_only = False
    poll_interval = 0.2
    reports_dtmf_received = False  # digits a device received are not in the B2BUA's call records

    def __init__(self, ctx: DriverContext) -> None:
        super().__init__(ctx)
        self.control = ctx.options.get("control")
        self.source = ctx.options.get("manual_source")
        self.auto_answer = bool(ctx.options.get("auto_answer", False)) and not self.manual_only
        self.book = CallBook(ctx.device_id, liveness=self._liveness)
        self._dead: InfrastructureError | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mine = {acc.username for acc in ctx.lines} | {acc.number for acc in ctx.lines}
        self._remote_hold: RemoteHoldObserver | None = None

    # --- lifecycle -----------------------------------------------------------------------------------------
    def activate(self) -> None:
        if self.control is None:
            raise NotApplicable(f"{self.device_id}: the {type(self).__name__} observes through the gateway's control "
                                "API; this lab has none (embedded gateway with control_api, or SIPGW_CONTROL_URL)",
                                device_id=self.device_id)
        super().activate()
        self._thread = threading.Thread(target=self._poll, name=f"sipside-{self.device_id}", daemon=True)
        self._thread.start()

    def deactivate(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        super().deactivate()

    def _liveness(self) -> None:
        if self._dead is not None:
            raise self._dead

    def _poll(self) -> None:
        failures = 0
        while not self._stop.wait(self.poll_interval):
            try:
                records = self.control.calls() + self.control.calls(ended=True)
                failures = 0
            except Exception as exc:
                failures += 1
                if failures >= 5 and self._dead is None:
                    self._dead = InfrastructureError(f"{self.device_id}: the gateway control API stopped answering: "
                                                     f"{exc}", device_id=self.device_id)
                    getattr(self, "failed", lambda exc: exc)(self._dead)
                    self.book.poke()
                continue
            self._sync(records)

    def _sync(self, records: list[dict[str, Any]]) -> None:
        for rec in records:
            caller, callee = user_part(str(rec.get("caller", ""))), user_part(str(rec.get("callee", "")))
            if caller in self._mine:
                direction, remote = CallDirection.OUTGOING, callee
            elif callee in self._mine or user_part(str(rec.get("answered_by") or "")) in self._mine:
                direction, remote = CallDirection.INCOMING, caller
            else:
                continue
            state = _GW_STATES.get(str(rec.get("state")), CallState.CONFIRMED)
            if direction is CallDirection.INCOMING and state in (CallState.CALLING, CallState.EARLY):
                state = CallState.INCOMING
            cid = str(rec["id"])
            held = self._far_end_hold(rec, direction) if state is CallState.CONFIRMED else None
            media = MediaDirection.SENDRECV if state is CallState.CONFIRMED else MediaDirection.NONE
            if held:
                media = MediaDirection.RECVONLY
            info = CallInfo(cid, state, remote, direction, media, sip_call_id=rec.get("a_call_id"),
                            reason=rec.get("end_reason"), remote_hold=bool(held), extra={"gateway_call": rec})
            try:
                old = self.book.call(cid)
            except LookupError:
                old = None
            if old is None:
                self.book.put_call(info, EventKind.INCOMING if direction is CallDirection.INCOMING else EventKind.STATE)
            elif old.state is not info.state:
                self.book.update_call(cid, EventKind.STATE, {"read_back": "gateway calls API"}, state=info.state,
                                      media_direction=info.media_direction, reason=info.reason,
                                      remote_hold=info.remote_hold)
            elif (old.remote_hold, old.media_direction) != (info.remote_hold, info.media_direction):
                self.book.update_call(cid, EventKind.MEDIA, {"read_back": "re-INVITE in the gateway's trace"},
                                      remote_hold=info.remote_hold, media_direction=info.media_direction)

    def _far_end_hold(self, rec: dict[str, Any], direction: CallDirection) -> bool | None:
        """Hold by the far end on the device's leg (the A leg of a call it placed, the one B leg of a call it
        answered), from the gateway's trace (:class:`RemoteHoldObserver`); None when that cannot be read."""
        legs = rec.get("b_call_ids") or []
        leg = rec.get("a_call_id") if direction is CallDirection.OUTGOING else (legs[-1] if len(legs) == 1 else None)
        if not leg or not callable(getattr(self.control, "trace", None)):
            return None
        if self._remote_hold is None:
            self._remote_hold = RemoteHoldObserver(self.control)
        try:
            return self._remote_hold.held(str(leg))
        except Exception:  # the trace is an extra source; the call itself was read from the calls API
            return None

    # --- identity and registration -----------------------------------------------------------------------
    def _binding(self, line: int) -> dict[str, Any] | None:
        with contextlib.suppress(Exception):
            reg = self.control.registration(self.line(line).username)
            contacts = reg.get("contacts") or []
            return contacts[0] if contacts else None
        return None

    @requires_active
    @step("sipside.identity")
    def identity(self) -> DeviceIdentity:
        """What the device's REGISTER said (its User-Agent), parsed by the catalogue's rules."""
        from device_profiles.user_agent import parse_user_agent

        b = self._binding(0)
        ua = str((b or {}).get("user_agent") or "")
        parsed = parse_user_agent(ua) if ua else None
        if parsed is None:
            raise NotApplicable(f"{self.device_id}: no User-Agent the catalogue recognises in the gateway's "
                                f"registration ({ua or 'not registered'})", device_id=self.device_id)
        return DeviceIdentity(parsed.vendor, parsed.model, parsed.firmware or "", getattr(parsed, "mac", None), ua,
                              source="sip-user-agent")

    @requires_active
    def register(self, line: int = 0, *, timeout: float = 10.0) -> RegistrationInfo:
        """The device registers by itself: wait until the gateway holds a binding for the line."""
        deadline = time.monotonic() + timeout
        while True:
            b = self._binding(line)
            if b is not None:
                info = RegistrationInfo(line, 200, "OK", int(b.get("expires_in") or 0), b.get("contact"), True,
                                        diagnostic="read back from the gateway's registrar")
                self.book.put_registration(info)
                return info
            if time.monotonic() > deadline:
                info = RegistrationInfo(line, 0, "no binding at the gateway", 0,
                                        diagnostic=f"no registration for {self.line(line).username} within {timeout} s")
                self.book.put_registration(info)
                return info
            self._stop.wait(0.2)

    def unregister(self, line: int = 0, *, timeout: float = 10.0) -> RegistrationInfo:
        self._manual(f"Make {self.device_id} unregister line {line + 1} (sign out or unplug it)")
        return self.register(line, timeout=0)

    def registration(self, line: int = 0) -> RegistrationInfo:
        return self.book.registration(line) or RegistrationInfo(line, 0, "not read yet", 0)

    # --- calls -------------------------------------------------------------------------------------------------
    def _manual(self, question: str) -> None:
        ask(question, device_id=self.device_id, source=self.source)

    @requires_active
    @step("sipside.dial")
    def dial(self, target: str, *, line: int = 0) -> CallInfo:
        self.require("make_calls")
        before = {c.id for c in self.book.calls()}
        self._manual(f"On {self.device_id} (line {line + 1}), dial {target}")
        return self.book.wait_for(lambda: next((c for c in self.book.calls() if c.id not in before and
                                                c.direction is CallDirection.OUTGOING), None),
                                  f"a call from {self.device_id} to {target} at the gateway", 30.0)

    @requires_active
    @step("sipside.answer")
    def answer(self, call_id: str, *, code: int = 200) -> CallInfo:
        if not self.auto_answer:
            self._manual(f"Answer the call ringing on {self.device_id}")
        return self.book.wait_state(call_id, {CallState.CONFIRMED, CallState.DISCONNECTED}, 30.0)

    @requires_active
    def reject(self, call_id: str, *, code: int = 486) -> CallInfo:
        self._manual(f"Reject the call ringing on {self.device_id}")
        return self.book.wait_state(call_id, {CallState.DISCONNECTED}, 30.0)

    @requires_active
    def hangup(self, call_id: str) -> CallInfo:
        self._manual(f"Hang up the call on {self.device_id}")
        return self.book.wait_state(call_id, {CallState.DISCONNECTED}, 30.0)

    def _manual_op(self, feature: str, what: str, call_id: str) -> CallInfo:
        self.require(feature)
        self._manual(f"On {self.device_id}: {what}")
        return self.book.call(call_id)

    def hold(self, call_id: str) -> CallInfo:
        return self._manual_op("hold_resume", "put the call on hold", call_id)

    def resume(self, call_id: str) -> CallInfo:
        return self._manual_op("hold_resume", "resume the held call", call_id)

    def mute(self, call_id: str) -> CallInfo:
        return self._manual_op("mute_unmute", "press mute", call_id)

    def unmute(self, call_id: str) -> CallInfo:
        return self._manual_op("mute_unmute", "press mute again to unmute", call_id)

    def send_dtmf(self, call_id: str, digits: str) -> CallInfo:
        return self._manual_op("dtmf", f"press the keys {digits} during the call", call_id)

    def blind_transfer(self, call_id: str, target: str) -> CallInfo:
        return self._manual_op("call_transfer", f"transfer the call (blind) to {target}", call_id)

    def consultative_transfer(self, call_id: str, consult_call_id: str) -> CallInfo:
        return self._manual_op("call_transfer", "complete the consultative transfer", call_id)

    def conference(self, call_id: str, other_call_id: str) -> tuple[CallInfo, CallInfo]:
        raise NotApplicable("a local conference cannot be observed through the gateway")

    def calls(self) -> tuple[CallInfo, ...]:
        return self.book.calls()

    def call(self, call_id: str) -> CallInfo:
        return self.book.call(call_id)

    def last_seq(self) -> int:
        return self.book.last_seq

    def wait_for_event(self, kinds: set[EventKind] | EventKind | None = None, *, call_id: str | None = None,
                       after_seq: int = 0, timeout: float = 10.0) -> CallEvent:
        return self.book.wait_event({kinds} if isinstance(kinds, EventKind) else kinds, call_id, after_seq, timeout)

    def wait_for_incoming(self, *, line: int | None = None, timeout: float = 10.0) -> CallInfo:
        return self.book.wait_incoming(line, timeout)

    def wait_for_state(self, call_id: str, states: set[CallState] | CallState, *, timeout: float = 10.0) -> CallInfo:
        return self.book.wait_state(call_id, {states} if isinstance(states, CallState) else states, timeout)


@register_driver("manual")
class ManualDriver(SipSideDriver):
    """Every action done by a person; observations from the gateway."""

    manual_only = True
