"""Which tones a recording contains, how loud, for how long, and when.

The recording is cut into Hann-windowed frames (40 ms every 20 ms by default). For each frame the
detector measures the total mean square and, with a Goertzel filter bank, the power at each
target frequency. A target counts as present in a frame when

* its level is at least ``min_tone_dbfs`` (absolute: a tone buried at -70 dBFS is not "heard"), and
* it carries at least ``on_ratio_db`` of the frame's power once the other target tones are set
  aside (spectral purity: white noise spreads over all bins and reads about -20 dB in one 40 ms
  bin at 8 kHz, a clean tone reads 0 dB). Setting the other targets aside keeps the three tones of
  a conference at 0 dB each, and lets an echo or a crossed call 20-40 dB below the expected tone
  still be found.

Presence then goes through a Schmitt trigger (a weaker ``off_ratio_db`` and a level
``level_hysteresis_db`` lower keep a tone on once it is on), dropouts up to ``max_dropout_s`` are
bridged, and segments shorter than ``min_segment_s`` are discarded. Frames in the first
``settle_s`` of the recording, and within ``change_settle_s`` after each media change the caller
names (re-INVITE, hold, resume, transfer), are not analysed at all: jitter buffers, codec switches
and pjsua2's re-wiring of conference slots make that audio meaningless.

Every figure in the reports is finite (levels floor at ``FLOOR_DBFS``, SNR is capped at
``SNR_CAP_DB``) so reports serialise to strict JSON as evidence.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from harness.media.goertzel import frame_power, frame_view, hann, tone_power
from harness.media.wav import WavAudio, read_wav

__all__ = [
    "FLOOR_DBFS",
    "SNR_CAP_DB",
    "AudioReport",
    "DetectorConfig",
    "ToneDetector",
    "ToneReport",
]

FLOOR_DBFS = -120.0
SNR_CAP_DB = 90.0
_TINY = 10.0 ** (FLOOR_DBFS / 10.0)
_CHUNK_FRAMES = 2048
_MAX_UNEXPECTED_CANDIDATES = 4


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Thresholds of the detector; the defaults suit G.711/G.722 calls between emulated parties."""

    frame_s: float = 0.040
    hop_s: float = 0.020
    settle_s: float = 0.3
    change_settle_s: float = 0.5
    min_tone_dbfs: float = -50.0
    on_ratio_db: float = -10.0
    off_ratio_db: float = -12.0
    level_hysteresis_db: float = 6.0
    min_segment_s: float = 0.1
    max_dropout_s: float = 0.06
    silence_dbfs: float = -55.0
    unexpected_guard_hz: float = 125.0
    find_unexpected: bool = True

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(f"invalid detector setting: {what}")

        values = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "find_unexpected"}
        for key, value in values.items():
            need(isinstance(value, int | float) and math.isfinite(value), f"{key} must be a finite number")
        need(0.005 <= self.frame_s <= 1.0, f"frame_s must be between 5 ms and 1 s, got {self.frame_s}")
        need(0 < self.hop_s <= self.frame_s, f"hop_s must be > 0 and <= frame_s, got {self.hop_s}")
        need(self.settle_s >= 0 and self.change_settle_s >= 0, "settle times must be >= 0")
        need(self.off_ratio_db <= self.on_ratio_db <= 0, "need off_ratio_db <= on_ratio_db <= 0 dB")
        need(self.level_hysteresis_db >= 0, "level_hysteresis_db must be >= 0")
        need(self.min_segment_s >= 0 and self.max_dropout_s >= 0, "segment and dropout times must be >= 0")
        need(self.min_tone_dbfs < 0 and self.silence_dbfs < 0, "dBFS thresholds must be below 0")
        need(self.unexpected_guard_hz >= 0, "unexpected_guard_hz must be >= 0")

    def frame_len(self, sample_rate: int) -> int:
        return max(1, round(self.frame_s * sample_rate))

    def hop_len(self, sample_rate: int) -> int:
        return max(1, round(self.hop_s * sample_rate))


Segment = tuple[float, float]


def _r(value: float, digits: int) -> float:
    return float(round(value, digits))


