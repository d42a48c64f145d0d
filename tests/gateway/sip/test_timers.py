"""Timer durations of RFC 3261 Appendix A and RFC 6026, for unreliable and reliable transports."""

from __future__ import annotations

import pytest

from gateway.sip.timers import Backoff, Timer, TimerConfig, is_reliable_transport

UDP_DEFAULTS = {
    Timer.A: 0.5,
    Timer.B: 32.0,
    Timer.D: 32.0,
    Timer.E: 0.5,
    Timer.F: 32.0,
    Timer.G: 0.5,
    Timer.H: 32.0,
    Timer.I: 5.0,
    Timer.J: 32.0,
    Timer.K: 5.0,
    Timer.L: 32.0,
    Timer.M: 32.0,
}
TCP_DEFAULTS = {
    Timer.A: None,
    Timer.B: 32.0,
    Timer.D: 0.0,
    Timer.E: None,
    Timer.F: 32.0,
    Timer.G: None,
    Timer.H: 32.0,
    Timer.I: 0.0,
    Timer.J: 0.0,
    Timer.K: 0.0,
    Timer.L: 32.0,
    Timer.M: 32.0,
}


@pytest.mark.parametrize("timer", list(Timer))
def test_initial_durations(timer: Timer) -> None:
    config = TimerConfig()
    assert config.policy(reliable=False).initial(timer) == UDP_DEFAULTS[timer]
    assert config.policy(reliable=True).initial(timer) == TCP_DEFAULTS[timer]


def test_durations_follow_configured_t1_t2_t4() -> None:
    policy = TimerConfig(t1=0.1, t2=1.0, t4=2.0, timer_d=10.0).policy(reliable=False)
    assert policy.initial(Timer.A) == 0.1
    assert policy.initial(Timer.B) == pytest.approx(6.4)
    assert policy.initial(Timer.J) == pytest.approx(6.4)
    assert policy.initial(Timer.K) == 2.0
    assert policy.initial(Timer.D) == 10.0
    assert policy.next(Timer.E, 0.8, Backoff.DOUBLE_CAPPED) == 1.0
    assert policy.next(Timer.A, 0.8, Backoff.DOUBLE) == 1.6
    assert policy.next(Timer.E, 0.1, Backoff.T2) == 1.0


def test_retransmission_timers_are_never_rearmed_on_reliable() -> None:
    policy = TimerConfig().policy(reliable=True)
    for timer in (Timer.A, Timer.E, Timer.G):
        for backoff in Backoff:
            assert policy.next(timer, 0.5, backoff) is None


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"t1": 0}, "t1 must be positive"),
        ({"t2": -1}, "t2 must be positive"),
        ({"t4": "5"}, "t4 must be a number"),
        ({"t1": 5.0, "t2": 4.0}, "must not be smaller than t1"),
        ({"timer_d": True}, "timer_d must be a number"),
    ],
)
def test_bad_config_is_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        TimerConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "transport,reliable",
    [("UDP", False), ("udp", False), ("TCP", True), ("TLS", True), ("WSS", True), ("SCTP", True)],
)
def test_reliable_transports(transport: str, reliable: bool) -> None:
    assert is_reliable_transport(transport) is reliable
