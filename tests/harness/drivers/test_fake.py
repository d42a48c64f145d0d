"""The fake driver's scripting and fault injection, which plugin and report tests rely on."""

from __future__ import annotations

import pytest

from device_profiles.catalogue import default_catalogue
from harness.drivers.base import DriverContext, LineAccount
from harness.drivers.fake import FakeDriver, FakeNetwork
from harness.protocols import (
    CallState,
    EventKind,
    ForwardingKind,
    ForwardingRule,
    InfrastructureError,
    NotApplicable,
    OperationFailed,
    OperationTimeout,
    SignInState,
    StateError,
    UnknownCall,
)

CAT = default_catalogue()


def make(net, device_id, model, number, firmware, **options) -> FakeDriver:
    p = CAT.find(model)
    acc = LineAccount(0, number, device_id, device_id.replace("-", "."), "pw")
    drv = FakeDriver(DriverContext(device_id=device_id, vendor=p.vendor, model=p.model, firmware=firmware,
                                   profile=p, lines=(acc,), options={"network": net, **options}))
    drv.activate()
    return drv


@pytest.fixture
def pair():
    net = FakeNetwork()
    a = make(net, "desk-a", "T46S", "+14255550121", "66.86.0.15")
    b = make(net, "desk-b", "VVX 450", "+14255550111", "5.9.5.0614")
    a.register()
    b.register()
    return a, b


def test_operations_need_activation():
    p = CAT.find("T46S")
    drv = FakeDriver(DriverContext(device_id="x", vendor=p.vendor, model=p.model, firmware="66.86.0.15",
                                   profile=p, lines=(LineAccount(0, "+1", "x", "x", "pw"),),
                                   options={"network": FakeNetwork()}))
    with pytest.raises(StateError, match="activate"):
        drv.register()


def test_gating_by_user_agent_and_scripted_status():
    net = FakeNetwork()
    old = make(net, "old", "7841", "+14255550105", "11.0.1MPP")
    reg = old.register()
    assert reg.status_code == 403 and "below the minimum" in reg.reason and not reg.ok
    scripted = make(net, "s", "T46S", "+14255550199", "66.86.0.15", register_status=503)
    assert scripted.register().status_code == 503


def test_dial_requires_registration_and_unknown_numbers_get_404(pair):
    a, _ = pair
    net = FakeNetwork()
    lone = make(net, "lone", "T46S", "+14255550100", "66.86.0.15")
    with pytest.raises(StateError, match="not registered"):
        lone.dial("+1")
    c = a.dial("+19999999999")
    assert c.state is CallState.DISCONNECTED and c.status_code == 404


def test_busy_and_auto_answer():
    net = FakeNetwork()
    a = make(net, "a", "T46S", "+14255550121", "66.86.0.15")
    busy = make(net, "busy", "T46S", "+14255550122", "66.86.0.15", answer="busy")
    auto = make(net, "auto", "VVX 450", "+14255550123", "5.9.5.0614", answer="auto")
    for d in (a, busy, auto):
        d.register()
    assert a.dial("+14255550122").status_code == 486
    assert a.dial("+14255550123").state is CallState.CONFIRMED


def test_injected_fault_fires_once(pair):
    a, _ = pair
    a.inject_fault("dial", OperationFailed("no dial tone"))
    with pytest.raises(OperationFailed, match="no dial tone"):
        a.dial("+14255550111")
    assert a.dial("+14255550111").state is CallState.EARLY


def test_killed_device_raises_infrastructure_error_with_its_log(pair):
    a, b = pair
    out = a.dial(b.ctx.lines[0].number)
    broken = []
    a.on_failure = broken.append
    a.kill()
    with pytest.raises(InfrastructureError) as exc:
        a.wait_for_state(out.id, CallState.CONFIRMED, timeout=5)
    assert "killed" in exc.value.log_tail and broken == [exc.value]
    with pytest.raises(InfrastructureError):
        a.hangup(out.id)


def test_waits_have_deadlines_and_unknown_calls_are_named(pair):
    a, _ = pair
    with pytest.raises(OperationTimeout, match=r"no incoming call within 0\.05 s"):
        a.wait_for_incoming(timeout=0.05)
    with pytest.raises(UnknownCall, match="no call 'nope'"):
        a.call("nope")


def test_blind_and_consultative_transfer():
    net = FakeNetwork()
    a = make(net, "a", "T46S", "+14255550121", "66.86.0.15")
    b = make(net, "b", "VVX 450", "+14255550111", "5.9.5.0614")
    c = make(net, "c", "T46S", "+14255550131", "66.86.0.15")
    for d in (a, b, c):
        d.register()
    out = a.dial("+14255550111")
    inc = b.wait_for_incoming(timeout=1)
    b.answer(inc.id)
    b.blind_transfer(inc.id, "+14255550131")
    assert b.call(inc.id).state is CallState.DISCONNECTED
    assert a.call(out.id).state is CallState.DISCONNECTED
    new = c.wait_for_incoming(timeout=1)
    assert new.remote == "+14255550121"
    ev = b.wait_for_event(EventKind.TRANSFER, timeout=1)
    assert ev.detail["referred_to"] == "+14255550131"


def test_conference_mwi_forwarding_and_sign_in(pair):
    a, b = pair
    c1 = a.dial(b.ctx.lines[0].number)
    i1 = b.wait_for_incoming(timeout=1)
    b.answer(i1.id)
    with pytest.raises(OperationFailed, match="cannot conference"):
        a.conference(c1.id, a.dial("+19999999999").id)
    b.set_mwi(True)
    assert b.wait_for_mwi(True, timeout=1).waiting
    rule = a.set_forwarding(ForwardingRule(ForwardingKind.BUSY, "+14255550111"))
    assert a.forwarding() == (rule,)
    a.clear_forwarding()
    assert a.forwarding() == ()
    assert a.start_sign_in().state is SignInState.PAIRING
    assert a.complete_sign_in().number == "+14255550121"


def test_catalogue_exclusions_are_not_applicable():
    net = FakeNetwork()
    ata = make(net, "ata", "MP114-FXS", "+14255550132", "6.60A.367.001")
    ata.register()
    with pytest.raises(NotApplicable, match="no mute"):
        ata.mute("f1")
    with pytest.raises(NotApplicable):
        ata.start_sign_in()
