"""Make calls and receive calls.

Seed, "Make calls": SIP device users can make calls to the PSTN, to other SIP devices, and to Teams and Skype for
Business users. "Receive calls": SIP device users can receive a call from the PSTN, from Teams or Skype for
Business users who have SIP devices, and from Teams and Skype for Business client applications.

Every device of the inventory registers (its firmware verdict is checked first, by the plugin), calls another
device and a PSTN party, and receives a call from a Teams user. Audio is verified both ways on every call (each
side's tone detected at the other side), and the call is hung up from one side and seen ending at the other.
Every verdict comes from what was observed: SIP responses, call states read back, tones detected.
"""

from __future__ import annotations

import time

import pytest

from harness.protocols import CallControl, CallState, UnknownCall

CONFIRMED = CallState.CONFIRMED
ENDED = CallState.DISCONNECTED


def _next_live_incoming(calls: CallControl, timeout: float):
    """The next inbound call that is still alive (a call left over from an earlier test may be queued first)."""
    deadline = time.monotonic() + timeout
    while True:
        incoming = calls.wait_for_incoming(timeout=max(0.05, deadline - time.monotonic()))
        try:
            if calls.call(incoming.id).state != ENDED:
                return incoming
        except UnknownCall:  # it ended and was forgotten before this test
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no live inbound call within {timeout:.1f} s (only calls that had already ended)")


def _registered(device, deadline) -> None:
    """Every line of the device holds a registration the gateway accepted (read back, not assumed)."""
    calls = device[CallControl]
    for line in range(len(device.lines)):
        reg = calls.registration(line)
        assert reg.ok, (f"{device.id} line {line + 1}: REGISTER answered {reg.status_code} {reg.reason}"
                        + (f" ({reg.diagnostic})" if reg.diagnostic else ""))


@pytest.mark.feature("receive_calls")
def test_device_registers(device, lab, sipgw_settings):
    """The device registers every line, and the gateway holds a binding with the device's User-Agent."""
    _registered(device, sipgw_settings.deadline)
    if lab.control is not None:
        for acc in device.lines:
            reg = lab.control.wait_registered(acc.username, timeout=sipgw_settings.deadline(5))
            assert reg.get("contacts"), f"{device.id}: the gateway holds no binding for {acc.username}: {reg}"
    assert device.identity is not None, f"{device.id}: no identity was read back from the device"
    if device.spec.firmware:
        assert device.identity.firmware, (f"{device.id}: runs {device.spec.firmware} per the inventory but reported "
                                          "no firmware version")


@pytest.mark.feature("make_calls")
def test_call_another_sip_device(device, other_device, two_way_audio, evidence, sipgw_settings):
    """The device calls another SIP device; it answers; audio flows both ways; the caller hangs up."""
    t = sipgw_settings.deadline(5)
    caller, callee = device[CallControl], other_device[CallControl]
    out = caller.dial(other_device.number)
    incoming = _next_live_incoming(callee, t)
    callee.answer(incoming.id)
    out = caller.wait_for_state(out.id, CONFIRMED, timeout=t)
    incoming = callee.wait_for_state(incoming.id, CONFIRMED, timeout=t)
    evidence.add_call(out)
    evidence.add_call(incoming)

    audio = two_way_audio.between_devices(device, out.id, other_device, incoming.id)
    assert audio.passed, audio.reason

    caller.hangup(out.id)
    ended = callee.wait_for_state(incoming.id, ENDED, timeout=t)
    assert ended.state == ENDED, f"{other_device.id} still sees the call as {ended.state}"


@pytest.mark.feature("make_calls")
def test_call_a_pstn_number(device, pstn, two_way_audio, evidence, sipgw_settings):
    """The device calls a PSTN number; the PSTN party answers; audio flows both ways; the PSTN side hangs up."""
    t = sipgw_settings.deadline(5)
    calls = device[CallControl]
    out = calls.dial(pstn.number)
    far = pstn.wait_incoming(state="confirmed", timeout=t)
    out = calls.wait_for_state(out.id, CONFIRMED, timeout=t)
    evidence.add_call(out)
    evidence.add_call(far)

    audio = two_way_audio.with_party(device, out.id, pstn, far)
    assert audio.passed, audio.reason

    pstn.hangup(far)
    ended = calls.wait_for_state(out.id, ENDED, timeout=t)
    assert ended.state == ENDED


@pytest.mark.feature("receive_calls")
def test_receive_a_call_from_a_teams_user(device, teams, two_way_audio, evidence, sipgw_settings):
    """A Teams user calls the device; the device answers; audio flows both ways; the device hangs up."""
    t = sipgw_settings.deadline(5)
    calls = device[CallControl]
    origin = teams.call(device.number)
    incoming = _next_live_incoming(calls, t)
    calls.answer(incoming.id)
    incoming = calls.wait_for_state(incoming.id, CONFIRMED, timeout=t)
    origin = teams.wait_state(origin, "confirmed", timeout=t)
    evidence.add_call(incoming)
    evidence.add_call(origin)

    audio = two_way_audio.with_party(device, incoming.id, teams, origin)
    assert audio.passed, audio.reason

    calls.hangup(incoming.id)
    gone = teams.wait_state(origin, "disconnected", timeout=t)
    assert gone["state"] == "disconnected"
