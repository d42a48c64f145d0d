"""The deadlines of armed timers on one heap: sans-IO, the clock and the event loop stay with the caller.

A busy gateway arms several timers per transaction (RFC 3261 §17: A/B, E/F, G/H, I, J, K, the 2xx
retransmission) and cancels most of them within milliseconds. Arming is a heap push; cancelling forgets the
timer's id, and its heap entry is skipped when it comes up (the heap is rebuilt when such entries outnumber the
live ones). A :class:`~gateway.sip.endpoint.SipEndpoint` given one as its ``timer_sink`` arms and cancels here
directly instead of returning ``ArmTimer``/``CancelTimer`` actions; the caller keeps one loop timer at
``earliest`` and asks :meth:`TimerHeap.pop_due` for what is due when it fires.

Most entries are timers of one long duration armed in the order of their deadlines: Timers B, F, H and J all
run 64*T1, and under load tens of thousands of finished transactions wait for their Timer J. A deadline at or
after the latest one armed so far is appended to a queue (``_lane``) instead of pushed on the heap, so that
arming and expiring those costs no heap sifting; due timers are taken from the front of whichever of the two is
earlier. Shorter timers armed among them (E, G, K, I) land on the heap as before.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Hashable
from typing import Final

__all__ = ["TimerHeap"]

#: The heap is rebuilt without its stale entries once it holds more than this many entries and more than
#: three times as many as there are live timers.
_COMPACT_AT: Final = 4096
_NEVER: Final = float("inf")


class TimerHeap:
    """Armed timers by id, in deadline order; ids are any hashable value (``TimerId`` in the SIP core)."""

    __slots__ = ("_heap", "_lane", "_live", "_seq", "earliest")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Hashable]] = []
        #: Entries whose deadlines were armed in non-decreasing order (see the module docstring): sorted as it is.
        self._lane: deque[tuple[float, int, Hashable]] = deque()
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
        return len(self._heap) + len(self._lane)

    def arm(self, timer_id: Hashable, deadline: float) -> None:
        """Arm (or re-arm: the earlier deadline is forgotten) one timer."""
        seq = self._seq + 1
        self._seq = seq
        self._live[timer_id] = seq
        lane = self._lane
        if not lane or deadline >= lane[-1][0]:
            lane.append((deadline, seq, timer_id))
        else:
            heapq.heappush(self._heap, (deadline, seq, timer_id))
        if deadline < self.earliest:
            self.earliest = deadline
        entries = len(self._heap) + len(lane)
        if entries > _COMPACT_AT and entries > 3 * len(self._live):
            live = self._live
            self._heap = [e for e in self._heap if live.get(e[2]) == e[1]]
            heapq.heapify(self._heap)
            self._lane = deque(e for e in lane if live.get(e[2]) == e[1])

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
        self._lane.clear()
        self.earliest = _NEVER

    def pop_due(self, due: float) -> Hashable | None:
        """The next live timer whose deadline is at or before ``due``, no longer armed; None when none is."""
        heap = self._heap
        lane = self._lane
        live = self._live
        while True:
            # The earlier of the two fronts; on equal deadlines the one armed first, as on one heap.
            if lane and (not heap or lane[0][0] < heap[0][0]
                         or (lane[0][0] == heap[0][0] and lane[0][1] < heap[0][1])):
                if lane[0][0] > due:
                    return None
                _, seq, timer_id = lane.popleft()
            elif heap and heap[0][0] <= due:
                _, seq, timer_id = heapq.heappop(heap)
            else:
                return None
            if live.get(timer_id) == seq:
                del live[timer_id]
                return timer_id

    def next_deadline(self) -> float | None:
        """The deadline of the earliest live timer (stale entries in front are dropped); None when none is armed.
        Sets ``earliest`` to it."""
        heap = self._heap
        lane = self._lane
        live = self._live
        while heap and live.get(heap[0][2]) != heap[0][1]:
            heapq.heappop(heap)
        while lane and live.get(lane[0][2]) != lane[0][1]:
            lane.popleft()
        if not heap and not lane:
            self.earliest = _NEVER
            return None
        if not lane:
            self.earliest = heap[0][0]
        elif not heap:
            self.earliest = lane[0][0]
        else:
            self.earliest = min(heap[0][0], lane[0][0])
        return self.earliest
