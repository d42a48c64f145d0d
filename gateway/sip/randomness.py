"""Random values of the SIP core (tags, branches, Call-IDs, nonce salts) from a pool of ``os.urandom`` bytes.

RFC 3261 §19.3 asks for at least 32 random bits in a tag and a globally unique Call-ID, and §8.1.1.7 for a
branch unique in space and time; ``secrets`` gives that with one ``getrandom`` system call per value. A busy
gateway draws several per call, so here they come from a buffer filled by one ``os.urandom`` call per
:data:`POOL_BYTES` bytes: the same kernel generator, the same quality, a fraction of the system calls. Each
byte is handed out once. A forked child starts with an empty pool (``os.register_at_fork``), so parent and
child never hand out the same bytes.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["POOL_BYTES", "random_bytes", "random_hex"]

#: Bytes fetched from the kernel at a time.
POOL_BYTES: Final = 4096


class _Pool:
    __slots__ = ("data", "pos")

    def __init__(self) -> None:
        self.data = b""
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0:
            raise ValueError(f"cannot take {n} random bytes")
        if n > POOL_BYTES:
            return os.urandom(n)
        pos = self.pos
        end = pos + n
        if end > len(self.data):
            self.data = os.urandom(POOL_BYTES)
            pos, end = 0, n
        self.pos = end
        return self.data[pos:end]

    def reset(self) -> None:
        self.data = b""
        self.pos = 0


_POOL: Final = _Pool()
os.register_at_fork(after_in_child=_POOL.reset)


def random_bytes(n: int) -> bytes:
    """``n`` random bytes (what ``secrets.token_bytes(n)`` gives)."""
    return _POOL.take(n)


def random_hex(nbytes: int) -> str:
    """``nbytes`` random bytes as ``2 * nbytes`` lower-case hex digits (what ``secrets.token_hex`` gives)."""
    return _POOL.take(nbytes).hex()