@dataclass(frozen=True, slots=True)
class ToneReport:
    """What the detector found at one frequency.

    ``level_dbfs`` and ``snr_db`` are medians over the frames where the tone is present; when it
    is never present they are medians over all analysed frames (what sits in that bin instead).
    ``snr_db`` compares the tone with everything in the frame that is not a present target tone.
    ``coverage`` is the fraction of analysed frames where the tone is present.
    """

    frequency: float
    present: bool
    level_dbfs: float
    snr_db: float
    coverage: float
    segments: tuple[Segment, ...]
    duration_s: float
    analysed_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "frequency_hz": _r(self.frequency, 1),
            "present": self.present,
            "level_dbfs": _r(self.level_dbfs, 1),
            "snr_db": _r(self.snr_db, 1),
            "coverage": _r(self.coverage, 3),
            "duration_s": _r(self.duration_s, 3),
            "analysed_s": _r(self.analysed_s, 3),
            "segments_s": [[_r(a, 3), _r(b, 3)] for a, b in self.segments],
        }

    def describe(self) -> str:
        """A short phrase for failure messages, e.g. '1720 Hz at -12.0 dBFS, SNR 41 dB, 98 % of 4.7 s'."""
        if not self.present:
            return (
                f"{self.frequency:g} Hz absent (that bin reads {self.level_dbfs:.0f} dBFS "
                f"over {self.analysed_s:.1f} s analysed)"
            )
        return (
            f"{self.frequency:g} Hz at {self.level_dbfs:.1f} dBFS, SNR {self.snr_db:.0f} dB, "
            f"{self.coverage:.0%} of {self.analysed_s:.1f} s"
        )


@dataclass(frozen=True, slots=True)
class AudioReport:
    """Overall figures of one analysed recording plus one :class:`ToneReport` per target."""

    source: str
    sample_rate: int
    duration_s: float
    analysed_s: float
    rms_dbfs: float
    peak_dbfs: float
    silence_fraction: float
    audio_segments: tuple[Segment, ...]
    tones: tuple[ToneReport, ...]
    strongest_unexpected: ToneReport | None = None
    settings: dict[str, float] = field(default_factory=dict, compare=False, hash=False)

    def tone(self, frequency: float) -> ToneReport:
        """The report for a target frequency (within 0.5 Hz); KeyError if it was not analysed."""
        for report in self.tones:
            if abs(report.frequency - frequency) <= 0.5:
                return report
        analysed = ", ".join(f"{t.frequency:g}" for t in self.tones) or "none"
        raise KeyError(f"{frequency:g} Hz was not among the frequencies analysed in {self.source} ({analysed} Hz)")

    @property
    def present_frequencies(self) -> tuple[float, ...]:
        return tuple(t.frequency for t in self.tones if t.present)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sample_rate": self.sample_rate,
            "duration_s": _r(self.duration_s, 3),
            "analysed_s": _r(self.analysed_s, 3),
            "rms_dbfs": _r(self.rms_dbfs, 1),
            "peak_dbfs": _r(self.peak_dbfs, 1),
            "silence_fraction": _r(self.silence_fraction, 3),
            "audio_segments_s": [[_r(a, 3), _r(b, 3)] for a, b in self.audio_segments],
            "tones": [t.to_dict() for t in self.tones],
            "strongest_unexpected": None if self.strongest_unexpected is None else self.strongest_unexpected.to_dict(),
            "settings": dict(self.settings),
        }


# --- run-length helpers on boolean frame masks --------------------------------------------------


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start indices and exclusive end indices of the True runs of ``mask``."""
    padded = np.concatenate(([0], mask.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    return edges[0::2], edges[1::2]


def _schmitt(on: np.ndarray, hold: np.ndarray) -> np.ndarray:
    """Frames inside a run of ``hold`` at or after the run's first ``on`` frame."""
    hold = hold | on
    if not hold.any():
        return hold
    idx = np.arange(len(hold))
    run_start = hold & ~np.concatenate(([False], hold[:-1]))
    start_of_run = np.maximum.accumulate(np.where(run_start, idx, 0))
    last_on = np.maximum.accumulate(np.where(on, idx, -1))
    return hold & (last_on >= start_of_run)


def _bridge(mask: np.ndarray, analysed: np.ndarray, max_gap: int) -> np.ndarray:
    """Fill gaps of at most ``max_gap`` analysed frames between two True runs."""
    if max_gap <= 0 or not mask.any():
        return mask
    out = mask.copy()
    starts, ends = _runs(~mask)
    for s, e in zip(starts, ends, strict=True):
        if s > 0 and e < len(mask) and e - s <= max_gap and analysed[s:e].all():
            out[s:e] = True
    return out


def _drop_short(mask: np.ndarray, min_len: int) -> np.ndarray:
    if min_len <= 1 or not mask.any():
        return mask
    out = mask.copy()
    starts, ends = _runs(mask)
    for s, e in zip(starts, ends, strict=True):
        if e - s < min_len:
            out[s:e] = False
    return out


