"""DTMF interworking through the embedded gateway: two pjsua2 user agents that carry digits differently.

``alice`` (a Yealink: RFC 4733) and ``bob`` (an AudioCodes MediaPack port: SIP INFO, its worker offers no
telephone-event) call each other through the gateway; the call is anchored on the media node's relay, every digit
arrives in the receiver's own method, in order, audio flows both ways, and hold, hang-up and CANCEL cross the relay.
``carol`` (another Yealink) shows that a call whose legs agree is not anchored. Everything judged is observed: the
digits and methods the far agent reported, the SIP messages in the gateway's trace, the tones recorded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from gateway.config import GatewayConfig
from gateway.server import EmbeddedGateway, Endpoints
from gateway.services.model import PstnRange, User
from tests.sipua.sipua_helpers import assert_tone

pytestmark = pytest.mark.timeout(120)

SLOW = float(os.environ.get("SIPGW_SLOWNESS", "1") or 1)
DIGITS = "0123456789*#"
ALICE = ("alice", "Alice Able", "+14255550201", "pw-a", "Yealink SIP-T54W 96.86.0.100", "rfc4733", 700.0)
BOB = ("bob", "Bob Baker", "+14255550202", "pw-b", "Audiocodes-Sip-Gateway-MP-504/v.7.26A.356.075", "info", 1100.0)
PSTN_PREFIX = "+1206555"
CAROL = ("carol", "Carol Cole", "+14255550203", "pw-c", "Yealink SIP-T46U 108.86.0.45", "rfc4733", 900.0)


def t(seconds: float) -> float:
    return seconds * SLOW


@dataclass
class Lab:
    gw: EmbeddedGateway
    eps: Endpoints
    agents: dict  # username -> sipua.UAWorker

    def uri(self, number: str) -> str:
        host, port = self.eps.udp
        return f"sip:{number}@{host}:{port}"

    def trace(self, call_ids) -> list:
        return self.gw.trace.entries(call_ids=set(call_ids))


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Lab]:
    from sipua import UAWorker, WorkerConfig

    data = tmp_path_factory.mktemp("dtmf-gw")
    cfg = GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0", firmware_policy="warn", media_workers_max=4)
    gw = EmbeddedGateway(data, cfg, media="node", control_api=False)
    for username, name, number, password, *_ in (ALICE, BOB, CAROL):
        # no voicemail: a busy callee's status reaches the caller instead of a voicemail greeting
        gw.directory.put_user(User(username, name, number, voicemail=False), password=password)
    gw.directory.set_pstn_ranges([PstnRange(PSTN_PREFIX, None)])
    eps = gw.start_in_thread()
    agents: dict = {}
    try:
        host, port = eps.udp
        for username, _name, _number, password, ua, method, _tone in (ALICE, BOB, CAROL):
            w = UAWorker.spawn(WorkerConfig(name=username, user_agent=ua, log_path=str(data / f"{username}.log"),
                                            dtmf_method=method))
            agents[username] = w
            w.add_account("d", f"sip:{username}@{cfg.domain}", registrar=f"sip:{host}:{port}",
                          username=username, password=password)
            w.wait_event("reg_state", account="d", code=200, timeout=t(10))
        yield Lab(gw, eps, agents)
    finally:
        for w in agents.values():
            w.close()
        gw.stop_thread()


def wait_for(predicate, timeout: float, what: str, poll_s: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(poll_s)


def place(lab: Lab, caller, callee, *, answer: bool = True):
    """``caller`` dials ``callee``'s number; returns (caller's handle, callee's handle, callee's incoming event)."""
    a, b = lab.agents[caller[0]], lab.agents[callee[0]]
    b.auto_answer("immediate" if answer else "never")
    ma, mb = a.mark(), b.mark()
    call = a.make_call("d", lab.uri(callee[2]))
    incoming = b.wait_event("incoming_call", since=mb, timeout=t(10))
    theirs = incoming.data["call"]
    if answer:
        a.wait_event("call_state", since=ma, call=call, state="CONFIRMED", timeout=t(10))
        b.wait_event("call_state", since=mb, call=theirs, state="CONFIRMED", timeout=t(10))
        a.wait_event("media_state", since=ma, call=call, status="active", timeout=t(5))
        b.wait_event("media_state", since=mb, call=theirs, status="active", timeout=t(5))
    return call, theirs, incoming


def hang_up(agent, call: int, *others) -> None:
    mark = agent.mark()
    agent.hangup(call)
    agent.wait_event("call_state", since=mark, call=call, state="DISCONNECTED", timeout=t(5))
    for other, handle, since in others:
        other.wait_event("call_state", since=since, call=handle, state="DISCONNECTED", timeout=t(5))


DIGIT_MS = 240  # not the senders' default (160), so a relay that dropped the duration would show


def relayed_digits(lab: Lab, sender, call: int, receiver, method: str) -> list:
    """``sender`` sends 0-9 * # (each ``DIGIT_MS`` long); what ``receiver`` reported: each digit with the
    duration of its end event (``duration_ms``).

    pjsua reports a digit and its end in two callbacks: all the ends can be in before the last digit's own
    report (a CI run of 2026-11-27 read 12 ends and 11 digits). So both are waited for, and each digit takes the
    first end of the same digit that no earlier digit took."""
    mark = receiver.mark()
    sender.send_dtmf(call, DIGITS, method=method, duration_ms=DIGIT_MS)
    wait_for(lambda: len(receiver.events("dtmf", since=mark)) >= len(DIGITS)
             and len(receiver.events("dtmf_end", since=mark)) >= len(DIGITS), t(12),
             f"{len(DIGITS)} digits and their ends at {receiver.name}")
    ends = list(receiver.events("dtmf_end", since=mark))
    got = []
    for e in receiver.events("dtmf", since=mark):
        end = next((x for x in ends if x.data["digit"] == e.data["digit"]), None)
        if end is not None:
            ends.remove(end)
        got.append({**e.data, "duration_ms": end.data["duration_ms"] if end is not None else None})
    return got


def info_call_ids(entries) -> set[str]:
    return {e.call_id for e in entries if e.first_line.startswith("INFO ")}


def _legs(lab: Lab, a_call_id: str) -> tuple[set[str], set[str]]:
    """The Call-IDs of the caller's side and of the callee's side of an anchored call, from the relay's record."""
    relay = next(r for r in lab.gw.media.relay.relays() if r["caller"]["sip_call_id"]
                 and any(n["call_id"] == a_call_id for n in lab.gw.dtmf_interworking.log if n["relay"] == r["token"]))
    b2bua = lab.gw.core.b2bua
    caller_side = {a_call_id, relay["caller"]["sip_call_id"]}
    callee_side = {relay["callee"]["sip_call_id"]}
    for rec in b2bua.history + [c.record() for c in b2bua.calls.values()]:
        if rec.a_call_id == relay["callee"]["sip_call_id"]:
            callee_side.update(rec.b_call_ids)
    return caller_side, callee_side


