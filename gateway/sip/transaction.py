"""The four SIP transaction state machines of RFC 3261 §17, as transition tables.

Rule 1: every transition of every transaction lives in this file, in ``TRANSITIONS``. A transition is a
row: (kind, state, event) -> (next state, effects). The code below only looks rows up and resolves timer
durations; the few rules that are not rows are listed here and nowhere else:

* an event with no row for the current state is an error (``TransactionStateError``) naming the event, the
  transaction kind (the role) and the state;
* a timer that fires after it was cancelled or re-armed (a late timer callback) is ignored: it is not an
  event;
* a timer whose duration is zero on this transport (D, I, J, K on TCP/TLS) fires at once, so the state it
  guards is entered and left in the same call;
* a timer that is not used on this transport (A, E, G on TCP/TLS) is never armed;
* entering ``TERMINATED`` cancels every timer still running.

Rule 2: this file knows nothing about messages, addresses or the wire. Events are derived from the method
and status code only, effects are symbols (``Effect.SEND_ACK``); ``endpoint.py`` builds the messages and
turns the effects into actions. That keeps the tables testable row by row, and
``tools/draw_state_diagrams.py`` draws the RFC figures from the same dictionaries.

The INVITE machines include the "Accepted" state of RFC 6026, which updates RFC 3261: after a 2xx the
client transaction stays in Accepted for Timer M to pass 2xx retransmissions and forked 2xx responses to
the TU, and the server transaction stays in Accepted for Timer L to absorb retransmitted INVITEs instead of
presenting them to the TU as new requests.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, NamedTuple

from .timer_policy import TimerPolicy
from .timers import Backoff, Timer

__all__ = [
    "START_EVENTS",
    "TRANSITIONS",
    "Arm",
    "Cancel",
    "Effect",
    "StartTimer",
    "StopTimer",
    "TransactionKind",
    "TransactionMachine",
    "TransactionState",
    "TransactionStateError",
    "Transition",
    "TxEvent",
    "received_response_event",
    "sent_response_event",
]


class TransactionKind(enum.Enum):
    """The four machines of RFC 3261 §17; the value is the role named in error messages."""

    INVITE_CLIENT = "INVITE client"  # §17.1.1
    NON_INVITE_CLIENT = "non-INVITE client"  # §17.1.2
    INVITE_SERVER = "INVITE server"  # §17.2.1
    NON_INVITE_SERVER = "non-INVITE server"  # §17.2.2

    #: Members are singletons compared by identity, so the identity hash is the consistent one; it is computed
    #: in C, where Enum's own ``hash(self._name_)`` is a Python call on every look-up of the tables below.
    __hash__ = object.__hash__

    @property
    def is_client(self) -> bool:
        return self in (TransactionKind.INVITE_CLIENT, TransactionKind.NON_INVITE_CLIENT)

    @property
    def is_invite(self) -> bool:
        return self in (TransactionKind.INVITE_CLIENT, TransactionKind.INVITE_SERVER)

    @classmethod
    def for_method(cls, method: str, *, client: bool) -> TransactionKind:
        """The machine that handles a request of ``method``.

        ACK never has a transaction of its own: the ACK for a non-2xx response belongs to the INVITE
        transaction, and the ACK for a 2xx is sent and received outside any transaction (§17).
        """
        if method == "ACK":
            raise ValueError("ACK does not create a transaction (RFC 3261 §17); send or deliver it directly")
        if method == "INVITE":
            return cls.INVITE_CLIENT if client else cls.INVITE_SERVER
        return cls.NON_INVITE_CLIENT if client else cls.NON_INVITE_SERVER


class TransactionState(enum.StrEnum):
    """Transaction states; IDLE is the state before the first message, the others are the RFC's."""

    IDLE = "Idle"
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class TxEvent(enum.StrEnum):
    """What can happen to a transaction. RECV_* come from the network, SEND_* from the TU."""

    SEND_REQUEST = "request from TU"
    RECV_REQUEST = "request received"
    RECV_ACK = "ACK received"
    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_3XX_6XX = "300-699 received"
    SEND_1XX = "1xx from TU"
    SEND_2XX = "2xx from TU"
    SEND_3XX_6XX = "300-699 from TU"
    TIMER_A = "Timer A fires"
    TIMER_B = "Timer B fires"
    TIMER_D = "Timer D fires"
    TIMER_E = "Timer E fires"
    TIMER_F = "Timer F fires"
    TIMER_G = "Timer G fires"
    TIMER_H = "Timer H fires"
    TIMER_I = "Timer I fires"
    TIMER_J = "Timer J fires"
    TIMER_K = "Timer K fires"
    TIMER_L = "Timer L fires"
    TIMER_M = "Timer M fires"
    TRANSPORT_ERROR = "transport error"
    # RFC 3261 §9.1: no final response 64*T1 after the CANCEL was sent; the TU destroys the transaction.
    CANCEL_EXPIRED = "64*T1 after CANCEL"

    @classmethod
    def for_timer(cls, timer: Timer) -> TxEvent:
        return _TIMER_EVENTS[timer]


