"""The deadlines of armed timers on one heap: sans-IO, the clock and the event loop stay with the caller.

A busy gateway arms several timers per transaction (RFC 3261 §17: A/B, E/F, G/H, I, J, K, the 2xx
retransmission) and cancels most of them within milliseconds. Arming is a heap push; cancelling forgets the
timer's id, and its heap entry is skipped when it comes up (the heap is rebuilt when such entries outnumber the
live ones). A :class:`~gateway.sip.endpoint.SipEndpoint` given one as its ``timer_sink`` arms and cancels here
directly instead of returning ``ArmTimer``/``CancelTimer`` actions; the caller keeps one loop timer at
``earliest`` and asks :meth:`TimerHeap.pop_due` for what is due when it fires.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from typing import Final

__all__ = ["TimerHeap"]

#: The heap is rebuilt without its stale entries once it holds more than this many entries and more than
#: three times as many as there are live timers.
_COMPACT_AT: Final = 4096
_NEVER: Final = float("inf")


class TimerHeap:
    """Armed timers by id, in deadline order; ids are any hashable value (``TimerId`` in the SIP core)."""

    __slots__ = ("_heap", "_live", "_seq", "earliest")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Hashable]] = []
        self._live: dict[Hashable, int] = {}  # timer id -> sequence number of its current heap entry
        self._seq = 0
        #: No armed timer is due before this (``inf`` when none is armed): lowered by every :meth:`arm`, set
        #: exactly by :meth:`next_deadline`. A cancelled timer may leave it early, never late.
        self.earliest = _NEVER

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, timer_id: object) -> bool:
        return timer_id in self._live

    @property
    def entries(self) -> int:
        """Entries on the heap, cancelled and re-armed ones not yet dropped included (for tests and statistics)."""
        return len(self._heap)

    def arm(self, timer_id: Hashable, deadline: float) -> None:
        """Arm (or re-arm: the earlier deadline is forgotten) one timer."""
        seq = self._seq + 1
        self._seq = seq
        self._live[timer_id] = seq
        heap = self._heap
        heapq.heappush(heap, (deadline, seq, timer_id))
        if deadline < self.earliest:
            self.earliest = deadline
        if len(heap) > _COMPACT_AT and len(heap) > 3 * len(self._live):
            live = self._live
            self._heap = [e for e in heap if live.get(e[2]) == e[1]]
            heapq.heapify(self._heap)

    def cancel(self, timer_id: Hashable) -> bool:
        """Forget one timer; False when it was not armed."""
        live = self._live
        if timer_id in live:  # two dictionary operations cost less than dict.pop, a method call in the build
            del live[timer_id]
            return True
        return False

    def clear(self) -> None:
        self._live.clear()
        self._heap.clear()
        self.earliest = _NEVER

    def pop_due(self, due: float) -> Hashable | None:
        """The next live timer whose deadline is at or before ``due``, no longer armed; None when none is."""
        heap = self._heap
        live = self._live
        while heap and heap[0][0] <= due:
            _, seq, timer_id = heapq.heappop(heap)
            if live.get(timer_id) == seq:
                del live[timer_id]
                return timer_id
        return None

    def next_deadline(self) -> float | None:
        """The deadline of the earliest live timer (stale entries in front are dropped); None when none is armed.
        Sets ``earliest`` to it."""
        heap = self._heap
        live = self._live
        while heap and live.get(heap[0][2]) != heap[0][1]:
            heapq.heappop(heap)
        if not heap:
            self.earliest = _NEVER
            return None
        self.earliest = heap[0][0]
        return self.earliest
