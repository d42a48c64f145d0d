"""SIP transaction timers, named by their RFC letters.

RFC 3261 §17 and its Appendix A define the timers A–K; RFC 6026 §7 adds L and M for the "Accepted" state
of the INVITE transactions. This module only computes *durations*: the transaction tables in
``transaction.py`` say when a timer is armed, re-armed or cancelled, and the endpoint turns that into
``ArmTimer``/``CancelTimer`` actions carrying absolute deadlines. Nothing here reads a clock.

Transport matters (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2):

* on a reliable transport (TCP, TLS, WS, SCTP) the retransmission timers A, E and G are never armed;
* the timers that only exist to absorb retransmissions, D, I, J and K, are zero on a reliable transport,
  so the state they guard is left at once;
* B, F, H, L and M are 64*T1 on every transport.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .timer_policy import TimerPolicy

__all__ = [
    "RELIABLE_TRANSPORTS",
    "Backoff",
    "Timer",
    "TimerConfig",
    "is_reliable_transport",
]

#: Transport tokens of the Via header (RFC 3261 §20.42, RFC 7118, RFC 4168) that deliver reliably.
RELIABLE_TRANSPORTS: frozenset[str] = frozenset({"TCP", "TLS", "SCTP", "TLS-SCTP", "WS", "WSS"})


def is_reliable_transport(transport: str) -> bool:
    """True when ``transport`` (a Via transport token, any case) is reliable in the RFC 3261 sense."""
    return transport.upper() in RELIABLE_TRANSPORTS


class Timer(enum.StrEnum):
    """The transaction timers, each named by the RFC letter and documented with its role."""

    A = "A"  # INVITE client: request retransmission interval (unreliable only), §17.1.1.2
    B = "B"  # INVITE client: transaction timeout, §17.1.1.2
    D = "D"  # INVITE client: wait time for response retransmissions in Completed, §17.1.1.2
    E = "E"  # non-INVITE client: request retransmission interval (unreliable only), §17.1.2.2
    F = "F"  # non-INVITE client: transaction timeout, §17.1.2.2
    G = "G"  # INVITE server: final response retransmission interval (unreliable only), §17.2.1
    H = "H"  # INVITE server: wait time for the ACK, §17.2.1
    I = "I"  # INVITE server: wait time for ACK retransmissions in Confirmed, §17.2.1  # noqa: E741
    J = "J"  # non-INVITE server: wait time for request retransmissions in Completed, §17.2.2
    K = "K"  # non-INVITE client: wait time for response retransmissions in Completed, §17.1.2.2
    L = "L"  # INVITE server: wait time for INVITE retransmissions in Accepted, RFC 6026 §8.7
    M = "M"  # INVITE client: wait time for 2xx retransmissions in Accepted, RFC 6026 §8.4


class Backoff(enum.Enum):
    """How a timer's next interval follows from its previous one when it is re-armed."""

    INITIAL = "initial"  # the timer's initial value (first arming)
    DOUBLE = "double"  # 2 * previous, no ceiling (Timer A, RFC 3261 §17.1.1.2)
    DOUBLE_CAPPED = "double, at most T2"  # min(2 * previous, T2) (Timers E and G)
    T2 = "T2"  # exactly T2 (Timer E in the non-INVITE Proceeding state, §17.1.2.2)


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """The base values of RFC 3261 §17.1.1.1 and Appendix A, in seconds.

    ``t1`` is the round-trip estimate (500 ms), ``t2`` the longest retransmission interval for non-INVITE
    requests and INVITE responses (4 s), ``t4`` the longest time a message stays in the network (5 s).
    ``timer_d`` is Timer D on unreliable transports: "at least 32 seconds" (§17.1.1.2). A lab that wants
    fast test runs may lower all of them; RFC 3261 allows a smaller T1 in a closed network.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d: float = 32.0

    def __post_init__(self) -> None:
        for name in ("t1", "t2", "t4", "timer_d"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise TypeError(f"TimerConfig.{name} must be a number of seconds, got {value!r}")
            if value <= 0:
                raise ValueError(f"TimerConfig.{name} must be positive, got {value!r}")
        if self.t2 < self.t1:
            raise ValueError(f"TimerConfig.t2 ({self.t2}) must not be smaller than t1 ({self.t1})")

    def policy(self, *, reliable: bool) -> TimerPolicy:
        """The timer durations for one transaction on a reliable or unreliable transport."""
        from .timer_policy import TimerPolicy  # compiled with the SIP core; it imports this module

        return TimerPolicy(self, reliable)
