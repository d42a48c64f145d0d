"""The media node's parts that need no call: tone plan, WAV snapshots, start and close."""

from __future__ import annotations

import io
import itertools
import os
import struct
import wave

import pytest

from gateway.media_node import PARTY_TONES_HZ, ToneAllocator
from gateway.media_node.wavfile import WavError, snapshot_wav

DTMF = (697, 770, 852, 941, 1209, 1336, 1477, 1633)
DEVICE_PLAN = (810, 1720, 2330, 530, 1990)


def test_party_tones_are_apart_and_clear_of_dtmf_and_device_tones():
    assert len(PARTY_TONES_HZ) >= 10
    assert all(500 <= f <= 2000 for f in PARTY_TONES_HZ)
    assert all(b - a >= 60 for a, b in itertools.pairwise(PARTY_TONES_HZ))
    for f in PARTY_TONES_HZ:
        assert all(abs(f - d) > 0.02 * d for d in DTMF), f
        assert all(abs(f - d) >= 50 for d in DEVICE_PLAN), f
        assert f % 250, f"{f} Hz is a simple fraction of 8 kHz"


def test_allocator_gives_distinct_tones_until_the_plan_is_used_up():
    alloc = ToneAllocator()
    tones = [alloc.tone_for(f"pstn:+1206555{i:04d}") for i in range(len(PARTY_TONES_HZ))]
    assert len(set(tones)) == len(PARTY_TONES_HZ) and alloc.distinct()
    assert alloc.tone_for("pstn:+12065550000") == tones[0], "a party keeps its tone"
    alloc.tone_for("teams:one-too-many")
    assert not alloc.distinct()
    alloc.reset()
    assert alloc.tone_for("teams:x") == PARTY_TONES_HZ[0]


def _wav_with_placeholder_sizes(path, frames: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x01\x00" * frames)
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, 4, 0)  # as a recorder that has not closed its file leaves them
    struct.pack_into("<I", data, 40, 0)
    path.write_bytes(bytes(data) + b"\x02")  # and half a sample still being written


def test_snapshot_of_a_wav_being_written(tmp_path):
    path = tmp_path / "r.wav"
    _wav_with_placeholder_sizes(path, 800)
    with wave.open(io.BytesIO(snapshot_wav(str(path)))) as w:
        assert w.getnframes() == 800 and w.getframerate() == 8000
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with wave.open(io.BytesIO(snapshot_wav(str(empty)))) as w:
        assert w.getnframes() == 0
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav at all")
    with pytest.raises(WavError, match="not a RIFF/WAVE"):
        snapshot_wav(str(bad))


def test_gateway_starts_and_closes_its_media_node(tmp_path):
    from gateway.config import GatewayConfig
    from gateway.server import EmbeddedGateway, NoMedia

    plain = EmbeddedGateway(tmp_path / "plain", GatewayConfig(sip="127.0.0.1:0"), control_api=False)
    assert isinstance(plain.media, NoMedia), "no media node unless asked for"
    plain.store.close()

    cfg = GatewayConfig(sip="127.0.0.1:0", media="node")
    gw = EmbeddedGateway(tmp_path / "gw", cfg, control_api=False)
    gw.start_in_thread()
    try:
        m = gw.media.metrics()
        assert m["processes"] >= 1
        pids = m["pids"]
        assert gw.core.trusted == {("127.0.0.1", w.sip_port("udp")) for w in gw.media.pool.workers}
    finally:
        gw.stop_thread()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert gw.core.trusted == set()


def test_media_log_level_comes_from_the_environment_and_bad_values_are_named(monkeypatch):
    from gateway.media_node.node import MediaNodeError, _media_log_level

    monkeypatch.delenv("SIPGW_MEDIA_LOG_LEVEL", raising=False)
    assert _media_log_level() == 3
    monkeypatch.setenv("SIPGW_MEDIA_LOG_LEVEL", "4")
    assert _media_log_level() == 4
    for bad in ("loud", "9"):
        monkeypatch.setenv("SIPGW_MEDIA_LOG_LEVEL", bad)
        with pytest.raises(MediaNodeError, match="SIPGW_MEDIA_LOG_LEVEL"):
            _media_log_level()