_TIMER_EVENTS: Final[dict[Timer, TxEvent]] = {timer: TxEvent[f"TIMER_{timer.value}"] for timer in Timer}


class Effect(enum.StrEnum):
    """What a transition asks the endpoint to do with messages or the TU."""

    SEND_REQUEST = "send request"
    RETRANSMIT_REQUEST = "retransmit request"
    SEND_ACK = "send ACK"  # the ACK for a 300-699 response, built by the transaction (§17.1.1.3)
    PASS_TO_TU = "pass to TU"  # the message that caused the event goes up to the TU
    SEND_TRYING = "send 100 Trying"  # §17.2.1: sent at once, so the client stops retransmitting
    SEND_RESPONSE = "send response"  # the TU's response; it becomes the "last response"
    RESEND_RESPONSE = "resend last response"
    REPORT_TIMEOUT = "inform TU: timeout"
    REPORT_TRANSPORT_ERROR = "inform TU: transport error"


@dataclass(frozen=True, slots=True)
class Arm:
    """Effect: (re)start ``timer``; its duration follows from ``backoff`` and the transport."""

    timer: Timer
    backoff: Backoff = Backoff.INITIAL

    def __str__(self) -> str:
        if self.backoff is Backoff.INITIAL:
            return f"start {self.timer.value}"
        return f"restart {self.timer.value} ({self.backoff.value})"


@dataclass(frozen=True, slots=True)
class Cancel:
    """Effect: stop ``timer`` if it is running."""

    timer: Timer

    def __str__(self) -> str:
        return f"stop {self.timer.value}"


TableEffect = Effect | Arm | Cancel


class Transition(NamedTuple):
    next_state: TransactionState
    effects: tuple[TableEffect, ...] = ()


_T = Transition
_S = TransactionState
_E = TxEvent
_X = Effect
_K = TransactionKind
_A, _B, _D, _EE, _F, _G, _H, _I, _J, _KK, _L, _M = (
    Timer.A, Timer.B, Timer.D, Timer.E, Timer.F, Timer.G,
    Timer.H, Timer.I, Timer.J, Timer.K, Timer.L, Timer.M,
)  # fmt: skip