def _remove_dc(frames: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Subtract each frame's window-weighted mean: a DC offset would only dilute the purity ratio.

    Weighting by the window (rather than a plain mean) zeroes the windowed DC bin while leaving a
    tone untouched, since the window's transform is negligible at the tone's frequency.
    """
    return frames - (frames @ w / float(np.sum(w)))[:, None]


def _db(power: np.ndarray | float) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(power, _TINY))


class ToneDetector:
    """Analyses recordings for a set of target tones; stateless, safe to share between tests."""

    def __init__(self, config: DetectorConfig | None = None, **overrides: Any) -> None:
        base = config or DetectorConfig()
        self.config = replace(base, **overrides) if overrides else base

    # -- public entry points ---------------------------------------------------------------------

    def analyse_wav(
        self,
        path: str | os.PathLike[str],
        targets: Iterable[float],
        *,
        strict: bool = True,
        window: tuple[float, float] | None = None,
        media_changes: Sequence[float] = (),
    ) -> AudioReport:
        """Read a WAV recording (see :func:`read_wav`) and analyse it."""
        return self.analyse_audio(read_wav(path, strict=strict), targets, window=window, media_changes=media_changes)

    def analyse_audio(
        self,
        audio: WavAudio,
        targets: Iterable[float],
        *,
        window: tuple[float, float] | None = None,
        media_changes: Sequence[float] = (),
    ) -> AudioReport:
        return self.analyse(
            audio.samples,
            audio.sample_rate,
            targets,
            source=audio.source,
            window=window,
            media_changes=media_changes,
        )

    def analyse(
        self,
        samples: np.ndarray,
        sample_rate: int,
        targets: Iterable[float],
        *,
        source: str = "<samples>",
        window: tuple[float, float] | None = None,
        media_changes: Sequence[float] = (),
    ) -> AudioReport:
        """Analyse mono samples (full scale 1.0) for the ``targets`` frequencies in Hz.

        ``window`` restricts the analysis to (start_s, end_s) of the recording, e.g. the hold
        phase of a call; ``media_changes`` are times (s) after which ``change_settle_s`` of audio
        is skipped.
        """
        cfg = self.config
        x, fs = self._check_samples(samples, sample_rate, source)
        n_len, hop = cfg.frame_len(fs), cfg.hop_len(fs)
        freqs = self._check_targets(targets, fs, n_len, source)
        duration = len(x) / fs

        frames = frame_view(x, n_len, hop)
        n_frames = frames.shape[0]
        starts = np.arange(n_frames) * hop / fs
        analysed = self._analysed_mask(starts, n_len / fs, duration, window, media_changes, source)
        idx = np.flatnonzero(analysed)
        w = hann(n_len)

        total = np.zeros(n_frames)
        target_power = np.zeros((n_frames, freqs.size))
        peak = 0.0
        spectrum_sum = np.zeros(n_len // 2 + 1)
        spectrum_frames = 0
        spectrum_scale = 2.0 / float(np.sum(w)) ** 2
        silence_power = 10.0 ** (cfg.silence_dbfs / 10.0)
        for chunk in np.array_split(idx, max(1, math.ceil(idx.size / _CHUNK_FRAMES))):
            if chunk.size == 0:
                continue
            raw = frames[chunk]
            peak = max(peak, float(np.max(np.abs(raw))))
            centred = _remove_dc(raw, w)
            total[chunk] = frame_power(centred, w)
            if freqs.size:
                target_power[chunk] = tone_power(centred, freqs, fs, w)
            if cfg.find_unexpected:
                loud = total[chunk] >= silence_power
                if loud.any():
                    spectra = np.abs(np.fft.rfft(centred[loud] * w, axis=1)) ** 2 * spectrum_scale
                    spectrum_sum += spectra.sum(axis=0)
                    spectrum_frames += int(loud.sum())

        hop_dur = hop / fs
        analysed_s = idx.size * hop_dur
        # What each target competes with: the frame minus the other targets.
        others = target_power.sum(axis=1, keepdims=True) - target_power
        present = self._presence(target_power, total[:, None] - others, analysed, hop_dur)
        # Noise for the SNR: the frame's power minus every target tone present in that frame.
        explained = (present * target_power).sum(axis=1)
        timing = _Timing(starts, n_len / fs, hop_dur, duration)
        tone_reports = tuple(
            self._tone_report(float(f), target_power[:, k], present[:, k], total - explained, analysed, timing)
            for k, f in enumerate(freqs)
        )

        unexpected = None
        if cfg.find_unexpected and spectrum_frames:
            unexpected = self._strongest_unexpected(
                spectrum_sum / spectrum_frames,
                fs,
                freqs,
                frames,
                w,
                total,
                target_power.sum(axis=1),
                explained,
                analysed,
                timing,
            )

        loud_frames = analysed & (total >= silence_power)
        audio_mask = _drop_short(
            _bridge(loud_frames, analysed, round(cfg.max_dropout_s / hop_dur)),
            round(cfg.min_segment_s / hop_dur),
        )
        return AudioReport(
            source=source,
            sample_rate=fs,
            duration_s=duration,
            analysed_s=analysed_s,
            rms_dbfs=float(_db(total[idx].mean())) if idx.size else FLOOR_DBFS,
            peak_dbfs=float(max(FLOOR_DBFS, 20 * math.log10(peak))) if peak > 0 else FLOOR_DBFS,
            silence_fraction=float(1.0 - loud_frames[idx].mean()) if idx.size else 1.0,
            audio_segments=timing.segments(audio_mask),
            tones=tone_reports,
            strongest_unexpected=unexpected,
            settings={
                "frame_s": cfg.frame_s,
                "hop_s": cfg.hop_s,
                "settle_s": cfg.settle_s,
                "change_settle_s": cfg.change_settle_s,
                "min_tone_dbfs": cfg.min_tone_dbfs,
                "on_ratio_db": cfg.on_ratio_db,
                "silence_dbfs": cfg.silence_dbfs,
                "min_segment_s": cfg.min_segment_s,
            },
        )

    # -- input checks ----------------------------------------------------------------------------

    @staticmethod
    def _check_samples(samples: np.ndarray, sample_rate: int, source: str) -> tuple[np.ndarray, int]:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
            raise ValueError(f"{source}: sample rate must be a positive integer, got {sample_rate!r}")
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"{source}: expected mono samples (1-D), got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{source}: samples contain NaN or infinity")
        return x, int(sample_rate)

    @staticmethod
    def _check_targets(targets: Iterable[float], fs: int, n_len: int, source: str) -> np.ndarray:
        freqs = np.asarray([float(f) for f in targets], dtype=np.float64)
        nyquist = fs / 2
        for f in freqs:
            if not math.isfinite(f) or not 0 < f < nyquist:
                raise ValueError(
                    f"{source}: target {f:g} Hz is outside 0..{nyquist:g} Hz, the usable band of a {fs} Hz recording"
                )
        resolution = 2.0 * fs / n_len  # half-width of the Hann main lobe
        ordered = np.sort(freqs)
        for a, b in itertools.pairwise(ordered):
            if b - a < resolution:
                raise ValueError(
                    f"{source}: targets {a:g} and {b:g} Hz are closer than the detector can separate "
                    f"({resolution:g} Hz with {n_len}-sample frames)"
                )
        return freqs

    def _analysed_mask(
        self,
        starts: np.ndarray,
        frame_dur: float,
        duration: float,
        window: tuple[float, float] | None,
        media_changes: Sequence[float],
        source: str,
    ) -> np.ndarray:
        cfg = self.config
        lo, hi = (0.0, duration) if window is None else (float(window[0]), float(window[1]))
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0 or hi < lo:
            raise ValueError(f"{source}: analysis window {window!r} must satisfy 0 <= start <= end")
        ends = starts + frame_dur
        eps = 1e-9
        mask = (starts >= lo - eps) & (ends <= hi + eps)
        exclusions = [(0.0, cfg.settle_s)]
        for change in media_changes:
            c = float(change)
            if not math.isfinite(c) or c < 0:
                raise ValueError(f"{source}: media change time {change!r} must be a finite time >= 0 s")
            exclusions.append((c, c + cfg.change_settle_s))
        for a, b in exclusions:
            if b > a:
                mask &= ~((starts < b - eps) & (ends > a + eps))
        return mask

    # -- decisions -------------------------------------------------------------------------------

    def _presence(self, power: np.ndarray, background: np.ndarray, analysed: np.ndarray, hop_dur: float) -> np.ndarray:
        """Boolean (n_frames, n_tones): where each tone is present after hysteresis.

        ``background`` is, per frame and tone, the power the tone's share is measured against.
        """
        cfg = self.config
        ratio = power / np.maximum(np.maximum(background, power), _TINY)
        level = _db(power)
        on = (ratio >= 10 ** (cfg.on_ratio_db / 10)) & (level >= cfg.min_tone_dbfs) & analysed[:, None]
        hold = (
            (ratio >= 10 ** (cfg.off_ratio_db / 10))
            & (level >= cfg.min_tone_dbfs - cfg.level_hysteresis_db)
            & analysed[:, None]
        )
        max_gap = round(cfg.max_dropout_s / hop_dur)
        min_len = round(cfg.min_segment_s / hop_dur)
        out = np.zeros_like(on)
        for k in range(on.shape[1]):
            mask = _schmitt(on[:, k], hold[:, k])
            out[:, k] = _drop_short(_bridge(mask, analysed, max_gap), min_len)
        return out

    @staticmethod
    def _tone_report(
        frequency: float,
        power: np.ndarray,
        present: np.ndarray,
        noise: np.ndarray,
        analysed: np.ndarray,
        timing: _Timing,
    ) -> ToneReport:
        n_analysed = int(analysed.sum())
        if n_analysed == 0:
            return ToneReport(frequency, False, FLOOR_DBFS, -SNR_CAP_DB, 0.0, (), 0.0, 0.0)
        pick = present if present.any() else analysed
        level = float(np.median(_db(power[pick])))
        noise_floor = np.maximum(noise[pick], np.maximum(power[pick] * 1e-9, _TINY))
        snr = float(np.median(_db(power[pick] / noise_floor)))
        n_present = int(present.sum())
        return ToneReport(
            frequency=frequency,
            present=n_present > 0,
            level_dbfs=max(FLOOR_DBFS, level),
            snr_db=float(np.clip(snr, -SNR_CAP_DB, SNR_CAP_DB)),
            coverage=n_present / n_analysed,
            segments=timing.segments(present),
            duration_s=n_present * timing.hop_dur,
            analysed_s=n_analysed * timing.hop_dur,
        )

    def _strongest_unexpected(
        self,
        mean_spectrum: np.ndarray,
        fs: int,
        targets: np.ndarray,
        frames: np.ndarray,
        w: np.ndarray,
        total: np.ndarray,
        target_sum: np.ndarray,
        explained: np.ndarray,
        analysed: np.ndarray,
        timing: _Timing,
    ) -> ToneReport | None:
        """The loudest narrowband component away from the targets, if it passes the presence rules."""
        cfg = self.config
        df = fs / len(w)
        bins = np.arange(mean_spectrum.size) * df
        usable = bins >= 2 * df
        # Hann leakage of a full-scale target is below -50 dBFS only five bins away.
        guard = max(cfg.unexpected_guard_hz, 5 * df)
        for f in targets:
            usable &= np.abs(bins - f) >= guard
        spec = np.where(usable, mean_spectrum, 0.0)
        # Local maxima at a level worth reporting, loudest first.
        peaks = np.flatnonzero((spec[1:-1] > spec[:-2]) & (spec[1:-1] >= spec[2:])) + 1
        peaks = peaks[_db(spec[peaks]) >= cfg.min_tone_dbfs]
        if peaks.size == 0:
            return None
        peaks = peaks[np.argsort(spec[peaks])[::-1][:_MAX_UNEXPECTED_CANDIDATES]]
        candidates = []
        for k in peaks:
            # Parabolic interpolation of the log spectrum refines the peak to a fraction of a bin.
            a, b, c = (math.log(max(float(v), _TINY)) for v in mean_spectrum[k - 1 : k + 2])
            denom = a - 2 * b + c
            delta = 0.5 * (a - c) / denom if denom < 0 else 0.0
            candidates.append(round(float(np.clip((k + delta) * df, df, fs / 2 - df)), 1))
        idx = np.flatnonzero(analysed)
        power = np.zeros((len(frames), len(candidates)))
        for chunk in np.array_split(idx, max(1, math.ceil(idx.size / _CHUNK_FRAMES))):
            if chunk.size:
                raw = frames[chunk]
                power[chunk] = tone_power(_remove_dc(raw, w), candidates, fs, w)
        all_targets = total - target_sum
        present = self._presence(power, all_targets[:, None], analysed, timing.hop_dur)
        reports = [
            self._tone_report(
                f, power[:, k], present[:, k], total - explained - power[:, k] * present[:, k], analysed, timing
            )
            for k, f in enumerate(candidates)
            if present[:, k].any()
        ]
        return max(reports, key=lambda r: r.level_dbfs, default=None)


@dataclass(frozen=True, slots=True)
class _Timing:
    """Frame timing of one analysis, to turn frame masks into segment times."""

    starts: np.ndarray
    frame_dur: float
    hop_dur: float
    duration: float

    def segments(self, mask: np.ndarray) -> tuple[Segment, ...]:
        """Run times, each frame standing for one hop centred on the frame."""
        if not mask.any():
            return ()
        centres = self.starts + self.frame_dur / 2
        s_idx, e_idx = _runs(mask)
        half = self.hop_dur / 2
        return tuple(
            (max(0.0, float(centres[s] - half)), min(self.duration, float(centres[e - 1] + half)))
            for s, e in zip(s_idx, e_idx, strict=True)
        )
