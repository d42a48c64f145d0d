"""The Goertzel bank against a direct DFT, and its normalisation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.media.goertzel import (
    frame_power,
    frame_view,
    goertzel_power,
    hann,
    sliding_tone_power,
    tone_power,
)
from harness.media.tones import tone


def _dft_power(frames: np.ndarray, freqs: list[float], fs: float) -> np.ndarray:
    n = np.arange(frames.shape[1])
    basis = np.exp(-2j * np.pi * np.outer(n, np.asarray(freqs)) / fs)
    return np.abs(frames @ basis) ** 2


@settings(max_examples=50, deadline=None)
@given(
    freqs=st.lists(st.floats(min_value=0, max_value=4000), min_size=1, max_size=6),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    frame_len=st.integers(min_value=1, max_value=400),
)
def test_matches_direct_dft_at_any_frequency(freqs: list[float], seed: int, frame_len: int) -> None:
    frames = np.random.default_rng(seed).standard_normal((7, frame_len))
    expected = _dft_power(frames, freqs, 8000)
    np.testing.assert_allclose(goertzel_power(frames, freqs, 8000), expected, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("frequency", [530.0, 810.0, 1720.0, 2330.0, 3100.5])
@pytest.mark.parametrize("fs", [8000, 16000])
def test_tone_power_reads_mean_square(frequency: float, fs: int) -> None:
    x = tone(frequency, 0.5, fs, level_dbfs=-12.0)
    frames = frame_view(x, round(0.04 * fs), round(0.02 * fs))
    w = hann(frames.shape[1])
    expected = 10 ** (-12 / 10)
    np.testing.assert_allclose(tone_power(frames, [frequency], fs, w)[:, 0], expected, rtol=2e-3)
    np.testing.assert_allclose(frame_power(frames, w), expected, rtol=2e-3)


def test_frame_view_layout() -> None:
    x = np.arange(10.0)
    view = frame_view(x, 4, 3)
    assert view.shape == (3, 4)
    assert view[1].tolist() == [3.0, 4.0, 5.0, 6.0]
    assert frame_view(x, 20, 5).shape == (0, 20)
    with pytest.raises(ValueError, match=">= 1"):
        frame_view(x, 0, 1)
    with pytest.raises(ValueError, match="one-dimensional"):
        frame_view(np.zeros((2, 2)), 1, 1)


def test_sliding_tone_power_times() -> None:
    starts, power = sliding_tone_power(tone(810, 1.0), [810, 1720], 8000, frame_len=320, hop=160)
    assert power.shape == (len(starts), 2)
    assert starts[1] == pytest.approx(0.02)
    assert np.all(power[:, 0] > 1000 * power[:, 1])


def test_frequency_and_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.4000"):
        goertzel_power(np.zeros((1, 8)), [4500], 8000)
    with pytest.raises(ValueError, match="two-dimensional"):
        goertzel_power(np.zeros(8), [100], 8000)
    with pytest.raises(ValueError, match="window has shape"):
        sliding_tone_power(np.zeros(100), [100], 8000, frame_len=10, hop=5, window=np.ones(3))
