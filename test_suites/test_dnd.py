"""Do not disturb with the feature codes *30* and *31*.

Seed, "Do not disturb": SIP device users can set Teams DND with ``*30*`` and reset it with ``*31*``, which also
clears any presence the user set.

The device dials ``*30*``: the gateway confirms with a final response the device observes (``603 DND On`` with a
``Warning`` naming ``SGW-FEATURE-DND-ON``), and the user's presence reads back as ``dnd`` through the control API.
While DND, a PSTN call to the user does not ring the device: the caller gets ``486`` (no voicemail service in the
lab) and the gateway's trace holds no INVITE towards the device. ``*31*`` puts the presence back to
``available`` and the next call rings and is answered. A device that is signed out is refused (``403``).
"""

from __future__ import annotations

import pytest

from harness.protocols import CallControl
from test_suites._feature_helpers import (
    ENDED,
    gateway_call,
    hang_up_all,
    header,
    receive_from_party,
    responses,
    wait_until,
)


def _feature_code(device, code: str, t: float):
    """Dial a feature code and return the device's call once the gateway's final response ended it."""
    calls = device[CallControl]
    call = calls.dial(code)
    return calls.wait_for_state(call.id, ENDED, timeout=t)


def _warning(call) -> str:
    return f"{call.status_code} {call.reason}"


def _call_while_dnd(pstn, control, device, t: float, evidence) -> dict:
    """A PSTN call to the DND user, once it was answered (by voicemail) or ended."""
    call = pstn.call(device.number)
    seen: list[dict] = []
    done = wait_until(lambda: (c := pstn.refresh(call)) and (seen.append(c) or c["state"] in ("confirmed",
                                                                                             "disconnected")) and c,
                      timeout=t, what=lambda: f"the call to the DND user to be answered or end (last: {seen[-1:]})")
    evidence.add_call(done)
    return done


@pytest.mark.feature("dnd")
def test_star30_sets_dnd_and_star31_clears_it(device, pstn, lab, evidence, sipgw_settings):
    """*30*: confirmed, presence dnd, calls do not ring the device (busy). *31*: presence available, calls ring."""
    t = sipgw_settings.deadline(5)
    control = lab.control
    user = device.lines[0].username
    control.update_user(user, presence="away")  # a user-configured presence, which *31* must clear as well

    on = _feature_code(device, "*30*", t)
    evidence.add_call(on)
    assert on.status_code == 603, f"{device.id}: *30* ended with {_warning(on)}, expected 603 DND On"
    final = responses(control.trace(call_id=on.sip_call_id), 603)
    assert final and "SGW-FEATURE-DND-ON" in (header(final[0]["message"], "Warning") or ""), (
        f"the gateway's answer to *30* carries no SGW-FEATURE-DND-ON warning: {final}")
    assert control.user(user)["presence"] == "dnd", f"{user}'s presence after *30*: {control.user(user)['presence']}"

    # While DND the device never rings: with voicemail (when the lab has a voicemail service) the call goes
    # there; without, the caller gets 486.
    had_voicemail = control.user(user)["voicemail"]
    if had_voicemail:
        to_vm = _call_while_dnd(pstn, control, device, t, evidence)
        if to_vm["state"] == "confirmed":
            rec = gateway_call(control, to_vm["sip_call_id"], t)
            assert "voicemail" in (rec.get("answered_by") or ""), (
                f"a call to the DND user was answered by {rec.get('answered_by')}, not voicemail")
            pstn.hangup(to_vm)
        else:
            assert to_vm["status_code"] == 486, f"a call to the DND user ended with {to_vm['status_code']}"
    control.update_user(user, voicemail=False)
    try:
        busy = _call_while_dnd(pstn, control, device, t, evidence)
        assert busy["state"] == "disconnected" and busy["status_code"] == 486, (
            f"the caller of a DND user without voicemail got {busy['state']} {busy['status_code']}, expected 486")
        # Refused before the media node read its Call-ID: the gateway's record of the newest call to the number.
        rec = wait_until(lambda: next((r for r in reversed(control.calls(ended=True))
                                       if device.number.lstrip("+") in r["callee"]), None),
                         timeout=t, what=f"the gateway's record of the call to {device.number}")
        assert not rec["b_call_ids"], f"the gateway forked the call to a DND user: legs {rec['b_call_ids']}"
        evidence.add_call(rec["a_call_id"])
        rejected = responses(control.trace(call=rec["id"]), 486)
        assert rejected and "SGW-ROUTE-DND" in (header(rejected[0]["message"], "Warning") or ""), rejected
    finally:
        control.update_user(user, voicemail=had_voicemail)
    assert not any(c.direction.value == "in" and c.started and c.started >= on.ended
                   for c in device[CallControl].calls()), f"{device.id} rang although its user is in DND"

    off = _feature_code(device, "*31*", t)
    evidence.add_call(off)
    assert off.status_code == 603, f"{device.id}: *31* ended with {_warning(off)}, expected 603 DND Off"
    assert control.user(user)["presence"] == "available", "*31* did not clear DND and the user-set presence"

    incoming, origin = receive_from_party(device, pstn, t, evidence=evidence)
    device[CallControl].hangup(incoming.id)
    pstn.wait_state(origin, "disconnected", timeout=t)


@pytest.mark.feature("dnd")
def test_feature_code_refused_when_signed_out(device, lab, evidence, sipgw_settings):
    """A signed-out device dialling *30* gets 403 SGW-FEATURE-SIGNED-OUT and the presence stays as it was."""
    t = sipgw_settings.deadline(5)
    control = lab.control
    usernames = {acc.username for acc in device.lines}
    ua = device.identity.user_agent if device.identity is not None else None
    # The device's own record: its user's, and (other phones of the user may have registered) its User-Agent.
    mine = [d for d in control.devices() if d.get("username") in usernames and d.get("registered")]
    mine = [d for d in mine if ua is None or d.get("user_agent") == ua] or mine
    assert mine, f"the gateway has no device record for {device.id} ({sorted(usernames)})"
    record = mine[0]
    user = record["username"]
    before = control.user(user)["presence"]
    line = next(acc.index for acc in device.lines if acc.username == user)
    control.update_device(record["key"], pair_state="unpaired")
    try:
        calls = device[CallControl]
        call = calls.dial("*30*", line=line)
        refused = calls.wait_for_state(call.id, ENDED, timeout=t)
        evidence.add_call(refused)
        assert refused.status_code == 403, f"*30* from a signed-out device ended with {_warning(refused)}"
        final = responses(control.trace(call_id=refused.sip_call_id), 403)
        assert final and "SGW-FEATURE-SIGNED-OUT" in (header(final[-1]["message"], "Warning") or "")
        assert control.user(user)["presence"] == before, "a refused feature code changed the presence"
    finally:
        control.update_device(record["key"], pair_state=record["pair_state"])
        hang_up_all(device)
