"""Distinct tones for the media node's parties.

Every party (a Teams user's Teams client, a PSTN number) sends its own tone so that a recording tells
who was heard.  The frequencies come from 500-2000 Hz on a 10 Hz grid, at least 60 Hz apart, keeping clear of

- the DTMF frequencies (ITU-T Q.23) by 2.5 %, so a party tone never sits in a DTMF detector's band
  (a digit needs a low- and a high-group tone at once, which one party tone cannot make);
- call-progress and special-information tones (30 Hz) and the fax/modem tones a gateway reacts to
  (CNG 1100 Hz, V.25 1300 Hz: 60 Hz);
- the tones the harness gives devices (810, 1720, 2330, 530, 1990 Hz) by 50 Hz, so a party tone and
  a device tone never share a detector bin;
- simple fractions of 8 kHz (multiples of 250 Hz), whose G.711 quantisation error is periodic.

60 Hz is more than twenty bins of a one-second Goertzel/FFT analysis, so neighbouring party tones are
separated cleanly.
"""

from __future__ import annotations

import threading

GRID_START_HZ = 500.0
GRID_STOP_HZ = 2000.0
GRID_STEP_HZ = 10.0
MIN_SPACING_HZ = 60.0

_DTMF_HZ = (697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0)
_SIGNALLING_HZ = {350.0: 30.0, 400.0: 30.0, 425.0: 30.0, 440.0: 30.0, 450.0: 30.0, 480.0: 30.0,
                  620.0: 30.0, 913.8: 30.0, 985.2: 30.0, 1100.0: 60.0, 1300.0: 60.0, 1370.6: 30.0,
                  1428.5: 30.0, 1776.7: 30.0}
_DEVICE_PLAN_HZ = (810.0, 1720.0, 2330.0, 530.0, 1990.0)


def _usable(f: float) -> bool:
    if any(abs(f - d) <= 0.025 * d for d in _DTMF_HZ):
        return False
    if any(abs(f - s) < guard for s, guard in _SIGNALLING_HZ.items()):
        return False
    if any(abs(f - d) < 50.0 for d in _DEVICE_PLAN_HZ):
        return False
    return f % 250.0 != 0.0


def party_tone_plan() -> tuple[float, ...]:
    """The usable frequencies, lowest first, each at least ``MIN_SPACING_HZ`` above the previous."""
    out: list[float] = []
    steps = round((GRID_STOP_HZ - GRID_START_HZ) / GRID_STEP_HZ)
    for i in range(steps + 1):
        f = GRID_START_HZ + i * GRID_STEP_HZ
        if _usable(f) and (not out or f - out[-1] >= MIN_SPACING_HZ):
            out.append(f)
    return tuple(out)


PARTY_TONES_HZ: tuple[float, ...] = party_tone_plan()


class ToneAllocator:
    """Gives each party key the next unused frequency of the plan; once the plan is used up, the least
    used frequency is shared (and ``distinct`` says so)."""

    def __init__(self, plan: tuple[float, ...] = PARTY_TONES_HZ) -> None:
        if not plan:
            raise ValueError("ToneAllocator: empty tone plan")
        self._plan = plan
        self._lock = threading.Lock()
        self._by_key: dict[str, float] = {}
        self._uses = dict.fromkeys(plan, 0)

    def tone_for(self, key: str) -> float:
        with self._lock:
            hz = self._by_key.get(key)
            if hz is None:
                hz = min(self._plan, key=lambda f: (self._uses[f], self._plan.index(f)))
                self._by_key[key] = hz
                self._uses[hz] += 1
            return hz

    def set(self, key: str, hz: float) -> None:
        """Pin a party to a frequency chosen by the user (it may clash; the user asked for it)."""
        with self._lock:
            old = self._by_key.get(key)
            if old is not None and old in self._uses:
                self._uses[old] -= 1
            self._by_key[key] = hz
            if hz in self._uses:
                self._uses[hz] += 1

    def distinct(self) -> bool:
        with self._lock:
            values = list(self._by_key.values())
            return len(values) == len(set(values))

    def reset(self) -> None:
        with self._lock:
            self._by_key.clear()
            self._uses = dict.fromkeys(self._plan, 0)
