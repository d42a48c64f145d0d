"""The timer heap (sans-IO) and the endpoint arming its timers there instead of returning timer actions."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from gateway.sip.endpoint import ArmTimer, CancelTimer, SipEndpoint, TimerId, TransactionId
from gateway.sip.message import Response
from gateway.sip.timer_heap import TimerHeap
from tests.gateway.sip.test_hot_path import INVITE, PHONE


def tid(n: int, letter: str = "E") -> TimerId:
    return TimerId(TransactionId("client", "REGISTER", ("z9hG4bK" + str(n),)), letter)


def test_due_timers_come_out_in_deadline_order_and_cancelled_or_rearmed_ones_do_not() -> None:
    heap = TimerHeap()
    assert heap.earliest == math.inf and heap.next_deadline() is None
    for n, deadline in enumerate([5.0, 1.0, 3.0, 2.0, 4.0]):
        heap.arm(tid(n), deadline)
    assert heap.earliest == 1.0 and len(heap) == 5 and tid(1) in heap
    assert heap.cancel(tid(1)) and not heap.cancel(tid(1))
    heap.arm(tid(3), 6.0)  # re-armed: its first deadline is forgotten
    assert heap.earliest == 1.0  # a lower bound: the cancelled timer may leave it early
    assert heap.next_deadline() == 3.0 and heap.earliest == 3.0
    assert heap.pop_due(2.9) is None
    assert [heap.pop_due(5.5), heap.pop_due(5.5), heap.pop_due(5.5)] == [tid(2), tid(4), tid(0)]
    assert heap.pop_due(5.5) is None and len(heap) == 1
    assert heap.pop_due(6.0) == tid(3) and len(heap) == 0 and heap.next_deadline() is None


def test_stale_entries_are_dropped_once_they_outnumber_live_timers() -> None:
    heap = TimerHeap()
    for n in range(6000):
        heap.arm(tid(n), 30.0)
        heap.cancel(tid(n))
    heap.arm(tid(-1), 1.0)
    assert heap.entries < 4200 and len(heap) == 1
    assert heap.pop_due(1.0) == tid(-1)
    heap.arm(tid(1), 2.0)
    heap.clear()
    assert len(heap) == 0 and heap.entries == 0 and heap.earliest == math.inf


@given(st.lists(st.tuples(st.integers(0, 9), st.one_of(st.none(), st.floats(0, 100))), max_size=40))
def test_heap_pops_what_a_dictionary_of_deadlines_says(ops: list[tuple[int, float | None]]) -> None:
    """Any sequence of arms (a deadline) and cancels (None) against the obvious model."""
    heap = TimerHeap()
    model: dict[TimerId, float] = {}
    for n, deadline in ops:
        if deadline is None:
            assert heap.cancel(tid(n)) == (model.pop(tid(n), None) is not None)
        else:
            heap.arm(tid(n), deadline)
            model[tid(n)] = deadline
        assert heap.earliest <= min(model.values(), default=math.inf)
    assert heap.next_deadline() == (min(model.values()) if model else None)
    popped = []
    while (t := heap.pop_due(100.0)) is not None:
        popped.append(model.pop(t))
    assert popped == sorted(popped) and not model


def test_an_endpoint_with_a_timer_sink_arms_there_what_it_would_return_as_actions() -> None:
    plain = SipEndpoint(sent_by="gw.example.com:5060")
    sunk = SipEndpoint(sent_by="gw.example.com:5060")
    heap = TimerHeap()
    sunk.timer_sink = heap
    expected: dict[TimerId, float] = {}
    out_plain = []
    out_sunk = []
    for ep, out in ((plain, out_plain), (sunk, out_sunk)):
        actions = ep.receive(INVITE, PHONE, 0.0)
        event = next(a.event for a in actions if hasattr(a, "event"))
        out.append(actions)
        out.append(ep.send_response(event.transaction, Response.for_request(event.request, 486, to_tag="b"), 0.1))
    for actions in out_plain:
        for a in actions:
            if isinstance(a, ArmTimer):
                expected[a.timer_id] = a.deadline
            elif isinstance(a, CancelTimer):
                expected.pop(a.timer_id, None)
    assert expected  # the 486 arms Timers G and H (UDP)
    assert not any(isinstance(a, ArmTimer | CancelTimer) for actions in out_sunk for a in actions)
    untimed = [type(a) for a in out_plain[0] if not isinstance(a, ArmTimer | CancelTimer)]
    assert [type(a) for a in out_sunk[0]] == untimed
    assert len(heap) == len(expected) and all(t in heap for t in expected)
    assert heap.next_deadline() == min(expected.values())


def test_long_timers_armed_in_order_and_short_ones_among_them_pop_in_deadline_order() -> None:
    """The queue of in-order deadlines (Timer J of one transaction after another) and the heap of the shorter
    timers armed among them are one order to pop_due and next_deadline; cancelled entries in either are skipped
    and dropped when they outnumber live timers."""
    heap = TimerHeap()
    expected = []
    for n in range(3000):
        now = n * 0.001
        heap.arm(tid(n, "J"), now + 32.0)
        heap.arm(tid(n, "E"), now + 0.5)
        expected += [(now + 0.5, tid(n, "E")), (now + 32.0, tid(n, "J"))]
    for n in range(0, 3000, 2):
        assert heap.cancel(tid(n, "J"))
    expected = sorted((d, t) for d, t in expected if not (t.timer == "J" and int(t.transaction.key[0][7:]) % 2 == 0))
    assert heap.next_deadline() == expected[0][0]
    popped = []
    while (t := heap.pop_due(100.0)) is not None:
        popped.append(t)
    assert popped == [t for _, t in expected] and len(heap) == 0
    for n in range(6000):  # stale entries of the queue are dropped like the heap's
        heap.arm(tid(n, "J"), 40.0 + n)
        heap.cancel(tid(n, "J"))
    assert heap.entries < 4200


def test_equal_deadlines_pop_in_the_order_they_were_armed() -> None:
    heap = TimerHeap()
    heap.arm(tid(0), 5.0)  # the queue
    heap.arm(tid(1), 9.0)  # the queue
    heap.arm(tid(2), 5.0)  # the heap: earlier than the queue's last
    assert heap.cancel(tid(1)) and heap.cancel(tid(0))
    assert heap.next_deadline() == 5.0  # drops the cancelled entries: the queue is empty now
    heap.arm(tid(3), 5.0)  # the queue again, same deadline as tid(2) on the heap, armed after it
    heap.arm(tid(4), 5.0)
    order = []
    while (t := heap.pop_due(10.0)) is not None:
        order.append(t)
    assert order == [tid(2), tid(3), tid(4)]
