"""Multiple simultaneous calls: hold and a second call, call waiting, swap, two-call conference.

Seed, "Multiple simultaneous calls": SIP device users can hold a call, make or take a second one, swap between
them and join them in a conference.

The device's far ends are a PSTN party and a Teams user of the media node, each with its own tone. Hold is
observed on the device and at the far end; audio is judged on the call that is active after each step. The
conference is judged by ear at all three parties: each must hear the other two tones. The gateway holds two
separate two-party calls and no conference bridge (read back through the control API), so the mix is the
device's own: the result says so.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from harness.media import AudioReport, DetectorConfig, ToneDetector, judge_conference, read_wav
from harness.media.wav import write_wav
from harness.protocols import AudioProbe, CallControl
from test_suites._feature_helpers import (
    AFTER_CHANGE_S,
    CONFIRMED,
    LISTEN_S,
    MIN_ANALYSED_S,
    conclusive,
    connect_to_party,
    device_ear,
    gateway_call,
    listen,
    party_ear,
    party_media,
    two_way,
)

HELD_ANSWER = {"recvonly", "inactive"}


def _two_way(device, call_id, party, party_call, evidence, label):
    return two_way([device_ear(device, call_id), party_ear(party, party_call)], evidence, label,
                   settle_s=AFTER_CHANGE_S)


@pytest.mark.feature("multiple_calls")
def test_hold_a_call_make_a_second_and_swap(device, pstn, teams, evidence, sipgw_settings):
    """Call the PSTN, hold it, call a Teams user (audio on the second call), swap back (audio on the first)."""
    t = sipgw_settings.deadline(5)
    calls = device[CallControl]
    first, pstn_call = connect_to_party(device, pstn, t)
    calls.hold(first.id)
    party_media(pstn, pstn_call, HELD_ANSWER, t, "sees the first call held")
    second, teams_call = connect_to_party(device, teams, t)
    for c in (first, pstn_call, second, teams_call):
        evidence.add_call(c)
    assert calls.call(first.id).local_hold, f"{device.id}: the first call left hold when the second was made"
    audio = _two_way(device, second.id, teams, teams_call, evidence, "second_call")
    assert audio.passed, audio.reason

    calls.hold(second.id)  # swap
    party_media(teams, teams_call, HELD_ANSWER, t, "sees the second call held")
    calls.resume(first.id)
    party_media(pstn, pstn_call, {"sendrecv"}, t, "sees the first call resumed")
    audio = _two_way(device, first.id, pstn, pstn_call, evidence, "swapped_back")
    assert audio.passed, audio.reason
    calls.hangup(first.id)
    calls.hangup(second.id)


@pytest.mark.feature("multiple_calls")
def test_call_waiting(device, pstn, teams, evidence, sipgw_settings):
    """In a call with the PSTN, a Teams user calls: the device sees the second call ring, holds the first and
    answers; audio on the second; the first resumes when the second ends."""
    t = sipgw_settings.deadline(5)
    calls = device[CallControl]
    first, pstn_call = connect_to_party(device, pstn, t)
    origin = teams.call(device.number)
    waiting = calls.wait_for_incoming(timeout=t)
    evidence.add_call(first)
    evidence.add_call(waiting)
    assert calls.call(first.id).state is CONFIRMED, f"{device.id}: the first call did not stay up while a second rang"
    calls.hold(first.id)
    calls.answer(waiting.id)
    calls.wait_for_state(waiting.id, CONFIRMED, timeout=t)
    origin = teams.wait_state(origin, "confirmed", timeout=t)
    audio = _two_way(device, waiting.id, teams, origin, evidence, "waiting_call")
    assert audio.passed, audio.reason
    calls.hangup(waiting.id)
    teams.wait_state(origin, "disconnected", timeout=t)
    resumed = calls.resume(first.id)
    assert not resumed.local_hold, f"{device.id}: the first call did not leave hold"
    party_media(pstn, pstn_call, {"sendrecv"}, t, "sees the first call resumed")
    calls.hangup(first.id)


def _device_mix(paths: list[Path], out: Path) -> Path:
    """What the device's user hears in a local conference: the sum of what arrives on both calls."""
    audios = [read_wav(p) for p in paths]
    n = min(len(a.samples) for a in audios)
    mix = np.clip(sum(a.samples[:n] for a in audios), -1.0, 1.0)
    write_wav(out, mix, audios[0].sample_rate)
    return out


@pytest.mark.feature("multiple_calls")
def test_two_call_conference(device, pstn, teams, lab, evidence, sipgw_settings):
    """Two calls joined on the device: the device, the PSTN party and the Teams user each hear the other two."""
    t = sipgw_settings.deadline(5)
    calls, probe = device[CallControl], device[AudioProbe]
    first, pstn_call = connect_to_party(device, pstn, t)
    calls.hold(first.id)
    second, teams_call = connect_to_party(device, teams, t)
    for c in (first, pstn_call, second, teams_call):
        evidence.add_call(c)
    calls.resume(first.id)
    party_media(pstn, pstn_call, {"sendrecv"}, t, "sees the first call resumed")
    calls.conference(first.id, second.id)

    # The gateway's view: two separate two-party calls, no bridge of its own.
    recs = {gateway_call(lab.control, c["sip_call_id"], t)["id"] for c in (pstn_call, teams_call)}
    assert len(recs) == 2, f"the gateway joined the calls itself ({recs}); the conference should be the device's"
    evidence.note(f"{device.id} mixed the conference locally; the gateway carried two separate calls {sorted(recs)}")

    # Every party listens at once; the device hears both calls (its earpiece plays the mix of the two).
    from concurrent.futures import ThreadPoolExecutor

    parties = [party_ear(pstn, pstn_call), party_ear(teams, teams_call)]
    with ThreadPoolExecutor(2) as pool:
        f1 = pool.submit(probe.record, first.id, LISTEN_S + AFTER_CHANGE_S)
        f2 = pool.submit(probe.record, second.id, LISTEN_S + AFTER_CHANGE_S)
        rep = listen(parties, evidence, "conference", settle_s=AFTER_CHANGE_S, tones=[probe.tone_hz])
        heard = [f1.result(), f2.result()]
    tones = {device.id: probe.tone_hz, **{e.name: e.tone_hz for e in parties}}
    with tempfile.TemporaryDirectory(prefix="sipgw-conf-") as tmp:
        mix = _device_mix(heard, Path(tmp) / "device-mix.wav")
        evidence.add_bytes(f"conference-{device.id}-heard", "conference-device-mix.wav", mix.read_bytes())
        detector = ToneDetector(DetectorConfig(settle_s=AFTER_CHANGE_S))
        device_rep: AudioReport = detector.analyse_wav(mix, sorted(tones.values()))
    # Two full-level tones mixed into one G.711 stream make intermodulation products (e.g. 3 x 2300 Hz folding to
    # 1100 Hz at -50 dBFS): the verdict is whether each party hears the other two, not the mix's purity.
    verdict = conclusive(judge_conference({device.id: device_rep, **rep}, tones, min_analysed_s=MIN_ANALYSED_S,
                                          min_stray_s=60.0), evidence, "conference")
    assert verdict.passed, verdict.reason
    calls.hangup(first.id)
    calls.hangup(second.id)
