"""Read (and write) the WAV files the emulated parties record.

pjsua2's ``AudioMediaRecorder`` writes mono 16-bit PCM at the conference bridge rate (8 or 16 kHz),
but a recording may also come from another tool, so the reader accepts PCM 8/16/24/32-bit, IEEE
float 32/64-bit and G.711 µ-law/A-law, mono or multi-channel (averaged to mono), plain or
WAVE_FORMAT_EXTENSIBLE.

A recorder fills in the RIFF and ``data`` chunk sizes only when it is closed, so a file read while
the recorder is still open has a header that announces no audio (pjsua2 trap: allow ~100 ms after
closing the recorder). ``read_wav`` says so instead of returning an empty or cut signal; pass
``strict=False`` to salvage whatever samples are on disk.

Every error is a :class:`WavError` that names the file and what is wrong with it.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

__all__ = ["WavAudio", "WavError", "read_wav", "write_wav"]

_PCM = 0x0001
_FLOAT = 0x0003
_ALAW = 0x0006
_ULAW = 0x0007
_EXTENSIBLE = 0xFFFE
_UNSIZED = 0xFFFFFFFF  # size placeholder some streaming writers use

_KNOWN_TAGS = {
    0x0002: "Microsoft ADPCM",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0040: "G.721 ADPCM",
    0x0045: "G.726 ADPCM",
    0x0055: "MPEG Layer 3",
    0x0064: "G.726 ADPCM",
    0x028F: "G.722",
}


class WavError(ValueError):
    """A recording that cannot be analysed; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True, slots=True)
class WavAudio:
    """Decoded audio: mono float64 samples (full scale 1.0) and where they came from."""

    samples: np.ndarray
    sample_rate: int
    channels: int
    encoding: str
    source: str

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True, slots=True)
class _Format:
    tag: int
    channels: int
    sample_rate: int
    block_align: int
    bits: int

    @property
    def encoding(self) -> str:
        if self.tag == _PCM:
            return f"pcm{self.bits}"
        if self.tag == _FLOAT:
            return f"float{self.bits}"
        return "alaw" if self.tag == _ALAW else "mulaw"


def _parse_fmt(path: str, body: bytes) -> _Format:
    if len(body) < 16:
        raise WavError(path, f"'fmt ' chunk is {len(body)} bytes, a WAV format needs at least 16")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE:
        if len(body) < 40:
            raise WavError(path, f"WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk is {len(body)} bytes, expected 40")
        tag = struct.unpack_from("<H", body, 24)[0]  # first two bytes of the sub-format GUID
    supported = {_PCM: (8, 16, 24, 32), _FLOAT: (32, 64), _ALAW: (8,), _ULAW: (8,)}
    if tag not in supported:
        name = _KNOWN_TAGS.get(tag, "unknown")
        raise WavError(
            path,
            f"unsupported encoding: format tag 0x{tag:04X} ({name}); expected PCM, IEEE float, A-law or µ-law",
        )
    if bits not in supported[tag]:
        raise WavError(path, f"unsupported sample size: {bits} bits for format tag 0x{tag:04X}")
    if channels < 1:
        raise WavError(path, "'fmt ' chunk declares 0 channels")
    if rate < 1:
        raise WavError(path, "'fmt ' chunk declares a sample rate of 0 Hz")
    if block_align != channels * (bits // 8):
        raise WavError(
            path,
            f"inconsistent 'fmt ' chunk: block align {block_align} bytes for {channels} channel(s) "
            f"of {bits}-bit samples (expected {channels * (bits // 8)})",
        )
    return _Format(tag, channels, rate, block_align, bits)


def _decode(fmt: _Format, raw: bytes) -> np.ndarray:
    """Interleaved samples as float64 in [-1, 1], shape (frames, channels)."""
    if fmt.tag == _PCM and fmt.bits == 8:
        values = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif fmt.tag == _PCM and fmt.bits == 16:
        values = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    elif fmt.tag == _PCM and fmt.bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v & 0x800000, v - 0x1000000, v)
        values = v.astype(np.float64) / 8388608.0
    elif fmt.tag == _PCM:
        values = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0
    elif fmt.tag == _FLOAT:
        values = np.frombuffer(raw, dtype="<f4" if fmt.bits == 32 else "<f8").astype(np.float64)
    elif fmt.tag == _ALAW:
        values = alaw_decode(np.frombuffer(raw, dtype=np.uint8))
    else:
        values = ulaw_decode(np.frombuffer(raw, dtype=np.uint8))
    return values.reshape(-1, fmt.channels)


