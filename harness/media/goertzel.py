"""Goertzel filter bank over sliding frames, vectorised across frames and target frequencies.

The Goertzel recurrence ``s[n] = x[n] + 2cos(w) s[n-1] - s[n-2]`` yields, after N samples,
``|X(w)|^2 = s1^2 + s2^2 - 2cos(w) s1 s2``: the power of the N-point DFT evaluated at any
frequency ``w`` (not only at bin centres). Looping over the N samples of a frame while numpy
carries every frame and every target in one array costs N small array operations per batch,
whatever the number of frames, which keeps long recordings cheap.

Power is normalised so that a sine of amplitude A at exactly the target frequency reads A^2/2,
i.e. its mean square; ``10*log10`` of it is then the tone's RMS level in dBFS, directly
comparable with the frame's total mean square from :func:`frame_power`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "frame_power",
    "frame_view",
    "goertzel_power",
    "hann",
    "sliding_tone_power",
    "tone_power",
]


def hann(length: int) -> np.ndarray:
    """Periodic Hann window, the usual choice for spectral analysis (sidelobes fall 18 dB/octave)."""
    if length < 1:
        raise ValueError(f"window length must be >= 1, got {length}")
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)


def frame_view(signal: np.ndarray, frame_len: int, hop: int) -> np.ndarray:
    """Read-only (n_frames, frame_len) view of ``signal`` with frames starting every ``hop`` samples.

    Only whole frames are returned; a signal shorter than one frame gives zero frames.
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"signal must be one-dimensional, got shape {x.shape}")
    if frame_len < 1 or hop < 1:
        raise ValueError(f"frame length and hop must be >= 1 sample, got {frame_len} and {hop}")
    if len(x) < frame_len:
        return np.empty((0, frame_len))
    return sliding_window_view(x, frame_len)[::hop]


def _check_frequencies(frequencies: Sequence[float] | np.ndarray, sample_rate: float) -> np.ndarray:
    freqs = np.atleast_1d(np.asarray(frequencies, dtype=np.float64))
    if freqs.ndim != 1:
        raise ValueError(f"frequencies must be a flat sequence, got shape {freqs.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate!r}")
    bad = freqs[~np.isfinite(freqs) | (freqs < 0) | (freqs > sample_rate / 2)]
    if bad.size:
        raise ValueError(
            f"frequencies {bad.tolist()} Hz are outside 0..{sample_rate / 2:g} Hz "
            f"(the Nyquist range at {sample_rate:g} Hz)"
        )
    return freqs


def goertzel_power(frames: np.ndarray, frequencies: Sequence[float] | np.ndarray, sample_rate: float) -> np.ndarray:
    """Raw DFT power ``|sum x[n] e^{-jwn}|^2`` of each frame (row) at each frequency.

    ``frames`` is (n_frames, frame_len), already windowed if a window is wanted. Returns an
    array of shape (n_frames, n_frequencies).
    """
    x = np.asarray(frames, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"frames must be two-dimensional (n_frames, frame_len), got shape {x.shape}")
    freqs = _check_frequencies(frequencies, sample_rate)
    coeff = 2.0 * np.cos(2.0 * np.pi * freqs / sample_rate)  # (n_freqs,)
    n_frames = x.shape[0]
    s1 = np.zeros((n_frames, freqs.size))
    s2 = np.zeros((n_frames, freqs.size))
    columns = np.ascontiguousarray(x.T)[:, :, None]  # one (n_frames, 1) column per sample index
    for column in columns:
        s0 = column + coeff * s1 - s2
        s2 = s1
        s1 = s0
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return np.maximum(power, 0.0)  # rounding can leave -1e-18 where the true power is 0


def tone_power(
    frames: np.ndarray,
    frequencies: Sequence[float] | np.ndarray,
    sample_rate: float,
    window: np.ndarray,
) -> np.ndarray:
    """Mean-square power of a sinusoid at each frequency in each frame, window gain removed.

    ``frames`` are the raw (un-windowed) frames; the window is applied here. A pure tone of
    amplitude A at a target frequency reads A^2/2.
    """
    w = np.asarray(window, dtype=np.float64)
    raw = goertzel_power(np.asarray(frames) * w, frequencies, sample_rate)
    return raw * (2.0 / float(np.sum(w)) ** 2)


def frame_power(frames: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Window-weighted mean square of each frame, on the same scale as :func:`tone_power`."""
    w = np.asarray(window, dtype=np.float64)
    weighted = np.asarray(frames) * w
    return np.einsum("ij,ij->i", weighted, weighted) / float(np.dot(w, w))


def sliding_tone_power(
    signal: np.ndarray,
    frequencies: Sequence[float] | np.ndarray,
    sample_rate: float,
    *,
    frame_len: int,
    hop: int,
    window: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Tone power at each frequency over sliding Hann frames.

    Returns ``(frame_start_s, power)`` with ``power`` of shape (n_frames, n_frequencies).
    """
    frames = frame_view(signal, frame_len, hop)
    w = hann(frame_len) if window is None else np.asarray(window, dtype=np.float64)
    if w.shape != (frame_len,):
        raise ValueError(f"window has shape {w.shape}, expected ({frame_len},)")
    starts = np.arange(frames.shape[0]) * hop / sample_rate
    return starts, tone_power(frames, frequencies, sample_rate, w)
