"""RIFF/WAVE header checks for recordings (RFC 2361 / the Microsoft RIFF layout)."""

from __future__ import annotations

import struct


def wav_data_info(data: bytes) -> tuple[int, int, int, int] | None:
    """(data bytes, sample rate, channels, bits per sample) of a RIFF/WAVE file whose chunk sizes agree
    with its length; None while the writer has not fixed the header up yet (or the data is no WAV)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    if struct.unpack_from("<I", data, 4)[0] != len(data) - 8:
        return None
    pos = 12
    fmt: tuple[int, int, int] | None = None
    while pos + 8 <= len(data):
        cid = data[pos:pos + 4]
        size = struct.unpack_from("<I", data, pos + 4)[0]
        if cid == b"fmt " and size >= 16 and pos + 24 <= len(data):
            _, channels, rate = struct.unpack_from("<HHI", data, pos + 8)
            bits = struct.unpack_from("<H", data, pos + 22)[0]
            fmt = (rate, channels, bits)
        elif cid == b"data":
            if fmt is None or pos + 8 + size != len(data):
                return None
            return size, fmt[0], fmt[1], fmt[2]
        pos += 8 + size + (size % 2)
    return None