# The tables. A missing (state, event) pair is an illegal event. "Absorb" rows (no effects, same state)
# are written out so that every tolerated event is visible here and tested.
# Plain dicts (not Mapping): the compiled core looks them up with dict operations, not generic item access.
TRANSITIONS: Final[dict[TransactionKind, dict[TransactionState, dict[TxEvent, Transition]]]] = {
    # RFC 3261 §17.1.1 (figure 5), with Accepted from RFC 6026 §8.4 (figure 5 there).
    _K.INVITE_CLIENT: {
        _S.IDLE: {
            _E.SEND_REQUEST: _T(_S.CALLING, (_X.SEND_REQUEST, Arm(_A), Arm(_B))),
        },
        _S.CALLING: {
            # §17.1.1.2: retransmit, then double the interval; Timer A has no T2 ceiling.
            _E.TIMER_A: _T(_S.CALLING, (_X.RETRANSMIT_REQUEST, Arm(_A, Backoff.DOUBLE))),
            _E.TIMER_B: _T(_S.TERMINATED, (_X.REPORT_TIMEOUT,)),
            _E.RECV_1XX: _T(_S.PROCEEDING, (Cancel(_A), Cancel(_B), _X.PASS_TO_TU)),
            _E.RECV_2XX: _T(_S.ACCEPTED, (Cancel(_A), Cancel(_B), _X.PASS_TO_TU, Arm(_M))),
            _E.RECV_3XX_6XX: _T(
                _S.COMPLETED, (Cancel(_A), Cancel(_B), _X.SEND_ACK, _X.PASS_TO_TU, Arm(_D))
            ),
            _E.TRANSPORT_ERROR: _T(_S.TERMINATED, (_X.REPORT_TRANSPORT_ERROR,)),
        },
        _S.PROCEEDING: {
            _E.RECV_1XX: _T(_S.PROCEEDING, (_X.PASS_TO_TU,)),
            _E.RECV_2XX: _T(_S.ACCEPTED, (_X.PASS_TO_TU, Arm(_M))),
            _E.RECV_3XX_6XX: _T(_S.COMPLETED, (_X.SEND_ACK, _X.PASS_TO_TU, Arm(_D))),
            _E.TRANSPORT_ERROR: _T(_S.TERMINATED, (_X.REPORT_TRANSPORT_ERROR,)),
            # Proceeding has no timer of its own (§17.1.1.2); a CANCELled INVITE that never gets its final
            # response is given up 64*T1 after the CANCEL (§9.1), and the TU hears of it as a timeout.
            _E.CANCEL_EXPIRED: _T(_S.TERMINATED, (_X.REPORT_TIMEOUT,)),
        },
        _S.ACCEPTED: {
            # RFC 6026 §8.4: retransmitted and forked 2xx responses go to the TU, which ACKs each.
            _E.RECV_2XX: _T(_S.ACCEPTED, (_X.PASS_TO_TU,)),
            # A late provisional from another branch of a fork carries nothing the TU can still use.
            _E.RECV_1XX: _T(_S.ACCEPTED),
            _E.TIMER_M: _T(_S.TERMINATED),
        },
        _S.COMPLETED: {
            # §17.1.1.2: a retransmitted final response is ACKed again and not passed up.
            _E.RECV_3XX_6XX: _T(_S.COMPLETED, (_X.SEND_ACK,)),
            _E.RECV_1XX: _T(_S.COMPLETED),
            _E.TIMER_D: _T(_S.TERMINATED),
            _E.TRANSPORT_ERROR: _T(_S.TERMINATED, (_X.REPORT_TRANSPORT_ERROR,)),
        },
        _S.TERMINATED: {},
    },
    # RFC 3261 §17.1.2 (figure 6).
    _K.NON_INVITE_CLIENT: {
        _S.IDLE: {
            _E.SEND_REQUEST: _T(_S.TRYING, (_X.SEND_REQUEST, Arm(_EE), Arm(_F))),
        },
        _S.TRYING: {
            _E.TIMER_E: _T(_S.TRYING, (_X.RETRANSMIT_REQUEST, Arm(_EE, Backoff.DOUBLE_CAPPED))),
            _E.TIMER_F: _T(_S.TERMINATED, (_X.REPORT_TIMEOUT,)),
            _E.RECV_1XX: _T(_S.PROCEEDING, (_X.PASS_TO_TU,)),
            _E.RECV_2XX: _T(_S.COMPLETED, (Cancel(_EE), Cancel(_F), _X.PASS_TO_TU, Arm(_KK))),
            _E.RECV_3XX_6XX: _T(_S.COMPLETED, (Cancel(_EE), Cancel(_F), _X.PASS_TO_TU, Arm(_KK))),
            _E.TRANSPORT_ERROR: _T(_S.TERMINATED, (_X.REPORT_TRANSPORT_ERROR,)),
        },
        _S.PROCEEDING: {
            # §17.1.2.2: once a provisional arrived the request is retransmitted every T2.
            _E.TIMER_E: _T(_S.PROCEEDING, (_X.RETRANSMIT_REQUEST, Arm(_EE, Backoff.T2))),
            _E.TIMER_F: _T(_S.TERMINATED, (_X.REPORT_TIMEOUT,)),
            _E.RECV_1XX: _T(_S.PROCEEDING, (_X.PASS_TO_TU,)),
            _E.RECV_2XX: _T(_S.COMPLETED, (Cancel(_EE), Cancel(_F), _X.PASS_TO_TU, Arm(_KK))),
            _E.RECV_3XX_6XX: _T(_S.COMPLETED, (Cancel(_EE), Cancel(_F), _X.PASS_TO_TU, Arm(_KK))),
            _E.TRANSPORT_ERROR: _T(_S.TERMINATED, (_X.REPORT_TRANSPORT_ERROR,)),
        },
        _S.COMPLETED: {
            # §17.1.2.2: Completed exists to absorb response retransmissions.
            _E.RECV_1XX: _T(_S.COMPLETED),
            _E.RECV_2XX: _T(_S.COMPLETED),
            _E.RECV_3XX_6XX: _T(_S.COMPLETED),
            _E.TIMER_K: _T(_S.TERMINATED),
        },
        _S.TERMINATED: {},
    },
    # RFC 3261 §17.2.1 (figure 7), with Accepted from RFC 6026 §8.7 (figure 7 there).
    _K.INVITE_SERVER: {
        _S.IDLE: {
            _E.RECV_REQUEST: _T(_S.PROCEEDING, (_X.PASS_TO_TU, _X.SEND_TRYING)),
        },
        _S.PROCEEDING: {
            _E.RECV_REQUEST: _T(_S.PROCEEDING, (_X.RESEND_RESPONSE,)),
            _E.SEND_1XX: _T(_S.PROCEEDING, (_X.SEND_RESPONSE,)),
            _E.SEND_2XX: _T(_S.ACCEPTED, (_X.SEND_RESPONSE, Arm(_L))),
            _E.SEND_3XX_6XX: _T(_S.COMPLETED, (_X.SEND_RESPONSE, Arm(_G), Arm(_H))),
            _E.TRANSPORT_ERROR: _T(_S.TERMINATED, (_X.REPORT_TRANSPORT_ERROR,)),
        },
        _S.ACCEPTED: {
            # RFC 6026 §8.7: retransmitted INVITEs are absorbed; the TU retransmits its 2xx through here
            # (§13.3.1.4), and an ACK that matches is passed up.
            _E.RECV_REQUEST: _T(_S.ACCEPTED),
            _E.SEND_2XX: _T(_S.ACCEPTED, (_X.SEND_RESPONSE,)),
            _E.RECV_ACK: _T(_S.ACCEPTED, (_X.PASS_TO_TU,)),
            _E.TIMER_L: _T(_S.TERMINATED),
            # The TU owns the 2xx; it is told, and the transaction keeps absorbing INVITEs until L.
            _E.TRANSPORT_ERROR: _T(_S.ACCEPTED, (_X.REPORT_TRANSPORT_ERROR,)),
        },
        _S.COMPLETED: {
            _E.RECV_REQUEST: _T(_S.COMPLETED, (_X.RESEND_RESPONSE,)),
            _E.TIMER_G: _T(_S.COMPLETED, (_X.RESEND_RESPONSE, Arm(_G, Backoff.DOUBLE_CAPPED))),
            _E.RECV_ACK: _T(_S.CONFIRMED, (Cancel(_G), Cancel(_H), Arm(_I))),
            _E.TIMER_H: _T(_S.TERMINATED, (_X.REPORT_TIMEOUT,)),
            _E.TRANSPORT_ERROR: _T(_S.TERMINATED, (_X.REPORT_TRANSPORT_ERROR,)),
        },
        _S.CONFIRMED: {
            # §17.2.1: Confirmed absorbs ACK retransmissions (and any late INVITE copy).
            _E.RECV_ACK: _T(_S.CONFIRMED),
            _E.RECV_REQUEST: _T(_S.CONFIRMED),
            _E.TIMER_I: _T(_S.TERMINATED),
        },
        _S.TERMINATED: {},
    },
    # RFC 3261 §17.2.2 (figure 8).
    _K.NON_INVITE_SERVER: {
        _S.IDLE: {
            _E.RECV_REQUEST: _T(_S.TRYING, (_X.PASS_TO_TU,)),
        },
        _S.TRYING: {
            # §17.2.2: in Trying, retransmissions are discarded (there is nothing to answer with yet).
            _E.RECV_REQUEST: _T(_S.TRYING),
            _E.SEND_1XX: _T(_S.PROCEEDING, (_X.SEND_RESPONSE,)),
            _E.SEND_2XX: _T(_S.COMPLETED, (_X.SEND_RESPONSE, Arm(_J))),
            _E.SEND_3XX_6XX: _T(_S.COMPLETED, (_X.SEND_RESPONSE, Arm(_J))),
        },
        _S.PROCEEDING: {
            _E.RECV_REQUEST: _T(_S.PROCEEDING, (_X.RESEND_RESPONSE,)),
            _E.SEND_1XX: _T(_S.PROCEEDING, (_X.SEND_RESPONSE,)),
            _E.SEND_2XX: _T(_S.COMPLETED, (_X.SEND_RESPONSE, Arm(_J))),
            _E.SEND_3XX_6XX: _T(_S.COMPLETED, (_X.SEND_RESPONSE, Arm(_J))),
            _E.TRANSPORT_ERROR: _T(_S.TERMINATED, (_X.REPORT_TRANSPORT_ERROR,)),
        },
        _S.COMPLETED: {
            _E.RECV_REQUEST: _T(_S.COMPLETED, (_X.RESEND_RESPONSE,)),
            # §17.2.2: "any other final responses passed by the TU ... MUST be discarded".
            _E.SEND_2XX: _T(_S.COMPLETED),
            _E.SEND_3XX_6XX: _T(_S.COMPLETED),
            _E.TIMER_J: _T(_S.TERMINATED),
            _E.TRANSPORT_ERROR: _T(_S.TERMINATED, (_X.REPORT_TRANSPORT_ERROR,)),
        },
        _S.TERMINATED: {},
    },
}

