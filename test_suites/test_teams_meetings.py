"""Teams meetings.

Seed, "Teams meetings": a SIP device user can join a Teams meeting by dialing the meeting access number;
participants can dial out to the user or use Request to Join; guests can be added by dial-out.

A meeting is set up in the tenant with a Teams-only organiser (whose Teams client the media node hosts) and the
device's user as participant. The device dials the access number and enters the conference id and ``#`` in its own
DTMF method; the organiser dials out to the device's number; the organiser uses Request to Join on the device's
user (every endpoint of the user rings: here its SIP devices); a guest from outside the tenant (a PSTN number) is
added by dial-out. In every case each party sends its own tone and must hear every other party's tone (detected in
its own recording), and leaving is seen by the others: the leaver's leg ends in the roster the Teams client shows
and its tone is gone from what the others hear. The conference mixer runs on the media node; a meeting with more
parties than one media process holds is bridged across two processes (``test_mixer_spans_two_media_processes``,
not tied to a device: the device side of a meeting call is an ordinary call, exercised by every device above).

What depends on the device runs on every device: dialling in with its own DTMF method, and being rung by Request to
Join and answering into the meeting. Dial-out by a participant and a guest added by dial-out are gateway-side
variations (the device's leg is an incoming call it answers, as in Request to Join and the receive-calls suite):
they run once, on the run's representative device, and are not applicable elsewhere with that reason.
"""

from __future__ import annotations

import itertools
import os

import pytest

from gateway.services.meetings import ACCESS_NUMBER
from harness.protocols import CallControl
from harness.pytest_plugin.fixtures import MediaParty, gateway_side_only
from test_suites._feature_helpers import (
    CONFIRMED,
    device_ear,
    gateway_call,
    hang_up_all,
    header,
    line_for,
    listen,
    party_ear,
)

_MEETINGS = itertools.count(1)
GUEST_TONE_HZ = 820.0


@pytest.fixture
def meeting(lab, teams, device):
    """A new meeting: the Teams-only organiser and the device's user; the organiser's Teams client joins first.
    Every test has its own meeting and conference id, so nothing of an earlier meeting can answer for it."""
    api = lab.control.voiceapps
    me = device.lines[line_for(device)].username
    n = next(_MEETINGS)
    # Each worker has its own gateway: a per-process counter keeps ids unique. The conference id has the IVR's
    # shortest length (4 digits): every digit is sent in the device's DTMF method and takes its time.
    mid, conf = f"m{os.getpid()}-{n}", f"{n % 10000:04d}"
    api.put_meeting(mid, conf, teams.identity, [me], subject="Weekly sync")
    api.join_meeting(mid, teams.identity)
    organiser = teams.wait_incoming(state="confirmed", timeout=5)
    api.wait_roster(mid, lambda m: any(r["kind"] == "teams" and r["joined"] for r in m["in_meeting"]),
                    what="the organiser in the meeting")
    yield {"id": mid, "conference_id": conf, "organiser": organiser, "user": me}
    try:
        api.delete_meeting(mid)
    except Exception:  # the gateway may be reset already
        pass


@pytest.fixture
def dial_out_representative(request, device) -> str:
    """Dial-out applies to the device, and this is the run's representative device for it (else not applicable)."""
    device.require("teams_meetings.dial_out")
    return gateway_side_only(request, "teams_meetings.dial_out")


def _hears_everyone(ears, evidence, label, deadline, lab=None, mid=None):
    if lab is not None and mid is not None:  # legs on two hubs: the chain between them is up first
        lab.control.voiceapps.wait_roster(mid, lambda m: m["mixed"], timeout=deadline, what="the hubs chained")
    reports = listen(ears, evidence, label, deadline=deadline)
    for ear in ears:
        for other in ears:
            if other is ear:
                continue
            heard = reports[ear.name].tone(other.tone_hz)
            assert heard.present, (f"{ear.name} does not hear {other.name} ({other.tone_hz:g} Hz) in the meeting; "
                                   f"heard {reports[ear.name].present_frequencies}")
    return reports


