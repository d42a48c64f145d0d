"""G.711 µ-law and A-law companding in numpy.

Used to put test signals through the same quantisation a PCMU/PCMA call applies, and to read
WAV files stored in G.711 (format tags 6 and 7). The segment/mantissa arithmetic follows ITU-T
G.711 Tables 1 and 2: µ-law works on 14-bit linear samples with a bias of 33 (132 at 16-bit
scale), A-law on 13-bit samples; both decoders return the midpoint of the quantisation interval
at 16-bit scale, and both encoders invert bits as the standard requires (all bits for µ-law,
even bits, 0x55, for A-law).
"""

from __future__ import annotations

import numpy as np

__all__ = ["alaw_decode", "alaw_encode", "ulaw_decode", "ulaw_encode"]

_ULAW_BIAS = 0x84  # 33 at 14-bit resolution, scaled to 16 bits
_ULAW_CLIP = 32635  # largest magnitude that still fits segment 7 once biased
# Upper end of each A-law segment at 13-bit resolution (after the 3-bit shift).
_ALAW_SEGMENT_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def _as_int16_range(pcm: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1) or integer 16-bit samples, as int32 on the 16-bit scale."""
    a = np.asarray(pcm)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise ValueError("G.711 encoder input contains NaN or infinite samples")
        return np.clip(np.round(a * 32768.0), -32768, 32767).astype(np.int32)
    if a.dtype.kind in "iu":
        return np.clip(a.astype(np.int64), -32768, 32767).astype(np.int32)
    raise TypeError(f"G.711 encoder needs float or integer samples, got dtype {a.dtype}")


def ulaw_encode(pcm: np.ndarray) -> np.ndarray:
    """µ-law code bytes (uint8) for float samples in [-1, 1) or int16 samples."""
    x = _as_int16_range(pcm)
    negative = x < 0
    magnitude = np.minimum(np.abs(x), _ULAW_CLIP) + _ULAW_BIAS  # 132 .. 32767
    # Segment = position of the leading one above bit 7 (magnitude >= 128 always).
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    code = (exponent << 4) | mantissa | np.where(negative, 0x80, 0)
    return (~code & 0xFF).astype(np.uint8)


def ulaw_decode(codes: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1) for µ-law code bytes."""
    c = ~np.asarray(codes, dtype=np.uint8).astype(np.int32) & 0xFF
    exponent = (c >> 4) & 0x07
    mantissa = c & 0x0F
    magnitude = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return np.where(c & 0x80, -magnitude, magnitude).astype(np.float64) / 32768.0


def alaw_encode(pcm: np.ndarray) -> np.ndarray:
    """A-law code bytes (uint8) for float samples in [-1, 1) or int16 samples."""
    x = _as_int16_range(pcm) >> 3  # 13-bit, arithmetic shift keeps the sign
    positive = x >= 0
    magnitude = np.where(positive, x, -x - 1)
    segment = np.searchsorted(_ALAW_SEGMENT_END, magnitude, side="left")
    shift = np.where(segment < 2, 1, segment)
    code = (np.minimum(segment, 7) << 4) | ((magnitude >> shift) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)  # beyond the last segment: clip to the maximum
    sign = np.where(positive, 0x80, 0x00)
    return ((code | sign) ^ 0x55).astype(np.uint8)


def alaw_decode(codes: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1) for A-law code bytes."""
    a = np.asarray(codes, dtype=np.uint8).astype(np.int32) ^ 0x55
    segment = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(segment == 0, t + 8, (t + 0x108) << np.maximum(segment - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.float64) / 32768.0
