"""Hold and resume.

Seed, "Hold/resume": SIP device users can put a call on hold and resume it.

The device is in a call with a PSTN party hosted by the gateway's media node. Hold is judged twice over: in
signalling (the re-INVITE's SDP direction in the gateway's trace, ``sendonly`` or ``inactive`` from the holder
and ``recvonly`` or ``inactive`` in the answer, RFC 3264 §8.4) and in audio (neither side hears the other while
held; both hear each other again after resume). Hold is tried from either side, on an ATA's second port,
immediately followed by resume, with a session refresh while held, and with re-INVITE glare (RFC 3261 §14.2:
491 and a retry).
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.media import judge_hold
from harness.protocols import CallControl, MediaDirection, OperationFailed, OperationTimeout
from test_suites._feature_helpers import (
    AFTER_CHANGE_S,
    MIN_ANALYSED_S,
    conclusive,
    connect_to_party,
    device_ear,
    last_seq,
    line_for,
    listen,
    party_ear,
    party_media,
    reinvites,
    responses,
    trace_of,
    two_way,
    wait_until,
)

HELD_BY_DEVICE = {"sendonly", "inactive"}
HELD_ANSWER = {"recvonly", "inactive"}


def _two_way(device, out, pstn, far, evidence, label):
    return two_way([device_ear(device, out.id), party_ear(pstn, far)], evidence, label, settle_s=AFTER_CHANGE_S)


def _silent_hold(device, out, pstn, far, evidence, *, holder_is_device: bool):
    ears = [device_ear(device, out.id), party_ear(pstn, far)]
    rep = listen(ears, evidence, "held")
    dev, party = ears
    holder, held = (dev, party) if holder_is_device else (party, dev)
    verdict = judge_hold(rep[holder.name], rep[held.name], holder.tone_hz, held.tone_hz, holder_name=holder.name,
                         held_name=held.name, min_analysed_s=MIN_ANALYSED_S)
    return conclusive(verdict, evidence, "held")


@pytest.mark.feature("hold_resume")
def test_hold_and_resume_from_the_device(device, pstn, lab, evidence, sipgw_settings):
    """The device holds (on an ATA: its last port): sendonly/inactive re-INVITE, silence both ways; resume."""
    t = sipgw_settings.deadline(5)
    calls = device[CallControl]
    out, far = connect_to_party(device, pstn, t, line=line_for(device), evidence=evidence)
    mark = last_seq(lab.control)

    held = calls.hold(out.id)
    assert held.local_hold, f"{device.id}: hold was not confirmed on the device (media {held.media_direction})"
    party_media(pstn, far, HELD_ANSWER, t, "sees the hold")
    trace = trace_of(lab.control, out.sip_call_id, t)
    offers = reinvites(trace, mark, direction="in", call_id=out.sip_call_id)
    assert offers, f"{device.id}: no re-INVITE from the device in the gateway's trace after hold"
    assert offers[0]["sdp_direction"] in HELD_BY_DEVICE, (
        f"{device.id}: its hold re-INVITE offers a={offers[0]['sdp_direction']}, expected sendonly or inactive")
    answers = [r for r in responses(trace, 200, after_seq=offers[0]["seq"]) if r["call_id"] == out.sip_call_id]
    assert answers and answers[0]["sdp_direction"] in HELD_ANSWER, (
        f"{device.id}: the 200 to its hold carries a={answers[0]['sdp_direction'] if answers else 'no answer'}")
    assert _silent_hold(device, out, pstn, far, evidence, holder_is_device=True).passed

    resumed = calls.resume(out.id)
    assert resumed.media_direction is MediaDirection.SENDRECV
    party_media(pstn, far, {"sendrecv"}, t, "sees the resume")
    audio = _two_way(device, out, pstn, far, evidence, "resumed")
    assert audio.passed, audio.reason
    calls.hangup(out.id)


@pytest.mark.feature("hold_resume")
def test_held_by_the_far_end(device, pstn, lab, evidence, sipgw_settings):
    """The PSTN party holds: the gateway relays its sendonly re-INVITE, the device sees remote hold; after resume
    audio flows both ways."""
    t = sipgw_settings.deadline(5)
    calls = device[CallControl]
    out, far = connect_to_party(device, pstn, t, evidence=evidence)
    mark = last_seq(lab.control)

    pstn.media.hold(far["id"])
    held = calls.wait_for_media(out.id, MediaDirection.RECVONLY, timeout=t) \
        if calls.call(out.id).media_direction is not MediaDirection.INACTIVE else calls.call(out.id)
    assert held.remote_hold or held.media_direction in (MediaDirection.RECVONLY, MediaDirection.INACTIVE), (
        f"{device.id}: held by the far end but reports media {held.media_direction}")
    towards_device = reinvites(trace_of(lab.control, out.sip_call_id, t), mark, direction="out",
                               call_id=out.sip_call_id)
    assert towards_device and towards_device[0]["sdp_direction"] in HELD_BY_DEVICE, (
        f"the gateway relayed no sendonly/inactive re-INVITE to {device.id}: {towards_device}")
    # Silence while held is judged in test_hold_and_resume_from_the_device; here the audio after resume.

    pstn.media.resume(far["id"])
    calls.wait_for_media(out.id, MediaDirection.SENDRECV, timeout=t)
    audio = _two_way(device, out, pstn, far, evidence, "resumed")
    assert audio.passed, audio.reason
    calls.hangup(out.id)


@pytest.mark.feature("hold_resume")
def test_hold_then_immediate_resume(device, pstn, lab, evidence, sipgw_settings):
    """Hold at once followed by resume: two re-INVITEs, each answered, both ends back to sendrecv."""
    t = sipgw_settings.deadline(5)
    calls = device[CallControl]
    out, far = connect_to_party(device, pstn, t, evidence=evidence)
    mark = last_seq(lab.control)
    calls.hold(out.id)
    calls.resume(out.id)
    party_media(pstn, far, {"sendrecv"}, t, "sees the resume")
    offers = [r["sdp_direction"] for r in reinvites(trace_of(lab.control, out.sip_call_id, t), mark,
                                                    direction="in", call_id=out.sip_call_id)]
    assert len(offers) >= 2 and offers[0] in HELD_BY_DEVICE and offers[-1] == "sendrecv", (
        f"{device.id}: re-INVITE offers seen {offers}; expected a hold then a sendrecv resume")
    assert calls.call(out.id).media_direction is MediaDirection.SENDRECV
    calls.hangup(out.id)


@pytest.mark.feature("hold_resume")
def test_session_refresh_while_held(device, pstn, lab, evidence, sipgw_settings):
    """A session refresh re-INVITE while the call is held keeps it held (RFC 4028 §7.4); resume still works."""
    t = sipgw_settings.deadline(5)
    calls = device[CallControl]
    out, far = connect_to_party(device, pstn, t, evidence=evidence)
    calls.hold(out.id)
    party_media(pstn, far, HELD_ANSWER, t, "sees the hold")
    mark = last_seq(lab.control)
    calls.refresh_session(out.id)
    trace = trace_of(lab.control, out.sip_call_id, t)
    offers = reinvites(trace, mark, direction="in", call_id=out.sip_call_id)
    assert offers, f"{device.id}: no refresh re-INVITE in the gateway's trace"
    assert offers[0]["sdp_direction"] in HELD_BY_DEVICE, (
        f"{device.id}: the refresh while held offers a={offers[0]['sdp_direction']}; the call would be resumed")
    ok = [r for r in responses(trace, 200, after_seq=offers[0]["seq"]) if r["call_id"] == out.sip_call_id]
    assert ok, f"{device.id}: the refresh re-INVITE got no 200 through the gateway"
    assert calls.call(out.id).local_hold, f"{device.id}: the call is no longer held after the refresh"
    party_media(pstn, far, HELD_ANSWER, t, "is still held after the refresh")
    resumed = calls.resume(out.id)
    assert resumed.media_direction is MediaDirection.SENDRECV
    calls.hangup(out.id)


@pytest.mark.feature("hold_resume")
def test_reinvite_glare(device, pstn, lab, evidence, sipgw_settings):
    """Both sides re-INVITE at once: each gets 491 (RFC 3261 §14.2); the device retries and the call ends held."""
    t = sipgw_settings.deadline(5)
    calls = device[CallControl]
    out, far = connect_to_party(device, pstn, t, evidence=evidence)
    glare: list[dict] = []
    pool = ThreadPoolExecutor(2, thread_name_prefix="glare")
    try:
        for _attempt in range(4):  # glare needs the two re-INVITEs to cross; a few tries make it likely
            mark = last_seq(lab.control)
            mine = pool.submit(calls.hold, out.id)
            theirs = pool.submit(pstn.media.hold, far["id"])
            try:
                theirs.result()
            except Exception as exc:  # refused locally: the device's re-INVITE reached the far end first
                evidence.note(f"far-end hold not sent: {exc}")
            # Either the device's hold is answered (no crossing) or a 491 comes back: whichever is seen first.
            def crossed(mark=mark, mine=mine, cid=out.sip_call_id):
                return responses(trace_of(lab.control, cid, t), 491, after_seq=mark) or (mine.done() and ["no-glare"])

            seen = wait_until(crossed, timeout=t, what="the device's hold answered, or a 491")
            if seen != ["no-glare"]:
                glare = seen
                break
            with contextlib.suppress(OperationFailed, OperationTimeout):
                mine.result()
            # No crossing this time: start again from a fresh call.
            calls.hangup(out.id)
            out, far = connect_to_party(device, pstn, t, evidence=evidence)
        if not glare:
            pytest.skip("the two re-INVITEs never crossed in 4 tries (no 491 observed); glare was not exercised")
        glare_seen = time.monotonic()
        evidence.note(f"491 seen on {', '.join(sorted({g['call_id'] for g in glare}))}")
        # RFC 3261 §14.1: the side whose re-INVITE got 491 tries again later. The device retries its hold.
        if not calls.call(out.id).local_hold:
            _retry_hold_after_491(calls, out.id, glare_seen, t, evidence)
        info = calls.call(out.id)
        assert info.local_hold, f"{device.id}: after the 491 and retry the call is not held ({info.media_direction})"
        assert info.active, f"{device.id}: the call ended after glare"
        party_media(pstn, far, HELD_ANSWER, t, "sees the retried hold")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    calls.hangup(out.id)


def _retry_hold_after_491(calls, call_id: str, glare_seen: float, timeout: float, evidence) -> None:
    """Retry the device's hold as RFC 3261 §14.1 says: the device placed the call, so it owns the Call-ID and
    waits 2.1 s or more after the 491. Until the far end's own re-INVITE is through, the device may still refuse
    to start another INVITE transaction; it is asked again until the deadline."""
    retry_at = glare_seen + 2.1
    end = retry_at + timeout
    time.sleep(max(0.0, retry_at - time.monotonic()))  # the protocol's retry timer, not a wait for an event
    while True:
        try:
            calls.hold(call_id)  # also completes the first hold's wait
            return
        except OperationFailed as exc:
            if calls.call(call_id).local_hold:
                return  # the refused attempt raced the first hold's answer, which held the call
            if time.monotonic() >= end:
                raise
            evidence.note(f"hold retry refused while another re-INVITE was in progress: {exc}")
            time.sleep(0.25)
