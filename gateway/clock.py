"""The gateway's one source of wall-clock time, settable for tests of time-based features.

Offboarding after 14 and 30 days, pairing-code expiry and registration expiry all read ``Clock.now()``.
Tests and lab engineers move it forward through the control API (``set``/``advance``); SIP timers keep
using the monotonic clock of the event loop, so moving the wall clock never fires a retransmission storm.
"""

from __future__ import annotations

import threading
import time


class Clock:
    """Wall-clock time with an adjustable offset. Thread-safe."""

    def __init__(self, source=time.time):
        self._source = source
        self._offset = 0.0
        self._lock = threading.Lock()
        #: Called with the new offset after every change (registrar workers keep the same clock).
        self.listeners: list = []

    def now(self) -> float:
        """Seconds since the epoch, as the gateway sees them."""
        return self._source() + self._offset

    @property
    def offset(self) -> float:
        return self._offset

    def set(self, when: float) -> None:
        """Make ``now()`` return ``when`` at this instant and advance normally from there."""
        with self._lock:
            self._offset = when - self._source()
        self._changed()

    def advance(self, seconds: float) -> float:
        """Move the clock forward (or back, with a negative value); returns the new time."""
        with self._lock:
            self._offset += seconds
        self._changed()
        return self.now()

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0
        self._changed()

    def set_offset(self, offset: float) -> None:
        """Take another process's offset as it is (no listener is told)."""
        with self._lock:
            self._offset = offset

    def _changed(self) -> None:
        for listener in self.listeners:
            listener(self._offset)
