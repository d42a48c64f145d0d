"""Manual steps (terminal, local web page, scripted, non-interactive) and the sip-side/manual drivers, which
observe through the gateway's control API (a fake control client here)."""

from __future__ import annotations

import threading

import httpx
import pytest

from harness import steps
from harness.drivers.physical.manual import (
    Answer,
    ManualDeviceSide,
    ManualStepRefused,
    ManualStepUnavailable,
    NonInteractive,
    Scripted,
    WebPage,
    ask,
)
from harness.drivers.physical.sip_side import ManualDriver, SipSideDriver
from harness.drivers.registry import driver_class
from harness.protocols import CallState, NotApplicable, OperationTimeout
from tests.harness.drivers.recorded import context


def test_a_manual_answer_is_recorded_as_manual_with_who_answered():
    with steps.collecting() as seen:
        a = ask("press OK", device_id="dev", source=Scripted(who="Robin"))
    assert a.who == "Robin"
    (ev,) = [e for e in seen if e.name == "manual.ask"]
    assert ev.result == {"manual": True, "done": True, "who": "Robin", "note": ""} and ev.device_id == "dev"


def test_non_interactive_runs_never_hang():
    with pytest.raises(ManualStepUnavailable, match="no one can answer"):
        ask("press OK", source=NonInteractive(), deadline_s=600)


def test_a_refusal_says_who_and_why():
    src = Scripted([Answer(False, "Robin", "scripted", "no handset in reach")])
    with pytest.raises(ManualStepRefused, match=r"Robin answered that it cannot be done.*no handset in reach"):
        ask("pick up the handset", device_id="dect-1", source=src)


def test_web_page_answer_within_the_deadline():
    page = WebPage()
    try:
        result: list[Answer] = []
        t = threading.Thread(target=lambda: result.append(page.ask("Accept the prompt", 10.0)))
        t.start()
        for _ in range(200):  # the page shows the question once ask() is waiting
            if "Accept the prompt" in httpx.get(page.url).text:
                break
        r = httpx.post(page.url, data={"who": "Sam", "done": "1"})
        assert r.status_code in (200, 303)
        t.join(10)
        assert result == [Answer(True, "Sam", "web", "")]
        with pytest.raises(OperationTimeout, match="no answer"):
            page.ask("nobody answers this", 0.2)
    finally:
        page.close()


def test_device_side_never_shows_a_password():
    src = Scripted()
    side = ManualDeviceSide("poly-1", src)
    side.apply_config({"apps.restapi.enabled": "1", "device.auth.localAdminPassword": "hunter22"}, "REST off")
    assert "hunter22" not in src.questions[0] and "apps.restapi.enabled=1" in src.questions[0]


class FakeControl:
    """The gateway control API as the sip-side driver reads it."""

    def __init__(self) -> None:
        self.live: list[dict] = []
        self.ended: list[dict] = []
        self.bindings: dict[str, dict] = {}

    def calls(self, *, ended: bool = False) -> list[dict]:
        return list(self.ended if ended else self.live)

    def registration(self, username: str) -> dict:
        return {"username": username, "contacts": [self.bindings[username]] if username in self.bindings else []}


@pytest.fixture
def sip_side():
    control = FakeControl()
    src = Scripted()
    drv = SipSideDriver(context("Gigaset", "N870 IP PRO", "2.52.0", control=control, manual_source=src))
    drv.activate()
    yield drv, control, src
    drv.deactivate()


def test_sip_side_registration_and_identity_come_from_the_gateway(sip_side):
    drv, control, _ = sip_side
    assert not drv.register(0, timeout=0.3).ok
    control.bindings["blake"] = {"contact": "sip:blake@192.0.2.50:5060", "expires_in": 300,
                                 "user_agent": "Gigaset N870 IP PRO/2.52.0;7C2F80E0D605"}
    reg = drv.register(0, timeout=2)
    assert reg.ok and reg.contact == "sip:blake@192.0.2.50:5060"
    ident = drv.identity()
    assert (ident.vendor, ident.firmware, ident.source) == ("Gigaset", "2.52.0", "sip-user-agent")


def test_sip_side_sees_an_incoming_call_and_a_person_answers(sip_side):
    drv, control, src = sip_side
    control.live.append({"id": "c1", "caller": "sip:+12065550100@sipgw.lab", "callee": "+14255550111",
                         "state": "early", "a_call_id": "abc@gw"})
    inc = drv.wait_for_incoming(timeout=3)
    assert inc.state is CallState.INCOMING and inc.remote == "+12065550100" and inc.sip_call_id == "abc@gw"
    control.live[0]["state"] = "confirmed"
    assert drv.answer(inc.id).state is CallState.CONFIRMED
    assert src.questions == ["Answer the call ringing on gigaset-1"]
    control.ended.append({**control.live.pop(), "state": "ended", "end_reason": "BYE from the caller"})
    assert drv.wait_for_state(inc.id, CallState.DISCONNECTED, timeout=3).reason == "BYE from the caller"


def test_sip_side_without_a_control_api_is_not_applicable():
    drv = SipSideDriver(context("Gigaset", "N870 IP PRO", "2.52.0"))
    with pytest.raises(NotApplicable, match="control API"):
        drv.activate()


def test_manual_driver_registered():
    assert driver_class("manual") is ManualDriver and driver_class("sip-side") is SipSideDriver
    assert not ManualDriver(context("Gigaset", "N870 IP PRO", "2.52.0", auto_answer=True)).auto_answer


def test_sip_side_reads_hold_by_the_far_end_from_the_reinvite_the_device_accepted():
    from harness.protocols import MediaDirection
    from tests.harness.drivers.test_audiocodes_driver import FakeTrace

    class Control(FakeControl, FakeTrace):
        def __init__(self) -> None:
            FakeControl.__init__(self)
            FakeTrace.__init__(self)

    control = Control()
    drv = SipSideDriver(context("Gigaset", "N870 IP PRO", "2.52.0", control=control, manual_source=Scripted()))
    drv.activate()
    try:
        control.live.append({"id": "c1", "caller": "+14255550111", "callee": "+12065550100", "state": "confirmed",
                             "a_call_id": "leg-1", "b_call_ids": ["b-1"]})
        out = drv.book.wait_for(lambda: next(iter(drv.calls()), None), "the call", 3)
        assert out.media_direction is MediaDirection.SENDRECV and not out.remote_hold
        control.reinvite(2, "sendonly")
        control.answer(2, 200)
        held = drv.wait_for_media(out.id, MediaDirection.RECVONLY, timeout=3)
        assert held.remote_hold
        control.reinvite(3, "sendrecv")
        control.answer(3, 200)
        assert not drv.wait_for_media(out.id, MediaDirection.SENDRECV, timeout=3).remote_hold
    finally:
        drv.deactivate()