#: The event that starts each machine from IDLE.
START_EVENTS: Final[dict[TransactionKind, TxEvent]] = {
    _K.INVITE_CLIENT: _E.SEND_REQUEST,
    _K.NON_INVITE_CLIENT: _E.SEND_REQUEST,
    _K.INVITE_SERVER: _E.RECV_REQUEST,
    _K.NON_INVITE_SERVER: _E.RECV_REQUEST,
}


def _check_status(status: int) -> None:
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 699:
        raise ValueError(f"SIP status code must be an integer in 100..699, got {status!r}")


def received_response_event(status: int) -> TxEvent:
    """The client-side event for a response with ``status`` received from the network."""
    _check_status(status)
    if status < 200:
        return TxEvent.RECV_1XX
    return TxEvent.RECV_2XX if status < 300 else TxEvent.RECV_3XX_6XX


def sent_response_event(status: int) -> TxEvent:
    """The server-side event for a response with ``status`` handed down by the TU."""
    _check_status(status)
    if status < 200:
        return TxEvent.SEND_1XX
    return TxEvent.SEND_2XX if status < 300 else TxEvent.SEND_3XX_6XX


class TransactionStateError(Exception):
    """An event arrived that the transaction's table does not allow in its current state."""

    def __init__(self, kind: TransactionKind, state: TransactionState, event: TxEvent, branch: str = "") -> None:
        self.kind = kind
        self.state = state
        self.event = event
        self.branch = branch
        where = f" {branch}" if branch else ""
        super().__init__(
            f"event {event.name} ({event.value}) is not allowed for the {kind.value} transaction{where} "
            f"in state {state.name}"
        )


