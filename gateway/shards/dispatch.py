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

_TO = re.compile(rb"^(?:to|t)[ \t]*:[^\r\n]*?sips?:([^@;>\s]+)@", re.IGNORECASE | re.MULTILINE)
_AUTHORIZATION = re.compile(rb"^authorization[ \t]*:", re.IGNORECASE | re.MULTILINE)
_DIGEST_USER = re.compile(rb'^authorization[ \t]*:[^\r\n]*?[\s,]username[ \t]*=[ \t]*"([^"\\\r\n]*)"',
                          re.IGNORECASE | re.MULTILINE)
_KEEP_HEADERS = re.compile(rb"^" + re.escape(LAB_NETWORK_HEADER.encode()) + rb"[ \t]*:", re.IGNORECASE | re.MULTILINE)


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
        to = _TO.search(head)
        if to is None or b"%" in to.group(1):
            return 0
        username = self._resolve(to.group(1).decode("utf-8", "replace"))
        if username is None or _KEEP_HEADERS.search(head) is not None:
            return 0
        if _AUTHORIZATION.search(head) is not None:
            digest = _DIGEST_USER.search(head)
            if digest is None or self._keep(digest.group(1).decode("utf-8", "replace")):
                return 0
        return shard_of(username, self.shards)
