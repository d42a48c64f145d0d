"""Tone plan for the emulated parties, and the test signals the detector is checked against.

Every party in a call (the device under test, the Teams user, the PSTN party, ...) sends its own
steady tone. A recording then tells *who* is heard, not only *that* something is heard, which is
what separates two-way audio from one-way audio, crossed calls and echo.

Why these frequencies (``DEFAULT_PLAN_HZ`` = 810, 1720, 2330, 530, 1990 Hz)
--------------------------------------------------------------------------
Each tone was chosen from a 10 Hz grid between 500 and 2400 Hz (well inside the 300-3400 Hz
G.711 passband and the G.722 band) by a search that maximised the smallest distance to every
line listed below; ``check_plan`` re-checks those rules and the tests run it on the default plan.

* **No DTMF lookalikes.** Every tone is at least 4 % away from each DTMF frequency (Q.23). Q.24
  receivers must reject a tone more than 3.5 % off, so no pair of party tones mixed in a
  conference can be mistaken by a gateway or ATA for an in-band digit. (The often used 700, 1300
  and 1633 Hz fail this: 697 and 1633 Hz are DTMF frequencies, and 1336 Hz is 2.7 % from 1300.)
* **No call-progress or modem/fax tones.** Clear of dial/ringback/busy tones (350-620 Hz), the
  special information tones (913.8, 985.2, 1370.6, 1428.5, 1776.7 Hz), and by at least 100 Hz of
  the tones that make gateways change mode: fax CNG 1100 Hz (T.30, a gateway may switch to
  T.38), V.25 calling tone 1300 Hz, answer tone 2100 Hz (G.164/G.165: disables echo cancellers),
  Bell 103 answer 2225 Hz and SF 2600 Hz.
* **Not a simple fraction of the sampling rate.** At 8 kHz a 1000 Hz tone repeats every 8
  samples, so its G.711 quantisation error is periodic too and lands entirely on 2000 and 3000 Hz
  instead of spreading as noise (the reason O.6 test tones are 1004/1020 Hz, not 1000 Hz). Every
  planned tone has a period of at least 40 samples at 8 kHz (the 16 kHz case follows).
* **No tone on another's artefacts.** No tone lies within the guard of the 2nd-5th harmonic of
  another (clipping and companding make odd and even harmonics), folded back at 8 kHz where the
  harmonic exceeds 4 kHz, nor on a 2nd- or 3rd-order intermodulation product (f1+f2, |f1-f2|,
  2f1-f2) of two others, which a clipping conference mixer produces. The default plan keeps all
  these lines at least 67 Hz away, which is more than two analysis bins of the detector.
* **Well apart.** Tones are at least 270 Hz apart, far outside each other's main lobe.

The first three tones (810, 1720, 2330 Hz), used for the most common three-party cases, keep
every artefact line at least 100 Hz away from one another.

Levels here are RMS dBFS: ``20*log10(rms)`` with full scale 1.0, so a full-scale sine reads
-3.01 dBFS. The default tone level of -12 dBFS is about what pjsua2's ``ToneGenerator`` sends and
leaves room for three tones summed in a conference without clipping.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = [
    "DEFAULT_PLAN_HZ",
    "DEFAULT_TONE_DBFS",
    "DTMF_HIGH_HZ",
    "DTMF_KEYS",
    "DTMF_LOW_HZ",
    "SIGNALLING_TONES_HZ",
    "PlanConflict",
    "TonePlan",
    "check_plan",
    "dtmf_signal",
    "silence",
    "tone",
    "tone_with_gap",
    "tone_with_noise",
    "tones",
    "white_noise",
]

DEFAULT_TONE_DBFS = -12.0

# Ordered by preference: the first three have the widest mutual guard (100 Hz).
DEFAULT_PLAN_HZ: tuple[float, ...] = (810.0, 1720.0, 2330.0, 530.0, 1990.0)

# ITU-T Q.23 DTMF frequencies; a key is one low-group plus one high-group tone.
DTMF_LOW_HZ: tuple[float, ...] = (697.0, 770.0, 852.0, 941.0)
DTMF_HIGH_HZ: tuple[float, ...] = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYS: tuple[str, ...] = ("123A", "456B", "789C", "*0#D")
_DTMF_POSITION = {key: (row, col) for row, keys in enumerate(DTMF_KEYS) for col, key in enumerate(keys)}

# Tones a telephone network or terminal may react to, with the clearance a party tone keeps.
SIGNALLING_TONES_HZ: Mapping[float, tuple[str, float]] = {
    350.0: ("dial tone (North America)", 50.0),
    400.0: ("dial/ringing tone (UK and others)", 50.0),
    425.0: ("dial/ringing/busy tone (Europe)", 50.0),
    440.0: ("dial/ringback tone (North America)", 50.0),
    450.0: ("dial tone (some networks)", 50.0),
    480.0: ("ringback/busy tone (North America)", 50.0),
    620.0: ("busy/reorder tone (North America)", 50.0),
    913.8: ("special information tone", 50.0),
    985.2: ("special information tone", 50.0),
    1100.0: ("fax calling tone CNG (T.30)", 100.0),
    1300.0: ("V.25 calling tone", 100.0),
    1370.6: ("special information tone", 50.0),
    1428.5: ("special information tone", 50.0),
    1776.7: ("special information tone", 50.0),
    2100.0: ("answer tone ANS/CED (disables echo cancellers)", 100.0),
    2225.0: ("Bell 103 answer tone", 100.0),
    2600.0: ("SF signalling tone", 100.0),
}

_DTMF_MIN_OFFSET = 0.04  # Q.24 receivers must reject tones more than 3.5 % off nominal.
_MIN_PERIOD_SAMPLES = 40  # at 8 kHz
_PASSBAND_HZ = (300.0, 3400.0)


@dataclass(frozen=True, slots=True)
class PlanConflict:
    """One rule a candidate tone plan breaks: ``frequency`` is too close to ``near``."""

    kind: str
    frequency: float
    near: float
    detail: str

    def __str__(self) -> str:
        return f"{self.frequency:g} Hz: {self.detail}"


def _fold(frequency: float, sample_rate: float) -> float:
    """Where a frequency lands after sampling at ``sample_rate`` (aliasing into 0..fs/2)."""
    f = math.fmod(frequency, sample_rate)
    return sample_rate - f if f > sample_rate / 2 else f


def check_plan(
    frequencies: Sequence[float],
    *,
    guard_hz: float = 60.0,
    min_spacing_hz: float = 200.0,
    codec_rate: int = 8000,
) -> list[PlanConflict]:
    """Every rule of the module docstring that ``frequencies`` breaks (empty list: plan is sound).

    ``guard_hz`` is the clearance kept from harmonics and intermodulation products of other tones;
    ``codec_rate`` is the narrowband sampling rate at which quantisation artefacts fold.
    """
    freqs = [float(f) for f in frequencies]
    conflicts: list[PlanConflict] = []
    low, high = _PASSBAND_HZ
    for f in freqs:
        if not math.isfinite(f) or not low <= f <= high:
            conflicts.append(PlanConflict("band", f, f, f"outside the {low:g}-{high:g} Hz G.711 passband"))
            continue
        for d in (*DTMF_LOW_HZ, *DTMF_HIGH_HZ):
            if abs(f - d) / d < _DTMF_MIN_OFFSET:
                conflicts.append(
                    PlanConflict("dtmf", f, d, f"within {_DTMF_MIN_OFFSET:.0%} of the DTMF frequency {d:g} Hz")
                )
        for s, (name, clearance) in SIGNALLING_TONES_HZ.items():
            if abs(f - s) < clearance:
                conflicts.append(PlanConflict("signalling", f, s, f"within {clearance:g} Hz of the {name} ({s:g} Hz)"))
        if f == int(f):
            period = Fraction(int(f), codec_rate).denominator
            if period < _MIN_PERIOD_SAMPLES:
                conflicts.append(
                    PlanConflict(
                        "periodic",
                        f,
                        f,
                        f"repeats every {period} samples at {codec_rate} Hz, so quantisation error is tonal",
                    )
                )
    for i, a in enumerate(freqs):
        for b in freqs[i + 1 :]:
            if abs(a - b) < min_spacing_hz:
                conflicts.append(PlanConflict("spacing", b, a, f"only {abs(a - b):g} Hz from the tone at {a:g} Hz"))
    for i, a in enumerate(freqs):
        for j, b in enumerate(freqs):
            if i == j:
                continue
            for k in range(2, 6):
                line = _fold(k * a, codec_rate)
                if abs(line - b) < guard_hz:
                    conflicts.append(
                        PlanConflict(
                            "harmonic", b, line, f"within {guard_hz:g} Hz of harmonic {k} of {a:g} Hz (at {line:g} Hz)"
                        )
                    )
    for i, a in enumerate(freqs):
        for j, b in enumerate(freqs):
            if j <= i:
                continue
            products = {
                f"{a:g}+{b:g}": a + b,
                f"|{a:g}-{b:g}|": abs(a - b),
                f"2x{a:g}-{b:g}": abs(2 * a - b),
                f"2x{b:g}-{a:g}": abs(2 * b - a),
            }
            for m, c in enumerate(freqs):
                if m in (i, j):
                    continue
                for name, value in products.items():
                    line = _fold(value, codec_rate)
                    if abs(line - c) < guard_hz:
                        conflicts.append(
                            PlanConflict(
                                "intermodulation",
                                c,
                                line,
                                f"within {guard_hz:g} Hz of the intermodulation product {name} (at {line:g} Hz)",
                            )
                        )
    return conflicts


class TonePlan:
    """An ordered set of party tones; ``assign`` hands them out to named parties."""

    def __init__(self, frequencies: Sequence[float] = DEFAULT_PLAN_HZ, *, guard_hz: float = 60.0) -> None:
        conflicts = check_plan(frequencies, guard_hz=guard_hz)
        if conflicts:
            listed = "; ".join(str(c) for c in conflicts)
            raise ValueError(f"tone plan {list(frequencies)} is unsafe: {listed}")
        self.frequencies: tuple[float, ...] = tuple(float(f) for f in frequencies)

    def assign(self, parties: Iterable[str]) -> dict[str, float]:
        """Give each party, in order, the next tone of the plan."""
        names = list(parties)
        if len(set(names)) != len(names):
            raise ValueError(f"party names must be unique, got {names}")
        if len(names) > len(self.frequencies):
            raise ValueError(
                f"{len(names)} parties ({', '.join(names)}) but the tone plan has only "
                f"{len(self.frequencies)} tones ({', '.join(f'{f:g}' for f in self.frequencies)} Hz)"
            )
        return dict(zip(names, self.frequencies, strict=False))

    def __repr__(self) -> str:
        return f"TonePlan({list(self.frequencies)})"


# --- test signals -------------------------------------------------------------------------------


def _n_samples(duration_s: float, sample_rate: int) -> int:
    if not math.isfinite(duration_s) or duration_s < 0:
        raise ValueError(f"duration must be a finite number of seconds >= 0, got {duration_s!r}")
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate!r}")
    return round(duration_s * sample_rate)


def _amplitude(level_dbfs: float) -> float:
    """Peak amplitude of a sine whose RMS level is ``level_dbfs``."""
    return math.sqrt(2.0) * 10.0 ** (level_dbfs / 20.0)


def tone(
    frequency: float,
    duration_s: float,
    sample_rate: int = 8000,
    *,
    level_dbfs: float = DEFAULT_TONE_DBFS,
    phase: float = 0.0,
) -> np.ndarray:
    """A steady sine of RMS level ``level_dbfs``."""
    if not 0 < frequency < sample_rate / 2:
        raise ValueError(f"tone frequency {frequency!r} Hz must be between 0 and {sample_rate / 2:g} Hz")
    t = np.arange(_n_samples(duration_s, sample_rate)) / sample_rate
    return _amplitude(level_dbfs) * np.sin(2 * np.pi * frequency * t + phase)


def tones(
    frequencies: Iterable[float],
    duration_s: float,
    sample_rate: int = 8000,
    *,
    level_dbfs: float = DEFAULT_TONE_DBFS,
) -> np.ndarray:
    """Several tones summed, each at ``level_dbfs`` (what a conference participant receives)."""
    out = np.zeros(_n_samples(duration_s, sample_rate))
    for i, f in enumerate(frequencies):
        out += tone(f, duration_s, sample_rate, level_dbfs=level_dbfs, phase=0.7 * i)
    return out


def silence(duration_s: float, sample_rate: int = 8000) -> np.ndarray:
    return np.zeros(_n_samples(duration_s, sample_rate))


def white_noise(
    duration_s: float, sample_rate: int = 8000, *, level_dbfs: float, rng: np.random.Generator
) -> np.ndarray:
    """Gaussian white noise of RMS level ``level_dbfs`` over the whole band 0..fs/2."""
    return rng.standard_normal(_n_samples(duration_s, sample_rate)) * 10.0 ** (level_dbfs / 20.0)


def tone_with_noise(
    frequency: float,
    duration_s: float,
    sample_rate: int = 8000,
    *,
    snr_db: float,
    rng: np.random.Generator,
    level_dbfs: float = DEFAULT_TONE_DBFS,
) -> np.ndarray:
    """A tone plus white noise; ``snr_db`` is tone power over noise power in the full band."""
    phase = float(rng.uniform(0, 2 * np.pi))
    signal = tone(frequency, duration_s, sample_rate, level_dbfs=level_dbfs, phase=phase)
    return signal + white_noise(duration_s, sample_rate, level_dbfs=level_dbfs - snr_db, rng=rng)


def tone_with_gap(
    frequency: float,
    duration_s: float,
    gap: tuple[float, float],
    sample_rate: int = 8000,
    *,
    level_dbfs: float = DEFAULT_TONE_DBFS,
) -> np.ndarray:
    """A tone that is silent between ``gap[0]`` and ``gap[1]`` seconds (e.g. a media path cut)."""
    start, end = gap
    if not 0 <= start <= end <= duration_s:
        raise ValueError(f"gap {gap!r} must satisfy 0 <= start <= end <= duration ({duration_s:g} s)")
    signal = tone(frequency, duration_s, sample_rate, level_dbfs=level_dbfs)
    signal[_n_samples(start, sample_rate) : _n_samples(end, sample_rate)] = 0.0
    return signal


def dtmf_signal(
    digits: str,
    sample_rate: int = 8000,
    *,
    on_s: float = 0.1,
    off_s: float = 0.1,
    level_dbfs: float = -10.0,
    twist_db: float = 0.0,
    lead_s: float = 0.0,
) -> np.ndarray:
    """In-band DTMF for ``digits``: each key ``on_s`` long, separated by ``off_s`` of silence.

    ``level_dbfs`` is the low-group tone level; the high-group tone is ``twist_db`` louder.
    """
    parts = [silence(lead_s, sample_rate)]
    for digit in digits:
        if digit.upper() not in _DTMF_POSITION:
            raise ValueError(f"{digit!r} is not a DTMF key (0-9, *, #, A-D)")
        row, col = _DTMF_POSITION[digit.upper()]
        low = tone(DTMF_LOW_HZ[row], on_s, sample_rate, level_dbfs=level_dbfs)
        high = tone(DTMF_HIGH_HZ[col], on_s, sample_rate, level_dbfs=level_dbfs + twist_db)
        parts += [low + high, silence(off_s, sample_rate)]
    return np.concatenate(parts)
