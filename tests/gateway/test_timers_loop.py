"""The SIP core's timer queue on a real event loop: order, cancellation, re-arming, never early."""

from __future__ import annotations

import asyncio

import pytest

from gateway.sip.endpoint import TimerId, TransactionId
from gateway.sipcore import TimerQueue


def loops():
    out = [pytest.param(asyncio.new_event_loop, id="asyncio")]
    try:
        import uvloop
    except ImportError:
        return out
    return [*out, pytest.param(uvloop.new_event_loop, id="uvloop")]


def tid(n: int, letter: str = "E") -> TimerId:
    return TimerId(TransactionId("client", "REGISTER", ("z9hG4bK" + str(n),)), letter)


@pytest.mark.parametrize("factory", loops())
def test_timers_fire_in_deadline_order_not_early_and_cancelled_ones_never(factory):
    async def run() -> list[tuple[TimerId, float, float]]:
        loop = asyncio.get_running_loop()
        fired: list[tuple[TimerId, float, float]] = []
        done = asyncio.Event()
        deadlines: dict[TimerId, float] = {}

        def fire(t: TimerId) -> None:
            fired.append((t, deadlines[t], loop.time()))
            if t == tid(99):
                done.set()

        q = TimerQueue(loop, fire)
        t0 = loop.time()
        for n, delay in enumerate([0.05, 0.01, 0.03, 0.02, 0.04]):
            deadlines[tid(n)] = t0 + delay
            q.arm(tid(n), t0 + delay)
        q.cancel(tid(1))  # the earliest: its loop timer still fires, finds nothing due, re-arms for the next
        deadlines[tid(3)] = t0 + 0.06
        q.arm(tid(3), t0 + 0.06)  # re-armed later: the first deadline is forgotten
        deadlines[tid(99)] = t0 + 0.08
        q.arm(tid(99), t0 + 0.08)
        assert len(q) == 5 and tid(1) not in q
        await asyncio.wait_for(done.wait(), 5)
        assert len(q) == 0
        return fired

    loop = factory()
    try:
        fired = loop.run_until_complete(run())
    finally:
        loop.close()
    assert [t for t, _, _ in fired] == [tid(2), tid(4), tid(0), tid(3), tid(99)]
    for _, deadline, at in fired:
        assert at >= deadline - TimerQueue.TOLERANCE


@pytest.mark.parametrize("factory", loops())
def test_timer_armed_while_firing_and_heap_compaction(factory):
    async def run() -> tuple[list[TimerId], int]:
        loop = asyncio.get_running_loop()
        fired: list[TimerId] = []
        done = asyncio.Event()
        q: TimerQueue

        def fire(t: TimerId) -> None:
            fired.append(t)
            if t == tid(0):  # a retransmission timer re-arms itself from its own callback (Timer E doubling)
                q.arm(tid(0, "F"), loop.time() + 0.01)
            elif t == tid(0, "F"):
                done.set()

        q = TimerQueue(loop, fire)
        now = loop.time()
        for n in range(1, 6000):  # many timers armed then cancelled (responses arrived): entries left stale
            q.arm(tid(n), now + 30)
            q.cancel(tid(n))
        q.arm(tid(0), now + 0.01)
        heap_size = q.heap.entries
        await asyncio.wait_for(done.wait(), 5)
        return fired, heap_size

    loop = factory()
    try:
        fired, heap_size = loop.run_until_complete(run())
    finally:
        loop.close()
    assert fired == [tid(0), tid(0, "F")]
    assert heap_size < 4200  # rebuilt instead of keeping 6000 cancelled entries
