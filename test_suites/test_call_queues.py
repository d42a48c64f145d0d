"""Call queues and voice apps.

Seed, "Call queues and voice apps": SIP devices can be call queue agents with some restrictions: SIP Gateway
doesn't publish presence for devices, hence presence based routing is not supported.

The device's user is an agent of a call queue together with a Teams user (whose Teams client the media node
hosts). A PSTN party calls the queue's number; the queue offers the call by its routing method, and the verdict
comes from what was observed: the device ringing and answering (its call state), audio both ways with the
caller (tones detected), and the order of the offers in the gateway's queue record. An opted-out agent is never
offered a call; with presence-based routing the Teams agent who is away is skipped while the SIP-device agent is
still offered the call, and the queue record says presence-based routing does not apply to it. An auto
attendant answers on the media node and transfers the caller to the device's user by digit.

On every device: attendant routing (the device rings with the other agent, answers and talks with the caller), an
opted-out agent's device never ringing, and presence-based routing still offering the call to the SIP device. The
other routing methods (serial, round robin, longest idle) and the auto attendant's transfer are gateway-side
variations (the order and timing of offers, a REFER from the media node; the device's part is an incoming call it
answers, as under attendant routing): they run once, on the run's representative device, and are not applicable
elsewhere with that reason.
"""

from __future__ import annotations

import pytest

from harness.protocols import CallControl, CallState
from test_suites._feature_helpers import CONFIRMED, ENDED, hang_up_all, line_for, wait_until

QUEUE_NUMBER = "+14255559200"
ATTENDANT_NUMBER = "+14255559300"
ALERT_S = 0.8


def _agent(device) -> tuple[str, str]:
    acc = device.lines[line_for(device)]
    return acc.username, acc.number


@pytest.fixture
def queues(lab):
    api = lab.control.voiceapps
    made: list[str] = []

    def put(method: str, agents: list[str], **kw):
        qid = f"q-{method}"
        made.append(qid)
        return api.put_queue(qid, QUEUE_NUMBER, agents, method=method, agent_alert_s=kw.pop("alert", ALERT_S), **kw)

    yield put
    for qid in made:
        try:
            api.delete_queue(qid)
        except Exception:  # already gone
            pass


def _ring_and_answer(device, t: float):
    calls = device[CallControl]
    incoming = calls.wait_for_incoming(timeout=t)
    calls.answer(incoming.id)
    return calls.wait_for_state(incoming.id, CONFIRMED, timeout=t)


def _last_queue_call(lab, qid: str, t: float, *, answered: bool = True) -> dict:
    api = lab.control.voiceapps
    return wait_until(lambda: (cs := api.queue_calls(qid)) and (not answered or cs[-1]["answered_by"]) and cs[-1],
                      timeout=t, what=f"the record of the last call of queue {qid}")


def _offered(record: dict) -> list[tuple[int, str]]:
    return [(o["round"], o["agent"]) for o in record["offers"]]


def _queue_call_to_device(device, lab, pstn, evidence, t, qid):
    origin = pstn.call(QUEUE_NUMBER)
    incoming = _ring_and_answer(device, t)
    origin = pstn.wait_state(origin, "confirmed", timeout=t)
    evidence.add_call(incoming)
    evidence.add_call(origin)
    return incoming, origin, _last_queue_call(lab, qid, t)


def _end(device, incoming, pstn, origin, t):
    device[CallControl].hangup(incoming.id)
    pstn.wait_state(origin, "disconnected", timeout=t)


@pytest.mark.feature("call_queues")
def test_attendant_routing_rings_the_device_agent(device, lab, queues, pstn, teams, two_way_audio, evidence,
                                                  sipgw_settings):
    """Attendant routing: every agent rings at once; the device answers and talks with the caller."""
    t = sipgw_settings.deadline(5)
    me, _ = _agent(device)
    teams.configure("no_answer")
    queues("attendant", [teams.identity, me])
    incoming, origin, record = _queue_call_to_device(device, lab, pstn, evidence, t, "q-attendant")
    assert sorted(_offered(record)) == sorted([(0, teams.identity), (0, me)]), record["offers"]
    assert record["answered_by_agent"] == me, f"answered by {record['answered_by']}, not {device.id}"
    audio = two_way_audio.with_party(device, incoming.id, pstn, origin)
    assert audio.passed, audio.reason
    _end(device, incoming, pstn, origin, t)


@pytest.mark.feature("call_queues")
def test_serial_routing_moves_on_to_the_device_agent(gateway_side, device, lab, queues, pstn, teams, evidence,
                                                     sipgw_settings):
    """Serial routing: the first agent (Teams) rings for the alert time without answering, then the device.
    Gateway-side variation: once, on the run's representative device."""
    t = sipgw_settings.deadline(5) + ALERT_S
    me, _ = _agent(device)
    teams.configure("no_answer")
    queues("serial", [teams.identity, me])
    incoming, origin, record = _queue_call_to_device(device, lab, pstn, evidence, t, "q-serial")
    assert _offered(record) == [(0, teams.identity), (1, me)], record["offers"]
    gap = record["offers"][1]["t"] - record["offers"][0]["t"]
    assert gap >= ALERT_S * 0.9, f"the device was offered {gap:.2f} s after the first agent, alert time {ALERT_S} s"
    assert incoming.started is None or incoming.state == CallState.CONFIRMED
    _end(device, incoming, pstn, origin, t)