def _left(lab, mid: str, kind: str, t: float):
    return lab.control.voiceapps.wait_roster(mid, lambda m: any(r["kind"] == kind and r["state"] == "disconnected"
                                                                and r["left"] for r in m["roster"]),
                                             timeout=t, what=f"the {kind} leg leaving")


def _no_longer_heard(ear, gone_hz: float, evidence, label, t):
    # the audio already on its way (jitter buffers, the bridge's own latency) is let through first
    report = listen([ear], evidence, label, deadline=t, tones=[gone_hz], settle_s=0.6)[ear.name]
    assert not report.tone(gone_hz).present, f"{ear.name} still hears {gone_hz:g} Hz after that party left"


def _ring_and_answer(device, t: float):
    calls = device[CallControl]
    incoming = calls.wait_for_incoming(timeout=t)
    calls.answer(incoming.id)
    return calls.wait_for_state(incoming.id, CONFIRMED, timeout=t)


@pytest.mark.feature("teams_meetings")
def test_dial_in_with_conference_id(device, lab, meeting, teams, evidence, sipgw_settings):
    """The device dials the access number, enters the conference id and #, joins; it and the organiser hear each
    other; the device hangs up and the organiser sees it leave (roster) and no longer hears it."""
    t = sipgw_settings.deadline(5)
    calls = device[CallControl]
    out = calls.dial(ACCESS_NUMBER, line=line_for(device))
    out = calls.wait_for_state(out.id, CONFIRMED, timeout=t)
    evidence.add_call(out)
    calls.send_dtmf(out.id, meeting["conference_id"] + "#")
    lab.control.voiceapps.wait_roster(meeting["id"], lambda m: any(r["kind"] == "dial_in" and r["joined"]
                                                          for r in m["in_meeting"]), timeout=t,
                                      what="the device joined by conference id")
    org = party_ear(teams, meeting["organiser"])
    _hears_everyone([device_ear(device, out.id), org], evidence, "in-meeting", t, lab, meeting["id"])
    calls.hangup(out.id)
    _left(lab, meeting["id"], "dial_in", t)
    _no_longer_heard(org, device_ear(device, out.id).tone_hz, evidence, "after-leave", t)


@pytest.mark.feature("teams_meetings")
def test_participant_dials_out_to_the_device(dial_out_representative, device, lab, meeting, teams, evidence,
                                            sipgw_settings):
    """The organiser dials out to the device's number from the meeting; the device answers and is in the meeting;
    the organiser leaves and the device's user sees it in the roster.

    Gateway-side variation: run once, on the run's representative device (see the module docstring)."""
    t = sipgw_settings.deadline(5)
    number = device.lines[line_for(device)].number
    lab.control.voiceapps.meeting_dial_out(meeting["id"], teams.identity, number)
    incoming = _ring_and_answer(device, t)
    evidence.add_call(incoming)
    lab.control.voiceapps.wait_roster(meeting["id"], lambda m: any(r["kind"] == "dial_out" and r["joined"]
                                                          for r in m["in_meeting"]), timeout=t,
                                      what="the dialled-out device in the meeting")
    _hears_everyone([device_ear(device, incoming.id), party_ear(teams, meeting["organiser"])], evidence,
                    "in-meeting", t, lab, meeting["id"])
    teams.hangup(meeting["organiser"])
    _left(lab, meeting["id"], "teams", t)
    device[CallControl].hangup(incoming.id)


@pytest.mark.feature("teams_meetings")
def test_request_to_join_rings_the_device(device, lab, meeting, teams, evidence, sipgw_settings):
    """Request to Join the device's user: the gateway forks to every endpoint of the user (its SIP devices), with
    the meeting's Subject; answering on the device joins the meeting."""
    t = sipgw_settings.deadline(5)
    lab.control.voiceapps.request_to_join(meeting["id"], teams.identity, meeting["user"])
    incoming = _ring_and_answer(device, t)
    evidence.add_call(incoming)
    rec = gateway_call(lab.control, incoming.sip_call_id, t)
    invites = [e for e in lab.control.trace(call=rec["id"]) if e["first_line"].startswith("INVITE ")]
    assert any("Request to join" in (header(e["message"], "Subject") or "") for e in invites), (
        "the INVITE towards the device carries no 'Request to join' Subject")
    regs = lab.control.registration(meeting["user"]).get("contacts") or []
    assert len(rec["b_call_ids"]) >= len(regs) >= 1, f"the request rang {rec['b_call_ids']}, bindings {regs}"
    lab.control.voiceapps.wait_roster(meeting["id"], lambda m: any(r["kind"] == "request_to_join" and r["joined"]
                                                          for r in m["in_meeting"]), timeout=t,
                                      what="the device joined by Request to Join")
    _hears_everyone([device_ear(device, incoming.id), party_ear(teams, meeting["organiser"])], evidence,
                    "in-meeting", t, lab, meeting["id"])
    device[CallControl].hangup(incoming.id)
    _left(lab, meeting["id"], "request_to_join", t)


