"""WAV reading: every encoding a recorder may write, and a clear error for every broken file."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from harness.media.tones import tone
from harness.media.wav import WavError, read_wav, write_wav

SIGNAL = tone(1720, 0.5, 8000, level_dbfs=-12)


def _fmt(tag: int = 1, channels: int = 1, rate: int = 8000, bits: int = 16, block_align: int | None = None) -> bytes:
    align = channels * bits // 8 if block_align is None else block_align
    body = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    return b"fmt " + struct.pack("<I", len(body)) + body


def _riff(*chunks: bytes, riff_size: int | None = None) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


def _data(raw: bytes, declared: int | None = None) -> bytes:
    return b"data" + struct.pack("<I", len(raw) if declared is None else declared) + raw


PCM = (np.round(SIGNAL * 32767).astype("<i2")).tobytes()


@pytest.mark.parametrize(
    ("encoding", "tolerance"),
    [
        ("pcm8", 1 / 128),
        ("pcm16", 1 / 32768),
        ("pcm24", 1 / 2**23),
        ("pcm32", 1 / 2**31),
        ("float32", 1e-7),
        ("float64", 0.0),
        ("mulaw", 0.02),
        ("alaw", 0.02),
    ],
)
def test_round_trip_each_encoding(tmp_path: Path, encoding: str, tolerance: float) -> None:
    path = tmp_path / f"{encoding}.wav"
    write_wav(path, SIGNAL, 8000, encoding=encoding)
    audio = read_wav(path)
    assert audio.sample_rate == 8000
    assert audio.channels == 1
    assert audio.encoding == encoding
    assert audio.source == str(path)
    assert audio.duration_s == pytest.approx(0.5)
    np.testing.assert_allclose(audio.samples, SIGNAL, atol=tolerance)
    assert not audio.samples.flags.writeable


def test_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    write_wav(path, np.stack([SIGNAL, np.zeros_like(SIGNAL)], axis=1), 16000)
    audio = read_wav(path)
    assert audio.channels == 2
    assert audio.sample_rate == 16000
    np.testing.assert_allclose(audio.samples, SIGNAL / 2, atol=1 / 32768)


def test_extensible_format_and_odd_chunks(tmp_path: Path) -> None:
    ext = struct.pack("<HHIIHHHHI16s", 0xFFFE, 1, 8000, 16000, 2, 16, 22, 16, 4, b"\x01\x00" + bytes(14))
    fmt = b"fmt " + struct.pack("<I", len(ext)) + ext
    odd = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\x00"  # odd size, padded to even
    path = tmp_path / "ext.wav"
    path.write_bytes(_riff(fmt, odd, _data(PCM)))
    audio = read_wav(path)
    assert audio.encoding == "pcm16"
    np.testing.assert_allclose(audio.samples, SIGNAL, atol=2 / 32768)


def _error(tmp_path: Path, content: bytes, match: str, name: str = "rec.wav", **kwargs) -> WavError:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(WavError, match=match) as info:
        read_wav(path, **kwargs)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WavError, match="no such file") as info:
        read_wav(tmp_path / "absent.wav")
    assert "absent.wav" in str(info.value)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(WavError, match="cannot read"):
        read_wav(tmp_path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "too short"),
        (b"RIFF\x00", "too short"),
        (b"hello, this is not audio at all", "not a WAV file"),
        (b"RIFX" + bytes(8), "not supported"),
        (b"RIFF" + struct.pack("<I", 4) + b"AVI ", "not b'WAVE'"),
    ],
)
def test_not_a_wav(tmp_path: Path, content: bytes, match: str) -> None:
    _error(tmp_path, content, match)


def test_header_written_but_no_audio(tmp_path: Path) -> None:
    # What a recorder leaves when it is created and never fed or closed.
    _error(tmp_path, _riff(_fmt(), _data(b""), riff_size=0), "no audio data")


def test_header_not_finalised(tmp_path: Path) -> None:
    content = _riff(_fmt(), _data(PCM, declared=0), riff_size=0)
    err = _error(tmp_path, content, "not finalised")
    assert "strict=False" in str(err)
    audio = read_wav(tmp_path / "rec.wav", strict=False)
    np.testing.assert_allclose(audio.samples, SIGNAL, atol=2 / 32768)


def test_no_data_chunk(tmp_path: Path) -> None:
    _error(tmp_path, _riff(_fmt()), "no 'data' chunk")


def test_no_fmt_chunk(tmp_path: Path) -> None:
    _error(tmp_path, _riff(), "no 'fmt ' chunk")
    _error(tmp_path, _riff(_data(PCM)), "before any 'fmt '", name="order.wav")


def test_truncated_data(tmp_path: Path) -> None:
    content = _riff(_fmt(), _data(PCM))[:-1000]
    _error(tmp_path, content, "truncated: the 'data' chunk declares")
    audio = read_wav(tmp_path / "rec.wav", strict=False)
    assert len(audio.samples) == (len(PCM) - 1000) // 2


def test_truncated_header(tmp_path: Path) -> None:
    _error(tmp_path, _riff(_fmt())[:30], "truncated: chunk b'fmt '")


def test_partial_sample_frame(tmp_path: Path) -> None:
    _error(tmp_path, _riff(_fmt(), _data(PCM + b"\x01")), "whole number")


@pytest.mark.parametrize(
    ("fmt", "match"),
    [
        (_fmt(tag=0x11, bits=4, block_align=256), "IMA ADPCM"),
        (_fmt(bits=12), "12 bits"),
        (_fmt(channels=0), "0 channels"),
        (_fmt(rate=0), "0 Hz"),
        (_fmt(block_align=4), "block align"),
        (b"fmt " + struct.pack("<I", 8) + bytes(8), "at least 16"),
    ],
)
def test_bad_format_chunk(tmp_path: Path, fmt: bytes, match: str) -> None:
    _error(tmp_path, _riff(fmt, _data(PCM)), match)


def test_float_nan(tmp_path: Path) -> None:
    raw = np.array([0.0, np.nan], dtype="<f4").tobytes()
    _error(tmp_path, _riff(_fmt(tag=3, bits=32), _data(raw)), "NaN")


def test_write_wav_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown WAV encoding"):
        write_wav(tmp_path / "x.wav", SIGNAL, 8000, encoding="mp3")
    with pytest.raises(ValueError, match="sample rate"):
        write_wav(tmp_path / "x.wav", SIGNAL, 0)
    with pytest.raises(ValueError, match="NaN"):
        write_wav(tmp_path / "x.wav", np.array([np.nan]), 8000)