@pytest.mark.parametrize(("caller", "callee"), [(ALICE, BOB), (BOB, ALICE)], ids=["4733-to-info", "info-to-4733"])
def test_digits_cross_in_each_legs_method_with_two_way_audio(lab, tmp_path, caller, callee):
    a, b = lab.agents[caller[0]], lab.agents[callee[0]]
    call, theirs, incoming = place(lab, caller, callee)
    a_call_id = a.call_info(call)["call_id"]

    # The callee sees the caller's number and display name, not the relay's.
    assert caller[2] in incoming.data["from"] and caller[1] in incoming.data["from"], incoming.data["from"]
    # The decision is in the trace, with what each side said.
    notes = lab.gw.trace.notes(call_ids=[a_call_id])
    want = (f"DTMF interworking: caller {'RFC 4733' if caller[5] == 'rfc4733' else 'INFO'}, "
            f"callee {'RFC 4733' if callee[5] == 'rfc4733' else 'INFO'} → anchored on media node")
    assert any(n["text"].startswith(want) for n in notes), [n["text"] for n in notes]
    # Each leg negotiated its own DTMF: telephone-event only where that side uses RFC 4733.
    for agent, handle, method in ((a, call, caller[5]), (b, theirs, callee[5])):
        remote = agent.call_info(handle)["remote_sdp"] or ""
        assert ("telephone-event" in remote) == (method == "rfc4733"), f"{agent.name} was offered:\n{remote}"

    got = relayed_digits(lab, a, call, b, caller[5])
    assert "".join(d["digit"] for d in got) == DIGITS
    assert {d["method"] for d in got} == {callee[5]}, f"{b.name} received {[d['method'] for d in got]}"
    durations = [d["duration_ms"] for d in got]
    assert all(d is not None and abs(d - DIGIT_MS) <= 40 for d in durations), (
        f"each digit lasted {DIGIT_MS} ms when sent; {b.name} received {durations}")
    caller_side, callee_side = _legs(lab, a_call_id)
    with_info = info_call_ids(lab.gw.trace.entries())
    info_side = callee_side if callee[5] == "info" else caller_side
    other_side = caller_side if callee[5] == "info" else callee_side
    assert with_info & info_side, f"no INFO on the {('callee' if callee[5] == 'info' else 'caller')}'s side"
    assert not with_info & other_side, "INFO appeared on the RFC 4733 side of the call"

    # Audio still flows both ways through the anchor.
    a.play_tone(caller[6], call=call)
    b.play_tone(callee[6], call=theirs)
    heard_a, heard_b = str(tmp_path / "a.wav"), str(tmp_path / "b.wav")
    ma, mb = a.mark(), b.mark()
    a.record(call, heard_a, duration_ms=1300)
    b.record(theirs, heard_b, duration_ms=1300)
    assert a.wait_event("record_complete", since=ma, call=call, timeout=t(6)).data["complete"]
    assert b.wait_event("record_complete", since=mb, call=theirs, timeout=t(6)).data["complete"]
    assert_tone(heard_a, callee[6])
    assert_tone(heard_b, caller[6])
    a.stop_tone(call=call)
    b.stop_tone(call=theirs)

    # Hang-up crosses the relay.
    hang_up(b, theirs, (a, call, 0))
    wait_for(lambda: all(r["ended"] for r in lab.gw.media.relay.relays()), t(5), "the relay to end")


