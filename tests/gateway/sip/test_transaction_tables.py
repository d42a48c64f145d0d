"""One test per row of the RFC 3261 §17 / RFC 6026 transaction tables.

The expected rows below are written out from the RFC figures, independently of ``TRANSITIONS``: each row
drives a fresh machine to the row's state, applies the event and compares the next state and the exact
outputs (message effects, timers started with their durations on UDP, timers stopped). A separate test
checks that the table has no row this file does not know, so a new transition cannot slip in untested.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from gateway.sip.timers import Timer, TimerConfig
from gateway.sip.transaction import (
    TRANSITIONS,
    Effect,
    StartTimer,
    StopTimer,
    TransactionKind,
    TransactionMachine,
    TransactionState,
    TransactionStateError,
    TxEvent,
    received_response_event,
    sent_response_event,
)

K = TransactionKind
S = TransactionState
E = TxEvent
X = Effect
CONFIG = TimerConfig()  # T1 = 0.5 s, T2 = 4 s, T4 = 5 s, D = 32 s
NOW = 100.0


def start(timer: Timer, interval: float) -> tuple[str, Timer, float]:
    return ("start", timer, interval)


def stop(timer: Timer) -> tuple[str, Timer]:
    return ("stop", timer)


class Row(NamedTuple):
    kind: TransactionKind
    state: TransactionState
    event: TxEvent
    next_state: TransactionState
    outputs: tuple[object, ...]


# Events that bring a fresh machine to each state (after ``start``).
PATHS: dict[TransactionKind, dict[TransactionState, tuple[TxEvent, ...]]] = {
    K.INVITE_CLIENT: {
        S.CALLING: (),
        S.PROCEEDING: (E.RECV_1XX,),
        S.ACCEPTED: (E.RECV_2XX,),
        S.COMPLETED: (E.RECV_3XX_6XX,),
    },
    K.NON_INVITE_CLIENT: {
        S.TRYING: (),
        S.PROCEEDING: (E.RECV_1XX,),
        S.COMPLETED: (E.RECV_2XX,),
    },
    K.INVITE_SERVER: {
        S.PROCEEDING: (),
        S.ACCEPTED: (E.SEND_2XX,),
        S.COMPLETED: (E.SEND_3XX_6XX,),
        S.CONFIRMED: (E.SEND_3XX_6XX, E.RECV_ACK),
    },
    K.NON_INVITE_SERVER: {
        S.TRYING: (),
        S.PROCEEDING: (E.SEND_1XX,),
        S.COMPLETED: (E.SEND_2XX,),
    },
}

_64T1 = 32.0
ROWS: list[Row] = [
    # --- INVITE client, RFC 3261 §17.1.1.2 + RFC 6026 §8.4 ---
    Row(K.INVITE_CLIENT, S.IDLE, E.SEND_REQUEST, S.CALLING,
        (X.SEND_REQUEST, start(Timer.A, 0.5), start(Timer.B, _64T1))),
    Row(K.INVITE_CLIENT, S.CALLING, E.TIMER_A, S.CALLING, (X.RETRANSMIT_REQUEST, start(Timer.A, 1.0))),
    Row(K.INVITE_CLIENT, S.CALLING, E.TIMER_B, S.TERMINATED, (X.REPORT_TIMEOUT, stop(Timer.A))),
    Row(K.INVITE_CLIENT, S.CALLING, E.RECV_1XX, S.PROCEEDING, (stop(Timer.A), stop(Timer.B), X.PASS_TO_TU)),
    Row(K.INVITE_CLIENT, S.CALLING, E.RECV_2XX, S.ACCEPTED,
        (stop(Timer.A), stop(Timer.B), X.PASS_TO_TU, start(Timer.M, _64T1))),
    Row(K.INVITE_CLIENT, S.CALLING, E.RECV_3XX_6XX, S.COMPLETED,
        (stop(Timer.A), stop(Timer.B), X.SEND_ACK, X.PASS_TO_TU, start(Timer.D, 32.0))),
    Row(K.INVITE_CLIENT, S.CALLING, E.TRANSPORT_ERROR, S.TERMINATED,
        (X.REPORT_TRANSPORT_ERROR, stop(Timer.A), stop(Timer.B))),
    Row(K.INVITE_CLIENT, S.PROCEEDING, E.RECV_1XX, S.PROCEEDING, (X.PASS_TO_TU,)),
    Row(K.INVITE_CLIENT, S.PROCEEDING, E.RECV_2XX, S.ACCEPTED, (X.PASS_TO_TU, start(Timer.M, _64T1))),
    Row(K.INVITE_CLIENT, S.PROCEEDING, E.RECV_3XX_6XX, S.COMPLETED,
        (X.SEND_ACK, X.PASS_TO_TU, start(Timer.D, 32.0))),
    Row(K.INVITE_CLIENT, S.PROCEEDING, E.TRANSPORT_ERROR, S.TERMINATED, (X.REPORT_TRANSPORT_ERROR,)),
    Row(K.INVITE_CLIENT, S.PROCEEDING, E.CANCEL_EXPIRED, S.TERMINATED, (X.REPORT_TIMEOUT,)),
    Row(K.INVITE_CLIENT, S.ACCEPTED, E.RECV_2XX, S.ACCEPTED, (X.PASS_TO_TU,)),
    Row(K.INVITE_CLIENT, S.ACCEPTED, E.RECV_1XX, S.ACCEPTED, ()),
    Row(K.INVITE_CLIENT, S.ACCEPTED, E.TIMER_M, S.TERMINATED, ()),
    Row(K.INVITE_CLIENT, S.COMPLETED, E.RECV_3XX_6XX, S.COMPLETED, (X.SEND_ACK,)),
    Row(K.INVITE_CLIENT, S.COMPLETED, E.RECV_1XX, S.COMPLETED, ()),
    Row(K.INVITE_CLIENT, S.COMPLETED, E.TIMER_D, S.TERMINATED, ()),
    Row(K.INVITE_CLIENT, S.COMPLETED, E.TRANSPORT_ERROR, S.TERMINATED,
        (X.REPORT_TRANSPORT_ERROR, stop(Timer.D))),
    # --- non-INVITE client, RFC 3261 §17.1.2.2 ---
    Row(K.NON_INVITE_CLIENT, S.IDLE, E.SEND_REQUEST, S.TRYING,
        (X.SEND_REQUEST, start(Timer.E, 0.5), start(Timer.F, _64T1))),
    Row(K.NON_INVITE_CLIENT, S.TRYING, E.TIMER_E, S.TRYING, (X.RETRANSMIT_REQUEST, start(Timer.E, 1.0))),
    Row(K.NON_INVITE_CLIENT, S.TRYING, E.TIMER_F, S.TERMINATED, (X.REPORT_TIMEOUT, stop(Timer.E))),
    Row(K.NON_INVITE_CLIENT, S.TRYING, E.RECV_1XX, S.PROCEEDING, (X.PASS_TO_TU,)),
    Row(K.NON_INVITE_CLIENT, S.TRYING, E.RECV_2XX, S.COMPLETED,
        (stop(Timer.E), stop(Timer.F), X.PASS_TO_TU, start(Timer.K, 5.0))),
    Row(K.NON_INVITE_CLIENT, S.TRYING, E.RECV_3XX_6XX, S.COMPLETED,
        (stop(Timer.E), stop(Timer.F), X.PASS_TO_TU, start(Timer.K, 5.0))),
    Row(K.NON_INVITE_CLIENT, S.TRYING, E.TRANSPORT_ERROR, S.TERMINATED,
        (X.REPORT_TRANSPORT_ERROR, stop(Timer.E), stop(Timer.F))),
    Row(K.NON_INVITE_CLIENT, S.PROCEEDING, E.TIMER_E, S.PROCEEDING,
        (X.RETRANSMIT_REQUEST, start(Timer.E, 4.0))),
    Row(K.NON_INVITE_CLIENT, S.PROCEEDING, E.TIMER_F, S.TERMINATED, (X.REPORT_TIMEOUT, stop(Timer.E))),
    Row(K.NON_INVITE_CLIENT, S.PROCEEDING, E.RECV_1XX, S.PROCEEDING, (X.PASS_TO_TU,)),
    Row(K.NON_INVITE_CLIENT, S.PROCEEDING, E.RECV_2XX, S.COMPLETED,
        (stop(Timer.E), stop(Timer.F), X.PASS_TO_TU, start(Timer.K, 5.0))),
    Row(K.NON_INVITE_CLIENT, S.PROCEEDING, E.RECV_3XX_6XX, S.COMPLETED,
        (stop(Timer.E), stop(Timer.F), X.PASS_TO_TU, start(Timer.K, 5.0))),
    Row(K.NON_INVITE_CLIENT, S.PROCEEDING, E.TRANSPORT_ERROR, S.TERMINATED,
        (X.REPORT_TRANSPORT_ERROR, stop(Timer.E), stop(Timer.F))),
    Row(K.NON_INVITE_CLIENT, S.COMPLETED, E.RECV_1XX, S.COMPLETED, ()),
    Row(K.NON_INVITE_CLIENT, S.COMPLETED, E.RECV_2XX, S.COMPLETED, ()),
    Row(K.NON_INVITE_CLIENT, S.COMPLETED, E.RECV_3XX_6XX, S.COMPLETED, ()),
    Row(K.NON_INVITE_CLIENT, S.COMPLETED, E.TIMER_K, S.TERMINATED, ()),
    # --- INVITE server, RFC 3261 §17.2.1 + RFC 6026 §8.7 ---
    Row(K.INVITE_SERVER, S.IDLE, E.RECV_REQUEST, S.PROCEEDING, (X.PASS_TO_TU, X.SEND_TRYING)),
    Row(K.INVITE_SERVER, S.PROCEEDING, E.RECV_REQUEST, S.PROCEEDING, (X.RESEND_RESPONSE,)),
    Row(K.INVITE_SERVER, S.PROCEEDING, E.SEND_1XX, S.PROCEEDING, (X.SEND_RESPONSE,)),
    Row(K.INVITE_SERVER, S.PROCEEDING, E.SEND_2XX, S.ACCEPTED, (X.SEND_RESPONSE, start(Timer.L, _64T1))),
    Row(K.INVITE_SERVER, S.PROCEEDING, E.SEND_3XX_6XX, S.COMPLETED,
        (X.SEND_RESPONSE, start(Timer.G, 0.5), start(Timer.H, _64T1))),
    Row(K.INVITE_SERVER, S.PROCEEDING, E.TRANSPORT_ERROR, S.TERMINATED, (X.REPORT_TRANSPORT_ERROR,)),
    Row(K.INVITE_SERVER, S.ACCEPTED, E.RECV_REQUEST, S.ACCEPTED, ()),
    Row(K.INVITE_SERVER, S.ACCEPTED, E.SEND_2XX, S.ACCEPTED, (X.SEND_RESPONSE,)),
    Row(K.INVITE_SERVER, S.ACCEPTED, E.RECV_ACK, S.ACCEPTED, (X.PASS_TO_TU,)),
    Row(K.INVITE_SERVER, S.ACCEPTED, E.TIMER_L, S.TERMINATED, ()),
    Row(K.INVITE_SERVER, S.ACCEPTED, E.TRANSPORT_ERROR, S.ACCEPTED, (X.REPORT_TRANSPORT_ERROR,)),
    Row(K.INVITE_SERVER, S.COMPLETED, E.RECV_REQUEST, S.COMPLETED, (X.RESEND_RESPONSE,)),
    Row(K.INVITE_SERVER, S.COMPLETED, E.TIMER_G, S.COMPLETED, (X.RESEND_RESPONSE, start(Timer.G, 1.0))),
    Row(K.INVITE_SERVER, S.COMPLETED, E.RECV_ACK, S.CONFIRMED,
        (stop(Timer.G), stop(Timer.H), start(Timer.I, 5.0))),
    Row(K.INVITE_SERVER, S.COMPLETED, E.TIMER_H, S.TERMINATED, (X.REPORT_TIMEOUT, stop(Timer.G))),
    Row(K.INVITE_SERVER, S.COMPLETED, E.TRANSPORT_ERROR, S.TERMINATED,
        (X.REPORT_TRANSPORT_ERROR, stop(Timer.G), stop(Timer.H))),
    Row(K.INVITE_SERVER, S.CONFIRMED, E.RECV_ACK, S.CONFIRMED, ()),
    Row(K.INVITE_SERVER, S.CONFIRMED, E.RECV_REQUEST, S.CONFIRMED, ()),
    Row(K.INVITE_SERVER, S.CONFIRMED, E.TIMER_I, S.TERMINATED, ()),
    # --- non-INVITE server, RFC 3261 §17.2.2 ---
    Row(K.NON_INVITE_SERVER, S.IDLE, E.RECV_REQUEST, S.TRYING, (X.PASS_TO_TU,)),
    Row(K.NON_INVITE_SERVER, S.TRYING, E.RECV_REQUEST, S.TRYING, ()),
    Row(K.NON_INVITE_SERVER, S.TRYING, E.SEND_1XX, S.PROCEEDING, (X.SEND_RESPONSE,)),
    Row(K.NON_INVITE_SERVER, S.TRYING, E.SEND_2XX, S.COMPLETED, (X.SEND_RESPONSE, start(Timer.J, _64T1))),
    Row(K.NON_INVITE_SERVER, S.TRYING, E.SEND_3XX_6XX, S.COMPLETED,
        (X.SEND_RESPONSE, start(Timer.J, _64T1))),
    Row(K.NON_INVITE_SERVER, S.PROCEEDING, E.RECV_REQUEST, S.PROCEEDING, (X.RESEND_RESPONSE,)),
    Row(K.NON_INVITE_SERVER, S.PROCEEDING, E.SEND_1XX, S.PROCEEDING, (X.SEND_RESPONSE,)),
    Row(K.NON_INVITE_SERVER, S.PROCEEDING, E.SEND_2XX, S.COMPLETED,
        (X.SEND_RESPONSE, start(Timer.J, _64T1))),
    Row(K.NON_INVITE_SERVER, S.PROCEEDING, E.SEND_3XX_6XX, S.COMPLETED,
        (X.SEND_RESPONSE, start(Timer.J, _64T1))),
    Row(K.NON_INVITE_SERVER, S.PROCEEDING, E.TRANSPORT_ERROR, S.TERMINATED, (X.REPORT_TRANSPORT_ERROR,)),
    Row(K.NON_INVITE_SERVER, S.COMPLETED, E.RECV_REQUEST, S.COMPLETED, (X.RESEND_RESPONSE,)),
    Row(K.NON_INVITE_SERVER, S.COMPLETED, E.SEND_2XX, S.COMPLETED, ()),
    Row(K.NON_INVITE_SERVER, S.COMPLETED, E.SEND_3XX_6XX, S.COMPLETED, ()),
    Row(K.NON_INVITE_SERVER, S.COMPLETED, E.TIMER_J, S.TERMINATED, ()),
    Row(K.NON_INVITE_SERVER, S.COMPLETED, E.TRANSPORT_ERROR, S.TERMINATED,
        (X.REPORT_TRANSPORT_ERROR, stop(Timer.J))),
]  # fmt: skip

_TIMER_OF_EVENT = {TxEvent.for_timer(timer): timer for timer in Timer}


def machine_in(kind: TransactionKind, state: TransactionState, *, reliable: bool = False) -> TransactionMachine:
    """A fresh machine driven to ``state`` at time 0 along ``PATHS``."""
    machine = TransactionMachine(kind, CONFIG.policy(reliable=reliable), branch="z9hG4bKtable")
    if state is S.IDLE:
        return machine
    machine.start(0.0)
    for event in PATHS[kind][state]:
        machine.handle(event, 0.0)
    assert machine.state is state
    return machine


def apply(machine: TransactionMachine, event: TxEvent, now: float) -> list[object]:
    if event in _TIMER_OF_EVENT:
        timer = _TIMER_OF_EVENT[event]
        assert timer in machine.armed_timers, f"{timer} is not running in {machine!r}"
        outputs = machine.timer_fired(timer, now)
    else:
        outputs = machine.handle(event, now)
    return [normalise(output, now) for output in outputs]


def normalise(output: object, now: float) -> object:
    if isinstance(output, StartTimer):
        assert output.deadline == pytest.approx(now + output.interval)
        return start(output.timer, output.interval)
    if isinstance(output, StopTimer):
        return stop(output.timer)
    return output


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.kind.name}-{r.state.name}-{r.event.name}")
def test_row(row: Row) -> None:
    machine = machine_in(row.kind, row.state)
    outputs = apply(machine, row.event, NOW)
    assert machine.state is row.next_state
    assert outputs == list(row.outputs)
    if row.next_state is S.TERMINATED:
        assert machine.armed_timers == {}


def test_table_has_exactly_the_expected_rows() -> None:
    table_rows = {
        (kind, state, event)
        for kind, states in TRANSITIONS.items()
        for state, events in states.items()
        for event in events
    }
    expected = {(row.kind, row.state, row.event) for row in ROWS}
    assert table_rows - expected == set(), "rows in TRANSITIONS without a test"
    assert expected - table_rows == set(), "tested rows missing from TRANSITIONS"
    assert len(ROWS) == len(expected), "a row is listed twice in ROWS"


ILLEGAL = [
    (kind, state, event)
    for kind, paths in PATHS.items()
    for state in (S.IDLE, *paths, S.TERMINATED)
    for event in TxEvent
    if event not in TRANSITIONS[kind].get(state, {}) and event not in _TIMER_OF_EVENT
]


@pytest.mark.parametrize("kind,state,event", ILLEGAL, ids=lambda v: getattr(v, "name", str(v)))
def test_illegal_event_names_event_role_and_state(
    kind: TransactionKind, state: TransactionState, event: TxEvent
) -> None:
    if state is S.TERMINATED:
        machine = machine_in(kind, next(iter(PATHS[kind])))
        machine.state = S.TERMINATED
    else:
        machine = machine_in(kind, state)
    with pytest.raises(TransactionStateError) as info:
        machine.handle(event, NOW)
    message = str(info.value)
    assert event.name in message
    assert kind.value in message
    assert state.name in message
    assert "z9hG4bKtable" in message
    assert (info.value.kind, info.value.state, info.value.event) == (kind, state, event)
    assert machine.state is state, "a refused event must not change the state"


def test_every_state_but_terminated_can_end() -> None:
    """Each non-final state has a way out (no transaction can leak forever by the tables alone)."""
    for kind, states in TRANSITIONS.items():
        for state, events in states.items():
            if state is S.TERMINATED:
                assert events == {}
                continue
            assert events, f"{kind.value} {state.name} has no transitions"


def test_late_timer_is_ignored() -> None:
    machine = machine_in(K.INVITE_CLIENT, S.PROCEEDING)  # A and B were stopped by the 1xx
    assert machine.timer_fired(Timer.A, NOW) == []
    assert machine.timer_fired(Timer.B, NOW) == []
    assert machine.state is S.PROCEEDING


# --- reliable transports: A, E, G never armed; D, I, J, K are zero (RFC 3261 §17.1.1.2, §17.2.1...) ---


def test_tcp_invite_client_arms_only_timer_b_and_skips_completed() -> None:
    machine = machine_in(K.INVITE_CLIENT, S.IDLE, reliable=True)
    assert apply(machine, E.SEND_REQUEST, NOW) == [X.SEND_REQUEST, start(Timer.B, _64T1)]
    outputs = apply(machine, E.RECV_3XX_6XX, NOW)
    assert outputs == [stop(Timer.B), X.SEND_ACK, X.PASS_TO_TU]
    assert machine.state is S.TERMINATED


def test_tcp_non_invite_client_arms_only_timer_f_and_skips_completed() -> None:
    machine = machine_in(K.NON_INVITE_CLIENT, S.IDLE, reliable=True)
    assert apply(machine, E.SEND_REQUEST, NOW) == [X.SEND_REQUEST, start(Timer.F, _64T1)]
    assert apply(machine, E.RECV_1XX, NOW) == [X.PASS_TO_TU]
    assert apply(machine, E.RECV_2XX, NOW) == [stop(Timer.F), X.PASS_TO_TU]
    assert machine.state is S.TERMINATED


def test_tcp_invite_server_no_timer_g_and_confirmed_is_left_at_once() -> None:
    machine = machine_in(K.INVITE_SERVER, S.PROCEEDING, reliable=True)
    assert apply(machine, E.SEND_3XX_6XX, NOW) == [X.SEND_RESPONSE, start(Timer.H, _64T1)]
    assert apply(machine, E.RECV_ACK, NOW) == [stop(Timer.H)]
    assert machine.state is S.TERMINATED


def test_tcp_invite_server_accepted_still_waits_for_timer_l() -> None:
    machine = machine_in(K.INVITE_SERVER, S.PROCEEDING, reliable=True)
    assert apply(machine, E.SEND_2XX, NOW) == [X.SEND_RESPONSE, start(Timer.L, _64T1)]
    assert machine.state is S.ACCEPTED


def test_tcp_non_invite_server_final_response_terminates() -> None:
    machine = machine_in(K.NON_INVITE_SERVER, S.TRYING, reliable=True)
    assert apply(machine, E.SEND_2XX, NOW) == [X.SEND_RESPONSE]
    assert machine.state is S.TERMINATED


# --- backoff sequences ---


def _retransmit_intervals(kind: TransactionKind, timer: Timer, count: int) -> list[float]:
    machine = machine_in(kind, S.IDLE)
    first = machine.start(0.0)
    intervals = [next(o.interval for o in first if isinstance(o, StartTimer) and o.timer is timer)]
    for _ in range(count - 1):
        outputs = machine.timer_fired(timer, 0.0)
        intervals.append(next(o.interval for o in outputs if isinstance(o, StartTimer)))
    return intervals


def test_timer_a_doubles_without_ceiling() -> None:
    # §17.1.1.2: A is T1, 2T1, 4T1 ... and only Timer B (64*T1) stops it.
    assert _retransmit_intervals(K.INVITE_CLIENT, Timer.A, 7) == [0.5, 1, 2, 4, 8, 16, 32]


def test_timer_e_doubles_up_to_t2() -> None:
    assert _retransmit_intervals(K.NON_INVITE_CLIENT, Timer.E, 6) == [0.5, 1, 2, 4, 4, 4]


def test_timer_g_doubles_up_to_t2() -> None:
    machine = machine_in(K.INVITE_SERVER, S.PROCEEDING)
    outputs = machine.handle(E.SEND_3XX_6XX, 0.0)
    intervals = [next(o.interval for o in outputs if isinstance(o, StartTimer) and o.timer is Timer.G)]
    for _ in range(5):
        outputs = machine.timer_fired(Timer.G, 0.0)
        intervals.append(next(o.interval for o in outputs if isinstance(o, StartTimer)))
    assert intervals == [0.5, 1, 2, 4, 4, 4]


@pytest.mark.parametrize(
    "status,received,sent",
    [
        (100, E.RECV_1XX, E.SEND_1XX),
        (183, E.RECV_1XX, E.SEND_1XX),
        (199, E.RECV_1XX, E.SEND_1XX),
        (200, E.RECV_2XX, E.SEND_2XX),
        (299, E.RECV_2XX, E.SEND_2XX),
        (300, E.RECV_3XX_6XX, E.SEND_3XX_6XX),
        (486, E.RECV_3XX_6XX, E.SEND_3XX_6XX),
        (699, E.RECV_3XX_6XX, E.SEND_3XX_6XX),
    ],
)
def test_status_code_to_event(status: int, received: TxEvent, sent: TxEvent) -> None:
    assert received_response_event(status) is received
    assert sent_response_event(status) is sent


@pytest.mark.parametrize("status", [0, 99, 700, 1000, -200, True])
def test_status_code_out_of_range(status: int) -> None:
    with pytest.raises(ValueError, match=r"100\.\.699"):
        received_response_event(status)


def test_ack_has_no_transaction_kind() -> None:
    with pytest.raises(ValueError, match="ACK"):
        TransactionKind.for_method("ACK", client=True)
    assert TransactionKind.for_method("INVITE", client=False) is K.INVITE_SERVER
    assert TransactionKind.for_method("BYE", client=True) is K.NON_INVITE_CLIENT


# --- the diagrams are drawn from the same tables ---


def _load_diagram_tool():  # type: ignore[no-untyped-def]
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "tools" / "draw_state_diagrams.py"
    spec = importlib.util.spec_from_file_location("draw_state_diagrams", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kind", list(TransactionKind), ids=lambda k: k.name)
def test_diagram_has_one_edge_label_per_row(kind: TransactionKind) -> None:
    import re

    dot = _load_diagram_tool().render(kind)
    drawn = set()
    for source, target, label in re.findall(r"^\s+(\w+) -> (\w+) \[label=\"(.*)\"\];$", dot, re.MULTILINE):
        events, _, action = label.partition("\\n")
        for event in events.split(" | "):
            drawn.add((S[source], TxEvent(event), S[target], action))
    expected = {
        (state, event, row.next_state, ", ".join(str(e) for e in row.effects) or "-")
        for state, events in TRANSITIONS[kind].items()
        for event, row in events.items()
    }
    assert drawn == expected


def test_diagram_tool_writes_one_file_per_machine(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tool = _load_diagram_tool()
    assert tool.main([str(tmp_path / "fsm")]) == 0
    files = sorted(p.name for p in (tmp_path / "fsm").iterdir())
    assert files == sorted(f"{kind.name.lower()}.dot" for kind in TransactionKind)
    assert (tmp_path / "fsm" / "invite_server.dot").read_text().startswith("digraph invite_server {")
