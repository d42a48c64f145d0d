"""Two workers calling each other directly on loopback: tones both ways, hold/unhold, DTMF."""

from __future__ import annotations

import pytest

from tests.sipua.sipua_helpers import assert_silent, assert_tone, connect, record_both

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """One caller and one callee (auto-answer) shared by the module; every test gets a fresh call."""
    from sipua import UAWorker, WorkerConfig

    logs = tmp_path_factory.mktemp("pair")
    workers = []
    for name in ("alice", "bob"):
        w = UAWorker.spawn(WorkerConfig(name=name, user_agent=f"sipgw-lab-test {name}/1.0",
                                        log_path=str(logs / f"{name}.log")))
        workers.append(w)
        w.add_account("a", w.uri(name))
    alice, bob = workers
    bob.auto_answer("immediate")
    yield alice, bob
    for w in workers:
        w.close()


@pytest.fixture
def call(pair):
    alice, bob = pair
    ca, cb = connect(alice, bob, user="bob")
    yield alice, ca, bob, cb
    mark = alice.mark()
    alice.hangup(ca)
    alice.wait_event("call_state", since=mark, call=ca, state="DISCONNECTED")
    bob.wait_event("call_state", call=cb, state="DISCONNECTED")
    alice.stop_tone()
    bob.stop_tone()


def test_tone_both_ways(call, tmp_path):
    alice, ca, bob, cb = call
    alice.play_tone(700, call=ca)
    bob.play_tone(1500, call=cb)
    heard_by_alice, heard_by_bob = str(tmp_path / "a.wav"), str(tmp_path / "b.wav")
    record_both(alice, ca, bob, cb, heard_by_alice, heard_by_bob)
    assert_tone(heard_by_alice, 1500)
    assert_tone(heard_by_bob, 700)


def test_hold_silences_and_unhold_restores(call, tmp_path):
    alice, ca, bob, cb = call
    alice.play_tone(1000)
    mark_a, mark_b = alice.mark(), bob.mark()
    alice.hold(ca)
    alice.wait_event("media_state", since=mark_a, call=ca, status="local_hold")
    bob.wait_event("media_state", since=mark_b, call=cb, status="remote_hold")
    held = str(tmp_path / "held.wav")
    mb = bob.mark()
    bob.record(cb, held, duration_ms=1100)
    assert bob.wait_event("record_complete", since=mb, call=cb, timeout=5).data["complete"]
    assert_silent(held)

    mark_a, mark_b = alice.mark(), bob.mark()
    alice.unhold(ca)
    alice.wait_event("media_state", since=mark_a, call=ca, status="active")
    bob.wait_event("media_state", since=mark_b, call=cb, status="active")
    resumed = str(tmp_path / "resumed.wav")
    mb = bob.mark()
    bob.record(cb, resumed, duration_ms=1100)
    assert bob.wait_event("record_complete", since=mb, call=cb, timeout=5).data["complete"]
    assert_tone(resumed, 1000)


@pytest.mark.parametrize("method", ["rfc4733", "info"])
def test_dtmf_methods(call, method):
    alice, ca, bob, cb = call
    mark = bob.mark()
    alice.send_dtmf(ca, "19#*", method=method)
    got = []
    since = mark
    for _ in range(4):
        e = bob.wait_event("dtmf", since=since, call=cb, timeout=5)
        since = e.seq
        got.append((e.data["digit"], e.data["method"]))
    assert got == [(d, method) for d in "19#*"]


def test_call_stats_say_where_rtp_goes_and_comes_from(call, tmp_path):
    """Each end's counters name its own RTP address and the one it sends to; each sends to the other's, and
    the last packet received came from there (symmetric RTP on loopback)."""
    alice, ca, bob, cb = call
    alice.play_tone(700, call=ca)
    bob.play_tone(1500, call=cb)
    record_both(alice, ca, bob, cb, str(tmp_path / "a.wav"), str(tmp_path / "b.wav"))
    sa, sb = alice.call_stats(ca), bob.call_stats(cb)
    for mine, theirs in ((sa, sb), (sb, sa)):
        assert mine["remote_rtp"] == theirs["local_rtp"], (mine, theirs)
        assert mine["last_rx_from"] == theirs["local_rtp"], (mine, theirs)
        assert mine["tx"]["packets"] > 20 and mine["rx"]["packets"] > 20, mine
