"""The SIP trace: bounded, queryable by call, exported as a pcap that tshark reads as SIP."""

from __future__ import annotations

import shutil
import struct
import subprocess

from gateway.trace import TraceRecorder, to_pcap

INVITE = (b"INVITE sip:+14255550102@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
          b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:+14255550102@127.0.0.1>\r\nCall-ID: call-1\r\n"
          b"CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
RINGING = (b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
           b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:+14255550102@127.0.0.1>;tag=2\r\ni: call-1\r\n"
           b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")


def make() -> TraceRecorder:
    t = TraceRecorder(max_entries=3)
    t.record(10.0, "in", "UDP", ("127.0.0.1", 5070), ("127.0.0.1", 5060), INVITE)
    t.record(10.5, "out", "TLS", ("::1", 5061), ("::1", 40000), RINGING)
    t.record(11.0, "in", "UDP", ("127.0.0.1", 5070), ("127.0.0.1", 5060), INVITE.replace(b"call-1", b"call-2"))
    return t


def test_query_by_call_and_time():
    t = make()
    assert [e.seq for e in t.entries(call_ids=["call-1"])] == [1, 2]
    assert t.entries(call_ids=["call-1"])[1].call_id == "call-1"  # compact form i:
    assert [e.seq for e in t.entries(since=10.4, until=10.6)] == [2]
    assert [e.seq for e in t.entries(after_seq=2)] == [3]
    assert t.entries()[0].as_dict()["first_line"].startswith("INVITE sip:")


def test_ring_is_bounded():
    t = make()
    t.record(12.0, "in", "UDP", ("127.0.0.1", 1), ("127.0.0.1", 2), INVITE)
    assert len(t) == 3 and t.dropped == 1 and t.entries()[0].seq == 2


def test_pcap_structure():
    data = to_pcap(make().entries())
    magic, major, minor, _, _, _snap, link = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, link) == (0xA1B2C3D4, 2, 4, 101)
    sec, usec, incl, orig = struct.unpack("<IIII", data[24:40])
    assert (sec, usec) == (10, 0) and incl == orig == 20 + 8 + len(INVITE)
    assert data[40] >> 4 == 4


def test_tshark_reads_it_as_sip(tmp_path):
    assert shutil.which("tshark"), "tshark (Debian package tshark, installed by make test) is missing"
    path = tmp_path / "call.pcap"
    path.write_bytes(to_pcap(make().entries()))
    out = subprocess.run(["tshark", "-r", str(path), "-d", "udp.port==5061,sip", "-T", "fields",
                          "-e", "sip.Method", "-e", "sip.Status-Code", "-e", "sip.Call-ID"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    rows = [line.split("\t") for line in out.strip().splitlines()]
    assert rows[0][0] == "INVITE" and rows[0][2] == "call-1"
    assert rows[1][1] == "180"