def test_hold_and_resume_cross_the_relay(lab):
    a, b = lab.agents["alice"], lab.agents["bob"]
    call, theirs, _ = place(lab, ALICE, BOB)
    mb = b.mark()
    a.hold(call)
    b.wait_event("media_state", since=mb, call=theirs, status="remote_hold", timeout=t(5))
    mb = b.mark()
    a.unhold(call)
    b.wait_event("media_state", since=mb, call=theirs, status="active", timeout=t(5))
    hang_up(a, call, (b, theirs, 0))


def test_cancel_before_answer_reaches_the_callee(lab):
    a, b = lab.agents["bob"], lab.agents["alice"]
    mb = b.mark()
    call, theirs, _ = place(lab, BOB, ALICE, answer=False)
    ma = a.mark()
    a.hangup(call)  # CANCEL: the call is still ringing
    a.wait_event("call_state", since=ma, call=call, state="DISCONNECTED", timeout=t(5))
    ended = b.wait_event("call_state", since=mb, call=theirs, state="DISCONNECTED", timeout=t(5))
    assert ended.data["code"] == 487, ended.data


def test_callee_refusal_reaches_the_caller_with_its_warning(lab):
    a, b = lab.agents["alice"], lab.agents["bob"]
    b.auto_answer("immediate", code=403, headers=[("Warning", '399 bob "Not taking calls"')])
    try:
        ma = a.mark()
        call = a.make_call("d", lab.uri(BOB[2]))
        ended = a.wait_event("call_state", since=ma, call=call, state="DISCONNECTED", timeout=t(10))
    finally:
        b.auto_answer("immediate")
    assert ended.data["code"] == 403, ended.data
    assert "Not taking calls" in ended.data.get("warning", ""), ended.data


def test_legs_that_agree_are_not_anchored(lab):
    a, c = lab.agents["alice"], lab.agents["carol"]
    before = len(lab.gw.media.relay.relays())
    call, theirs, _ = place(lab, ALICE, CAROL)
    a_call_id = a.call_info(call)["call_id"]
    notes = [n["text"] for n in lab.gw.trace.notes(call_ids=[a_call_id])]
    assert notes == ["DTMF interworking: caller RFC 4733, callee RFC 4733 → no conversion needed, not anchored"]
    assert len(lab.gw.media.relay.relays()) == before, "a call whose legs agree went through a relay"
    got = relayed_digits(lab, a, call, c, "rfc4733")
    assert "".join(d["digit"] for d in got) == DIGITS and {d["method"] for d in got} == {"rfc4733"}
    hang_up(a, call, (c, theirs, 0))


