"""The gateway's SIP message trace: every message in and out, queryable by call and time, exportable as pcap.

Entries are kept in a bounded ring (oldest dropped first) so a long bench session cannot grow memory.
The pcap export writes each message as an IPv4/IPv6 UDP datagram between the real addresses and ports
(LINKTYPE_RAW), whatever transport carried it: TLS is stored decrypted, so Wireshark's SIP dissector and
sngrep show every message of a call in one file.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import struct
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*([^\r\n]+)", re.IGNORECASE | re.MULTILINE)
_FIRST_LINE = re.compile(rb"^([^\r\n]*)")

Address = tuple[str, int]


@dataclass(frozen=True)
class TraceEntry:
    seq: int
    time: float  # wall clock, seconds since the epoch
    direction: str  # "in" (received by the gateway) or "out" (sent by it)
    transport: str  # UDP, TCP, TLS
    source: Address
    destination: Address
    data: bytes = field(repr=False)

    @property
    def call_id(self) -> str | None:
        m = _CALL_ID.search(self.data)
        return m.group(1).strip().decode("utf-8", "replace") if m else None

    @property
    def first_line(self) -> str:
        m = _FIRST_LINE.match(self.data)
        return m.group(1).decode("utf-8", "replace") if m else ""

    def as_dict(self) -> dict:
        return {
            "seq": self.seq,
            "time": self.time,
            "direction": self.direction,
            "transport": self.transport,
            "source": f"{_host(self.source[0])}:{self.source[1]}",
            "destination": f"{_host(self.destination[0])}:{self.destination[1]}",
            "call_id": self.call_id,
            "first_line": self.first_line,
            "message": self.data.decode("utf-8", "replace"),
        }


def _host(h: str) -> str:
    return f"[{h}]" if ":" in h else h


class TraceRecorder:
    """A bounded, thread-safe record of SIP messages.

    Recording is on the hot path (every message in and out), so an entry is stored as a plain tuple and made a
    :class:`TraceEntry` only when it is read.
    """

    def __init__(self, max_entries: int = 200_000, enabled: bool = True):
        self.enabled = enabled
        self._entries: deque[tuple] = deque(maxlen=max_entries)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self.dropped = 0
        #: Lines that are not SIP messages (a service's decision about a call): (time, text, Call-IDs).
        self._notes: deque[tuple[float, str, tuple[str, ...]]] = deque(maxlen=10_000)

    def record(self, time: float, direction: str, transport: str, source: Address, destination: Address,
               data: bytes) -> None:
        if not self.enabled:
            return
        entries = self._entries
        with self._lock:
            if len(entries) == entries.maxlen:
                self.dropped += 1
            entries.append((next(self._seq), time, direction, transport, source, destination, data))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._notes.clear()

    def note(self, time: float, text: str, call_ids: Iterable[str]) -> None:
        """A line about calls that is not a SIP message (the ladder shows it by time)."""
        if self.enabled:
            with self._lock:
                self._notes.append((time, text, tuple(call_ids)))

    def notes(self, *, call_ids: Iterable[str] | None = None, since: float | None = None,
              until: float | None = None) -> list[dict]:
        """Notes as ``{"time", "text", "call_ids"}``, those naming any of ``call_ids`` when given."""
        with self._lock:
            snapshot = list(self._notes)
        wanted = set(call_ids) if call_ids is not None else None
        return [{"time": t, "text": text, "call_ids": list(ids)} for t, text, ids in snapshot
                if (wanted is None or wanted.intersection(ids)) and (since is None or t >= since)
                and (until is None or t <= until)]

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self, *, call_ids: Iterable[str] | None = None, since: float | None = None,
                until: float | None = None, after_seq: int | None = None) -> list[TraceEntry]:
        with self._lock:
            snapshot = list(self._entries)
        wanted = set(call_ids) if call_ids is not None else None
        out = []
        for t in snapshot:
            if since is not None and t[1] < since:
                continue
            if until is not None and t[1] > until:
                continue
            if after_seq is not None and t[0] <= after_seq:
                continue
            e = TraceEntry(*t)
            if wanted is not None and e.call_id not in wanted:
                continue
            out.append(e)
        return out

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._entries[-1][0] if self._entries else 0


# --- pcap ---------------------------------------------------------------------------------------------------

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101)  # LINKTYPE_RAW


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _packet(entry: TraceEntry) -> bytes:
    src = ipaddress.ip_address(entry.source[0])
    dst = ipaddress.ip_address(entry.destination[0])
    payload = entry.data
    udp_len = 8 + len(payload)
    if src.version != dst.version:  # cannot happen on one socket; keep the file valid regardless
        dst = ipaddress.ip_address("::ffff:" + str(dst)) if src.version == 6 else ipaddress.ip_address("0.0.0.0")
    if src.version == 4:
        pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, 17, udp_len)
        udp = struct.pack("!HHHH", entry.source[1], entry.destination[1], udp_len, 0)
        csum = _checksum(pseudo + udp + payload) or 0xFFFF
        udp = struct.pack("!HHHH", entry.source[1], entry.destination[1], udp_len, csum)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, entry.seq & 0xFFFF, 0, 64, 17, 0,
                         src.packed, dst.packed)
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        return ip + udp + payload
    pseudo = src.packed + dst.packed + struct.pack("!I3xB", udp_len, 17)
    udp = struct.pack("!HHHH", entry.source[1], entry.destination[1], udp_len, 0)
    csum = _checksum(pseudo + udp + payload) or 0xFFFF
    udp = struct.pack("!HHHH", entry.source[1], entry.destination[1], udp_len, csum)
    ip6 = struct.pack("!IHBB16s16s", 6 << 28, udp_len, 17, 64, src.packed, dst.packed)
    return ip6 + udp + payload


def iter_pcap(entries: Iterable[TraceEntry]) -> Iterator[bytes]:
    """The pcap file for ``entries``, in chunks."""
    yield _PCAP_HEADER
    for e in entries:
        pkt = _packet(e)
        sec = int(e.time)
        usec = round((e.time - sec) * 1_000_000)
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        yield struct.pack("<IIII", sec, usec, len(pkt), len(pkt)) + pkt


def to_pcap(entries: Iterable[TraceEntry]) -> bytes:
    return b"".join(iter_pcap(entries))
