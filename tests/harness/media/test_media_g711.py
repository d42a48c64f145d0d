"""G.711 companding against the values of the ITU-T tables."""

from __future__ import annotations

import numpy as np
import pytest

from harness.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from harness.media.tones import tone

ALL_CODES = np.arange(256, dtype=np.uint8)
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32)


@pytest.mark.parametrize(
    ("decode", "code", "value"),
    [
        (ulaw_decode, 0x00, -32124),
        (ulaw_decode, 0x80, 32124),
        (ulaw_decode, 0xFF, 0),
        (ulaw_decode, 0x7F, 0),
        (ulaw_decode, 0xFE, 8),
        (alaw_decode, 0xD5, 8),
        (alaw_decode, 0x55, -8),
        (alaw_decode, 0xAA, 32256),
        (alaw_decode, 0x2A, -32256),
    ],
)
def test_known_code_values(decode, code: int, value: int) -> None:
    assert decode(np.array([code], dtype=np.uint8))[0] * 32768 == value


def test_ulaw_codes_round_trip() -> None:
    again = ulaw_encode(ulaw_decode(ALL_CODES))
    expected = ALL_CODES.copy()
    expected[0x7F] = 0xFF  # "negative zero" decodes to 0, which encodes as positive zero
    np.testing.assert_array_equal(again, expected)


def test_alaw_codes_round_trip() -> None:
    np.testing.assert_array_equal(alaw_encode(alaw_decode(ALL_CODES)), ALL_CODES)


def test_decoders_are_monotonic_in_level() -> None:
    assert len(np.unique(ulaw_decode(ALL_CODES))) == 255
    assert len(np.unique(alaw_decode(ALL_CODES))) == 256


@pytest.mark.parametrize(("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)])
def test_quantisation_error_is_bounded_for_every_int16(encode, decode) -> None:
    # Logarithmic quantisation: the error stays within half a step, about 1/32 of the magnitude
    # (plus the fixed steps near zero), for every 16-bit input.
    err = decode(encode(ALL_INT16.astype(np.int16))) * 32768 - ALL_INT16
    bound = (np.abs(ALL_INT16) + 132) / 32 + 8
    assert np.all(np.abs(err) <= bound)


@pytest.mark.parametrize(("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)])
def test_sine_snr_matches_g711(encode, decode) -> None:
    x = tone(1720, 2.0, 8000, level_dbfs=-12)
    y = decode(encode(x))
    snr = 10 * np.log10(np.sum(x**2) / np.sum((y - x) ** 2))
    assert 35 < snr < 42  # G.711 gives about 38 dB over most of its range


def test_encoder_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="NaN"):
        ulaw_encode(np.array([0.0, np.nan]))
    with pytest.raises(TypeError, match="dtype"):
        alaw_encode(np.array(["a"]))


def test_float_input_clips_at_full_scale() -> None:
    assert ulaw_decode(ulaw_encode(np.array([2.0, -2.0]))).tolist() == [32124 / 32768, -32124 / 32768]
