"""Port ranges for SIP and RTP that parallel workers never share.

Every pjsua process starts its RTP ports at 4000 unless told otherwise, and pytest-xdist workers are
separate processes, so an in-process counter is not enough.  The allocator splits a band of ports
below the kernel's ephemeral range into fixed-size blocks and hands a block out only after

1. taking an exclusive ``flock`` on that block's lock file (shared by every process of the same user
   on this host, released by the kernel if the holder dies), and
2. binding every port of the block (UDP and TCP for SIP, UDP for RTP) to prove nobody else, such as a
   process not using this allocator, holds one.

The search starts at a block derived from the pytest-xdist worker index, so xdist workers rarely
even contend for a lock.  Ephemeral ports (``port=0``) stay the kernel's business: the band is kept
below ``net.ipv4.ip_local_port_range`` so they never collide with a leased block.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from sipua.errors import InvalidArgument, SipUaError

DEFAULT_BASE = 20000
DEFAULT_SIP_PORTS = 8
DEFAULT_RTP_PORTS = 24


class PortsExhausted(SipUaError):
    """No free block is left in the band."""


@dataclass(frozen=True)
class PortBlock:
    """One block: ``sip_count`` SIP ports followed by ``rtp_count`` RTP ports (even start)."""

    index: int
    sip_base: int
    sip_count: int
    rtp_base: int
    rtp_count: int

    def sip_port(self, i: int = 0) -> int:
        if not 0 <= i < self.sip_count:
            raise InvalidArgument(f"PortBlock.sip_port: index {i} outside 0..{self.sip_count - 1}")
        return self.sip_base + i

    @property
    def ports(self) -> range:
        return range(self.sip_base, self.rtp_base + self.rtp_count)


class PortLease:
    """A block held by this process until ``release()`` (or process exit)."""

    def __init__(self, block: PortBlock, lock_fd: int, allocator: PortAllocator) -> None:
        self.block = block
        self._fd: int | None = lock_fd
        self._allocator = allocator

    @property
    def rtp_base(self) -> int:
        return self.block.rtp_base

    @property
    def rtp_count(self) -> int:
        return self.block.rtp_count

    def sip_port(self, i: int = 0) -> int:
        return self.block.sip_port(i)

    @property
    def released(self) -> bool:
        return self._fd is None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            self._allocator._forget(self.block.index)
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> PortLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        b = self.block
        state = "released" if self.released else "held"
        return (f"PortLease(block={b.index}, sip={b.sip_base}-{b.sip_base + b.sip_count - 1}, "
                f"rtp={b.rtp_base}-{b.rtp_base + b.rtp_count - 1}, {state})")


def ephemeral_range() -> tuple[int, int]:
    """The kernel's ephemeral port range (Linux), or the IANA dynamic range elsewhere."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535