def relay_of(lab: Lab, a_call_id: str) -> dict:
    token = next(n["relay"] for n in lab.gw.dtmf_interworking.log if n["call_id"] == a_call_id and n["relay"])
    return next(r for r in lab.gw.media.relay.relays() if r["token"] == token)


def two_way_audio(tmp_path, one, one_call, one_hz, two, two_call, two_hz) -> None:
    one.play_tone(one_hz, call=one_call)
    two.play_tone(two_hz, call=two_call)
    heard_one, heard_two = str(tmp_path / f"{one.name}.wav"), str(tmp_path / f"{two.name}.wav")
    m1, m2 = one.mark(), two.mark()
    one.record(one_call, heard_one, duration_ms=1300)
    two.record(two_call, heard_two, duration_ms=1300)
    assert one.wait_event("record_complete", since=m1, call=one_call, timeout=t(6)).data["complete"]
    assert two.wait_event("record_complete", since=m2, call=two_call, timeout=t(6)).data["complete"]
    assert_tone(heard_one, two_hz)
    assert_tone(heard_two, one_hz)
    one.stop_tone(call=one_call)
    two.stop_tone(call=two_call)


def passed_refer(transferee, since: int, old_call: int, *, replaces: bool) -> int:
    """The transferee got a REFER of its own from the relay (RFC 3515), with the transferor's Refer-To, and its new
    call is up; returns the new call's handle."""
    refer = transferee.wait_event("transfer_request", since=since, call=old_call, timeout=t(10))
    assert refer.data["accepted"] and ("Replaces" in refer.data["target"]) is replaces, refer.data
    new = refer.data["new_call"]
    transferee.wait_event("call_state", since=since, call=new, state="CONFIRMED", timeout=t(10))
    return new


def test_a_blind_transfer_by_the_callee_gives_the_caller_a_refer_of_its_own(lab, tmp_path):
    """bob (INFO) takes alice's (RFC 4733) anchored call and transfers it blind to carol (RFC 4733): the relay passes
    the REFER to alice, whose own call reaches carol (not anchored: they agree); bob's sipfrag is alice's 200, sent
    once alice's call is up; alice's and bob's calls with the relay end and the relay is gone."""
    a, b, c = lab.agents["alice"], lab.agents["bob"], lab.agents["carol"]
    c.auto_answer("immediate")
    call, theirs, _ = place(lab, ALICE, BOB)
    a_call_id = a.call_info(call)["call_id"]
    ma, mb, mc = a.mark(), b.mark(), c.mark()
    b.transfer(theirs, lab.uri(CAROL[2]))  # REFER (RFC 3515), relayed by the gateway to the relay's leg
    new = passed_refer(a, ma, call, replaces=False)
    incoming = c.wait_event("incoming_call", since=mc, timeout=t(10))
    assert ALICE[2] in incoming.data["from"], f"carol should see alice's number: {incoming.data['from']}"
    carol_call = incoming.data["call"]
    c.wait_event("call_state", since=mc, call=carol_call, state="CONFIRMED", timeout=t(10))
    final = b.wait_event(lambda e: e.type == "transfer_status" and e.data.get("final"), since=mb, timeout=t(10))
    assert final.data["code"] == 200, final.data
    assert a.call_info(new)["state"] == "CONFIRMED", "bob heard 200 before alice's own call was up"
    b.wait_event("call_state", since=mb, call=theirs, state="DISCONNECTED", timeout=t(10))
    a.wait_event("call_state", since=ma, call=call, state="DISCONNECTED", timeout=t(10))
    wait_for(lambda: relay_of(lab, a_call_id)["ended"], t(10), "the relay to end after the transfer")
    notes = [n["text"] for n in lab.gw.trace.notes(call_ids=[a_call_id])]
    assert any("passes the callee's REFER to the caller" in n for n in notes), notes
    assert any("the caller's sipfrag 200 goes to the callee" in n for n in notes), notes
    new_id = a.call_info(new)["call_id"]
    assert [n["text"] for n in lab.gw.trace.notes(call_ids=[new_id])] == [
        "DTMF interworking: caller RFC 4733, callee RFC 4733 → no conversion needed, not anchored"]

    got = relayed_digits(lab, a, new, c, "rfc4733")
    assert "".join(d["digit"] for d in got) == DIGITS and {d["method"] for d in got} == {"rfc4733"}
    two_way_audio(tmp_path, a, new, ALICE[6], c, carol_call, CAROL[6])
    hang_up(a, new, (c, carol_call, mc))


