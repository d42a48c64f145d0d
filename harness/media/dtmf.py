"""In-band DTMF detection, for devices and trunks that carry digits as audio instead of RFC 4733
events or SIP INFO.

Each 30 ms Hann frame (every 10 ms) is measured at the eight Q.23 frequencies with the Goertzel
bank. A frame holds a key when, as Q.24 receivers require in spirit:

* the strongest low-group and high-group tones are each above ``min_tone_dbfs``;
* each is at least ``group_margin_db`` above the other tones of its group (one key, not two);
* the twist (low minus high level) is within ``max_reverse_twist_db`` .. ``max_normal_twist_db``;
* the two tones carry at least ``min_purity`` of the frame's power (rejects speech and music).

A digit is reported for a run of identical frames lasting at least ``min_duration_s``; any frame
without a key ends a digit, so the 40 ms inter-digit pause that Q.24 allows still separates two
presses of the same key. Start and end times are good to about half a frame (15 ms). This is a
test-lab receiver for clean digital paths, not a certified Q.24 one: it does not try to reject
bursts just over 20 ms, and it is not hardened against talk-off by speech.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from harness.media.goertzel import frame_power, frame_view, hann, tone_power
from harness.media.tones import DTMF_HIGH_HZ, DTMF_KEYS, DTMF_LOW_HZ

__all__ = ["DtmfConfig", "DtmfDigit", "detect_dtmf"]

_TINY = 1e-12


@dataclass(frozen=True, slots=True)
class DtmfConfig:
    frame_s: float = 0.030
    hop_s: float = 0.010
    min_tone_dbfs: float = -45.0
    group_margin_db: float = 10.0
    max_normal_twist_db: float = 8.0  # low group louder than high group
    max_reverse_twist_db: float = 4.0  # high group louder than low group
    min_purity: float = 0.7
    min_duration_s: float = 0.025

    def __post_init__(self) -> None:
        for key in self.__dataclass_fields__:
            value = getattr(self, key)
            if not math.isfinite(value):
                raise ValueError(f"invalid DTMF setting: {key} must be finite, got {value!r}")
        if not 0 < self.hop_s <= self.frame_s:
            raise ValueError(f"invalid DTMF setting: need 0 < hop_s <= frame_s, got {self.hop_s} and {self.frame_s}")
        if not 0 < self.min_purity <= 1:
            raise ValueError(f"invalid DTMF setting: min_purity must be in (0, 1], got {self.min_purity}")


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """One detected key press with its timing and tone levels (evidence for a DTMF verdict)."""

    digit: str
    start_s: float
    end_s: float
    low_dbfs: float
    high_dbfs: float

    @property
    def twist_db(self) -> float:
        """Low-group level minus high-group level."""
        return self.low_dbfs - self.high_dbfs

    def to_dict(self) -> dict[str, float | str]:
        return {
            "digit": self.digit,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "low_dbfs": round(self.low_dbfs, 1),
            "high_dbfs": round(self.high_dbfs, 1),
        }


def detect_dtmf(samples: np.ndarray, sample_rate: int, config: DtmfConfig | None = None) -> tuple[DtmfDigit, ...]:
    """The DTMF keys present in ``samples`` (mono, full scale 1.0), in time order."""
    cfg = config or DtmfConfig()
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected mono samples (1-D), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain NaN or infinity")
    if sample_rate < 2 * max(DTMF_HIGH_HZ) + 200:
        raise ValueError(f"a {sample_rate} Hz recording cannot carry DTMF (the 1633 Hz column needs >= 3.5 kHz)")
    n_len = round(cfg.frame_s * sample_rate)
    hop = max(1, round(cfg.hop_s * sample_rate))
    frames = frame_view(x, n_len, hop)
    if frames.shape[0] == 0:
        return ()
    w = hann(n_len)
    power = tone_power(frames, (*DTMF_LOW_HZ, *DTMF_HIGH_HZ), sample_rate, w)
    total = frame_power(frames, w)
    low, high = power[:, :4], power[:, 4:]
    row, col = low.argmax(axis=1), high.argmax(axis=1)
    rows = np.arange(len(frames))
    p_low, p_high = low[rows, row], high[rows, col]
    low_rest = np.sort(low, axis=1)[:, -2]  # second strongest of each group
    high_rest = np.sort(high, axis=1)[:, -2]
    level_low, level_high = 10 * np.log10(p_low + _TINY), 10 * np.log10(p_high + _TINY)
    twist = level_low - level_high
    margin = 10 ** (cfg.group_margin_db / 10)
    keyed = (
        (level_low >= cfg.min_tone_dbfs)
        & (level_high >= cfg.min_tone_dbfs)
        & (p_low >= margin * low_rest)
        & (p_high >= margin * high_rest)
        & (twist <= cfg.max_normal_twist_db)
        & (twist >= -cfg.max_reverse_twist_db)
        & (p_low + p_high >= cfg.min_purity * total)
    )
    label = np.where(keyed, row * 4 + col, -1)

    hop_s = hop / sample_rate
    centres = (np.arange(len(frames)) * hop + n_len / 2) / sample_rate
    change = np.flatnonzero(np.diff(label)) + 1
    bounds = np.concatenate(([0], change, [len(label)]))
    min_frames = max(1, math.ceil(cfg.min_duration_s / hop_s))
    digits = []
    for s, e in itertools.pairwise(bounds):
        key = int(label[s])
        if key < 0 or e - s < min_frames:
            continue
        digits.append(
            DtmfDigit(
                digit=DTMF_KEYS[key // 4][key % 4],
                start_s=max(0.0, float(centres[s] - hop_s / 2)),
                end_s=float(centres[e - 1] + hop_s / 2),
                low_dbfs=float(np.median(level_low[s:e])),
                high_dbfs=float(np.median(level_high[s:e])),
            )
        )
    return tuple(digits)