def xdist_worker_index() -> tuple[int, int]:
    """(index, count) of this pytest-xdist worker; (0, 1) outside xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    try:
        index = int(name.removeprefix("gw")) if name.startswith("gw") else 0
    except ValueError:
        index = 0
    try:
        count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    except ValueError:
        count = 1
    return index, max(count, index + 1)


class PortAllocator:
    """Hands out non-overlapping port blocks; safe across threads and processes."""

    def __init__(
        self,
        *,
        base: int = DEFAULT_BASE,
        limit: int | None = None,
        sip_ports: int = DEFAULT_SIP_PORTS,
        rtp_ports: int = DEFAULT_RTP_PORTS,
        lock_dir: str | os.PathLike[str] | None = None,
        verify_hosts: tuple[str, ...] = ("0.0.0.0", "::"),
    ) -> None:
        if sip_ports < 0 or rtp_ports < 2:
            raise InvalidArgument(f"PortAllocator: sip_ports={sip_ports}, rtp_ports={rtp_ports}: need "
                                  "sip_ports >= 0 and rtp_ports >= 2")
        eph_low, _ = ephemeral_range()
        if limit is None:
            limit = min(eph_low, 65536)
        self.sip_ports = sip_ports
        self.rtp_ports = rtp_ports + (rtp_ports % 2)
        self.block_size = self.sip_ports + self.rtp_ports + (self.sip_ports % 2)
        if base < 1024 or base % 2:
            raise InvalidArgument(f"PortAllocator.base: {base} must be even and >= 1024")
        self.base = base
        self.limit = limit
        self.n_blocks = (limit - base) // self.block_size
        if self.n_blocks < 1:
            raise InvalidArgument(
                f"PortAllocator: no room for one block of {self.block_size} ports between {base} and "
                f"{limit} (ephemeral ports start at {eph_low})"
            )
        if lock_dir is None:
            lock_dir = os.environ.get("SIPUA_PORT_LOCK_DIR") or os.path.join(
                tempfile.gettempdir(), f"sipgw-lab-ports-{os.getuid()}"
            )
        self.lock_dir = Path(lock_dir)
        self.verify_hosts = verify_hosts
        self._held: set[int] = set()
        self._mutex = threading.Lock()

    def block(self, index: int) -> PortBlock:
        if not 0 <= index < self.n_blocks:
            raise InvalidArgument(f"PortAllocator.block: index {index} outside 0..{self.n_blocks - 1}")
        start = self.base + index * self.block_size
        rtp_base = start + self.sip_ports + (self.sip_ports % 2)
        return PortBlock(index, start, self.sip_ports, rtp_base, self.rtp_ports)

    def lease(self) -> PortLease:
        """Take the first free block, starting at this xdist worker's share of the band."""
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        index, count = xdist_worker_index()
        start = (index * self.n_blocks) // count
        for k in range(self.n_blocks):
            i = (start + k) % self.n_blocks
            with self._mutex:
                if i in self._held:
                    continue
                self._held.add(i)
            fd = self._try_lock(i)
            if fd is None:
                self._forget(i)
                continue
            block = self.block(i)
            if not self._ports_free(block):
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                self._forget(i)
                continue
            return PortLease(block, fd, self)
        raise PortsExhausted(
            f"no free block of {self.block_size} ports in {self.base}-{self.limit - 1} "
            f"(lock files in {self.lock_dir})"
        )

    def _forget(self, index: int) -> None:
        with self._mutex:
            self._held.discard(index)

    def _try_lock(self, index: int) -> int | None:
        path = self.lock_dir / f"block-{self.base}-{self.block_size}-{index}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            raise
        return fd

    def _ports_free(self, block: PortBlock) -> bool:
        sip = range(block.sip_base, block.sip_base + block.sip_count)
        rtp = range(block.rtp_base, block.rtp_base + block.rtp_count)
        for host in self.verify_hosts:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            if family == socket.AF_INET6 and not socket.has_ipv6:
                continue
            for port in sip:
                if not port_free(host, port, socket.SOCK_DGRAM) or not port_free(host, port, socket.SOCK_STREAM):
                    return False
            for port in rtp:
                if not port_free(host, port, socket.SOCK_DGRAM):
                    return False
        return True


def port_free(host: str, port: int, kind: int) -> bool:
    """True if ``port`` can be bound on ``host`` right now.  TCP is tried with SO_REUSEADDR, as pjsip
    binds its listeners, so a port in TIME_WAIT still counts as free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        s = socket.socket(family, kind)
    except OSError:
        return True  # the address family is not available here: nothing can clash on it
    with s:
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            # EADDRNOTAVAIL: e.g. no ::1 configured, so no process can hold the port there either
            return exc.errno == errno.EADDRNOTAVAIL
    return True


_default: PortAllocator | None = None
_default_mutex = threading.Lock()


def default_allocator() -> PortAllocator:
    """The process-wide allocator used when a worker is spawned without an explicit RTP range."""
    global _default
    with _default_mutex:
        if _default is None:
            _default = PortAllocator()
        return _default
