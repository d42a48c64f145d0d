"""Mute and unmute.

Seed, "Mute/unmute": SIP device users can mute and unmute their microphone during a call.

Mute is local to the device and needs no signalling, so it is judged by audio alone: while muted, the PSTN
party at the far end hears nothing of the device's tone, and the device still hears the party's tone; after
unmute both directions flow again. Any re-INVITE the device sends meanwhile is noted in the evidence (the
gateway's trace), not required.
"""

from __future__ import annotations

import pytest

from harness.media import judge_mute
from harness.protocols import CallControl
from test_suites._feature_helpers import (
    AFTER_CHANGE_S,
    MIN_ANALYSED_S,
    conclusive,
    connect_to_party,
    device_ear,
    last_seq,
    line_for,
    listen,
    party_ear,
    reinvites,
    trace_of,
    two_way,
)


@pytest.mark.feature("mute_unmute")
def test_mute_silences_the_device_only(device, pstn, lab, evidence, sipgw_settings):
    """Muted: the far end hears silence, the device still hears the far end. Unmuted: audio both ways."""
    t = sipgw_settings.deadline(5)
    calls = device[CallControl]
    out, far = connect_to_party(device, pstn, t, line=line_for(device), evidence=evidence)
    mark = last_seq(lab.control)

    muted = calls.mute(out.id)
    assert muted.muted, f"{device.id}: the call does not read back as muted"
    ears = [device_ear(device, out.id), party_ear(pstn, far)]
    dev, party = ears
    rep = listen(ears, evidence, "muted", settle_s=AFTER_CHANGE_S)
    # Judged on the device's tone: a muted stream may still carry the codec's noise floor (G.722 at about
    # -55 dBFS), which is not the device's audio.
    verdict = conclusive(judge_mute(rep[dev.name], rep[party.name], dev.tone_hz, party.tone_hz, muted_name=dev.name,
                                    other_name=party.name, min_analysed_s=MIN_ANALYSED_S, require_silence=False),
                         evidence, "muted")
    assert verdict.passed, verdict.reason
    signalled = [r["sdp_direction"] for r in reinvites(trace_of(lab.control, out.sip_call_id, t), mark)]
    evidence.note(f"re-INVITEs while muted: {signalled or 'none'} (mute needs none)")

    unmuted = calls.unmute(out.id)
    assert not unmuted.muted
    audio = two_way(ears, evidence, "unmuted", settle_s=AFTER_CHANGE_S)
    assert audio.passed, audio.reason
    calls.hangup(out.id)
