"""harness.steps: traced steps reach every subscriber with name, arguments, result, outcome and device."""

from __future__ import annotations

import threading

import pytest

from harness import steps
from harness.steps import StepEvent, step


class Phone:
    device_id = "phone-1"

    @step()
    def dial(self, number: str, *, password: str = "x") -> str:
        return f"call to {number}"

    @step("phone.fail")
    def fail(self) -> None:
        raise RuntimeError("no dial tone")

    @step()
    def outer(self) -> str:
        return self.dial("+1")


@pytest.fixture
def events():
    with steps.collecting() as got:
        yield got


def test_a_step_records_name_args_result_and_device(events):
    Phone().dial("+14255550111", password="secret")
    (ev,) = events
    assert ev.name == "Phone.dial"
    assert ev.args == {"number": "+14255550111", "password": "***"}
    assert ev.result == "call to +14255550111"
    assert ev.ok is True and ev.error is None and ev.device_id == "phone-1"
    assert ev.duration_s >= 0 and ev.phase == "end"
    assert ev.to_dict()["args"]["password"] == "***"


def test_a_failing_step_records_the_error_and_reraises(events):
    with pytest.raises(RuntimeError, match="no dial tone"):
        Phone().fail()
    (ev,) = events
    assert ev.name == "phone.fail" and ev.ok is False
    assert ev.error == "RuntimeError: no dial tone" and ev.error_type == "RuntimeError"


def test_nested_steps_know_their_parent(events):
    Phone().outer()
    inner, outer = events
    assert inner.parent_id == outer.step_id and outer.parent_id is None


def test_start_events_only_for_subscribers_that_ask():
    starts: list[StepEvent] = []
    ends: list[StepEvent] = []
    un1 = steps.subscribe(starts.append, starts=True)
    un2 = steps.subscribe(ends.append)
    try:
        Phone().dial("+1")
    finally:
        un1()
        un2()
    assert [e.phase for e in starts] == ["start", "end"]
    assert [e.phase for e in ends] == ["end"]


def test_a_broken_subscriber_does_not_break_the_step(events):
    def broken(ev: StepEvent) -> None:
        raise ValueError("subscriber bug")

    steps.subscribe(broken)
    try:
        assert Phone().dial("+1") == "call to +1"
    finally:
        steps.unsubscribe(broken)
    assert len(events) == 1


def test_record_and_subscribing_twice(events):
    def sink(ev: StepEvent) -> None:
        got.append(ev)

    got: list[StepEvent] = []
    steps.subscribe(sink)
    steps.subscribe(sink)
    try:
        steps.record("observe.tone", args={"hz": 700}, result={"level_db": -12.0}, device_id="d")
        steps.record("observe.tone", error=AssertionError("no tone"), device_id="d")
    finally:
        steps.unsubscribe(sink)
    assert len(got) == 2
    assert got[0].ok and got[0].result == {"level_db": -12.0}
    assert got[1].ok is False and "no tone" in got[1].error


def test_thread_safe(events):
    def work() -> None:
        for i in range(50):
            Phone().dial(str(i))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(events) == 200
    assert len({e.step_id for e in events}) == 200
