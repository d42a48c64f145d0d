"""A registered device calls PSTN parties and Teams users through the embedded gateway, and back.

What is judged is what was observed: the device's recording holds the party's tone, the party's
recording (read back like the API serves it) holds the device's tone, and the party reports the digits
it received with their method.
"""

from __future__ import annotations

import io
import time

import pytest

from tests.gateway.media_node.conftest import DEVICE_USER, PSTN_PREFIX, TEAMS_USER
from tests.sipua.sipua_helpers import assert_tone

pytestmark = pytest.mark.timeout(90)

DEVICE_TONE = 810.0  # from the harness's device plan; the media node keeps its tones 50 Hz away


def wait_for(predicate, timeout: float = 5.0, what: str = "condition", poll_s: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll_s)


def party_call(node, identity: str, state: str | None = None, since: int = 0):
    def find():
        calls = [c for c in node.calls(identity) if int(c.id[1:]) > since and (state is None or c.state == state)]
        return calls[-1] if calls else None
    return wait_for(find, what=f"a media call of {identity} in state {state}")


def last_id(node) -> int:
    calls = node.calls()
    return max((int(c.id[1:]) for c in calls), default=0)


def hangup_device(lab, call: int) -> None:
    mark = lab.device.mark()
    lab.device.hangup(call)
    lab.device.wait_event("call_state", since=mark, call=call, state="DISCONNECTED", timeout=5)


