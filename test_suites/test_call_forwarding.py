"""Local call forwarding.

Seed, "Local call forwarding": SIP device users can forward calls (always, on timeout, when busy) from the
device; the user's calling policy must have AllowCallRedirect enabled.

Two ways a rule is set, both exercised: on the device itself (its own forwarding, which answers the INVITE
with ``302`` and a Contact naming the target), and with the gateway's feature codes dialled from the device
(``*33*<number>`` always, ``*34*<number>*<seconds>`` on no answer, ``*35*<number>`` simultaneous ring,
``*32*`` reset). The gateway follows a rule only while AllowCallRedirect is enabled; otherwise the call is not
redirected and the reason (``SGW-POLICY-CALL-REDIRECT``) is in the SIP trace. Targets are a PSTN party, a
Teams user and another SIP device. The call must end where the rule says, with audio both ways; the no-answer
timeout is honoured within ``TIMEOUT_TOLERANCE_S``.

Every verdict comes from what was observed: final responses and call states read back, the gateway's trace,
the rules read back from the gateway, tones detected at each end.
"""

from __future__ import annotations

import pytest

from harness.protocols import CallControl, CallState, Forwarding, ForwardingKind, ForwardingRule, MediaDirection
from test_suites._feature_helpers import drain_stale

CONFIRMED = CallState.CONFIRMED
ENDED = CallState.DISCONNECTED
#: How far from the rule's seconds the gateway may move the call (README: forwarding on no answer).
TIMEOUT_TOLERANCE_S = 1.0
DEVICE_TIMEOUT_S = 2
GATEWAY_TIMEOUT_S = 5
FEATURE = "local_call_forwarding"


def _eligible(sipgw_inventory, sipgw_settings) -> list[str]:
    """Ids of the devices of this run the feature applies to, in inventory order."""
    from device_profiles.capabilities import applicability

    chosen = set(sipgw_settings.devices)
    return [spec.id for spec in sipgw_inventory.devices
            if (not chosen or spec.id in chosen) and spec.verdict.acceptable and applicability(spec.profile, FEATURE)]


@pytest.fixture
def representative(device, sipgw_inventory, sipgw_settings) -> bool:
    """Is this the run's representative device for the gateway-side timing checks (the first eligible one)?"""
    ids = _eligible(sipgw_inventory, sipgw_settings)
    return bool(ids) and ids[0] == device.id


@pytest.fixture
def target_kind(device, sipgw_inventory, sipgw_settings) -> str:
    """The target kind for this device: PSTN and Teams alternate over the run's devices, so every kind is covered
    while each device runs the test once."""
    ids = _eligible(sipgw_inventory, sipgw_settings)
    return ("pstn", "teams")[ids.index(device.id) % 2 if device.id in ids else 0]


@pytest.fixture(autouse=True)
def _no_stale_calls(device):
    drain_stale(device)


@pytest.fixture
def rules(lab, device):
    """The device user's gateway forwarding rules, empty before and after the test."""
    features = lab.control.features
    username = device.lines[0].username
    features.clear_forwarding(username)
    yield username
    features.clear_forwarding(username)


@pytest.fixture
def local_rules(device):
    """The device's own forwarding rules, cleared after the test."""
    fwd = device[Forwarding]
    yield fwd
    fwd.clear_forwarding()


def dial_code(device, code: str, sipgw_settings):
    """The device dials a feature code; the gateway confirms it with a final response (no dialog)."""
    calls = device[CallControl]
    out = calls.dial(code)
    return calls.wait_for_state(out.id, ENDED, timeout=sipgw_settings.deadline(5))


def _redirected_at(device, timeout: float) -> None:
    """The device saw the INVITE and ended it itself (its 302): observed, and taken off its list of new calls."""
    calls = device[CallControl]
    seen = calls.wait_for_incoming(timeout=timeout)
    seen = calls.wait_for_state(seen.id, ENDED, timeout=timeout)
    assert seen.status_code in (None, 0) or 300 <= seen.status_code < 400, (
        f"{device.id} ended the call with {seen.status_code} {seen.reason}, not a redirect")


