"""Tone plan rules and the generated test signals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.media.tones import (
    DEFAULT_PLAN_HZ,
    TonePlan,
    check_plan,
    dtmf_signal,
    silence,
    tone,
    tone_with_gap,
    tone_with_noise,
    tones,
)


def _rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x**2)))


def test_default_plan_is_clean_with_margin() -> None:
    assert check_plan(DEFAULT_PLAN_HZ) == []
    # The module docstring promises every artefact line at least 67 Hz away.
    assert check_plan(DEFAULT_PLAN_HZ, guard_hz=67) == []
    assert check_plan(DEFAULT_PLAN_HZ[:3], guard_hz=100) == []


def test_naive_plan_is_rejected_for_the_documented_reasons() -> None:
    conflicts = check_plan([700, 1000, 1300, 1633])
    kinds = {(c.kind, c.frequency) for c in conflicts}
    assert ("dtmf", 700.0) in kinds
    assert ("dtmf", 1633.0) in kinds
    assert ("periodic", 1000.0) in kinds
    assert ("signalling", 1300.0) in kinds


@pytest.mark.parametrize(
    ("plan", "kind"),
    [
        ([810, 1620], "harmonic"),  # 2 x 810
        ([810, 2330, 1520], "intermodulation"),  # 2330 - 810
        ([810, 900], "spacing"),
        ([250, 810], "band"),
        ([1150, 2330], "signalling"),  # 50 Hz from the fax CNG tone
    ],
)
def test_plan_rules(plan: list[float], kind: str) -> None:
    assert kind in {c.kind for c in check_plan(plan)}


def test_assign_hands_out_tones_in_order() -> None:
    plan = TonePlan()
    assert plan.assign(["device", "teams", "pstn"]) == {"device": 810.0, "teams": 1720.0, "pstn": 2330.0}


def test_assign_refuses_too_many_or_duplicate_parties() -> None:
    plan = TonePlan(DEFAULT_PLAN_HZ[:2])
    with pytest.raises(ValueError, match=r"3 parties .* only 2 tones"):
        plan.assign(["a", "b", "c"])
    with pytest.raises(ValueError, match="unique"):
        plan.assign(["a", "a"])


def test_unsafe_plan_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="DTMF frequency 697"):
        TonePlan([700, 2330])


@given(
    frequency=st.floats(min_value=100, max_value=3800),
    level=st.floats(min_value=-60, max_value=-3),
)
def test_tone_level_is_rms_dbfs(frequency: float, level: float) -> None:
    x = tone(frequency, 1.0, 8000, level_dbfs=level)
    assert len(x) == 8000
    assert _rms_db(x) == pytest.approx(level, abs=0.05)


def test_tone_with_noise_has_the_requested_snr() -> None:
    rng = np.random.default_rng(7)
    x = tone_with_noise(1720, 20.0, 8000, snr_db=3.0, rng=rng, level_dbfs=-12)
    # Tone at -12 dBFS plus noise at -15 dBFS: total power 10*log10(10^-1.2 + 10^-1.5).
    assert _rms_db(x) == pytest.approx(10 * np.log10(10**-1.2 + 10**-1.5), abs=0.1)
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    bin_1720 = round(1720 * 20.0)
    tone_power = spectrum[bin_1720 - 2 : bin_1720 + 3].sum()
    noise_power = spectrum.sum() - tone_power
    assert 10 * np.log10(tone_power / noise_power) == pytest.approx(3.0, abs=0.2)


def test_tones_sum_each_at_the_level() -> None:
    x = tones(DEFAULT_PLAN_HZ[:3], 2.0, 8000, level_dbfs=-12)
    assert _rms_db(x) == pytest.approx(-12 + 10 * np.log10(3), abs=0.1)


def test_tone_with_gap_is_silent_in_the_gap() -> None:
    x = tone_with_gap(810, 3.0, (1.0, 2.0), 8000)
    assert np.all(x[8000:16000] == 0)
    assert _rms_db(x[:8000]) == pytest.approx(-12, abs=0.1)
    with pytest.raises(ValueError, match="gap"):
        tone_with_gap(810, 3.0, (2.0, 1.0))


def test_signal_argument_errors() -> None:
    with pytest.raises(ValueError, match="between 0 and 4000"):
        tone(5000, 1.0, 8000)
    with pytest.raises(ValueError, match="duration"):
        silence(-1.0)
    with pytest.raises(ValueError, match="not a DTMF key"):
        dtmf_signal("12x")


def test_dtmf_signal_layout() -> None:
    x = dtmf_signal("1#", 8000, on_s=0.05, off_s=0.05, lead_s=0.1)
    assert len(x) == round((0.1 + 2 * 0.1) * 8000)
    assert np.all(x[:800] == 0)