@pytest.mark.feature("call_queues")
@pytest.mark.parametrize("method", ["round_robin", "longest_idle"])
def test_rotating_routing_reaches_the_device_agent(method, gateway_side, device, lab, queues, pstn, teams, evidence,
                                                   sipgw_settings):
    """Round robin starts each call with the next agent; longest idle with the agent whose last answered queue
    call is oldest. The device answers one call; the next one starts with the other agent (Teams answers).
    Gateway-side variation: once, on the run's representative device."""
    t = sipgw_settings.deadline(5) + ALERT_S
    me, _ = _agent(device)
    qid = f"q-{method}"
    teams.configure("no_answer")
    queues(method, [teams.identity, me] if method == "round_robin" else [me, teams.identity])
    if method == "round_robin":  # the first call starts with the first agent (Teams), the second with the device
        teams.configure("auto")
        first = pstn.call(QUEUE_NUMBER)
        first = pstn.wait_state(first, "confirmed", timeout=t)
        rec1 = _last_queue_call(lab, qid, t)
        assert _offered(rec1)[0] == (0, teams.identity) and rec1["answered_by_agent"] == teams.identity, rec1
        pstn.hangup(first)
        incoming, origin, rec2 = _queue_call_to_device(device, lab, pstn, evidence, t, qid)
        assert _offered(rec2)[0] == (0, me), f"round robin's second call started with {rec2['offers']}"
        _end(device, incoming, pstn, origin, t)
        return
    # longest idle: the device answers (it becomes the agent idle the shortest), the next call starts with Teams.
    incoming, origin, rec1 = _queue_call_to_device(device, lab, pstn, evidence, t, qid)
    assert rec1["answered_by_agent"] == me, rec1
    _end(device, incoming, pstn, origin, t)
    teams.configure("auto")
    second = pstn.call(QUEUE_NUMBER)
    second = pstn.wait_state(second, "confirmed", timeout=t)
    rec2 = _last_queue_call(lab, qid, t)
    assert _offered(rec2)[0] == (0, teams.identity), f"longest idle's second call started with {rec2['offers']}"
    pstn.hangup(second)


@pytest.mark.feature("call_queues")
def test_opted_out_agent_is_skipped(device, lab, queues, pstn, teams, evidence, sipgw_settings):
    """The device's user opts out: a queue call goes to the other agent and the device never rings."""
    t = sipgw_settings.deadline(5)
    me, _ = _agent(device)
    api = lab.control.voiceapps
    queues("attendant", [me, teams.identity])
    q = api.set_agent_opt_in("q-attendant", me, False)
    assert me in q["opted_out"], q
    origin = pstn.call(QUEUE_NUMBER)
    origin = pstn.wait_state(origin, "confirmed", timeout=t)
    evidence.add_call(origin)
    record = _last_queue_call(lab, "q-attendant", t)
    assert _offered(record) == [(0, teams.identity)], f"an opted-out agent was offered the call: {record['offers']}"
    assert record["answered_by_agent"] == teams.identity
    pstn.hangup(origin)
    rang = [c for c in device[CallControl].calls() if c.direction.value == "in" and c.state != ENDED]
    assert not rang, f"{device.id} rang although its user opted out: {rang}"
    q = api.set_agent_opt_in("q-attendant", me, True)
    assert me not in q["opted_out"], q


@pytest.mark.feature("call_queues")
def test_presence_based_routing_does_not_apply_to_sip_devices(device, lab, queues, pstn, teams, evidence,
                                                              sipgw_settings):
    """Presence-based routing: the away Teams agent is skipped; the SIP-device agent, whose presence SIP Gateway
    does not publish, is still offered the call (the documented limitation, stated in the queue record)."""
    t = sipgw_settings.deadline(5)
    me, _ = _agent(device)
    control = lab.control
    control.update_user(teams.identity, presence="away")
    control.update_user(me, presence="away")
    queues("attendant", [teams.identity, me], presence_based=True)
    incoming, origin, record = _queue_call_to_device(device, lab, pstn, evidence, t, "q-attendant")
    assert _offered(record) == [(0, me)], record["offers"]
    assert record["presence_not_applied"] == [me], record
    limitation = next(n for n in record["notes"] if n.startswith(me))
    assert "presence-based routing does not apply to SIP devices" in limitation
    evidence.add_bytes("queue-notes", "queue-notes.txt", "\n".join(record["notes"]).encode())
    _end(device, incoming, pstn, origin, t)


@pytest.mark.feature("call_queues")
def test_auto_attendant_routes_by_digit(gateway_side, device, lab, pstn, two_way_audio, evidence, sipgw_settings):
    """An auto attendant answers; the caller presses 1; the attendant transfers the caller to the device's user,
    whose device rings and talks with the caller. Gateway-side variation: once, on the run's representative
    device."""
    t = sipgw_settings.deadline(5)
    _, number = _agent(device)
    api = lab.control.voiceapps
    api.put_attendant("aa-main", ATTENDANT_NUMBER, {"1": number, "0": "+14255559100"})
    try:
        before = {c["media_call"] for c in api.attendant_calls()}
        first = pstn.call(ATTENDANT_NUMBER)
        first = pstn.wait_state(first, "confirmed", timeout=t)
        lab.control.media.dtmf(first["id"], "1")
        incoming = _ring_and_answer(device, t)
        moved = wait_until(lambda: next((c for c in lab.control.media.calls(pstn.identity)
                                         if c["id"] != first["id"] and c["state"] == "confirmed"), None),
                           timeout=t, what="the caller's transferred call to the device")
        evidence.add_call(incoming)
        evidence.add_call(moved)
        hops = [c for c in api.attendant_calls() if c["media_call"] not in before]
        assert hops and hops[0]["digit"] == "1" and hops[0]["target"] == number, hops
        audio = two_way_audio.with_party(device, incoming.id, pstn, moved)
        assert audio.passed, audio.reason
        _end(device, incoming, pstn, moved, t)
    finally:
        api.delete_attendant("aa-main")
        hang_up_all(device)
