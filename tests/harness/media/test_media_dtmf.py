"""In-band DTMF detection."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from harness.media.dtmf import DtmfConfig, detect_dtmf
from harness.media.g711 import ulaw_decode, ulaw_encode
from harness.media.tones import DEFAULT_PLAN_HZ, dtmf_signal, tone, tones, white_noise

ALL_KEYS = "123A456B789C*0#D"


def digits(x: np.ndarray, fs: int = 8000, **config) -> str:
    return "".join(d.digit for d in detect_dtmf(x, fs, DtmfConfig(**config) if config else None))


@pytest.mark.parametrize("fs", [8000, 16000])
def test_every_key(fs: int) -> None:
    assert digits(dtmf_signal(ALL_KEYS, fs, lead_s=0.2), fs) == ALL_KEYS


def test_timing_and_levels() -> None:
    found = detect_dtmf(dtmf_signal("7", on_s=0.2, lead_s=0.5, level_dbfs=-15, twist_db=2), 8000)
    assert len(found) == 1
    d = found[0]
    assert d.start_s == pytest.approx(0.5, abs=0.02)
    assert d.end_s == pytest.approx(0.7, abs=0.02)
    assert d.low_dbfs == pytest.approx(-15, abs=0.5)
    assert d.twist_db == pytest.approx(-2, abs=0.5)
    assert d.to_dict()["digit"] == "7"


def test_fast_repeated_key_is_two_digits() -> None:
    # Q.24 minimum timing: 40 ms tone, 40 ms pause.
    assert digits(dtmf_signal("5511", on_s=0.04, off_s=0.04)) == "5511"


def test_twist_limits() -> None:
    assert digits(dtmf_signal("9", twist_db=3)) == "9"  # high group 3 dB louder
    assert digits(dtmf_signal("9", twist_db=-7)) == "9"  # low group 7 dB louder
    assert digits(dtmf_signal("9", twist_db=6)) == ""  # reverse twist beyond 4 dB
    assert digits(dtmf_signal("9", twist_db=-10)) == ""  # normal twist beyond 8 dB


def test_noise_and_g711() -> None:
    rng = np.random.default_rng(9)
    x = dtmf_signal("0#*", lead_s=0.1)
    assert digits(x + white_noise(len(x) / 8000, level_dbfs=-30, rng=rng)) == "0#*"
    assert digits(ulaw_decode(ulaw_encode(x))) == "0#*"


def test_party_tones_never_look_like_digits() -> None:
    # The tone plan keeps every party tone 4 % away from the DTMF grid.
    for pair in itertools.combinations(DEFAULT_PLAN_HZ, 2):
        assert digits(tones(pair, 1.0)) == ""
    assert digits(tones(DEFAULT_PLAN_HZ, 1.0)) == ""


def test_single_dtmf_frequency_is_not_a_digit() -> None:
    assert digits(tone(697, 1.0)) == ""
    assert digits(tone(697, 1.0) + tone(1209, 1.0, level_dbfs=-40)) == ""  # far beyond twist


def test_input_errors() -> None:
    with pytest.raises(ValueError, match="mono"):
        detect_dtmf(np.zeros((2, 10)), 8000)
    with pytest.raises(ValueError, match="NaN"):
        detect_dtmf(np.array([np.nan]), 8000)
    with pytest.raises(ValueError, match="cannot carry DTMF"):
        detect_dtmf(np.zeros(100), 2000)
    with pytest.raises(ValueError, match="min_purity"):
        DtmfConfig(min_purity=1.5)
    assert detect_dtmf(np.zeros(10), 8000) == ()
