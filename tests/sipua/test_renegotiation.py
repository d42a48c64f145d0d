"""A hold, resume, re-INVITE or UPDATE asked for while the call's offer/answer exchange is still in progress waits
for it (RFC 3261 §14.1) instead of failing with pjsua's PJ_EINVALIDOP."""

from __future__ import annotations

import pjsua2 as pj
import pytest

from sipua import protocol as p
from sipua.agent import PJ_EINVALIDOP, CallRecord, CommandFailure, Pending, renegotiate
from sipua.errors import EventTimeout, InvalidArgument
from sipua.protocol import CallState, ErrorCode
from tests.sipua.sipua_helpers import connect

pytestmark = pytest.mark.timeout(60)


def _error(status: int) -> pj.Error:
    exc = pj.Error()
    exc.status, exc.title, exc.reason = status, "pjsua_call_reinvite2()", "Invalid operation"
    return exc


class _Send:
    """Refuses as pjsua does ``busy`` times, then sends."""

    def __init__(self, busy: int, status: int = PJ_EINVALIDOP) -> None:
        self.busy, self.status, self.calls = busy, status, 0

    def __call__(self) -> dict:
        self.calls += 1
        if self.calls <= self.busy:
            raise _error(self.status)
        return {"call": 1}


def _record(state: CallState = CallState.CONFIRMED) -> CallRecord:
    return CallRecord(handle=1, account="a", role="caller", call=object(), state=state)  # type: ignore[arg-type]


def test_sent_at_once_when_nothing_is_in_progress() -> None:
    send = _Send(0)
    assert renegotiate(_record(), "hold", send) == {"call": 1} and send.calls == 1


def test_waits_while_an_exchange_is_in_progress_then_sends() -> None:
    send = _Send(3)
    pending = renegotiate(_record(), "unhold", send)
    assert isinstance(pending, Pending) and "unhold" in pending.what
    assert pending.poll() is None and pending.poll() is None  # still refused: keep waiting
    assert pending.poll() == {"call": 1} and send.calls == 4


def test_other_errors_are_not_waited_for() -> None:
    with pytest.raises(pj.Error):
        renegotiate(_record(), "hold", _Send(1, status=171140))  # PJSIP_ESESSIONSTATE
    rec, send = _record(), _Send(1)
    pending = renegotiate(rec, "re-INVITE", send)
    send.busy, send.status = 2, 171140
    with pytest.raises(CommandFailure) as failed:
        pending.poll()
    assert failed.value.code is ErrorCode.SIP_STACK and failed.value.pj_status == 171140


def test_a_call_that_ends_while_waiting_fails_the_command() -> None:
    rec = _record()
    pending = renegotiate(rec, "UPDATE", _Send(5))
    rec.state = CallState.DISCONNECTED
    with pytest.raises(CommandFailure) as failed:
        pending.poll()
    assert failed.value.code is ErrorCode.INVALID_STATE and "ended" in failed.value.message


@pytest.fixture
def pair(spawn):
    alice, bob = spawn("alice", user="alice"), spawn("bob", user="bob")
    bob.auto_answer("immediate")
    return alice, bob


def test_hold_and_resume_asked_back_to_back_both_go_out(pair) -> None:
    """The resume reaches pjsua while the hold's re-INVITE is still unanswered: both go out, in order."""
    alice, bob = pair
    ca, cb = connect(alice, bob, user="bob")
    mark_a, mark_b = alice.mark(), bob.mark()
    assert alice.request_all([p.Hold(call=ca), p.Unhold(call=ca)]) == [{"call": ca}, {"call": ca}]
    bob.wait_event("media_state", since=mark_b, call=cb, status="remote_hold")
    resumed = bob.wait_event("media_state", since=mark_b, call=cb, status="active")
    assert alice.wait_event("media_state", since=mark_a, call=ca, status="active").seq > mark_a
    assert resumed.seq > mark_b


def test_request_all_refuses_anything_but_commands_before_sending_any(pair) -> None:
    alice, bob = pair
    ca, _ = connect(alice, bob, user="bob")
    mark = alice.mark()
    with pytest.raises(InvalidArgument, match=r"request_all\(\) needs a sipua.protocol command, got 'hold'"):
        alice.request_all([p.Hold(call=ca), "hold"])  # type: ignore[list-item]
    assert alice.request(p.Ping())["calls"] == 1
    with pytest.raises(EventTimeout):  # the hold was not sent: no re-INVITE, no hold state
        alice.wait_event("media_state", since=mark, call=ca, status="local_hold", timeout=1.0)
