"""Shared helpers of the feature suites: two-way audio checks on observed recordings.

Every audio verdict comes from recordings analysed with ``harness.media`` (Goertzel tone detection): each side
sends its own tone and the other side must hear it. Figures go into the test's evidence.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.media import DetectorConfig, MediaVerdict, ToneDetector, judge_two_way, read_wav
from harness.protocols import AudioProbe
from test_suites._feature_helpers import MIN_ANALYSED_S, Ear, _wav_seconds, conclusive, device_ear, party_ear

#: Seconds of audio each side records for a two-way check (after the detector's settling time).
LISTEN_S = 0.9
#: Tones of the media node's parties in these suites: at least 100 Hz from every emulated device tone.
PSTN_TONE_HZ = 580.0
TEAMS_TONE_HZ = 2300.0


def distinct_tone(tone: float, *, avoid: list[float], spacing: float = 150.0) -> float:
    """``tone``, or the nearest tone of the emulated plan at least ``spacing`` Hz from every tone in ``avoid``."""
    if all(abs(tone - a) >= spacing for a in avoid):
        return tone
    plan = [700.0 + 200.0 * i for i in range(8)]
    return min((t for t in plan if all(abs(t - a) >= spacing for a in avoid)), key=lambda t: abs(t - tone))


class TwoWayAudio:
    """Judge audio both ways on a call, from what each side recorded."""

    def __init__(self, evidence, deadline):
        self.evidence = evidence
        self.deadline = deadline
        self.detector = ToneDetector(DetectorConfig(settle_s=0.2))

    def _judge(self, a_wav: Path, b_wav: Path, a_tone: float, b_tone: float, a_name: str, b_name: str,
               label: str, ears: list[Ear]) -> MediaVerdict:
        tones = [a_tone, b_tone]
        a_rep = self.detector.analyse_wav(a_wav, tones)
        b_rep = self.detector.analyse_wav(b_wav, tones)
        verdict = judge_two_way(a_rep, b_rep, a_tone, b_tone, a_name=a_name, b_name=b_name,
                                min_analysed_s=MIN_ANALYSED_S)
        return conclusive(verdict, self.evidence, label, ears)

    def between_devices(self, a, a_call: str, b, b_call: str, *, label: str = "two_way") -> MediaVerdict:
        """Both devices send their tone; each records what arrives; each must hear the other's tone."""
        pa, pb = a[AudioProbe], b[AudioProbe]
        a_tone, b_tone = pa.tone_hz, distinct_tone(pb.tone_hz, avoid=[pa.tone_hz])
        pa.play_tone(a_call, a_tone)
        pb.play_tone(b_call, b_tone)
        with ThreadPoolExecutor(2) as pool:
            fa = pool.submit(pa.record, a_call, LISTEN_S)
            fb = pool.submit(pb.record, b_call, LISTEN_S)
            a_wav, b_wav = fa.result(), fb.result()
        self.evidence.add_file(f"{a.id}-heard", a_wav)
        self.evidence.add_file(f"{b.id}-heard", b_wav)
        return self._judge(a_wav, b_wav, a_tone, b_tone, a.id, b.id, label,
                           [device_ear(a, a_call), device_ear(b, b_call)])

    def with_party(self, dev, dev_call: str, party, party_call: dict, *, label: str = "two_way") -> MediaVerdict:
        """The device sends its tone and records; the media node's party sends its tone and records the call."""
        probe = dev[AudioProbe]
        # Where the device's tone starts in the party's recording: its length just before the tone is sent.
        before = party.wait_recording(party_call)
        tone_from = _wav_seconds(before)
        probe.play_tone(dev_call)
        dev_wav = probe.record(dev_call, LISTEN_S)
        wav = party.recording(party_call)
        self.evidence.add_file(f"{dev.id}-heard", dev_wav)
        self.evidence.add_bytes(f"{party.kind}-heard", f"{party.kind}-heard.wav", wav)
        with tempfile.TemporaryDirectory(prefix="sipgw-party-") as tmp:
            party_wav = Path(tmp) / "heard.wav"
            party_wav.write_bytes(wav)
            audio = read_wav(party_wav)
        # Only what the party heard after the device started its tone.
        end = len(audio.samples) / audio.sample_rate
        tones = [probe.tone_hz, party.tone_hz]
        dev_rep = self.detector.analyse_wav(dev_wav, tones)
        party_rep = self.detector.analyse_audio(audio, tones, window=(min(tone_from, end), end))
        ears = [device_ear(dev, dev_call), party_ear(party, party_call)]
        verdict = judge_two_way(dev_rep, party_rep, probe.tone_hz, party.tone_hz, a_name=dev.id,
                                b_name=ears[1].name, min_analysed_s=MIN_ANALYSED_S)
        return conclusive(verdict, self.evidence, label, ears)


@pytest.fixture
def two_way_audio(evidence, sipgw_settings) -> TwoWayAudio:
    return TwoWayAudio(evidence, sipgw_settings.deadline)


@pytest.fixture
def pstn(pstn_party):
    """The PSTN party with a tone no emulated device uses."""
    pstn_party.tone_hz = PSTN_TONE_HZ
    pstn_party.configure("auto")
    return pstn_party


@pytest.fixture
def teams(teams_user):
    teams_user.tone_hz = TEAMS_TONE_HZ
    teams_user.configure("auto")
    return teams_user
