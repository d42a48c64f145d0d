"""Media checks for sipgw-lab: tone plans, tone and DTMF detection, audio verdicts, MOS estimates.

Every emulated party sends its own tone (:class:`TonePlan`) and records what it receives; the
:class:`ToneDetector` turns each recording into an :class:`AudioReport`, and the ``judge_*``
functions turn reports into a :class:`MediaVerdict` with a reason and the figures as evidence.
"""

from harness.media.detector import FLOOR_DBFS, SNR_CAP_DB, AudioReport, DetectorConfig, ToneDetector, ToneReport
from harness.media.dtmf import DtmfConfig, DtmfDigit, detect_dtmf
from harness.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from harness.media.goertzel import frame_view, goertzel_power, hann, sliding_tone_power, tone_power
from harness.media.mos import CODEC_IMPAIRMENTS, CodecImpairment, MosEstimate, estimate_mos, r_to_mos
from harness.media.tones import (
    DEFAULT_PLAN_HZ,
    PlanConflict,
    TonePlan,
    check_plan,
    dtmf_signal,
    silence,
    tone,
    tone_with_gap,
    tone_with_noise,
    tones,
    white_noise,
)
from harness.media.verdicts import (
    MediaOutcome,
    MediaVerdict,
    judge_conference,
    judge_dtmf,
    judge_hold,
    judge_mute,
    judge_two_way,
)
from harness.media.wav import WavAudio, WavError, read_wav, write_wav

__all__ = [
    "CODEC_IMPAIRMENTS",
    "DEFAULT_PLAN_HZ",
    "FLOOR_DBFS",
    "SNR_CAP_DB",
    "AudioReport",
    "CodecImpairment",
    "DetectorConfig",
    "DtmfConfig",
    "DtmfDigit",
    "MediaOutcome",
    "MediaVerdict",
    "MosEstimate",
    "PlanConflict",
    "ToneDetector",
    "TonePlan",
    "ToneReport",
    "WavAudio",
    "WavError",
    "alaw_decode",
    "alaw_encode",
    "check_plan",
    "detect_dtmf",
    "dtmf_signal",
    "estimate_mos",
    "frame_view",
    "goertzel_power",
    "hann",
    "judge_conference",
    "judge_dtmf",
    "judge_hold",
    "judge_mute",
    "judge_two_way",
    "r_to_mos",
    "read_wav",
    "silence",
    "sliding_tone_power",
    "tone",
    "tone_power",
    "tone_with_gap",
    "tone_with_noise",
    "tones",
    "ulaw_decode",
    "ulaw_encode",
    "white_noise",
    "write_wav",
]
