"""harness.strategies: the device state machine walks its table and never retries a broken device."""

from __future__ import annotations

import pytest

from harness.protocols import DeviceBroken, NotApplicable
from harness.strategies import DeviceState, DeviceStrategy, path

S = DeviceState


def recorder(fail: dict[str, BaseException] | None = None):
    calls: list[str] = []
    fail = fail or {}

    def make(name: str):
        def action() -> None:
            calls.append(name)
            if name in fail:
                raise fail[name]

        return action

    names = ("factory_reset", "provision", "register", "unregister", "sign_in", "sign_out")
    return calls, {n: make(n) for n in names}


def test_path_through_the_table():
    assert [a for *_, a in path(S.UNKNOWN, S.SIGNED_IN)] == ["factory_reset", "provision", "register", "sign_in"]
    assert [a for *_, a in path(S.SIGNED_IN, S.PROVISIONED)] == ["sign_out", "unregister"]
    assert path(S.REGISTERED, S.REGISTERED) == []


def test_transition_runs_each_action_once_and_skips_when_there():
    calls, actions = recorder()
    st = DeviceStrategy("d", actions)
    assert st.transition("registered") is S.REGISTERED
    assert st.transition(S.REGISTERED) is S.REGISTERED
    assert calls == ["factory_reset", "provision", "register"]
    st.transition(S.SIGNED_IN)
    st.transition(S.FACTORY_RESET)
    assert calls[-2:] == ["sign_in", "factory_reset"]


def test_first_failure_breaks_the_device_for_good():
    calls, actions = recorder({"register": RuntimeError("403 Forbidden")})
    st = DeviceStrategy("d", actions)
    with pytest.raises(DeviceBroken, match="403 Forbidden") as first:
        st.transition(S.REGISTERED)
    assert isinstance(first.value.cause, RuntimeError)
    assert st.state is S.BROKEN
    with pytest.raises(DeviceBroken, match="403 Forbidden"):
        st.transition(S.FACTORY_RESET)
    assert calls == ["factory_reset", "provision", "register"]  # never retried


def test_mark_broken_keeps_the_first_cause():
    _, actions = recorder()
    st = DeviceStrategy("d", actions)
    st.mark_broken("worker died")
    st.mark_broken("second cause")
    with pytest.raises(DeviceBroken, match="worker died"):
        st.transition(S.REGISTERED)


def test_missing_action_is_not_applicable_and_does_not_break():
    _, actions = recorder()
    del actions["sign_in"]
    st = DeviceStrategy("d", actions)
    st.transition(S.REGISTERED)
    with pytest.raises(NotApplicable, match="sign_in"):
        st.transition(S.SIGNED_IN)
    assert st.state is S.REGISTERED


def test_bad_input():
    with pytest.raises(ValueError, match="unknown strategy action"):
        DeviceStrategy("d", {"reboot": lambda: None})
    _, actions = recorder()
    with pytest.raises(ValueError):
        DeviceStrategy("d", actions).transition("broken")
    with pytest.raises(ValueError):
        DeviceStrategy("d", actions).transition("flying")