@dataclass(slots=True, unsafe_hash=True, init=False)  # a value, never changed; see endpoint.py's events
class StartTimer:
    """Output: the timer must fire at ``deadline`` (absolute, same clock as ``now``)."""

    timer: Timer
    deadline: float
    interval: float

    def __init__(self, timer: Timer, deadline: float, interval: float) -> None:
        self.timer = timer
        self.deadline = deadline
        self.interval = interval


@dataclass(slots=True, unsafe_hash=True, init=False)  # a value, never changed; see endpoint.py's events
class StopTimer:
    """Output: the timer must not fire any more."""

    timer: Timer

    def __init__(self, timer: Timer) -> None:
        self.timer = timer


Output = Effect | StartTimer | StopTimer


class TransactionMachine:
    """One transaction's state, driven by the tables above.

    Each ``handle``-style method returns the outputs in order: the message effects of every transition
    taken (including transitions through zero-length timers) and the timer starts and stops.
    """

    __slots__ = ("_armed", "_intervals", "branch", "kind", "policy", "state")

    def __init__(self, kind: TransactionKind, policy: TimerPolicy, *, branch: str = "") -> None:
        self.kind = kind
        self.policy = policy
        self.branch = branch
        self.state = TransactionState.IDLE
        self._armed: dict[Timer, float] = {}
        self._intervals: dict[Timer, float] = {}

    def __repr__(self) -> str:
        return f"<TransactionMachine {self.kind.value} {self.branch or '-'} {self.state.name}>"

    @property
    def terminated(self) -> bool:
        return self.state is TransactionState.TERMINATED

    @property
    def armed_timers(self) -> dict[Timer, float]:
        """Running timers and their deadlines (a copy)."""
        return dict(self._armed)

    def start(self, now: float) -> list[Output]:
        """Leave IDLE: the TU sent the request (client) or the request arrived (server)."""
        return self.handle(START_EVENTS[self.kind], now)

    def timer_fired(self, timer: Timer, now: float) -> list[Output]:
        """A timer expired. A timer that is no longer armed is a late callback and is ignored."""
        if timer not in self._armed:
            return []
        del self._armed[timer]
        return self.handle(TxEvent.for_timer(timer), now)

    def response_received(self, status: int, now: float) -> list[Output]:
        return self.handle(received_response_event(status), now)

    def response_sent(self, status: int, now: float) -> list[Output]:
        return self.handle(sent_response_event(status), now)

    def handle(self, event: TxEvent, now: float) -> list[Output]:
        """Apply ``event``; raise ``TransactionStateError`` if the table has no row for it."""
        outputs: list[Output] = []
        pending = [event]
        while pending:
            current = pending.pop(0)
            row = TRANSITIONS[self.kind][self.state].get(current)
            if row is None:
                raise TransactionStateError(self.kind, self.state, current, self.branch)
            self.state = row.next_state
            for effect in row.effects:
                if isinstance(effect, Effect):
                    outputs.append(effect)
                elif isinstance(effect, Cancel):
                    armed = self._armed
                    if effect.timer in armed:  # 'in' and 'del': dict.pop is a method call in the build
                        del armed[effect.timer]
                        outputs.append(StopTimer(effect.timer))
                else:
                    fire_now = self._arm(effect, now, outputs)
                    if fire_now:
                        pending.append(TxEvent.for_timer(effect.timer))
            if self.state is TransactionState.TERMINATED:
                # Rule: entering TERMINATED cancels every timer still running.
                for timer in list(self._armed):
                    del self._armed[timer]
                    outputs.append(StopTimer(timer))
                pending.clear()
        return outputs

    def _arm(self, arm: Arm, now: float, outputs: list[Output]) -> bool:
        """Start ``arm.timer``; True when its duration is zero and it must fire immediately."""
        duration = self.policy.next(arm.timer, self._intervals.get(arm.timer), arm.backoff)
        if duration is None:
            return False
        self._intervals[arm.timer] = duration
        if duration <= 0:
            if arm.timer in self._armed:
                del self._armed[arm.timer]
                outputs.append(StopTimer(arm.timer))
            return True
        deadline = now + duration
        self._armed[arm.timer] = deadline
        outputs.append(StartTimer(arm.timer, deadline, duration))
        return False