def _warnings(lab, sip_call_id: str | None) -> str:
    entries = lab.control.trace(call_id=sip_call_id) if sip_call_id else []
    return "\n".join(line for e in entries for line in e["message"].splitlines() if line.startswith("Warning:"))


# --- the device's own forwarding (a 302 from the device) ------------------------------------------------------------
@pytest.mark.feature("local_call_forwarding")
def test_device_forwards_always_and_the_gateway_follows(device, other_device, local_rules, target_kind, pstn, teams,
                                                        two_way_audio, lab, evidence, sipgw_settings):
    """The device forwards every call (302); the policy allows redirect: another device's call ends at the
    target, which answers; audio both ways."""
    t = sipgw_settings.deadline(5)
    target = pstn if target_kind == "pstn" else teams
    evidence.note(f"forwarding target: {target_kind} {target.number}")
    local_rules.set_forwarding(ForwardingRule(ForwardingKind.ALWAYS, target.number))
    caller = other_device[CallControl]
    drain_stale(other_device)
    out = caller.dial(device.number)
    far = target.wait_incoming(state="confirmed", timeout=t)
    out = caller.wait_for_state(out.id, CONFIRMED, timeout=t)
    evidence.add_call(out)
    evidence.add_call(far)
    assert "SGW-FORWARDED" in _warnings(lab, out.sip_call_id), "the caller was not told the call was forwarded"
    _redirected_at(device, t)

    caller.wait_for_media(out.id, MediaDirection.SENDRECV, timeout=t)  # the forwarded call's media is up
    audio = two_way_audio.with_party(other_device, out.id, target, far)
    assert audio.passed, audio.reason
    caller.hangup(out.id)


@pytest.mark.feature("local_call_forwarding")
def test_device_redirect_refused_when_call_redirect_is_disabled(device, other_device, local_rules, pstn, lab,
                                                                evidence, sipgw_settings):
    """AllowCallRedirect disabled: the device's 302 is not followed; the caller gets 480 and the trace says why;
    the target never rings."""
    t = sipgw_settings.deadline(5)
    lab.control.update_user(device.lines[0].username, allow_call_redirect=False)  # the per-test reset restores it
    local_rules.set_forwarding(ForwardingRule(ForwardingKind.ALWAYS, pstn.number))
    caller = other_device[CallControl]
    drain_stale(other_device)
    out = caller.dial(device.number)
    out = caller.wait_for_state(out.id, ENDED, timeout=t)
    evidence.add_call(out)
    assert out.status_code == 480, f"the caller's call ended with {out.status_code} {out.reason}, expected 480"
    warnings = _warnings(lab, out.sip_call_id)
    assert "SGW-POLICY-CALL-REDIRECT" in warnings and "AllowCallRedirect" in warnings, warnings
    assert not pstn.media.calls(pstn.identity), "the forwarding target rang although redirect is disabled"
    _redirected_at(device, t)


@pytest.mark.feature("local_call_forwarding")
def test_device_forwards_on_timeout_to_another_device(device, other_device, local_rules, pstn, two_way_audio,
                                                      evidence, sipgw_settings):
    """The device rings for its timeout, then redirects: a PSTN caller ends up at another device, which answers;
    the device rang for the timeout (within the tolerance); audio both ways."""
    t = sipgw_settings.deadline(DEVICE_TIMEOUT_S + 5)
    local_rules.set_forwarding(ForwardingRule(ForwardingKind.TIMEOUT, other_device.number,
                                              timeout_s=DEVICE_TIMEOUT_S))
    drain_stale(other_device)
    origin = pstn.call(device.number)
    rang = device[CallControl].wait_for_incoming(timeout=t)
    target = other_device[CallControl]
    incoming = target.wait_for_incoming(timeout=t)
    waited = (incoming.started or 0) - (rang.started or 0)
    evidence.note(f"forwarded after {waited:.2f} s of ringing (rule {DEVICE_TIMEOUT_S} s)")
    assert abs(waited - DEVICE_TIMEOUT_S) <= TIMEOUT_TOLERANCE_S, (
        f"forwarded after {waited:.2f} s, rule says {DEVICE_TIMEOUT_S} s (tolerance {TIMEOUT_TOLERANCE_S} s)")
    target.answer(incoming.id)
    incoming = target.wait_for_state(incoming.id, CONFIRMED, timeout=t)
    far = pstn.wait_state(origin, "confirmed", timeout=t)
    evidence.add_call(incoming)

    target.wait_for_media(incoming.id, MediaDirection.SENDRECV, timeout=t)
    audio = two_way_audio.with_party(other_device, incoming.id, pstn, far)
    assert audio.passed, audio.reason
    target.hangup(incoming.id)


