"""The gateway process's GC policy, and the fact it rests on: the hot paths leave no cyclic garbage."""

from __future__ import annotations

import asyncio
import gc
from collections import deque

import pytest

from bench.gateway_micro import PHONE_PORT
from bench.gateway_proc import user_name, user_number
from gateway.gc_policy import GcPolicy
from tests.gateway.micro_gateway import micro_gateway


class _Cycle:
    def __init__(self) -> None:
        self.me = self


class _Leaf:
    """Tracked by the collector (an instance with a __dict__), and in no cycle: freed by its reference count."""


@pytest.fixture
def policy():
    p = GcPolicy(threshold0=1_000_000, full_every_s=3600)  # no automatic collection during the test
    saved = gc.get_threshold()
    p.install()
    yield p
    p.remove()
    assert gc.get_threshold() == saved and gc.get_freeze_count() == 0


def test_registrations_and_calls_through_the_b2bua_leave_no_cyclic_garbage() -> None:
    async def run() -> tuple[int, int]:
        async with micro_gateway(5) as (_gw, h):
            h.call(0)  # first use of every path
            found = []
            for op in (lambda k: h.register(user_name(k % 5), user_number(k % 5), PHONE_PORT),
                       lambda k: h.call(k % 5)):
                gc.collect()
                gc.disable()
                try:
                    for k in range(100):
                        op(k)
                finally:
                    found.append(gc.collect())
                    gc.enable()
            return found[0], found[1]

    assert asyncio.run(run()) == (0, 0)  # everything was freed by reference counting


@pytest.mark.parametrize("generation", [0, 1])
def test_survivors_of_a_collection_are_frozen_and_a_full_collection_finds_their_cycles(policy, generation) -> None:
    frozen = gc.get_freeze_count()
    cycle = _Cycle()
    gc.collect(generation)
    assert gc.get_freeze_count() > frozen  # the cycle (alive) survived the collection: frozen, scanned no more
    assert policy.stats.collections[generation] >= 1
    del cycle  # garbage now, but frozen: the young collections do not see it
    assert gc.collect(1) == 0
    assert policy.full_collection() >= 1  # thawed, collected, frozen again
    assert policy.stats.full_collections == 1


def test_the_full_collection_runs_on_the_loop_every_period() -> None:
    p = GcPolicy(threshold0=1_000_000, full_every_s=0.05)

    async def run() -> None:
        p.install(asyncio.get_running_loop())
        try:
            deadline = asyncio.get_running_loop().time() + 10  # a loaded worker may run the loop late
            while p.stats.full_collections < 2 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
        finally:
            p.remove()

    asyncio.run(run())
    assert p.stats.full_collections >= 2
    assert not p.installed


def test_the_allocation_count_hardly_grows_while_old_objects_die_as_fast_as_young_ones_are_made(policy) -> None:
    """Why the policy collects generation 0 on a timer: CPython counts allocations minus deallocations, frozen
    objects' deallocations included, so a gateway in steady state (the transactions of 32 s ago dying as new ones
    are made) never reaches the threshold while generation 0 grows without bound."""
    old = deque(_Leaf() for _ in range(100_000))
    gc.collect(0)  # frozen by the policy
    young = deque()
    for _ in range(100_000):
        young.append(_Leaf())
        old.popleft()  # freed by its reference count
    assert gc.get_count()[0] < 1_000
    assert len(gc.get_objects(0)) >= 100_000
    old.clear()
    young.clear()


def test_generation_0_is_collected_on_the_loop_however_little_the_count_grows() -> None:
    p = GcPolicy(threshold0=1_000_000, full_every_s=3600, young_every_s=0.02)

    async def run() -> None:
        p.install(asyncio.get_running_loop())
        try:
            deadline = asyncio.get_running_loop().time() + 10  # a loaded worker may run the loop late
            while p.stats.collections[0] < 3 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
            kept = _Cycle()
            frozen = gc.get_freeze_count()
            seen = p.stats.collections[0]
            while p.stats.collections[0] == seen and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
            assert gc.get_freeze_count() > frozen and gc.is_tracked(kept)  # the survivor was frozen
        finally:
            p.remove()

    asyncio.run(run())
    assert p.stats.collections[0] >= 4 and p.stats.collections[1] == 0
    assert not p.installed


@pytest.mark.parametrize("kwargs, message", [({"threshold0": 0}, "at least 1"), ({"threshold1": 0}, "at least 1"),
                                             ({"full_every_s": 0}, "positive"), ({"young_every_s": 0}, "positive")])
def test_bad_settings_are_refused(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        GcPolicy(**kwargs)
