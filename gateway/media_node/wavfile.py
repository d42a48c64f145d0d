"""Reading a WAV file that is still being written.

pjmedia's recorder writes the RIFF and data chunk sizes only when it closes the file, so a copy taken
during a call has placeholder sizes.  ``snapshot_wav`` returns the bytes with both sizes set from what
is on disk, trimmed to whole sample frames, so any WAV reader accepts it.
"""

from __future__ import annotations

import struct


class WavError(ValueError):
    """The file is not a RIFF/WAVE file with a fmt and a data chunk."""


def empty_wav(rate: int = 16000) -> bytes:
    """A valid 16-bit mono WAV with no samples."""
    return b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) \
        + b"data" + struct.pack("<I", 0)


def snapshot_wav(path: str, empty_rate: int = 16000) -> bytes:
    """The file's WAV with sizes from what is on disk; a recorder that has not flushed its header yet
    (the file is still empty) reads as a WAV without samples at ``empty_rate``."""
    with open(path, "rb") as fh:
        data = bytearray(fh.read())
    if not data:
        return empty_wav(empty_rate)
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError(f"{path}: not a RIFF/WAVE file ({len(data)} bytes)")
    pos = 12
    block_align = 0
    while pos + 8 <= len(data):
        cid = bytes(data[pos:pos + 4])
        size = struct.unpack_from("<I", data, pos + 4)[0]
        if cid == b"fmt ":
            if pos + 8 + 16 > len(data):
                raise WavError(f"{path}: truncated fmt chunk")
            block_align = struct.unpack_from("<H", data, pos + 8 + 12)[0]
        elif cid == b"data":
            if not block_align:
                raise WavError(f"{path}: data chunk before the fmt chunk")
            available = len(data) - (pos + 8)
            size = available - available % block_align
            struct.pack_into("<I", data, pos + 4, size)
            end = pos + 8 + size
            del data[end:]
            struct.pack_into("<I", data, 4, len(data) - 8)
            return bytes(data)
        pos += 8 + size + (size & 1)
    raise WavError(f"{path}: no data chunk")