# --- the gateway's feature codes ------------------------------------------------------------------------------------
@pytest.mark.feature("local_call_forwarding")
def test_star33_forwards_always_to_another_device_and_star32_resets(device, other_device, rules, teams, lab,
                                                                    two_way_audio, evidence, representative,
                                                                    sipgw_settings):
    """*33*<number> sets forward-always (confirmed by the gateway, read back); on the representative device a
    Teams user's call then rings the other device, which answers, audio both ways; *32* clears every rule."""
    t = sipgw_settings.deadline(5)
    done = dial_code(device, f"*33*{other_device.number}", sipgw_settings)
    assert done.status_code == 603, f"*33* answered {done.status_code} {done.reason}, expected 603 Forwarding Set"
    read = lab.control.features.forwarding(rules)["rules"]
    assert read == [{"kind": "always", "target": other_device.number}], read
    if not representative:
        evidence.note("the forwarded call itself is placed on the run's representative device")
        reset = dial_code(device, "*32*", sipgw_settings)
        assert reset.status_code == 603, f"*32* answered {reset.status_code} {reset.reason}"
        assert lab.control.features.forwarding(rules)["rules"] == []
        return

    target = other_device[CallControl]
    drain_stale(other_device)
    origin = teams.call(device.number)
    incoming = target.wait_for_incoming(timeout=t)
    target.answer(incoming.id)
    incoming = target.wait_for_state(incoming.id, CONFIRMED, timeout=t)
    far = teams.wait_state(origin, "confirmed", timeout=t)
    evidence.add_call(incoming)
    target.wait_for_media(incoming.id, MediaDirection.SENDRECV, timeout=t)
    audio = two_way_audio.with_party(other_device, incoming.id, teams, far)
    assert audio.passed, audio.reason
    target.hangup(incoming.id)

    reset = dial_code(device, "*32*", sipgw_settings)
    assert reset.status_code == 603, f"*32* answered {reset.status_code} {reset.reason}"
    assert lab.control.features.forwarding(rules)["rules"] == []


@pytest.mark.feature("local_call_forwarding")
def test_star34_forwards_on_no_answer_to_pstn_within_the_tolerance(device, rules, pstn, teams, lab, evidence,
                                                                   representative, sipgw_settings):
    """*34*<number>*<seconds>: the gateway confirms the rule and reads it back. On the run's representative device
    (the no-answer timer is the gateway's, the same for every device) the device then rings unanswered; after the
    seconds the call moves to the PSTN number (within the tolerance), the device stops ringing, and the caller is
    connected to the PSTN party."""
    t = sipgw_settings.deadline(GATEWAY_TIMEOUT_S + 5)
    done = dial_code(device, f"*34*{pstn.number}*{GATEWAY_TIMEOUT_S}", sipgw_settings)
    assert done.status_code == 603, f"*34* answered {done.status_code} {done.reason}"
    read = lab.control.features.forwarding(rules)["rules"]
    assert read == [{"kind": "no_answer", "target": pstn.number, "seconds": GATEWAY_TIMEOUT_S}], read
    if not representative:
        evidence.note("the no-answer timing is checked on the run's representative device")
        return
    calls = device[CallControl]
    origin = teams.call(device.number)
    rang = calls.wait_for_incoming(timeout=t)
    far = pstn.wait_incoming(state="confirmed", timeout=t)
    waited = far["started"] - (rang.started or 0)
    evidence.note(f"forwarded after {waited:.2f} s (rule {GATEWAY_TIMEOUT_S} s)")
    assert abs(waited - GATEWAY_TIMEOUT_S) <= TIMEOUT_TOLERANCE_S, (
        f"forwarded after {waited:.2f} s, rule says {GATEWAY_TIMEOUT_S} s (tolerance {TIMEOUT_TOLERANCE_S} s)")
    calls.wait_for_state(rang.id, ENDED, timeout=t)
    connected = teams.wait_state(origin, "confirmed", timeout=t)
    evidence.add_call(connected)
    evidence.add_call(far)
    pstn.hangup(far)


