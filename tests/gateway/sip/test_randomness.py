"""The SIP core's pooled random values: the sizes asked for, never the same bytes twice, a fresh pool after fork."""

from __future__ import annotations

import os
import re

import pytest

from gateway.sip import randomness
from gateway.sip.dialog import new_tag
from gateway.sip.endpoint import MAGIC_COOKIE, _new_branch


def test_sizes_and_alphabet() -> None:
    assert len(randomness.random_bytes(8)) == 8
    assert randomness.random_bytes(0) == b""
    assert re.fullmatch(r"[0-9a-f]{20}", randomness.random_hex(10))
    assert len(randomness.random_bytes(randomness.POOL_BYTES + 1)) == randomness.POOL_BYTES + 1


def test_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match="-1 random bytes"):
        randomness.random_bytes(-1)


def test_values_do_not_repeat_across_pool_refills() -> None:
    # 3 pools' worth of 10-byte values: a refill that handed out old bytes again would repeat values.
    values = [randomness.random_hex(10) for _ in range(3 * randomness.POOL_BYTES // 10)]
    assert len(set(values)) == len(values)


def test_tags_and_branches_use_it() -> None:
    tags = {new_tag() for _ in range(1000)}
    assert len(tags) == 1000 and all(re.fullmatch(r"[0-9a-f]{16}", t) for t in tags)  # 64 bits (§19.3)
    branch = _new_branch()
    assert branch.startswith(MAGIC_COOKIE) and len(branch) == len(MAGIC_COOKIE) + 20


def test_forked_child_draws_other_bytes_than_its_parent() -> None:
    randomness.random_bytes(1)  # the parent's pool is filled: a child copying it would repeat what follows
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next value and leave at once
        try:
            os.write(write, randomness.random_bytes(16))
        finally:
            os._exit(0)
    os.close(write)
    try:
        child = os.read(read, 16)
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert len(child) == 16
    assert child != randomness.random_bytes(16)