@pytest.mark.feature("teams_meetings")
def test_guest_added_by_dial_out(gateway_side, device, lab, meeting, teams, pstn, evidence, sipgw_settings):
    """The device is in the meeting (Request to Join); the organiser adds a guest from outside the tenant by
    dial-out; all three hear each other; the guest leaves and the device no longer hears it.

    Gateway-side variation: run once, on the run's representative device (see the module docstring)."""
    t = sipgw_settings.deadline(5)
    api = lab.control.voiceapps
    api.request_to_join(meeting["id"], teams.identity, meeting["user"])
    incoming = _ring_and_answer(device, t)
    pstn.tone_hz = GUEST_TONE_HZ
    pstn.configure("auto")
    api.add_guest(meeting["id"], teams.identity, pstn.number)
    guest = pstn.wait_incoming(state="confirmed", timeout=t)
    evidence.add_call(incoming)
    evidence.add_call(guest)
    api.wait_roster(meeting["id"], lambda m: sum(1 for r in m["in_meeting"] if r["joined"]) >= 3, timeout=t,
                    what="three parties in the meeting")
    dev = device_ear(device, incoming.id)
    _hears_everyone([dev, party_ear(teams, meeting["organiser"]), party_ear(pstn, guest)], evidence,
                    "three-way", t, lab, meeting["id"])
    pstn.hangup(guest)
    _left(lab, meeting["id"], "guest", t)
    device[CallControl].hangup(incoming.id)
    hang_up_all(device)


@pytest.mark.sipgw_infrastructure
def test_mixer_spans_two_media_processes(lab, sipgw_settings):
    """Five parties (more than one media process holds): the organiser and four guests; every party hears every
    other one across the chain between the two conference hubs."""
    from test_suites._feature_helpers import Ear

    class _Evidence:  # listen() keeps recordings as evidence; here they go to a temporary directory
        def add_file(self, *a):
            pass

        def add_bytes(self, *a):
            pass

    control = lab.control
    control.reset()
    t = sipgw_settings.deadline(8)
    api = control.voiceapps
    api.put_meeting("big", "90210", "teams.only", [], subject="All hands")
    try:
        org = MediaParty(control.media, "teams", "teams.only", 2300.0, settings=sipgw_settings)
        org.configure("auto")
        api.join_meeting("big", "teams.only")
        ears = [Ear("organiser", 2300.0, party=org, call=org.wait_incoming(state="confirmed", timeout=t))]
        for i, hz in enumerate((580.0, 820.0, 1060.0, 1300.0)):
            guest = MediaParty(control.media, "pstn", f"+120655501{80 + i}", hz, settings=sipgw_settings)
            guest.configure("auto")
            api.add_guest("big", "teams.only", guest.identity)
            try:
                call = guest.wait_incoming(state="confirmed", timeout=t)
            except TimeoutError as exc:
                raise AssertionError(f"guest {i + 1} not in the meeting: {api.meeting('big')['roster']}; "
                                     f"its calls {control.media.calls(guest.identity)}") from exc
            ears.append(Ear(f"guest {i + 1}", hz, party=guest, call=call))
        m = api.wait_roster("big", lambda m: len(m["in_meeting"]) == 5 and len(m["hubs_used"]) == 2, timeout=t,
                            what="five parties on two hubs")
        assert len(m["hubs_used"]) == 2, m
        _hears_everyone(ears, _Evidence(), "five-way", t, lab, "big")
    finally:
        api.delete_meeting("big")
        control.reset()

