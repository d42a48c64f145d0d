"""A pool of worker processes that grows with the number of calls needed.

pjsua allows at most four calls per Endpoint, hence per process.  The media node (which terminates calls
for many emulated Teams users, PSTN parties, IVR, voicemail and meetings at once) reserves call slots
here: ``acquire`` returns a worker with room, packing calls onto the fewest processes and spawning a
new one only when every worker is full; ``release`` gives the slots back.  Reservations are counted in
the parent, so a worker is never handed out beyond its ``max_calls`` even before its calls exist.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sipua.client import UAWorker
from sipua.errors import InvalidArgument, SipUaError
from sipua.protocol import WorkerConfig


class PoolExhausted(SipUaError):
    """Every allowed process is full."""


@dataclass(frozen=True)
class PoolMetrics:
    processes: int
    capacity: int  # call slots over all live processes
    reserved: int  # slots handed out by acquire and not yet released
    reserved_per_process: dict[str, int]
    live_calls_per_process: dict[str, int]  # as last reported by each worker's heartbeat
    spawned_total: int
    lost_total: int  # workers found dead or hung and dropped from the pool


class UAPool:
    """Workers built from ``template`` (names and log files get a ``-<n>`` suffix, and every worker gets
    its own leased RTP range).  ``on_spawn(worker)`` runs once per new worker, e.g. to add accounts."""

    def __init__(
        self,
        template: WorkerConfig,
        *,
        max_processes: int = 32,
        on_spawn: Callable[[UAWorker], None] | None = None,
        spawn_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(template, WorkerConfig):
            raise InvalidArgument(f"UAPool: template must be a WorkerConfig, got {type(template).__name__}")
        fixed = [f"{t.kind.value} {t.host}:{t.port}" for t in template.transports if t.port]
        if fixed:
            raise InvalidArgument(f"UAPool: template transports need port 0 (ephemeral), since every worker "
                                  f"opens its own; fixed: {fixed}")
        if max_processes < 1:
            raise InvalidArgument(f"UAPool: max_processes must be >= 1, got {max_processes}")
        self.template = dataclasses.replace(template, rtp_port=None)
        self.max_processes = max_processes
        self._on_spawn = on_spawn
        self._spawn_kwargs = dict(spawn_kwargs or {})
        self._lock = threading.Lock()
        self._workers: list[UAWorker] = []
        self._reserved: dict[int, int] = {}  # id(worker) -> reserved slots
        self._numbers = itertools.count(1)
        self._spawned = 0
        self._spawning = 0  # workers being started outside the lock
        self._lost = 0
        self._closed = False

    @property
    def calls_per_process(self) -> int:
        return self.template.max_calls

    @property
    def workers(self) -> list[UAWorker]:
        with self._lock:
            return list(self._workers)

    def acquire(self, n_calls: int = 1) -> UAWorker:
        """A worker with ``n_calls`` free slots (reserved until ``release``).

        A worker with room is handed out at once, even while another thread is spawning one: spawning
        (tenths of a second) happens outside the pool's lock."""
        if isinstance(n_calls, bool) or not isinstance(n_calls, int) or not 1 <= n_calls <= self.calls_per_process:
            raise InvalidArgument(f"UAPool.acquire: n_calls must be 1..{self.calls_per_process} "
                                  f"(calls per process), got {n_calls!r}")
        with self._lock:
            worker = self._pick(n_calls)
            if worker is not None:
                self._reserved[id(worker)] += n_calls
                return worker
            self._claim_spawn()
        worker = self._spawn_unlocked()
        with self._lock:
            self._reserved[id(worker)] += n_calls
            return worker

    def try_acquire(self, n_calls: int = 1) -> UAWorker | None:
        """Like ``acquire`` but never spawns: None when no worker has ``n_calls`` free slots."""
        if isinstance(n_calls, bool) or not isinstance(n_calls, int) or not 1 <= n_calls <= self.calls_per_process:
            raise InvalidArgument(f"UAPool.try_acquire: n_calls must be 1..{self.calls_per_process} "
                                  f"(calls per process), got {n_calls!r}")
        with self._lock:
            worker = self._pick(n_calls)
            if worker is not None:
                self._reserved[id(worker)] += n_calls
            return worker

    def ensure_free(self, slots: int = 1) -> int:
        """Spawn workers until at least ``slots`` call slots are free (or ``max_processes`` is reached);
        returns how many were spawned.  Meant for a background thread, so that ``acquire`` finds room."""
        spawned = 0
        while True:
            with self._lock:
                if self._closed:
                    return spawned
                self._prune()
                free = (len(self._workers) + self._spawning) * self.calls_per_process - sum(self._reserved.values())
                if free >= slots or len(self._workers) + self._spawning >= self.max_processes:
                    return spawned
                self._claim_spawn()
            self._spawn_unlocked()
            spawned += 1

    def release(self, worker: UAWorker, n_calls: int = 1) -> None:
        with self._lock:
            key = id(worker)
            if key not in self._reserved:
                return  # the worker was dropped from the pool (died) meanwhile
            if n_calls < 1 or n_calls > self._reserved[key]:
                raise InvalidArgument(f"UAPool.release: {worker.name} holds {self._reserved[key]} slot(s), "
                                      f"cannot release {n_calls}")
            self._reserved[key] -= n_calls

    def close_idle(self, keep: int = 1) -> int:
        """Close workers with no reservation beyond the first ``keep`` idle ones; returns how many."""
        with self._lock:
            idle = [w for w in self._workers if self._reserved[id(w)] == 0]
            doomed = idle[keep:]
            for w in doomed:
                self._workers.remove(w)
                del self._reserved[id(w)]
        for w in doomed:
            w.close()
        return len(doomed)

    def metrics(self) -> PoolMetrics:
        with self._lock:
            return PoolMetrics(
                processes=len(self._workers),
                capacity=len(self._workers) * self.calls_per_process,
                reserved=sum(self._reserved.values()),
                reserved_per_process={w.name: self._reserved[id(w)] for w in self._workers},
                live_calls_per_process={w.name: w.live_calls for w in self._workers},
                spawned_total=self._spawned,
                lost_total=self._lost,
            )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._workers = self._workers, []
            self._reserved.clear()
        errors = []
        for w in workers:
            try:
                w.close()
            except Exception as exc:  # keep closing the others
                errors.append(f"{w.name}: {exc}")
        if errors:
            raise SipUaError("UAPool.close: " + "; ".join(errors))

    def __enter__(self) -> UAPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals (lock held)

    def _prune(self) -> None:
        for w in [w for w in self._workers if not w.alive]:
            self._workers.remove(w)
            del self._reserved[id(w)]
            self._lost += 1
            try:
                w.close(timeout=1.0)
            except Exception:
                pass

    def _pick(self, n_calls: int) -> UAWorker | None:
        if self._closed:
            raise SipUaError("UAPool is closed")
        self._prune()
        candidates = [w for w in self._workers if self.calls_per_process - self._reserved[id(w)] >= n_calls]
        if not candidates:
            return None
        # Fill the busiest worker first so processes are only added when really needed.
        return max(candidates, key=lambda w: self._reserved[id(w)])

    def _claim_spawn(self) -> None:
        if len(self._workers) + self._spawning >= self.max_processes:
            raise PoolExhausted(f"all {len(self._workers)} workers are full ({self.calls_per_process} calls "
                                f"each) and {self._spawning} more are starting; max_processes "
                                f"{self.max_processes} reached")
        self._spawning += 1

    # ------------------------------------------------------------------ spawning (lock not held)

    def _spawn_unlocked(self) -> UAWorker:
        """Spawn one worker for a slot claimed with ``_claim_spawn`` and add it to the pool."""
        try:
            n = next(self._numbers)
            stem, ext = os.path.splitext(self.template.log_path)
            config = dataclasses.replace(self.template, name=f"{self.template.name}-{n}",
                                         log_path=f"{stem}-{n}{ext or '.log'}")
            worker = UAWorker.spawn(config, **self._spawn_kwargs)
            try:
                if self._on_spawn is not None:
                    self._on_spawn(worker)
            except BaseException:
                worker.close()
                raise
        except BaseException:
            with self._lock:
                self._spawning -= 1
            raise
        with self._lock:
            self._spawning -= 1
            if self._closed:
                closed = True
            else:
                closed = False
                self._workers.append(worker)
                self._reserved[id(worker)] = 0
                self._spawned += 1
        if closed:
            worker.close()
            raise SipUaError("UAPool was closed while a worker was starting")
        return worker