@pytest.mark.feature("local_call_forwarding")
def test_star35_simultaneous_ring_teams_user_answers(device, other_device, rules, teams, two_way_audio, evidence,
                                                     lab, representative, sipgw_settings):
    """*35*<Teams user's number> is confirmed and read back; on the representative device another device's call
    then rings the device and the Teams user together; the Teams user answers, the device stops ringing; audio
    both ways."""
    t = sipgw_settings.deadline(5)
    done = dial_code(device, f"*35*{teams.number}", sipgw_settings)
    assert done.status_code == 603, f"*35* answered {done.status_code} {done.reason}"
    read = lab.control.features.forwarding(rules)["rules"]
    assert read == [{"kind": "simultaneous", "target": teams.number}], read
    if not representative:
        evidence.note("the simultaneous ring itself is checked on the run's representative device")
        return
    teams.configure("auto", answer_delay_ms=500)  # so that the device is seen ringing first
    caller, calls = other_device[CallControl], device[CallControl]
    drain_stale(other_device)
    out = caller.dial(device.number)
    rang = calls.wait_for_incoming(timeout=t)
    far = teams.wait_incoming(state="confirmed", timeout=t)
    out = caller.wait_for_state(out.id, CONFIRMED, timeout=t)
    calls.wait_for_state(rang.id, ENDED, timeout=t)
    evidence.add_call(out)

    caller.wait_for_media(out.id, MediaDirection.SENDRECV, timeout=t)
    audio = two_way_audio.with_party(other_device, out.id, teams, far)
    assert audio.passed, audio.reason
    caller.hangup(out.id)


@pytest.mark.feature("local_call_forwarding")
def test_feature_code_refused_when_call_redirect_is_disabled(device, rules, pstn, lab, sipgw_settings):
    """AllowCallRedirect disabled: *33* is refused (403, with the reason) and no rule is stored."""
    lab.control.update_user(rules, allow_call_redirect=False)
    done = dial_code(device, f"*33*{pstn.number}", sipgw_settings)
    assert done.status_code == 403, f"*33* answered {done.status_code} {done.reason}, expected 403"
    assert "SGW-POLICY-CALL-REDIRECT" in _warnings(lab, done.sip_call_id)
    assert lab.control.features.forwarding(rules)["rules"] == []


@pytest.mark.feature("local_call_forwarding")
def test_forwarding_loop_ends_at_the_second_user(device, other_device, rules, teams, lab, evidence, sipgw_settings):
    """A forwards always to B and B to A: a Teams user's call to A rings B (the rule closing the loop is ignored)
    and never comes back to A."""
    t = sipgw_settings.deadline(5)
    other = other_device.lines[0].username
    features = lab.control.features
    done = dial_code(device, f"*33*{other_device.number}", sipgw_settings)
    assert done.status_code == 603, f"*33* answered {done.status_code} {done.reason}"
    features.set_forwarding(other, "always", device.number)
    try:
        target = other_device[CallControl]
        drain_stale(other_device)
        origin = teams.call(device.number)
        incoming = target.wait_for_incoming(timeout=t)
        target.answer(incoming.id)
        target.wait_for_state(incoming.id, CONFIRMED, timeout=t)
        teams.wait_state(origin, "confirmed", timeout=t)
        assert not [c for c in device[CallControl].calls() if c.direction.value == "incoming"], \
            f"{device.id} rang although the loop should stop at {other_device.id}"
        target.hangup(incoming.id)
    finally:
        features.clear_forwarding(other)
