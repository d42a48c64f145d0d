"""Audio verdicts: pure functions from detector reports to an outcome, a reason and the figures.

Each party's recording is what that party *received*, so "A hears B" means B's tone is present in
A's recording. The functions never read files or clocks; they turn :class:`AudioReport` objects
(one per recording, analysed for every planned tone) into a :class:`MediaVerdict` whose reason
names the parties, the frequencies and what to look at next, and whose figures keep every number
the decision used, ready for JSON evidence.

One-way audio is its own outcome (``ONE_WAY``): it is the classic NAT/SDP failure and must never
be reported as a generic failure or as "no audio".
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from harness.media.detector import AudioReport, ToneReport
from harness.media.dtmf import DtmfDigit

__all__ = [
    "MediaOutcome",
    "MediaVerdict",
    "judge_conference",
    "judge_dtmf",
    "judge_hold",
    "judge_mute",
    "judge_two_way",
]


class MediaOutcome(StrEnum):
    PASS = "pass"
    ONE_WAY = "one_way"  # audio flows in one direction (or on some conference paths) only
    NO_AUDIO = "no_audio"  # no expected audio in any direction
    DEGRADED = "degraded"  # expected audio present but intermittent or too quiet
    AUDIO_LEAK = "audio_leak"  # audio heard where hold or mute requires silence
    UNEXPECTED_AUDIO = "unexpected_audio"  # someone else's tone, or one's own (echo), is heard
    MISMATCH = "mismatch"  # content differs from what was sent (DTMF digits)
    INCONCLUSIVE = "inconclusive"  # too little analysable audio to judge


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class MediaVerdict:
    """The judgement of one media check. ``figures`` is read-only; ``to_dict`` gives plain JSON."""

    check: str
    outcome: MediaOutcome
    reason: str
    figures: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "figures", MappingProxyType(_plain(self.figures)))

    @property
    def passed(self) -> bool:
        return self.outcome is MediaOutcome.PASS

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "figures": _plain(self.figures),
        }


# --- shared helpers -----------------------------------------------------------------------------


def _check_tone(value: float, what: str) -> float:
    f = float(value)
    if not f > 0:
        raise ValueError(f"{what} must be a positive frequency in Hz, got {value!r}")
    return f


def _heard(report: AudioReport, frequency: float, listener: str, speaker: str) -> ToneReport:
    try:
        return report.tone(frequency)
    except KeyError:
        analysed = ", ".join(f"{t.frequency:g}" for t in report.tones) or "none"
        raise ValueError(
            f"{listener}'s recording {report.source} was not analysed for {speaker}'s {frequency:g} Hz tone "
            f"(analysed: {analysed} Hz); pass every planned tone to the detector as a target"
        ) from None


def _inconclusive(check: str, recordings: Mapping[str, AudioReport], min_analysed_s: float) -> MediaVerdict | None:
    short = {name: r for name, r in recordings.items() if r.analysed_s < min_analysed_s}
    if not short:
        return None
    detail = "; ".join(
        f"{name}: {r.analysed_s:.2f} s of {r.duration_s:.2f} s in {r.source}" for name, r in short.items()
    )
    return MediaVerdict(
        check,
        MediaOutcome.INCONCLUSIVE,
        f"Too little audio to judge (need {min_analysed_s:g} s analysed per recording after the settling "
        f"time is skipped): {detail}. Record longer, or check the analysis window and media-change times.",
        {"min_analysed_s": min_analysed_s, "recordings": {n: r.to_dict() for n, r in recordings.items()}},
    )


@dataclass(frozen=True, slots=True)
class _Stray:
    """A tone heard where it does not belong, labelled for a reason sentence."""

    label: str
    tone: ToneReport
    distortion: bool  # a harmonic or intermodulation product of tones that are present

    def text(self) -> str:
        return f"{self.label} at {self.tone.level_dbfs:.0f} dBFS for {self.tone.duration_s:.1f} s"


def _fold(frequency: float, sample_rate: float) -> float:
    f = math.fmod(frequency, sample_rate)
    return sample_rate - f if f > sample_rate / 2 else f


def _artefact(frequency: float, sources: Mapping[str, float], sample_rate: int) -> str | None:
    """Which harmonic or intermodulation product of the ``sources`` tones ``frequency`` is, if any.

    Products are folded at 8 kHz (a G.711 leg) and at the recording's rate; 10 Hz covers the
    frequency estimate of an unexpected tone.
    """
    rates = {8000, sample_rate}
    tolerance = 10.0

    def near(value: float) -> bool:
        return any(abs(_fold(value, rate) - frequency) <= tolerance for rate in rates)

    for party, f in sources.items():
        for k in range(2, 8):
            if near(k * f):
                return f"harmonic {k} of {party}'s {f:g} Hz"
    for (pa, a), (pb, b) in itertools.combinations(sources.items(), 2):
        for name, value in (
            (f"{a:g}+{b:g}", a + b),
            (f"{b:g}-{a:g}", abs(b - a)),
            (f"2x{a:g}-{b:g}", abs(2 * a - b)),
            (f"2x{b:g}-{a:g}", abs(2 * b - a)),
        ):
            if near(value):
                return f"intermodulation product {name} Hz of {pa}'s and {pb}'s tones"
    return None


def _strays(report: AudioReport, allowed: Sequence[float], min_s: float, known: Mapping[str, float]) -> list[_Stray]:
    """Present tones in ``report`` other than ``allowed``, labelled, loudest first.

    ``known`` maps party names to their tones, to name whose tone a stray is, and which present
    tones a distortion product comes from.
    """
    present_sources = {
        party: f for party, f in known.items() if any(t.present and abs(t.frequency - f) <= 0.5 for t in report.tones)
    }
    found = []
    for t in report.tones:
        if not t.present or t.duration_s < min_s or any(abs(t.frequency - a) <= 0.5 for a in allowed):
            continue
        owner = next((party for party, f in known.items() if abs(f - t.frequency) <= 0.5), None)
        found.append(_Stray(f"{t.frequency:g} Hz" + (f" ({owner}'s tone)" if owner else ""), t, False))
    extra = report.strongest_unexpected
    if extra is not None and extra.present and extra.duration_s >= min_s:
        artefact = _artefact(extra.frequency, present_sources, report.sample_rate)
        if artefact is None:
            found.append(_Stray(f"{extra.frequency:g} Hz (no party's tone)", extra, False))
        else:
            found.append(_Stray(f"{extra.frequency:g} Hz ({artefact})", extra, True))
    return sorted(found, key=lambda stray: -stray.tone.level_dbfs)


def _stray_text(strays: Sequence[_Stray]) -> str:
    return ", ".join(stray.text() for stray in strays)


def _distortion_text(listener: str, strays: Sequence[_Stray], report: AudioReport) -> str:
    return (
        f"{listener} hears {_stray_text(strays)}: the path distorts or clips "
        f"(peak {report.peak_dbfs:.1f} dBFS in {report.source}; check gain and level settings)"
    )


def _gaps(t: ToneReport) -> str:
    if len(t.segments) <= 1:
        return ""
    holes = [b[0] - a[1] for a, b in itertools.pairwise(t.segments)]
    return f", {len(holes)} gap(s), longest {max(holes):.2f} s"


def _weakness(
    t: ToneReport, listener: str, speaker: str, min_coverage: float, min_level_dbfs: float | None
) -> str | None:
    if t.coverage < min_coverage:
        return (
            f"{listener} hears {speaker}'s {t.frequency:g} Hz only {t.coverage:.0%} of the analysed "
            f"{t.analysed_s:.1f} s (required {min_coverage:.0%}{_gaps(t)})"
        )
    if min_level_dbfs is not None and t.level_dbfs < min_level_dbfs:
        return (
            f"{listener} hears {speaker}'s {t.frequency:g} Hz at {t.level_dbfs:.1f} dBFS, "
            f"below the required {min_level_dbfs:g} dBFS"
        )
    return None


def _path_figures(speaker: str, listener: str, t: ToneReport, recording: AudioReport) -> dict[str, Any]:
    return {"from": speaker, "to": listener, "recording": recording.source, **t.to_dict()}


# --- two-way audio ------------------------------------------------------------------------------


def judge_two_way(
    a_received: AudioReport,
    b_received: AudioReport,
    a_tone: float,
    b_tone: float,
    *,
    a_name: str = "A",
    b_name: str = "B",
    min_coverage: float = 0.8,
    min_level_dbfs: float | None = None,
    allow_echo: bool = False,
    min_stray_s: float = 0.2,
    min_analysed_s: float = 1.0,
    known_tones: Mapping[str, float] | None = None,
) -> MediaVerdict:
    """Does A hear B's tone and B hear A's tone, and nothing else?

    ``a_received`` is A's recording (where B's tone should be); ``known_tones`` maps other party
    names to their tones so a stray tone can be attributed in the reason.
    """
    a_tone, b_tone = _check_tone(a_tone, "a_tone"), _check_tone(b_tone, "b_tone")
    if abs(a_tone - b_tone) <= 0.5:
        raise ValueError(f"{a_name} and {b_name} must send different tones, both send {a_tone:g} Hz")
    if (v := _inconclusive("two_way", {a_name: a_received, b_name: b_received}, min_analysed_s)) is not None:
        return v
    known = {a_name: a_tone, b_name: b_tone, **(known_tones or {})}
    a_hears_b = _heard(a_received, b_tone, a_name, b_name)
    b_hears_a = _heard(b_received, a_tone, b_name, a_name)
    allowed_a = [b_tone, a_tone] if allow_echo else [b_tone]
    allowed_b = [a_tone, b_tone] if allow_echo else [a_tone]
    if not allow_echo:
        _heard(a_received, a_tone, a_name, a_name)  # the echo check needs the own tone analysed
        _heard(b_received, b_tone, b_name, b_name)
    strays_a = _strays(a_received, allowed_a, min_stray_s, known)
    strays_b = _strays(b_received, allowed_b, min_stray_s, known)
    figures = {
        "paths": [
            _path_figures(a_name, b_name, b_hears_a, b_received),
            _path_figures(b_name, a_name, a_hears_b, a_received),
        ],
        "recordings": {a_name: a_received.to_dict(), b_name: b_received.to_dict()},
        "thresholds": {"min_coverage": min_coverage, "min_level_dbfs": min_level_dbfs, "min_stray_s": min_stray_s},
    }

    def also(listener: str, strays: list[_Stray]) -> str:
        return f"; {listener} hears {_stray_text(strays)} instead" if strays else ""

    if not a_hears_b.present and not b_hears_a.present:
        return MediaVerdict(
            "two_way",
            MediaOutcome.NO_AUDIO,
            f"No audio in either direction: {a_name} does not hear {b_name}'s {b_tone:g} Hz "
            f"({a_received.silence_fraction:.0%} of {a_received.source} is silent{also(a_name, strays_a)}) and "
            f"{b_name} does not hear {a_name}'s {a_tone:g} Hz ({b_received.silence_fraction:.0%} of "
            f"{b_received.source} is silent{also(b_name, strays_b)}). Check that RTP flows at all: codec "
            "negotiation, ports and firewall, and that each recorder is connected to the call's audio.",
            figures,
        )
    for speaker, listener, heard, other, rec, strays in (
        (a_name, b_name, b_hears_a, a_hears_b, b_received, strays_b),
        (b_name, a_name, a_hears_b, b_hears_a, a_received, strays_a),
    ):
        if not heard.present:
            return MediaVerdict(
                "two_way",
                MediaOutcome.ONE_WAY,
                f"One-way audio: {listener} does not hear {speaker} ({heard.describe()} in {rec.source}, "
                f"which is {rec.silence_fraction:.0%} silent{also(listener, strays)}) while {speaker} hears "
                f"{listener} ({other.describe()}). Check the media path from {speaker} to {listener}: the "
                "address and port in the SDP that RTP is sent to (NAT, SDP rewriting by the gateway), the "
                "a=sendonly/recvonly/inactive direction, and SRTP keys.",
                figures,
            )
    problems, weak = [], []
    for listener, own, strays, rec in (
        (a_name, a_tone, strays_a, a_received),
        (b_name, b_tone, strays_b, b_received),
    ):
        echo = [s for s in strays if abs(s.tone.frequency - own) <= 0.5]
        foreign = [s for s in strays if abs(s.tone.frequency - own) > 0.5 and not s.distortion]
        distortion = [s for s in strays if s.distortion]
        if echo:
            problems.append(
                f"{listener} hears its own {own:g} Hz tone at {echo[0].tone.level_dbfs:.0f} dBFS: audio is "
                "looped back (echo) somewhere in the path"
            )
        if foreign:
            problems.append(
                f"{listener} also hears {_stray_text(foreign)}: media from another party or call is mixed in"
            )
        if distortion:
            weak.append(_distortion_text(listener, distortion, rec))
    if problems:
        return MediaVerdict(
            "two_way", MediaOutcome.UNEXPECTED_AUDIO, "Unexpected audio: " + "; ".join(problems) + ".", figures
        )
    weak += [
        w
        for w in (
            _weakness(a_hears_b, a_name, b_name, min_coverage, min_level_dbfs),
            _weakness(b_hears_a, b_name, a_name, min_coverage, min_level_dbfs),
        )
        if w
    ]
    if weak:
        hint = (
            " Look for packet loss, jitter-buffer underruns or a media path switched mid-call in the capture "
            "and RTCP reports."
            if any(t.coverage < min_coverage for t in (a_hears_b, b_hears_a))
            else ""
        )
        return MediaVerdict(
            "two_way", MediaOutcome.DEGRADED, "Degraded audio: " + "; ".join(weak) + "." + hint, figures
        )
    return MediaVerdict(
        "two_way",
        MediaOutcome.PASS,
        f"Two-way audio: {a_name} hears {b_name} ({a_hears_b.describe()}) and {b_name} hears {a_name} "
        f"({b_hears_a.describe()}).",
        figures,
    )


# --- hold ---------------------------------------------------------------------------------------


def judge_hold(
    holder_received: AudioReport,
    held_received: AudioReport,
    holder_tone: float,
    held_tone: float,
    *,
    holder_name: str = "holder",
    held_name: str = "held party",
    music_on_hold: bool = False,
    min_silence_fraction: float = 0.9,
    min_leak_s: float = 0.2,
    min_analysed_s: float = 1.0,
) -> MediaVerdict:
    """Is the call silent both ways while on hold?

    Analyse only the hold phase (detector ``window`` and ``media_changes`` at the re-INVITE).
    With ``music_on_hold`` the held party may hear audio, but never the holder's own tone.
    """
    holder_tone = _check_tone(holder_tone, "holder_tone")
    held_tone = _check_tone(held_tone, "held_tone")
    recordings = {holder_name: holder_received, held_name: held_received}
    if (v := _inconclusive("hold", recordings, min_analysed_s)) is not None:
        return v
    held_hears_holder = _heard(held_received, holder_tone, held_name, holder_name)
    holder_hears_held = _heard(holder_received, held_tone, holder_name, held_name)
    held_leak = held_hears_holder.present and held_hears_holder.duration_s >= min_leak_s
    holder_leak = holder_hears_held.present and holder_hears_held.duration_s >= min_leak_s
    problems = []
    if held_leak:
        problems.append(
            f"{held_name} still hears {holder_name} during hold ({held_hears_holder.describe()}): the holder's "
            "audio reaches a party that should hear nothing from it (privacy leak)"
        )
    if holder_leak:
        problems.append(
            f"{holder_name} still hears {held_name} during hold ({holder_hears_held.describe()}): the held "
            "side keeps sending although the hold offer made it recvonly/inactive (RFC 3264 section 8.4)"
        )
    if not holder_leak and holder_received.silence_fraction < min_silence_fraction:
        problems.append(
            f"{holder_name}'s side is not silent: {holder_received.silence_fraction:.0%} silent "
            f"(required {min_silence_fraction:.0%}), {holder_received.rms_dbfs:.0f} dBFS RMS"
        )
    if not held_leak and not music_on_hold and held_received.silence_fraction < min_silence_fraction:
        problems.append(
            f"{held_name}'s side is not silent: {held_received.silence_fraction:.0%} silent "
            f"(required {min_silence_fraction:.0%}), {held_received.rms_dbfs:.0f} dBFS RMS; if the "
            "gateway plays music on hold, judge with music_on_hold=True"
        )
    figures = {
        "paths": [
            _path_figures(holder_name, held_name, held_hears_holder, held_received),
            _path_figures(held_name, holder_name, holder_hears_held, holder_received),
        ],
        "silence_fraction": {
            holder_name: holder_received.silence_fraction,
            held_name: held_received.silence_fraction,
        },
        "recordings": {n: r.to_dict() for n, r in recordings.items()},
        "thresholds": {
            "min_silence_fraction": min_silence_fraction,
            "min_leak_s": min_leak_s,
            "music_on_hold": music_on_hold,
        },
    }
    if problems:
        return MediaVerdict("hold", MediaOutcome.AUDIO_LEAK, "Audio during hold: " + "; ".join(problems) + ".", figures)
    moh = (
        f"; {held_name} hears music on hold at {held_received.rms_dbfs:.0f} dBFS, not {holder_name}'s tone"
        if music_on_hold and held_received.silence_fraction < min_silence_fraction
        else ""
    )
    return MediaVerdict(
        "hold",
        MediaOutcome.PASS,
        f"Hold is silent: neither {holder_name}'s {holder_tone:g} Hz nor {held_name}'s {held_tone:g} Hz is heard "
        f"({holder_name} {holder_received.silence_fraction:.0%} silent over {holder_received.analysed_s:.1f} s, "
        f"{held_name} {held_received.silence_fraction:.0%} silent over {held_received.analysed_s:.1f} s){moh}.",
        figures,
    )


# --- mute ---------------------------------------------------------------------------------------


def judge_mute(
    muted_received: AudioReport,
    other_received: AudioReport,
    muted_tone: float,
    other_tone: float,
    *,
    muted_name: str = "muted party",
    other_name: str = "other party",
    min_coverage: float = 0.8,
    require_silence: bool = True,
    min_silence_fraction: float = 0.9,
    min_leak_s: float = 0.2,
    min_analysed_s: float = 1.0,
) -> MediaVerdict:
    """Is the muted side silent at the other party while the other direction still flows?"""
    muted_tone = _check_tone(muted_tone, "muted_tone")
    other_tone = _check_tone(other_tone, "other_tone")
    recordings = {muted_name: muted_received, other_name: other_received}
    if (v := _inconclusive("mute", recordings, min_analysed_s)) is not None:
        return v
    other_hears_muted = _heard(other_received, muted_tone, other_name, muted_name)
    muted_hears_other = _heard(muted_received, other_tone, muted_name, other_name)
    figures = {
        "paths": [
            _path_figures(muted_name, other_name, other_hears_muted, other_received),
            _path_figures(other_name, muted_name, muted_hears_other, muted_received),
        ],
        "silence_fraction": {other_name: other_received.silence_fraction},
        "recordings": {n: r.to_dict() for n, r in recordings.items()},
        "thresholds": {
            "min_coverage": min_coverage,
            "require_silence": require_silence,
            "min_silence_fraction": min_silence_fraction,
            "min_leak_s": min_leak_s,
        },
    }
    leaks = []
    if other_hears_muted.present and other_hears_muted.duration_s >= min_leak_s:
        leaks.append(f"{other_name} still hears {muted_name} ({other_hears_muted.describe()})")
    elif require_silence and other_received.silence_fraction < min_silence_fraction:
        leaks.append(
            f"{other_name} hears audio from {muted_name}'s side although its tone is gone: "
            f"{other_received.silence_fraction:.0%} silent (required {min_silence_fraction:.0%}), "
            f"{other_received.rms_dbfs:.0f} dBFS RMS"
        )
    if leaks:
        return MediaVerdict(
            "mute",
            MediaOutcome.AUDIO_LEAK,
            f"Mute does not silence {muted_name}: " + "; ".join(leaks) + ".",
            figures,
        )
    if not muted_hears_other.present:
        return MediaVerdict(
            "mute",
            MediaOutcome.NO_AUDIO,
            f"Mute cut both directions: {muted_name} no longer hears {other_name} ({muted_hears_other.describe()} "
            f"in {muted_received.source}). Mute must only stop {muted_name}'s own audio; check whether the "
            "device put the call on hold or stopped receiving RTP.",
            figures,
        )
    weak = _weakness(muted_hears_other, muted_name, other_name, min_coverage, None)
    if weak:
        return MediaVerdict("mute", MediaOutcome.DEGRADED, f"Degraded audio while muted: {weak}.", figures)
    return MediaVerdict(
        "mute",
        MediaOutcome.PASS,
        f"Mute works: {other_name} does not hear {muted_name}'s {muted_tone:g} Hz "
        f"({other_received.silence_fraction:.0%} silent over {other_received.analysed_s:.1f} s) while "
        f"{muted_name} still hears {other_name} ({muted_hears_other.describe()}).",
        figures,
    )


# --- conference ---------------------------------------------------------------------------------


def judge_conference(
    reports_by_party: Mapping[str, AudioReport],
    tones_by_party: Mapping[str, float],
    *,
    min_coverage: float = 0.8,
    expect_own_tone: bool | None = None,
    min_stray_s: float = 0.2,
    min_analysed_s: float = 1.0,
) -> MediaVerdict:
    """Does every party hear every other party's tone?

    ``expect_own_tone``: ``None`` ignores a party's own tone in its recording; ``False`` forbids
    it (the mixer must send N-1 mixes, so hearing oneself is echo); ``True`` requires it (the
    recording is the full mix, e.g. taken at the conference bridge).
    """
    parties = list(tones_by_party)
    if set(parties) != set(reports_by_party):
        raise ValueError(
            f"tones are given for {sorted(parties)} but recordings for {sorted(reports_by_party)}; "
            "every party needs both"
        )
    if len(parties) < 3:
        raise ValueError(f"a conference needs at least three parties, got {len(parties)}; use judge_two_way")
    tones = {p: _check_tone(tones_by_party[p], f"{p}'s tone") for p in parties}
    if len({round(f, 1) for f in tones.values()}) != len(tones):
        raise ValueError(f"every party needs its own tone, got {tones}")
    if (v := _inconclusive("conference", dict(reports_by_party), min_analysed_s)) is not None:
        return v

    paths = []
    missing, weak, problems = [], [], []
    heard_pairs = set()
    for listener in parties:
        report = reports_by_party[listener]
        for speaker in parties:
            if speaker == listener:
                continue
            t = _heard(report, tones[speaker], listener, speaker)
            paths.append(_path_figures(speaker, listener, t, report))
            if not t.present:
                missing.append((speaker, listener))
            else:
                heard_pairs.add((speaker, listener))
                if (w := _weakness(t, listener, speaker, min_coverage, None)) is not None:
                    weak.append(w)
        own = _heard(report, tones[listener], listener, listener)
        if expect_own_tone is True and not own.present:
            problems.append(
                f"{listener}'s recording lacks its own {tones[listener]:g} Hz although the full mix was expected"
            )
        if expect_own_tone is False and own.present and own.duration_s >= min_stray_s:
            problems.append(
                f"{listener} hears its own {tones[listener]:g} Hz at {own.level_dbfs:.0f} dBFS: the mixer sends "
                "it back (echo)"
            )
        strays = _strays(report, list(tones.values()), min_stray_s, tones)
        foreign = [s for s in strays if not s.distortion]
        if foreign:
            problems.append(f"{listener} hears {_stray_text(foreign)}, which belongs to no conference party")
        distortion = [s for s in strays if s.distortion]
        if distortion:
            weak.append(_distortion_text(listener, distortion, report))

    figures = {
        "paths": paths,
        "tones_by_party": tones,
        "recordings": {p: reports_by_party[p].to_dict() for p in parties},
        "thresholds": {"min_coverage": min_coverage, "expect_own_tone": expect_own_tone, "min_stray_s": min_stray_s},
    }
    n_paths = len(parties) * (len(parties) - 1)
    if len(missing) == n_paths:
        return MediaVerdict(
            "conference",
            MediaOutcome.NO_AUDIO,
            f"No audio in the conference: none of the {len(parties)} parties hears any other. Check that the "
            "conference bridge connects the calls at all.",
            figures,
        )
    if missing:
        listed = []
        for speaker, listener in missing:
            back = " (the reverse works)" if (listener, speaker) in heard_pairs else ""
            listed.append(f"{listener} does not hear {speaker} ({tones[speaker]:g} Hz){back}")
        return MediaVerdict(
            "conference",
            MediaOutcome.ONE_WAY,
            f"Missing conference paths ({len(missing)} of {n_paths}): " + "; ".join(listed) + ". Check how the "
            "mixer connects these legs, and the media path of each leg named.",
            figures,
        )
    if problems:
        return MediaVerdict(
            "conference", MediaOutcome.UNEXPECTED_AUDIO, "Unexpected audio: " + "; ".join(problems) + ".", figures
        )
    if weak:
        return MediaVerdict(
            "conference", MediaOutcome.DEGRADED, "Degraded conference audio: " + "; ".join(weak) + ".", figures
        )
    summary = "; ".join(f"{p} hears " + ", ".join(f"{tones[s]:g}" for s in parties if s != p) + " Hz" for p in parties)
    return MediaVerdict(
        "conference",
        MediaOutcome.PASS,
        f"All {n_paths} conference paths carry audio: {summary}.",
        figures,
    )


# --- DTMF ---------------------------------------------------------------------------------------


def judge_dtmf(expected: str, detected: Sequence[DtmfDigit], *, receiver: str = "receiver") -> MediaVerdict:
    """Did the in-band digits heard by ``receiver`` match the digits sent, in order?"""
    heard = "".join(d.digit for d in detected)
    figures = {"expected": expected, "heard": heard, "digits": [d.to_dict() for d in detected]}
    if heard == expected.upper():
        return MediaVerdict("dtmf", MediaOutcome.PASS, f"{receiver} heard the in-band digits {heard!r}.", figures)
    if not heard:
        return MediaVerdict(
            "dtmf",
            MediaOutcome.NO_AUDIO,
            f"{receiver} heard no in-band DTMF (expected {expected!r}); check the DTMF method negotiated "
            "(RFC 4733 events or SIP INFO are not audio) and the audio path.",
            figures,
        )
    changes = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=expected.upper(), b=heard, autojunk=False).get_opcodes():
        if op == "delete":
            changes.append(f"missing {expected[i1:i2]!r}")
        elif op == "insert":
            changes.append(f"extra {heard[j1:j2]!r}")
        elif op == "replace":
            changes.append(f"{expected[i1:i2]!r} heard as {heard[j1:j2]!r}")
    return MediaVerdict(
        "dtmf",
        MediaOutcome.MISMATCH,
        f"{receiver} heard {heard!r} instead of {expected!r}: " + ", ".join(changes) + ".",
        figures,
    )
