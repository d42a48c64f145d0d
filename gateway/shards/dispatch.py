"""Which process answers a UDP REGISTER: the shard of its address of record.

Read from the datagram's bytes with three regular expressions, before any parsing (the gateway's process pays this
for every REGISTER it hands on). Anything this cannot read with certainty stays with the gateway's process (shard
0), which can answer everything: a REGISTER is handed on only when its To names a user of the directory, its
``Authorization`` (if any) names a user the worker may authenticate, and it carries no header a service of the
gateway's process reads (the E911 lab-network header). Retransmissions are the same bytes and go to the same
process, so its server transaction absorbs them (RFC 3261 §17.2.2).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable

from gateway.services.e911 import LAB_NETWORK_HEADER

# Matched against the header lower-cased once (header names and "username" are case-insensitive, RFC 3261 §7.3.1,
# §25.1); values are then read from the original bytes at the same offsets (user parts are case-sensitive).
_TO = re.compile(rb"\n(?:to|t)[ \t]*:[^\r\n]*?sips?:([^@;>\s]+)@")
_DIGEST_USER = re.compile(rb'\nauthorization[ \t]*:[^\r\n]*?[\s,]username[ \t]*=[ \t]*"([^"\\\r\n]*)"')
_KEEP_HEADER = b"\n" + LAB_NETWORK_HEADER.lower().encode()


def shard_of(username: str, shards: int) -> int:
    """The process (0: the gateway's own) that keeps the bindings of ``username``."""
    return zlib.crc32(username.encode()) % shards


class RegisterDispatch:
    """``shard(datagram)``: 0 for the gateway's process, else the index of the registrar worker (1…shards-1).

    ``resolve(user)`` is the user name of a To user part (a user name or a number), or None for no user;
    ``keep(username)`` is True for digest user names only the gateway's process may check (sign-in accounts)."""

    def __init__(self, shards: int, resolve: Callable[[str], str | None], keep: Callable[[str], bool]):
        if shards < 1:
            raise ValueError(f"shards must be at least 1, not {shards}")
        self.shards = shards
        self._resolve = resolve
        self._keep = keep

    def shard(self, data: bytes) -> int:
        if self.shards == 1 or not data.startswith(b"REGISTER "):
            return 0
        end = data.find(b"\r\n\r\n")
        head = data if end < 0 else data[:end]
        low = head.lower()
        to = _TO.search(low)
        if to is None:
            return 0
        user = head[to.start(1):to.end(1)]
        if b"%" in user or _KEEP_HEADER in low:
            return 0
        username = self._resolve(user.decode("utf-8", "replace"))
        if username is None:
            return 0
        if b"\nauthorization" in low:
            digest = _DIGEST_USER.search(low)
            if digest is None or self._keep(head[digest.start(1):digest.end(1)].decode("utf-8", "replace")):
                return 0
        return shard_of(username, self.shards)