def test_a_blind_transfer_to_a_target_that_still_differs_is_anchored_anew(lab, tmp_path):
    """alice (RFC 4733) calls bob (INFO) and transfers bob blind to carol (RFC 4733): bob gets the REFER, and his own
    call to carol is anchored on a relay of its own; digits are still converted both ways."""
    a, b, c = lab.agents["alice"], lab.agents["bob"], lab.agents["carol"]
    c.auto_answer("immediate")
    call, theirs, _ = place(lab, ALICE, BOB)
    ma, mb, mc = a.mark(), b.mark(), c.mark()
    a.transfer(call, lab.uri(CAROL[2]))
    new = passed_refer(b, mb, theirs, replaces=False)
    incoming = c.wait_event("incoming_call", since=mc, timeout=t(10))
    carol_call = incoming.data["call"]
    c.wait_event("call_state", since=mc, call=carol_call, state="CONFIRMED", timeout=t(10))
    final = a.wait_event(lambda e: e.type == "transfer_status" and e.data.get("final"), since=ma, timeout=t(10))
    assert final.data["code"] == 200, final.data
    a.wait_event("call_state", since=ma, call=call, state="DISCONNECTED", timeout=t(10))
    b.wait_event("call_state", since=mb, call=theirs, state="DISCONNECTED", timeout=t(10))
    new_id = b.call_info(new)["call_id"]
    notes = [n["text"] for n in lab.gw.trace.notes(call_ids=[new_id])]
    want = "DTMF interworking: caller INFO, callee RFC 4733 → anchored on media node"
    assert any(n.startswith(want) for n in notes), notes

    got = relayed_digits(lab, c, carol_call, b, "rfc4733")
    assert "".join(d["digit"] for d in got) == DIGITS and {d["method"] for d in got} == {"info"}
    got = relayed_digits(lab, b, new, c, "info")
    assert "".join(d["digit"] for d in got) == DIGITS and {d["method"] for d in got} == {"rfc4733"}
    two_way_audio(tmp_path, b, new, BOB[6], c, carol_call, CAROL[6])
    hang_up(c, carol_call, (b, new, mb))


def test_a_blind_transfer_to_a_busy_target_gives_the_transferor_its_held_call_back(lab, tmp_path):
    """bob (INFO) holds alice's (RFC 4733) anchored call and transfers it to a busy carol: alice's own call gets 486,
    bob's sipfrag is that 486, he still has the call, resumes it, and alice and bob hear each other again."""
    a, b, c = lab.agents["alice"], lab.agents["bob"], lab.agents["carol"]
    call, theirs, _ = place(lab, ALICE, BOB)
    c.auto_answer("immediate", code=486)
    try:
        ma, mb = a.mark(), b.mark()
        b.hold(theirs)
        a.wait_event("media_state", since=ma, call=call, status="remote_hold", timeout=t(5))
        ma, mb = a.mark(), b.mark()
        b.transfer(theirs, lab.uri(CAROL[2]))
        final = b.wait_event(lambda e: e.type == "transfer_status" and e.data.get("final"), since=mb, timeout=t(10))
    finally:
        c.auto_answer("immediate")
    assert final.data["code"] == 486, final.data
    refer = a.wait_event("transfer_request", since=ma, call=call, timeout=t(5))
    tried = a.wait_event("call_state", since=ma, call=refer.data["new_call"], state="DISCONNECTED", timeout=t(5))
    assert tried.data["code"] == 486, tried.data
    assert b.call_info(theirs)["state"] == "CONFIRMED", "bob lost the call he held"
    assert a.call_info(call)["state"] == "CONFIRMED", "alice lost her call with the relay"
    ma = a.mark()
    b.unhold(theirs)
    a.wait_event("media_state", since=ma, call=call, status="active", timeout=t(5))
    two_way_audio(tmp_path, a, call, ALICE[6], b, theirs, BOB[6])
    hang_up(b, theirs, (a, call, 0))