def assert_wav_bytes_tone(data: bytes, freq: float, tmp_path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert_tone(str(path), freq)


def test_device_calls_pstn_party_tones_both_ways_and_dtmf(lab, tmp_path):
    node, device = lab.node, lab.device
    number = PSTN_PREFIX + "0100"
    since = last_id(node)
    mark = device.mark()
    call = device.make_call("d", lab.gw_uri(number))
    device.wait_event("call_state", since=mark, call=call, state="CONFIRMED", timeout=10)
    device.wait_event("media_state", since=mark, call=call, status="active", timeout=5)
    device.play_tone(DEVICE_TONE, call=call)
    party = party_call(node, number, "confirmed", since)
    assert party.kind == "pstn" and party.direction == "in"
    assert party.remote.lstrip("+") == DEVICE_USER[2].lstrip("+"), "the party sees the device user's number"
    assert party.sip_call_id

    heard = str(tmp_path / "device-heard.wav")
    m = device.mark()
    device.record(call, heard, duration_ms=1300)
    assert device.wait_event("record_complete", since=m, call=call, timeout=5).data["complete"]
    assert_tone(heard, party.tone_hz)
    assert_wav_bytes_tone(node.recording_bytes(party.id), DEVICE_TONE, tmp_path, "party-heard.wav")

    device.send_dtmf(call, "42#", method="rfc4733")
    # RFC 4733 digits go out paced in the RTP stream after send_dtmf returns; INFO goes at once
    wait_for(lambda: len(node.call(party.id).dtmf) >= 3, what="3 digits at the party")
    device.send_dtmf(call, "7", method="info")
    wait_for(lambda: len(node.call(party.id).dtmf) >= 4, what="4 digits at the party")
    got = [(d["digit"], d["method"]) for d in node.call(party.id).dtmf]
    assert got == [("4", "rfc4733"), ("2", "rfc4733"), ("#", "rfc4733"), ("7", "info")]
    assert all(d["t"] >= party.answered for d in node.call(party.id).dtmf)

    hangup_device(lab, call)
    ended = wait_for(lambda: node.call(party.id).state == "disconnected" and node.call(party.id),
                     what="the party's leg to end")
    assert ended.ended is not None


def test_device_calls_teams_user_and_hears_its_client(lab, tmp_path):
    node, device = lab.node, lab.device
    username, _, number = TEAMS_USER
    since = last_id(node)
    mark = device.mark()
    call = device.make_call("d", lab.gw_uri(number))
    device.wait_event("call_state", since=mark, call=call, state="CONFIRMED", timeout=10)
    party = party_call(node, username, "confirmed", since)
    assert party.kind == "teams"
    assert party in node.calls(number) and party in node.calls(number.lstrip("+")), "found by number too"
    pstn_tone = node.settings("pstn", PSTN_PREFIX + "0100").tone_hz
    assert party.tone_hz != pstn_tone, "every party has its own tone"
    heard = str(tmp_path / "device-heard.wav")
    m = device.mark()
    device.record(call, heard, duration_ms=1300)
    assert device.wait_event("record_complete", since=m, call=call, timeout=5).data["complete"]
    assert_tone(heard, party.tone_hz)
    hangup_device(lab, call)


def test_teams_user_originates_to_device(lab, tmp_path):
    node, device = lab.node, lab.device
    mark = device.mark()
    out = node.originate("teams", TEAMS_USER[0], DEVICE_USER[2], tone_hz=1160.0)
    incoming = device.wait_event("incoming_call", since=mark, timeout=10)
    assert TEAMS_USER[2].lstrip("+") in incoming.data["from"], incoming.data["from"]
    theirs = incoming.data["call"]
    device.wait_event("call_state", since=mark, call=theirs, state="CONFIRMED", timeout=10)
    device.play_tone(DEVICE_TONE, call=theirs)
    wait_for(lambda: node.call(out.id).state == "confirmed", what="the Teams client's call to be answered")
    heard = str(tmp_path / "device-heard.wav")
    m = device.mark()
    device.record(theirs, heard, duration_ms=1300)
    assert device.wait_event("record_complete", since=m, call=theirs, timeout=5).data["complete"]
    assert_tone(heard, 1160.0)
    assert_wav_bytes_tone(node.recording_bytes(out.id), DEVICE_TONE, tmp_path, "teams-heard.wav")

    node.hold(out.id)
    wait_for(lambda: node.call(out.id).media.get("status") == "local_hold", what="local hold")
    node.resume(out.id)
    wait_for(lambda: node.call(out.id).media.get("status") == "active", what="resumed media")

    m = device.mark()
    node.hangup(out.id)
    device.wait_event("call_state", since=m, call=theirs, state="DISCONNECTED", timeout=5)
    wait_for(lambda: node.call(out.id).state == "disconnected", what="the Teams leg to end")


def test_busy_party_and_bad_input(lab):
    from gateway.media_node import MediaNodeError

    node, device = lab.node, lab.device
    number = PSTN_PREFIX + "0199"
    node.set_party("pstn", number, answer="busy")
    mark = device.mark()
    call = device.make_call("d", lab.gw_uri(number))
    ev = device.wait_event("call_state", since=mark, call=call, state="DISCONNECTED", timeout=10)
    assert ev.data["code"] == 486
    with pytest.raises(MediaNodeError) as info:
        node.set_party("pstn", number, answer="sometimes")
    assert info.value.where == "body.answer"
    assert node.settings("pstn", number).answer == "busy", "a refused change keeps the stored setting"
    with pytest.raises(MediaNodeError) as info:
        node.originate("teams", "nobody-here", DEVICE_USER[2])
    assert info.value.status == 404 and info.value.where == "body.from.user"
    node.set_party("pstn", number, answer="no_answer")
    since = last_id(node)
    mark = device.mark()
    call = device.make_call("d", lab.gw_uri(number))
    device.wait_event("call_state", since=mark, call=call, state="EARLY", timeout=10)
    ringing = party_call(node, number, "early", since)
    device.hangup(call)  # CANCEL (RFC 3261 §9.1): the party that never answers sees 487
    ended = wait_for(lambda: node.call(ringing.id).state == "disconnected" and node.call(ringing.id),
                     what="the unanswered leg to end")
    assert ended.answered is None and ended.status_code == 487
    node.set_party("pstn", number, answer="auto")


def test_more_than_four_party_calls_grow_the_pool(lab, tmp_path):
    """Three PSTN parties call a Teams user whose only endpoint is its Teams client: both legs of each call
    live on the media node, six party calls at once, more than one process (four calls each) holds."""
    node = lab.node
    username, _, number = TEAMS_USER
    since = last_id(node)
    outs = [node.originate("pstn", f"{PSTN_PREFIX}07{i:02d}", number) for i in range(3)]
    for o in outs:
        wait_for(lambda o=o: node.call(o.id).state == "confirmed", timeout=10, what=f"{o.id} to be answered")
    legs = wait_for(lambda: len(node.calls(username)) - len([c for c in node.calls(username)
                                                             if int(c.id[1:]) <= since]) >= 3 and
                    [c for c in node.calls(username) if int(c.id[1:]) > since], what="three Teams legs")
    assert all(c.state == "confirmed" for c in legs)
    m = node.metrics()
    assert m["processes"] >= 2 and m["reserved"] >= 6, m
    workers = {node.call(c.id).worker.name for c in [*outs, *legs]}
    assert len(workers) >= 2, workers
    # media flows between two legs that live on the node: the Teams client hears the PSTN party's tone
    first = min(legs, key=lambda c: int(c.id[1:]))
    expected = next(o.tone_hz for o in outs if o.identity == first.remote)
    assert len({o.tone_hz for o in outs} | {first.tone_hz}) == 4, "four parties, four tones"
    wait_for(lambda: _wav_seconds(node.recording_bytes(first.id)) > 1.4, what="1.4 s of recording")
    path = tmp_path / "teams-heard.wav"
    path.write_bytes(node.recording_bytes(first.id))
    assert_tone(str(path), expected)
    for o in outs:
        node.hangup(o.id)
    for c in [*outs, *legs]:
        wait_for(lambda c=c: node.call(c.id).state == "disconnected", what=f"{c.id} to end")
    wait_for(lambda: node.metrics()["reserved"] == 0, what="every slot to be released")


def _wav_seconds(data: bytes) -> float:
    import wave

    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate()


def test_call_to_a_user_forks_to_device_and_teams_client(lab):
    """A PSTN party calls the device user, who also has a Teams client: both ring (RFC 3261 §16.7 forking
    in the B2BUA); the device answers after the Teams client was told to wait, and the Teams branch is
    cancelled.  Changes reach listeners on the gateway's loop."""
    import threading

    node, device = lab.node, lab.device
    username, _, number, _ = DEVICE_USER
    seen: list[tuple[str, str, str]] = []
    node.add_listener(lambda call: seen.append((threading.current_thread().name, call["id"], call["state"])))
    node.set_party("teams", username, answer="auto", answer_delay_ms=3000)
    since = last_id(node)
    mark = device.mark()
    out = node.originate("pstn", PSTN_PREFIX + "0400", number)
    theirs = device.wait_event("incoming_call", since=mark, timeout=10).data["call"]
    device.wait_event("call_state", since=mark, call=theirs, state="CONFIRMED", timeout=10)
    teams_leg = party_call(node, username, since=since)
    ended = wait_for(lambda: node.call(teams_leg.id).state == "disconnected" and node.call(teams_leg.id),
                     what="the Teams branch to be cancelled")
    assert ended.answered is None and ended.status_code == 487, (ended.state, ended.status_code)
    wait_for(lambda: node.call(out.id).state == "confirmed", what="the PSTN caller to be connected")
    m = device.mark()
    node.hangup(out.id)
    device.wait_event("call_state", since=m, call=theirs, state="DISCONNECTED", timeout=5)
    wait_for(lambda: any(cid == teams_leg.id and state == "disconnected" for _, cid, state in seen),
             what="the listener to see the Teams branch end")
    assert {name for name, _, _ in seen} == {"sipgw-gateway"}, "listeners run on the gateway's loop"
    node.set_party("teams", username, answer="auto", answer_delay_ms=0)


def test_answer_delay_is_observed(lab):
    node, device = lab.node, lab.device
    number = PSTN_PREFIX + "0500"
    node.set_party("pstn", number, answer="auto", answer_delay_ms=600)
    mark = device.mark()
    call = device.make_call("d", lab.gw_uri(number))
    early = device.wait_event("call_state", since=mark, call=call, state="EARLY", timeout=10)
    confirmed = device.wait_event("call_state", since=mark, call=call, state="CONFIRMED", timeout=10)
    assert confirmed.ts - early.ts >= 0.55, f"answered {confirmed.ts - early.ts:.3f} s after ringing"
    hangup_device(lab, call)
    node.set_party("pstn", number, answer="auto", answer_delay_ms=0)


def test_party_plays_a_wav(lab, tmp_path):
    import wave

    import numpy as np

    rate, hz = 16000, 1580.0
    t = np.arange(int(rate * 2.0)) / rate
    pcm = (0.25 * np.sin(2 * np.pi * hz * t) * 32767).astype("<i2")
    source = tmp_path / "announcement.wav"
    with wave.open(str(source), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    node, device = lab.node, lab.device
    number = PSTN_PREFIX + "0600"
    since = last_id(node)
    mark = device.mark()
    call = device.make_call("d", lab.gw_uri(number))
    device.wait_event("call_state", since=mark, call=call, state="CONFIRMED", timeout=10)
    party = party_call(node, number, "confirmed", since)
    assert party.tone_hz != hz
    node.play_wav(party.id, str(source))
    heard = str(tmp_path / "device-heard.wav")
    m = device.mark()
    device.record(call, heard, duration_ms=1300)
    assert device.wait_event("record_complete", since=m, call=call, timeout=5).data["complete"]
    assert_tone(heard, hz)
    hangup_device(lab, call)


def test_a_dead_media_worker_ends_its_calls(lab):
    """Killing the process that holds a party's call ends that call in the node's view (it cannot be
    observed any more), and the pool replaces the worker."""
    import os
    import signal

    node, device = lab.node, lab.device
    mark = device.mark()
    out = node.originate("pstn", PSTN_PREFIX + "0700", DEVICE_USER[2])
    theirs = device.wait_event("incoming_call", since=mark, timeout=10).data["call"]
    wait_for(lambda: node.call(out.id).state == "confirmed", what="the call to be answered")
    victim = node.call(out.id).worker
    os.kill(victim.pid, signal.SIGKILL)
    ended = wait_for(lambda: node.call(out.id).state == "disconnected" and node.call(out.id), timeout=5,
                     what="the call to be seen ended")
    assert "died" in (ended.error or "")
    m = device.mark()
    device.hangup(theirs)
    device.wait_event("call_state", since=m, call=theirs, state="DISCONNECTED", timeout=5)
    again = node.originate("pstn", PSTN_PREFIX + "0701", DEVICE_USER[2])
    assert again.worker is not victim and again.worker.alive
    wait_for(lambda: node.call(again.id).state == "confirmed", timeout=10, what="a call on a live worker")
    node.hangup(again.id)
    wait_for(lambda: node.call(again.id).state == "disconnected", what="the call to end")
