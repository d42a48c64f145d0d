"""The garbage-collection policy of a gateway process: short pauses under load.

A SIP element keeps each finished transaction for up to 64*T1 (32 s on UDP: Timers J, H, M) to answer
retransmissions, so at a thousand REGISTERs a second several hundred thousand objects are alive at any time, and
none of them is cyclic garbage: the gateway's paths free what they build by reference counting (a thousand
REGISTERs or calls leave no unreachable cycle behind; ``tests/gateway/test_gc_policy.py`` checks it). With
Python's own thresholds the collector still scans those objects again and again: generation 1 with a
generation-0 threshold of 50 000 scanned up to 500 000 of them in one pause of about 0.28 s, longer than half of
T1, and every such pause made the phones retransmit.

The policy:

* everything built at start-up is frozen (``gc.freeze``: the catalogue, the tenant, the certificates);
* generation 0 is collected every ``young_every_s`` seconds (half a second by default) by a timer on the event
  loop, and also whenever ``threshold0`` net allocations pass (``threshold1`` = 1 would make every second one a
  generation-1 collection, which finds generation 1 empty). The timer is what bounds the pauses under load:
  CPython counts allocations *minus deallocations* of tracked objects, frozen ones included, so in the steady
  state of a busy gateway, where the transactions of 32 s ago die as fast as new ones are made, the count hardly
  grows while generation 0 does (``tests/gateway/test_gc_policy.py`` shows 100 000 young objects behind a count
  near zero). Without the timer one collection at 1 400 REGISTERs a second scanned half a minute of survivors
  in 0.84 s, longer than T1: SIPp retransmitted thousands of REGISTERs, and every later run of the search was
  slower than the ones before it;
* after each collection, what survived it is frozen: an object still alive when a collection came (after
  ``threshold0`` net allocations, a second or more under load) is a long-lived one (a transaction waiting for
  its timer, a registration, a call), and the collector stops scanning it. A frozen object that is no longer
  referenced is still freed at once by its reference count; only a reference cycle that becomes garbage after it
  was frozen waits for
* the full collection every ``full_every_s`` seconds (default 10 minutes), which thaws everything, collects all
  generations and freezes again: one longer pause, rarely.

So each long-lived object is scanned once, and a pause scans what survived of ``young_every_s`` seconds of
allocations (tens of milliseconds) whatever the load. Until 2026-11-27 only the survivors of generation-1
collections were frozen, so each was scanned twice (in generation 0, then with the next generation 1): at 1 500
REGISTERs a second that was 11 % of the gateway's CPU (1.7 s in 26 generation-0 and 1.8 s in 12 generation-1
pauses of a 30 s process), with generation-1 pauses up to 0.23 s, about half of T1.

The policy is process-wide: ``sipgw-lab gateway serve`` and ``bench.gateway_proc`` install it; an
``EmbeddedGateway`` running inside another program (a pytest worker, the lab) leaves that program's collector
alone.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from dataclasses import dataclass, field

log = logging.getLogger("sipgw.gc")

#: Generation-0 threshold: about 30 ms per generation-0 pause on the project's machines.
THRESHOLD0 = 50_000
#: Seconds between full collections (thaw, collect everything, freeze).
FULL_EVERY_S = 600.0
#: Seconds between the timed generation-0 collections.
YOUNG_EVERY_S = 0.5


@dataclass
class GcStats:
    """Collections and pauses by generation, as the collector's callbacks saw them."""

    collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    pause_s: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    max_pause_s: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    collected: int = 0  # unreachable objects freed by the collector
    full_collections: int = 0  # of the policy's own (thaw, collect, freeze)

    def summary(self) -> str:
        return (f"collections by generation {self.collections}, pause seconds "
                f"{[round(p, 3) for p in self.pause_s]}, longest {[round(p, 3) for p in self.max_pause_s]}, "
                f"collected {self.collected}, full collections {self.full_collections}")


class GcPolicy:
    """Install with ``install()`` (optionally with the event loop that runs the periodic full collection)."""

    def __init__(self, threshold0: int = THRESHOLD0, threshold1: int = 1, full_every_s: float = FULL_EVERY_S,
                 young_every_s: float = YOUNG_EVERY_S):
        if threshold0 < 1 or threshold1 < 1:
            raise ValueError(f"GC thresholds must be at least 1, got {threshold0} and {threshold1}")
        if full_every_s <= 0:
            raise ValueError(f"full_every_s must be positive, got {full_every_s}")
        if young_every_s <= 0:
            raise ValueError(f"young_every_s must be positive, got {young_every_s}")
        self.threshold0 = threshold0
        self.threshold1 = threshold1
        self.full_every_s = full_every_s
        self.young_every_s = young_every_s
        self._young_timer: asyncio.TimerHandle | None = None
        self.stats = GcStats()
        self._started = 0.0
        self._saved: tuple[int, int, int] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_full = False

    @property
    def installed(self) -> bool:
        return self._saved is not None

    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if self._saved is not None:
            raise RuntimeError("this GC policy is already installed")
        self._saved = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(self.threshold0, self.threshold1, self._saved[2])
        gc.callbacks.append(self._on_gc)
        if loop is not None:
            self._loop = loop
            self._timer = loop.call_later(self.full_every_s, self._periodic_full)
            self._young_timer = loop.call_later(self.young_every_s, self._periodic_young)
        log.info("event=gc_policy threshold0=%d threshold1=%d full_every_s=%g young_every_s=%g", self.threshold0,
                 self.threshold1, self.full_every_s, self.young_every_s)

    def remove(self) -> None:
        """Back to the thresholds found at ``install``; frozen objects are thawed (the next collection sees them)."""
        if self._saved is None:
            return
        for timer in (self._timer, self._young_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._young_timer = None
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        gc.set_threshold(*self._saved)
        gc.unfreeze()
        self._saved = None

    def full_collection(self) -> int:
        """Thaw, collect every generation, freeze again; returns the unreachable objects found."""
        self._in_full = True
        try:
            gc.unfreeze()
            found = gc.collect()
            gc.freeze()
        finally:
            self._in_full = False
        self.stats.full_collections += 1
        return found

    def _periodic_full(self) -> None:
        started = time.perf_counter()
        found = self.full_collection()
        log.info("event=gc_full unreachable=%d pause_ms=%.1f", found, (time.perf_counter() - started) * 1000)
        if self._loop is not None and self._saved is not None:
            self._timer = self._loop.call_later(self.full_every_s, self._periodic_full)

    def _periodic_young(self) -> None:
        gc.collect(0)  # the callback counts it and freezes what survived
        if self._loop is not None and self._saved is not None:
            self._young_timer = self._loop.call_later(self.young_every_s, self._periodic_young)

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info["generation"]
        pause = time.perf_counter() - self._started
        s = self.stats
        s.collections[generation] += 1
        s.pause_s[generation] += pause
        s.max_pause_s[generation] = max(s.max_pause_s[generation], pause)
        s.collected += info.get("collected", 0)
        if not self._in_full:
            gc.freeze()  # what survived a collection is long-lived: out of the next scans