def test_an_attended_transfer_by_the_callee_gives_the_caller_a_refer_with_replaces(lab):
    """bob (INFO) holds alice's (RFC 4733) anchored call, consults a PSTN party, and transfers with Replaces: the relay
    passes the REFER to alice, whose own INVITE with Replaces takes the consultation's place at the party; bob's
    sipfrag is alice's 200 and bob's calls end."""
    a, b = lab.agents["alice"], lab.agents["bob"]
    node = lab.gw.media
    call, theirs, _ = place(lab, ALICE, BOB)
    b.hold(theirs)
    mb = b.mark()
    number = PSTN_PREFIX + "0100"
    # The relay took a whole media worker; the party needs a slot on another one (started in the background).
    wait_for(lambda: (m := node.metrics())["capacity"] - m["reserved"] >= 1, t(10), "a free media-node call slot")
    consult = b.make_call("d", lab.uri(number))
    b.wait_event("call_state", since=mb, call=consult, state="CONFIRMED", timeout=t(10))
    party = wait_for(lambda: next((c for c in node.calls(number) if c.state == "confirmed"), None), t(5),
                     "the PSTN party to answer the consultation")
    ma, mb = a.mark(), b.mark()
    b.transfer_replaces(theirs, consult)
    new = passed_refer(a, ma, call, replaces=True)
    final = b.wait_event(lambda e: e.type == "transfer_status" and e.data.get("final"), since=mb, timeout=t(10))
    assert final.data["code"] == 200, final.data
    for handle in (theirs, consult):
        b.wait_event("call_state", since=mb, call=handle, state="DISCONNECTED", timeout=t(10))
    a.wait_event("call_state", since=ma, call=call, state="DISCONNECTED", timeout=t(10))
    wait_for(lambda: node.call(party.id).state == "disconnected", t(5), "the consultation to be replaced")
    moved = wait_for(lambda: next((c for c in node.calls(number) if c.id != party.id and c.state == "confirmed"),
                                  None), t(5), "the PSTN party's call that replaced the consultation")
    ma = a.mark()
    a.hangup(new)
    a.wait_event("call_state", since=ma, call=new, state="DISCONNECTED", timeout=t(5))
    wait_for(lambda: node.call(moved.id).state == "disconnected", t(5), "the hang-up to reach the PSTN party")


def test_an_invite_with_replaces_for_a_relay_leg_takes_its_place_and_stays_converted(lab):
    """alice (RFC 4733) calls bob (INFO) (anchored), consults carol (RFC 4733, not anchored) and transfers carol with
    Replaces naming her anchored call: carol's INVITE with Replaces reaches the relay's leg, carol's call takes
    alice's place there and, as carol and bob still differ, the relay stays and converts."""
    a, b, c = lab.agents["alice"], lab.agents["bob"], lab.agents["carol"]
    c.auto_answer("immediate")
    call, theirs, _ = place(lab, ALICE, BOB)
    a_call_id = a.call_info(call)["call_id"]
    a.hold(call)
    ma, mc = a.mark(), c.mark()
    consult = a.make_call("d", lab.uri(CAROL[2]))
    a.wait_event("call_state", since=ma, call=consult, state="CONFIRMED", timeout=t(10))
    carol_consult = c.wait_event("incoming_call", since=mc, timeout=t(10)).data["call"]
    ma, mb, mc = a.mark(), b.mark(), c.mark()
    a.transfer_replaces(consult, call)  # carol is the transferee; her INVITE replaces alice's anchored call
    refer = c.wait_event("transfer_request", since=mc, call=carol_consult, timeout=t(10))
    new = refer.data["new_call"]
    c.wait_event("call_state", since=mc, call=new, state="CONFIRMED", timeout=t(10))
    final = a.wait_event(lambda e: e.type == "transfer_status" and e.data.get("final"), since=ma, timeout=t(10))
    assert final.data["code"] == 200, final.data
    for handle in (call, consult):
        a.wait_event("call_state", since=ma, call=handle, state="DISCONNECTED", timeout=t(10))
    assert b.call_info(theirs)["state"] == "CONFIRMED", "bob's call ended with the transfer"
    wait_for(lambda: any(d.get("transfer") == "replaced" for d in relay_of(lab, a_call_id)["digits"]), t(5),
             "the relay to take carol's INVITE with Replaces in its caller's leg's place")
    wait_for(lambda: [n for n in lab.gw.trace.notes(call_ids=[a_call_id]) if "stays in the transferred call"
                      in n["text"]], t(5), "the relay's note that it stays in the call")

    carols = "rfc4733" if "telephone-event" in (c.call_info(new)["remote_sdp"] or "") else "info"
    got = relayed_digits(lab, c, new, b, carols)
    assert "".join(d["digit"] for d in got) == DIGITS and {d["method"] for d in got} == {"info"}
    hang_up(c, new, (b, theirs, mb))
    wait_for(lambda: relay_of(lab, a_call_id)["ended"], t(5), "the relay to end")


