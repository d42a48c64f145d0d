"""How long each transaction timer runs: the durations of a :class:`~gateway.sip.timers.TimerConfig` for one
transport class (RFC 3261 §17, RFC 6026 §7; the rules are in ``timers.py``'s docstring).

This part runs for every timer a transaction arms or re-arms, so it is compiled with the SIP core;
``timers.py`` itself stays Python (``tools/compile_sip_core.py`` says why).
"""

from __future__ import annotations

from typing import Final

from .timers import Backoff, Timer, TimerConfig

__all__ = ["TimerPolicy"]

# The members, bound once: read from a module that is not compiled, ``Timer.A`` goes through EnumType's
# __getattr__ hook each time in Python 3.11. Compared by identity (members are singletons). Final, so that the
# compiled code reads them from C statics rather than from the module's dict.
_A: Final = Timer.A
_D: Final = Timer.D
_E: Final = Timer.E
_G: Final = Timer.G
_I: Final = Timer.I
_J: Final = Timer.J
_K: Final = Timer.K
_INITIAL: Final = Backoff.INITIAL
_T2: Final = Backoff.T2
_DOUBLE: Final = Backoff.DOUBLE
_DOUBLE_CAPPED: Final = Backoff.DOUBLE_CAPPED


class TimerPolicy:
    """Durations of each timer for one transport class; shared by every transaction on that class."""

    __slots__ = ("config", "reliable")

    def __init__(self, config: TimerConfig, reliable: bool) -> None:
        self.config = config
        self.reliable = reliable

    def __repr__(self) -> str:
        return f"TimerPolicy({self.config!r}, reliable={self.reliable})"

    def initial(self, timer: Timer) -> float | None:
        """The first duration of ``timer``; None when the timer is not armed at all on this transport.

        A zero duration means "fire at once": the transaction leaves the guarded state immediately.
        """
        cfg = self.config
        if timer is _A or timer is _E or timer is _G:
            return None if self.reliable else cfg.t1
        if timer is _D or timer is _I or timer is _J or timer is _K:
            if self.reliable:
                return 0.0
            if timer is _D:
                return cfg.timer_d
            if timer is _J:
                return 64 * cfg.t1
            return cfg.t4  # Timers I and K
        # B, F, H (RFC 3261) and L, M (RFC 6026): 64*T1 on every transport.
        return 64 * cfg.t1

    def next(self, timer: Timer, previous: float | None, backoff: Backoff) -> float | None:
        """The duration to re-arm ``timer`` with, given the interval it last ran with."""
        if backoff is _INITIAL or previous is None:
            first = self.initial(timer)
            if backoff is _T2 and first is not None:
                return self.config.t2
            return first
        if self.reliable and (timer is _A or timer is _E or timer is _G):
            return None
        if backoff is _DOUBLE:
            return 2 * previous
        if backoff is _DOUBLE_CAPPED:
            return min(2 * previous, self.config.t2)
        return self.config.t2
