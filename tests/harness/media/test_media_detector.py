"""ToneDetector on generated signals: each planned tone, conference mixes, silence, noise, gaps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.media.detector import FLOOR_DBFS, DetectorConfig, ToneDetector
from harness.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from harness.media.tones import (
    DEFAULT_PLAN_HZ,
    silence,
    tone,
    tone_with_gap,
    tone_with_noise,
    tones,
    white_noise,
)
from harness.media.wav import write_wav

PLAN = DEFAULT_PLAN_HZ
DETECTOR = ToneDetector()


def _only_present(report, expected: set[float]) -> None:
    assert set(report.present_frequencies) == expected


@pytest.mark.parametrize("fs", [8000, 16000])
@pytest.mark.parametrize("frequency", PLAN)
def test_each_planned_tone_alone(frequency: float, fs: int) -> None:
    report = DETECTOR.analyse(tone(frequency, 3.0, fs), fs, PLAN)
    _only_present(report, {frequency})
    t = report.tone(frequency)
    assert t.coverage == 1.0
    assert t.level_dbfs == pytest.approx(-12.0, abs=0.1)
    assert t.snr_db > 60
    assert t.segments == ((pytest.approx(0.31, abs=0.02), pytest.approx(3.0, abs=0.02)),)
    assert report.strongest_unexpected is None
    assert report.silence_fraction == 0.0
    assert report.rms_dbfs == pytest.approx(-12.0, abs=0.1)


@pytest.mark.parametrize("fs", [8000, 16000])
def test_three_tones_at_once(fs: int) -> None:
    three = PLAN[:3]
    report = DETECTOR.analyse(tones(three, 3.0, fs), fs, PLAN)
    _only_present(report, set(three))
    for f in three:
        t = report.tone(f)
        assert t.coverage == 1.0
        assert t.level_dbfs == pytest.approx(-12.0, abs=0.1)
        assert t.snr_db > 40  # the other two tones are not counted as noise
    assert report.strongest_unexpected is None


def test_silence() -> None:
    report = DETECTOR.analyse(silence(3.0), 8000, PLAN)
    _only_present(report, set())
    assert report.silence_fraction == 1.0
    assert report.rms_dbfs == FLOOR_DBFS
    assert report.audio_segments == ()
    assert report.strongest_unexpected is None
    assert all(t.level_dbfs == FLOOR_DBFS for t in report.tones)


def test_quiet_noise_counts_as_silence_and_loud_noise_is_not_a_tone() -> None:
    rng = np.random.default_rng(1)
    quiet = DETECTOR.analyse(white_noise(3.0, level_dbfs=-65, rng=rng), 8000, PLAN)
    assert quiet.silence_fraction == 1.0
    loud = DETECTOR.analyse(white_noise(3.0, level_dbfs=-15, rng=rng), 8000, PLAN)
    assert loud.silence_fraction == 0.0
    assert loud.rms_dbfs == pytest.approx(-15, abs=0.3)
    _only_present(loud, set())
    assert loud.strongest_unexpected is None


@pytest.mark.parametrize("fs", [8000, 16000])
@pytest.mark.parametrize("snr_db", [30, 20, 10, 0, -5])
def test_tone_in_white_noise(snr_db: float, fs: int) -> None:
    rng = np.random.default_rng(int(snr_db) + 100)
    report = DETECTOR.analyse(tone_with_noise(1720, 3.0, fs, snr_db=snr_db, rng=rng), fs, PLAN)
    _only_present(report, {1720.0})
    t = report.tone(1720)
    assert t.coverage >= 0.95
    assert t.snr_db == pytest.approx(snr_db, abs=1.5)
    assert t.level_dbfs == pytest.approx(-12, abs=1.0)


def test_tone_far_below_the_purity_limit_is_not_claimed_as_flowing() -> None:
    # The purity rule puts the detection limit near -10 dB full-band SNR; further down a tone
    # shows only in scattered frames (coverage far below what a verdict accepts), then not at all.
    rng = np.random.default_rng(5)
    weak = DETECTOR.analyse(tone_with_noise(810, 3.0, snr_db=-15, rng=rng), 8000, PLAN)
    assert weak.tone(810).coverage < 0.2
    lost = DETECTOR.analyse(tone_with_noise(810, 3.0, snr_db=-25, rng=rng), 8000, PLAN)
    _only_present(lost, set())


def test_tone_after_a_gap() -> None:
    report = DETECTOR.analyse(tone_with_gap(810, 6.0, (2.0, 3.5)), 8000, PLAN)
    t = report.tone(810)
    assert len(t.segments) == 2
    (_, e1), (s2, e2) = t.segments
    assert e1 == pytest.approx(2.0, abs=0.04)
    assert s2 == pytest.approx(3.5, abs=0.04)
    assert e2 == pytest.approx(6.0, abs=0.02)
    assert t.coverage == pytest.approx((6.0 - 0.3 - 1.5) / (6.0 - 0.3), abs=0.02)
    assert report.silence_fraction == pytest.approx(1.5 / 5.7, abs=0.02)
    assert len(report.audio_segments) == 2


def test_tone_starting_late() -> None:
    x = np.concatenate([silence(1.0), tone(2330, 2.0)])
    t = DETECTOR.analyse(x, 8000, PLAN).tone(2330)
    assert t.segments[0][0] == pytest.approx(1.0, abs=0.03)


def test_short_dropout_is_bridged_and_short_blip_ignored() -> None:
    dropout = np.concatenate([tone(810, 1.5), silence(0.04), tone(810, 1.5)])
    assert len(DETECTOR.analyse(dropout, 8000, PLAN).tone(810).segments) == 1
    blip = np.concatenate([silence(1.0), tone(810, 0.06), silence(1.0)])
    assert not DETECTOR.analyse(blip, 8000, PLAN).tone(810).present


def test_first_samples_and_media_changes_are_not_judged() -> None:
    early = np.concatenate([tone(810, 0.25), silence(2.0)])
    assert not DETECTOR.analyse(early, 8000, PLAN).tone(810).present
    # A burst right after a re-INVITE at 1.0 s is settling noise, not audio to judge.
    burst = np.concatenate([silence(1.0), tone(810, 0.4), silence(1.6)])
    assert DETECTOR.analyse(burst, 8000, PLAN).tone(810).present
    report = DETECTOR.analyse(burst, 8000, PLAN, media_changes=[1.0])
    assert not report.tone(810).present
    assert report.analysed_s == pytest.approx(3.0 - 0.3 - 0.5, abs=0.05)


def test_window_limits_the_analysis() -> None:
    x = np.concatenate([tone(810, 2.0), tone(1720, 2.0)])
    first = DETECTOR.analyse(x, 8000, PLAN, window=(0.0, 2.0))
    second = DETECTOR.analyse(x, 8000, PLAN, window=(2.0, 4.0), media_changes=[2.0])
    _only_present(first, {810.0})
    _only_present(second, {1720.0})
    assert second.analysed_s == pytest.approx(1.5, abs=0.05)


@pytest.mark.parametrize(("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)])
def test_g711_round_trip_still_detected(encode, decode) -> None:
    x = decode(encode(tones(PLAN[:2], 3.0, 8000)))
    report = DETECTOR.analyse(x, 8000, PLAN)
    _only_present(report, set(PLAN[:2]))
    for f in PLAN[:2]:
        # G.711 noise is 34-38 dB down; within one 40 ms frame part of it still correlates with the
        # tones (companding is not additive noise), so the per-frame figure reads a few dB lower.
        assert report.tone(f).snr_db > 25
        assert report.tone(f).level_dbfs == pytest.approx(-12, abs=0.3)
    assert report.strongest_unexpected is None


def test_packet_loss_without_concealment_keeps_the_tone() -> None:
    rng = np.random.default_rng(11)
    x = tone(1720, 5.0).reshape(250, -1)  # 20 ms packets
    x[rng.random(250) < 0.05] = 0.0
    t = DETECTOR.analyse(x.ravel(), 8000, PLAN).tone(1720)
    assert t.coverage >= 0.9


def test_dc_offset_does_not_hide_a_tone() -> None:
    t = DETECTOR.analyse(tone(530, 3.0) + 0.3, 8000, PLAN).tone(530)
    assert t.coverage == 1.0
    assert t.level_dbfs == pytest.approx(-12, abs=0.1)


def test_strongest_unexpected_tone() -> None:
    x = tone(1234, 3.0, level_dbfs=-15) + tone(810, 3.0, level_dbfs=-12)
    report = DETECTOR.analyse(x, 8000, PLAN)
    _only_present(report, {810.0})
    extra = report.strongest_unexpected
    assert extra is not None and extra.present
    assert extra.frequency == pytest.approx(1234, abs=2)
    assert extra.level_dbfs == pytest.approx(-15, abs=0.3)
    # Without targets, the strongest tone of the recording is "unexpected".
    alone = DETECTOR.analyse(tone(2330, 2.0), 8000, [])
    assert alone.strongest_unexpected is not None
    assert alone.strongest_unexpected.frequency == pytest.approx(2330, abs=2)
    off = ToneDetector(find_unexpected=False).analyse(x, 8000, PLAN)
    assert off.strongest_unexpected is None


@settings(max_examples=25, deadline=None)
@given(
    frequency=st.floats(min_value=300, max_value=3400),
    level=st.floats(min_value=-45, max_value=-6),
    phase=st.floats(min_value=0, max_value=6.28),
)
def test_any_tone_is_measured_at_its_level(frequency: float, level: float, phase: float) -> None:
    x = tone(frequency, 1.5, 8000, level_dbfs=level, phase=phase)
    t = DETECTOR.analyse(x, 8000, [frequency]).tone(frequency)
    assert t.present and t.coverage == 1.0
    assert t.level_dbfs == pytest.approx(level, abs=0.2)


def test_analyse_wav_keeps_the_source(tmp_path: Path) -> None:
    path = tmp_path / "teams-user.wav"
    write_wav(path, tone(1990, 2.0, 16000), 16000)
    report = DETECTOR.analyse_wav(path, PLAN)
    assert report.source == str(path)
    assert report.sample_rate == 16000
    _only_present(report, {1990.0})


def test_reports_are_strict_json() -> None:
    rng = np.random.default_rng(2)
    for x in (silence(2.0), tone_with_noise(810, 2.0, snr_db=5, rng=rng), tone(1234, 2.0)):
        text = json.dumps(DETECTOR.analyse(x, 8000, PLAN).to_dict(), allow_nan=False)
        assert "frequency_hz" in text


def test_recording_shorter_than_the_settling_time() -> None:
    report = DETECTOR.analyse(tone(810, 0.2), 8000, PLAN)
    assert report.analysed_s == 0.0
    _only_present(report, set())
    empty = DETECTOR.analyse(np.zeros(0), 8000, PLAN)
    assert empty.duration_s == 0.0 and empty.silence_fraction == 1.0


def test_unknown_frequency_lookup_names_the_recording() -> None:
    report = DETECTOR.analyse(tone(810, 1.0), 8000, [810], source="dev.wav")
    with pytest.raises(KeyError, match=r"1720 Hz was not among .* dev.wav \(810 Hz\)"):
        report.tone(1720)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"targets": [4100]}, "outside 0..4000 Hz"),
        ({"targets": [810, 830]}, "closer than the detector can separate"),
        ({"samples": np.array([0.0, np.nan])}, "NaN"),
        ({"samples": np.zeros((2, 100))}, "mono"),
        ({"sample_rate": 0}, "sample rate"),
        ({"window": (2.0, 1.0)}, "window"),
        ({"media_changes": [-1.0]}, "media change"),
    ],
)
def test_argument_errors_name_the_source(kwargs: dict, match: str) -> None:
    args = {"samples": tone(810, 1.0), "sample_rate": 8000, "targets": PLAN} | kwargs
    with pytest.raises(ValueError, match=match) as info:
        DETECTOR.analyse(args.pop("samples"), args.pop("sample_rate"), args.pop("targets"), source="x.wav", **args)
    assert "x.wav" in str(info.value)


@pytest.mark.parametrize(
    "overrides",
    [{"off_ratio_db": -5.0}, {"hop_s": 0.1}, {"frame_s": 0.001}, {"settle_s": -1.0}, {"min_tone_dbfs": float("nan")}],
)
def test_config_errors(overrides: dict) -> None:
    with pytest.raises(ValueError, match="invalid detector setting"):
        DetectorConfig(**overrides)