def test_a_consultative_transfer_between_differing_parties_is_anchored_anew(lab, tmp_path):
    """alice (RFC 4733) calls bob (INFO) (anchored), consults carol (RFC 4733, not anchored) and transfers bob to
    carol with Replaces naming that consultation: the relay passes the REFER to bob, whose INVITE with Replaces names
    carol's dialog, a device's; bob and carol differ, so that INVITE goes to a new relay whose own INVITE carries the
    Replaces to carol (RFC 3891 §3). carol's consultation is replaced, and every digit each sends reaches the other
    in its own method."""
    a, b, c = lab.agents["alice"], lab.agents["bob"], lab.agents["carol"]
    node = lab.gw.media
    c.auto_answer("immediate")
    call, theirs, _ = place(lab, ALICE, BOB)
    a.hold(call)
    # The first relay holds a whole media worker; the second needs another (started in the background).
    wait_for(lambda: (m := node.metrics())["capacity"] - m["reserved"] >= 4, t(15), "a free media worker")
    ma, mc = a.mark(), c.mark()
    consult = a.make_call("d", lab.uri(CAROL[2]))
    a.wait_event("call_state", since=ma, call=consult, state="CONFIRMED", timeout=t(10))
    carol_consult = c.wait_event("incoming_call", since=mc, timeout=t(10)).data["call"]
    carol_consult_id = c.call_info(carol_consult)["call_id"]
    relays_before = {r["token"] for r in node.relay.relays()}
    ma, mb, mc = a.mark(), b.mark(), c.mark()
    a.transfer_replaces(call, consult)  # bob is the transferee; his INVITE replaces alice's consultation of carol
    new = passed_refer(b, mb, theirs, replaces=True)
    final = a.wait_event(lambda e: e.type == "transfer_status" and e.data.get("final"), since=ma, timeout=t(10))
    assert final.data["code"] == 200, final.data
    replaced = c.wait_event("replaced", since=mc, call=carol_consult, timeout=t(10))
    carols = replaced.data["new_call"]
    c.wait_event("call_state", since=mc, call=carols, state="CONFIRMED", timeout=t(10))
    for handle in (call, consult):
        a.wait_event("call_state", since=ma, call=handle, state="DISCONNECTED", timeout=t(10))

    # Observed: bob's new call went to a new relay, whose INVITE to carol carried Replaces for her consultation.
    bobs_id = b.call_info(new)["call_id"]
    anchored = wait_for(lambda: next((n for n in lab.gw.dtmf_interworking.log if n["call_id"] == bobs_id), None),
                        t(5), "the anchoring of bob's INVITE with Replaces")
    assert anchored["anchored"] and anchored["relay"] not in relays_before, anchored
    assert "caller INFO, callee RFC 4733" in anchored["note"], anchored
    carols_id = c.call_info(carols)["call_id"]
    carol_invite = next(e for e in lab.gw.trace.entries(call_ids=[carols_id])
                        if e.direction == "out" and e.first_line.startswith("INVITE "))
    text = carol_invite.data.decode()
    assert f"Replaces: {carol_consult_id};" in text, text
    assert "X-Sipgw-Dtmf-Relay" not in text  # the relay's header stays between the relay and the gateway
    relay = next(r for r in node.relay.relays() if r["token"] == anchored["relay"])
    assert (relay["caller_method"], relay["callee_method"]) == ("info", "rfc4733"), relay

    got = relayed_digits(lab, b, new, c, "info")
    assert "".join(d["digit"] for d in got) == DIGITS and {d["method"] for d in got} == {"rfc4733"}
    got = relayed_digits(lab, c, carols, b, "rfc4733")
    assert "".join(d["digit"] for d in got) == DIGITS and {d["method"] for d in got} == {"info"}
    two_way_audio(tmp_path, b, new, BOB[6], c, carols, CAROL[6])
    hang_up(c, carols, (b, new, mb))
    wait_for(lambda: next(r for r in node.relay.relays() if r["token"] == anchored["relay"])["ended"], t(5),
             "the new relay to end")