def read_wav(path: str | os.PathLike[str], *, strict: bool = True) -> WavAudio:
    """Read a WAV recording as mono float64 samples.

    With ``strict`` (the default) a file whose header was never finalised (recorder still open)
    or whose data chunk is cut short is an error; with ``strict=False`` the whole sample frames
    present on disk are returned instead.
    """
    name = os.fspath(path)
    try:
        data = Path(name).read_bytes()
    except FileNotFoundError:
        raise WavError(name, "no such file (was the recording written?)") from None
    except OSError as exc:
        raise WavError(name, f"cannot read: {exc.strerror or exc}") from None

    if len(data) < 12:
        raise WavError(name, f"too short to be a WAV file ({len(data)} bytes)")
    # The RIFF size field is not trusted: writers patch it last, and the chunk walk below
    # checks every size against the bytes actually present.
    magic, _riff_size, form = struct.unpack_from("<4sI4s", data)
    if magic in (b"RIFX", b"RF64"):
        raise WavError(name, f"{magic.decode()} WAV files are not supported, only little-endian RIFF")
    if magic != b"RIFF":
        raise WavError(name, f"not a WAV file: starts with {data[:4]!r}, expected b'RIFF'")
    if form != b"WAVE":
        raise WavError(name, f"RIFF file of type {form!r}, not b'WAVE'")

    fmt: _Format | None = None
    offset = 12
    data_offset = data_size = -1
    while offset + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        body_start = offset + 8
        if chunk_id == b"data":
            if fmt is None:
                raise WavError(name, f"'data' chunk at byte {offset} comes before any 'fmt ' chunk")
            data_offset, data_size = body_start, size
            break
        if body_start + size > len(data):
            raise WavError(
                name,
                f"truncated: chunk {chunk_id!r} at byte {offset} declares {size} bytes "
                f"but the file ends {len(data) - body_start} bytes later",
            )
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(name, data[body_start : body_start + size])
        offset = body_start + size + (size & 1)  # chunks are padded to an even length

    if fmt is None:
        raise WavError(name, f"no 'fmt ' chunk in {len(data)} bytes: the header was never completed")
    if data_offset < 0:
        raise WavError(
            name,
            f"no 'data' chunk: header written but no audio ({len(data)} bytes). "
            "Was the recorder closed before the file was read?",
        )

    available = len(data) - data_offset
    if data_size in (0, _UNSIZED) and available == 0:
        raise WavError(
            name,
            "WAV header but no audio data (0 bytes): the recorder received nothing "
            "or was not closed before the file was read",
        )
    if data_size in (0, _UNSIZED):
        if strict:
            raise WavError(
                name,
                f"header not finalised: the 'data' chunk declares {'no' if data_size == 0 else 'an unknown'} "
                f"length but {available} bytes follow. The recorder was not closed (or the file was "
                "read too soon after closing it); pass strict=False to read what is on disk",
            )
        data_size = available
    elif data_size > available:
        if strict:
            raise WavError(
                name,
                f"truncated: the 'data' chunk declares {data_size} bytes but only {available} are present",
            )
        data_size = available

    usable = data_size - data_size % fmt.block_align
    if usable != data_size and strict:
        raise WavError(
            name,
            f"'data' chunk of {data_size} bytes is not a whole number of {fmt.block_align}-byte sample frames",
        )
    interleaved = _decode(fmt, data[data_offset : data_offset + usable])
    if fmt.tag == _FLOAT and not np.all(np.isfinite(interleaved)):
        raise WavError(name, "float samples contain NaN or infinity")
    mono = interleaved[:, 0] if fmt.channels == 1 else interleaved.mean(axis=1)
    mono = np.ascontiguousarray(mono)
    mono.flags.writeable = False
    return WavAudio(mono, fmt.sample_rate, fmt.channels, fmt.encoding, name)


_WRITE_ENCODINGS = {
    "pcm8": (_PCM, 8),
    "pcm16": (_PCM, 16),
    "pcm24": (_PCM, 24),
    "pcm32": (_PCM, 32),
    "float32": (_FLOAT, 32),
    "float64": (_FLOAT, 64),
    "alaw": (_ALAW, 8),
    "mulaw": (_ULAW, 8),
}


def write_wav(
    path: str | os.PathLike[str],
    samples: np.ndarray,
    sample_rate: int,
    *,
    encoding: str = "pcm16",
) -> None:
    """Write float samples (1-D mono, or 2-D frames x channels) as a finalised WAV file.

    Integer and G.711 encodings clip to full scale. Used by the tests and the benchmark.
    """
    if encoding not in _WRITE_ENCODINGS:
        raise ValueError(f"unknown WAV encoding {encoding!r}; choose one of {', '.join(_WRITE_ENCODINGS)}")
    if not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample rate must be a positive integer, got {sample_rate!r}")
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"samples must be 1-D or (frames, channels), got shape {np.shape(samples)}")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain NaN or infinity")
    tag, bits = _WRITE_ENCODINGS[encoding]
    flat = x.reshape(-1)
    if tag == _FLOAT:
        raw = flat.astype("<f4" if bits == 32 else "<f8").tobytes()
    elif tag == _ALAW:
        raw = alaw_encode(flat).tobytes()
    elif tag == _ULAW:
        raw = ulaw_encode(flat).tobytes()
    else:
        full = float(2 ** (bits - 1))
        ints = np.clip(np.round(flat * full), -full, full - 1).astype(np.int64)
        if bits == 8:
            raw = (ints + 128).astype(np.uint8).tobytes()
        elif bits == 16:
            raw = ints.astype("<i2").tobytes()
        elif bits == 24:
            u = ints & 0xFFFFFF
            raw = np.stack([u & 0xFF, (u >> 8) & 0xFF, (u >> 16) & 0xFF], axis=1).astype(np.uint8).tobytes()
        else:
            raw = ints.astype("<i4").tobytes()
    channels = x.shape[1]
    block_align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, sample_rate, sample_rate * block_align, block_align, bits)
    pad = b"\x00" if len(raw) % 2 else b""
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(raw)) + raw + pad
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
