"""Verdicts built from real detector reports of generated recordings."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from harness.media.detector import AudioReport, ToneDetector
from harness.media.dtmf import detect_dtmf
from harness.media.tones import TonePlan, dtmf_signal, silence, tone, tone_with_gap, tones, white_noise
from harness.media.verdicts import (
    MediaOutcome,
    MediaVerdict,
    judge_conference,
    judge_dtmf,
    judge_hold,
    judge_mute,
    judge_two_way,
)

TONES = TonePlan().assign(["device", "teams", "pstn", "extra"])
DEV, TEAMS, PSTN, EXTRA = (TONES[p] for p in ("device", "teams", "pstn", "extra"))
ALL = list(TonePlan().frequencies)
DETECTOR = ToneDetector()
DURATION = 4.0


def rec(signal: np.ndarray, name: str) -> AudioReport:
    return DETECTOR.analyse(signal, 8000, ALL, source=f"{name}.wav")


def hears(*freqs: float) -> np.ndarray:
    return tones(freqs, DURATION) if freqs else silence(DURATION)


def two_way(a: np.ndarray, b: np.ndarray, **kwargs) -> MediaVerdict:
    return judge_two_way(rec(a, "device"), rec(b, "teams"), DEV, TEAMS, a_name="device", b_name="Teams user", **kwargs)


def _json(verdict: MediaVerdict) -> dict:
    return json.loads(json.dumps(verdict.to_dict(), allow_nan=False))


# --- two-way ------------------------------------------------------------------------------------


def test_two_way_pass() -> None:
    v = two_way(hears(TEAMS), hears(DEV))
    assert v.outcome is MediaOutcome.PASS and v.passed
    assert "device hears Teams user (1720 Hz at -12.0 dBFS" in v.reason
    paths = _json(v)["figures"]["paths"]
    assert {(p["from"], p["to"], p["frequency_hz"]) for p in paths} == {
        ("device", "Teams user", 810.0),
        ("Teams user", "device", 1720.0),
    }
    assert all(p["coverage"] == 1.0 and p["present"] for p in paths)


def test_one_way_device_to_teams_missing() -> None:
    v = two_way(hears(TEAMS), hears())
    assert v.outcome is MediaOutcome.ONE_WAY
    assert v.reason.startswith("One-way audio: Teams user does not hear device (810 Hz absent")
    assert "teams.wav" in v.reason and "100% silent" in v.reason
    assert "media path from device to Teams user" in v.reason


def test_one_way_teams_to_device_missing() -> None:
    v = two_way(hears(), hears(DEV))
    assert v.outcome is MediaOutcome.ONE_WAY
    assert "device does not hear Teams user (1720 Hz absent" in v.reason
    assert "while Teams user hears device (810 Hz at" in v.reason


def test_no_audio() -> None:
    v = two_way(hears(), hears())
    assert v.outcome is MediaOutcome.NO_AUDIO
    assert "810 Hz" in v.reason and "1720 Hz" in v.reason


def test_crossed_call_names_the_wrong_party() -> None:
    v = two_way(hears(PSTN), hears(DEV), known_tones={"PSTN party": PSTN})
    assert v.outcome is MediaOutcome.ONE_WAY
    assert "device hears 2330 Hz (PSTN party's tone)" in v.reason


def test_extra_party_mixed_in() -> None:
    v = two_way(hears(TEAMS, PSTN), hears(DEV), known_tones={"PSTN party": PSTN})
    assert v.outcome is MediaOutcome.UNEXPECTED_AUDIO
    assert "device also hears 2330 Hz (PSTN party's tone)" in v.reason


def test_unplanned_tone_is_unexpected() -> None:
    v = two_way(hears(TEAMS) + tone(1234, DURATION, level_dbfs=-20), hears(DEV))
    assert v.outcome is MediaOutcome.UNEXPECTED_AUDIO
    assert "no party's tone" in v.reason


def test_echo_of_own_tone() -> None:
    echo = hears(TEAMS) + tone(DEV, DURATION, level_dbfs=-30)
    v = two_way(echo, hears(DEV))
    assert v.outcome is MediaOutcome.UNEXPECTED_AUDIO
    assert "device hears its own 810 Hz tone at -30 dBFS" in v.reason
    assert two_way(echo, hears(DEV), allow_echo=True).outcome is MediaOutcome.PASS


def test_clipping_is_named_as_distortion() -> None:
    clipped = np.clip(tone(TEAMS, DURATION, level_dbfs=0), -0.5, 0.5)
    v = two_way(clipped, hears(DEV))
    assert v.outcome is MediaOutcome.DEGRADED
    assert "harmonic" in v.reason and "Teams user's 1720 Hz" in v.reason
    assert "distorts or clips" in v.reason


def test_intermittent_audio_is_degraded() -> None:
    gappy = tone_with_gap(TEAMS, DURATION, (1.5, 3.0))
    v = two_way(gappy, hears(DEV))
    assert v.outcome is MediaOutcome.DEGRADED
    assert "device hears Teams user's 1720 Hz only" in v.reason
    assert re.search(r"1 gap\(s\), longest 1\.[45]", v.reason)


def test_too_quiet_is_degraded_when_a_floor_is_set() -> None:
    quiet = tone(TEAMS, DURATION, level_dbfs=-40)
    assert two_way(quiet, hears(DEV)).outcome is MediaOutcome.PASS
    v = two_way(quiet, hears(DEV), min_level_dbfs=-30)
    assert v.outcome is MediaOutcome.DEGRADED
    assert "below the required -30 dBFS" in v.reason


def test_short_recording_is_inconclusive() -> None:
    v = judge_two_way(rec(tone(TEAMS, 0.8), "a"), rec(tone(DEV, 4.0), "b"), DEV, TEAMS)
    assert v.outcome is MediaOutcome.INCONCLUSIVE
    assert "a.wav" in v.reason and "b.wav" not in v.reason


def test_two_way_argument_errors() -> None:
    a, b = rec(hears(TEAMS), "a"), rec(hears(DEV), "b")
    with pytest.raises(ValueError, match="different tones"):
        judge_two_way(a, b, DEV, DEV)
    narrow = DETECTOR.analyse(hears(TEAMS), 8000, [TEAMS], source="narrow.wav")
    with pytest.raises(ValueError, match=r"narrow.wav was not analysed for .* pass every planned tone"):
        judge_two_way(narrow, b, DEV, TEAMS)


# --- hold ---------------------------------------------------------------------------------------


def hold(holder: np.ndarray, held: np.ndarray, **kwargs) -> MediaVerdict:
    return judge_hold(
        rec(holder, "holder"), rec(held, "held"), DEV, TEAMS, holder_name="device", held_name="Teams user", **kwargs
    )


def test_hold_silent_both_ways() -> None:
    v = hold(hears(), hears())
    assert v.outcome is MediaOutcome.PASS
    assert "100% silent" in v.reason


def test_held_party_still_hears_the_holder() -> None:
    v = hold(hears(), hears(DEV))
    assert v.outcome is MediaOutcome.AUDIO_LEAK
    assert "Teams user still hears device during hold" in v.reason and "privacy" in v.reason


def test_holder_still_hears_the_held_party() -> None:
    v = hold(hears(TEAMS), hears())
    assert v.outcome is MediaOutcome.AUDIO_LEAK
    assert "device still hears Teams user during hold" in v.reason
    assert "RFC 3264" in v.reason


def test_music_on_hold() -> None:
    rng = np.random.default_rng(3)
    music = white_noise(DURATION, level_dbfs=-25, rng=rng)
    v = hold(hears(), music)
    assert v.outcome is MediaOutcome.AUDIO_LEAK and "music_on_hold=True" in v.reason
    allowed = hold(hears(), music, music_on_hold=True)
    assert allowed.outcome is MediaOutcome.PASS and "music on hold" in allowed.reason
    # Music on hold never excuses the holder's own voice reaching the held party.
    assert hold(hears(), music + hears(DEV), music_on_hold=True).outcome is MediaOutcome.AUDIO_LEAK


# --- mute ---------------------------------------------------------------------------------------


def mute(muted: np.ndarray, other: np.ndarray, **kwargs) -> MediaVerdict:
    return judge_mute(
        rec(muted, "muted"), rec(other, "other"), DEV, TEAMS, muted_name="device", other_name="Teams user", **kwargs
    )


def test_mute_pass() -> None:
    v = mute(hears(TEAMS), hears())
    assert v.outcome is MediaOutcome.PASS
    assert "Teams user does not hear device's 810 Hz" in v.reason


def test_mute_leaks_the_tone() -> None:
    v = mute(hears(TEAMS), hears(DEV))
    assert v.outcome is MediaOutcome.AUDIO_LEAK
    assert "Teams user still hears device" in v.reason


def test_mute_leaks_other_audio() -> None:
    noise = white_noise(DURATION, level_dbfs=-30, rng=np.random.default_rng(4))
    v = mute(hears(TEAMS), noise)
    assert v.outcome is MediaOutcome.AUDIO_LEAK
    assert "although its tone is gone" in v.reason
    assert mute(hears(TEAMS), noise, require_silence=False).outcome is MediaOutcome.PASS


def test_mute_that_cuts_both_directions() -> None:
    v = mute(hears(), hears())
    assert v.outcome is MediaOutcome.NO_AUDIO
    assert "device no longer hears Teams user" in v.reason


# --- conference ---------------------------------------------------------------------------------


PARTY_TONES = {"device": DEV, "teams": TEAMS, "pstn": PSTN}


def conference(signals: dict[str, np.ndarray], **kwargs) -> MediaVerdict:
    return judge_conference({p: rec(s, p) for p, s in signals.items()}, PARTY_TONES, **kwargs)


def test_conference_pass() -> None:
    v = conference({"device": hears(TEAMS, PSTN), "teams": hears(DEV, PSTN), "pstn": hears(DEV, TEAMS)})
    assert v.outcome is MediaOutcome.PASS
    assert "All 6 conference paths" in v.reason
    assert len(_json(v)["figures"]["paths"]) == 6


def test_conference_full_mix_with_own_tone() -> None:
    full = hears(DEV, TEAMS, PSTN)
    signals = {"device": full, "teams": full, "pstn": full}
    assert conference(signals).outcome is MediaOutcome.PASS
    assert conference(signals, expect_own_tone=True).outcome is MediaOutcome.PASS
    v = conference(signals, expect_own_tone=False)
    assert v.outcome is MediaOutcome.UNEXPECTED_AUDIO
    assert "device hears its own 810 Hz" in v.reason
    lacking = conference({"device": hears(TEAMS, PSTN), "teams": full, "pstn": full}, expect_own_tone=True)
    assert lacking.outcome is MediaOutcome.UNEXPECTED_AUDIO and "lacks its own" in lacking.reason


def test_conference_missing_path() -> None:
    v = conference({"device": hears(TEAMS, PSTN), "teams": hears(DEV, PSTN), "pstn": hears(TEAMS)})
    assert v.outcome is MediaOutcome.ONE_WAY
    assert "pstn does not hear device (810 Hz) (the reverse works)" in v.reason
    assert "(1 of 6)" in v.reason


def test_conference_silent() -> None:
    v = conference({"device": hears(), "teams": hears(), "pstn": hears()})
    assert v.outcome is MediaOutcome.NO_AUDIO


def test_conference_stray_party() -> None:
    v = conference({"device": hears(TEAMS, PSTN, EXTRA), "teams": hears(DEV, PSTN), "pstn": hears(DEV, TEAMS)})
    assert v.outcome is MediaOutcome.UNEXPECTED_AUDIO
    assert "device hears 530 Hz" in v.reason and "no conference party" in v.reason


def test_conference_clipping_mixer_is_distortion_not_a_stranger() -> None:
    clipped = np.clip(tones((DEV, TEAMS, PSTN), DURATION, level_dbfs=-4), -1, 1)
    v = conference({"device": clipped, "teams": clipped, "pstn": clipped})
    assert v.outcome is MediaOutcome.DEGRADED
    assert "device's 810 Hz" in v.reason and "distorts or clips (peak 0.0 dBFS" in v.reason


def test_conference_argument_errors() -> None:
    r = rec(hears(TEAMS, PSTN), "x")
    with pytest.raises(ValueError, match="recordings for"):
        judge_conference({"device": r, "teams": r}, PARTY_TONES)
    with pytest.raises(ValueError, match="at least three"):
        judge_conference({"device": r, "teams": r}, {"device": DEV, "teams": TEAMS})
    with pytest.raises(ValueError, match="its own tone"):
        judge_conference({"a": r, "b": r, "c": r}, {"a": DEV, "b": DEV, "c": PSTN})


# --- DTMF and the verdict object ----------------------------------------------------------------


def test_dtmf_verdicts() -> None:
    heard = detect_dtmf(dtmf_signal("1234#"), 8000)
    assert judge_dtmf("1234#", heard).outcome is MediaOutcome.PASS
    v = judge_dtmf("12345#", heard, receiver="IVR")
    assert v.outcome is MediaOutcome.MISMATCH
    assert v.reason == "IVR heard '1234#' instead of '12345#': missing '5'."
    assert judge_dtmf("1", ()).outcome is MediaOutcome.NO_AUDIO


def test_verdict_is_frozen_hashable_and_json() -> None:
    v = two_way(hears(TEAMS), hears(DEV))
    with pytest.raises(AttributeError):
        v.outcome = MediaOutcome.NO_AUDIO  # type: ignore[misc]
    with pytest.raises(TypeError):
        v.figures["paths"] = []  # type: ignore[index]
    assert hash(v) == hash(v)
    data = _json(v)
    assert data["outcome"] == "pass" and data["check"] == "two_way"
    assert data["figures"]["recordings"]["device"]["source"] == "device.wav"
