"""Calls, caller identity and inbound forking.

Seed, "Make calls" / "Receive calls": SIP device users call the PSTN, other SIP devices and Teams users, and
receive calls from them — only to users who have phone numbers. Inbound calls fork to the user's SIP devices
alongside the Teams clients.

Beyond the basic-call suite: a call to a Teams user and from the PSTN with audio both ways, hung up from each
side; the caller's number and display name as the callee sees them; a user without a number is refused with a
clear SIP response; and forking to the device, a second device of the same user (a desk phone of the lab) and
the user's Teams client: all ring, one answers, the others get CANCEL with ``Reason: SIP;cause=200;text="Call
completed elsewhere"`` (RFC 3326); busy everywhere gives the caller 486; nobody answering leaves the caller
hearing ringback (180) until it gives up, and the CANCEL reaches every branch.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Iterator

import pytest

from harness.protocols import CallControl, CallState, NotApplicable
from harness.pytest_plugin.outcomes import Blocked
from test_suites._feature_helpers import (
    CONFIRMED,
    ENDED,
    connect_to_party,
    device_ear,
    gateway_call,
    header,
    party_ear,
    receive_from_party,
    responses,
    two_way,
    wait_until,
)

NO_NUMBER_USER = ("no.number", "Robin No-Number")
#: The lab's second desk phone of a user: a Yealink T46S (supported firmware, no MAC in its User-Agent).
SECOND_PHONE_UA = "Yealink SIP-T46S 66.86.0.15"
COMPLETED_ELSEWHERE = "Call completed elsewhere"
_accounts = itertools.count(1)


def _two_way(device, call_id, party, party_call, evidence, label):
    return two_way([device_ear(device, call_id), party_ear(party, party_call)], evidence, label)


def _from_display(from_value: str | None) -> str | None:
    m = re.match(r'\s*"([^"]*)"', from_value or "")
    if m:
        return m.group(1)
    m = re.match(r"\s*([^<\"]+?)\s*<", from_value or "")
    return m.group(1) if m else None


def _caller_sent(device, call, lab, evidence) -> str:
    """The caller's number in the From of the INVITE the gateway sent the device (its trace), for a device whose
    API reports no caller (an Algo paging adapter: no display, a call status only)."""
    assert call.sip_call_id, f"{device.id} reports no caller and no Call-ID to find the INVITE it was sent"
    invite = next((e for e in lab.control.trace(call_id=call.sip_call_id)
                   if e["direction"] == "out" and e["first_line"].startswith("INVITE ")), None)
    assert invite is not None, f"no INVITE towards {device.id} on {call.sip_call_id} in the gateway's trace"
    sent = header(invite["message"], "From") or ""
    evidence.note(f"{device.id}'s API reports no caller: the INVITE it was sent is from {sent!r}")
    m = re.search(r"<?sips?:([^@;>]+)", sent)
    return m.group(1) if m else ""


def _digits(value: str | None) -> str:
    return re.sub(r"\D", "", value or "")


# --- calls and identity ----------------------------------------------------------------------------------


@pytest.mark.feature("make_calls")
def test_call_a_teams_user(device, teams, lab, evidence, sipgw_settings):
    """The device calls a Teams user: the Teams client sees the device's number and name; audio both ways; the
    Teams side hangs up and the device sees the call end."""
    t = sipgw_settings.deadline(5)
    out, far = connect_to_party(device, teams, t, evidence=evidence)
    assert _digits(far["remote"]) == _digits(device.number), (
        f"the Teams client sees the call from {far['remote']!r}, not {device.id}'s number {device.number}")
    rec = gateway_call(lab.control, far["sip_call_id"], t)
    invite = next((e for e in lab.control.trace(call_id=far["sip_call_id"])
                   if e["first_line"].startswith("INVITE ")), None)
    assert invite is not None, f"no INVITE of call {rec['id']} towards the Teams client in the gateway's trace"
    shown = _from_display(header(invite["message"], "From"))
    assert shown == device.lines[0].name, f"the Teams client is shown {shown!r}, not {device.lines[0].name!r}"
    audio = _two_way(device, out.id, teams, far, evidence, "two_way")
    assert audio.passed, audio.reason
    teams.hangup(far)
    ended = device[CallControl].wait_for_state(out.id, ENDED, timeout=t)
    assert ended.state is ENDED


@pytest.mark.feature("receive_calls")
def test_receive_a_call_from_the_pstn(device, pstn, lab, evidence, sipgw_settings):
    """A PSTN number calls the device: the device shows the caller's number; audio both ways; the caller hangs
    up and the device sees the call end."""
    t = sipgw_settings.deadline(5)
    incoming, origin = receive_from_party(device, pstn, t, evidence=evidence)
    shown = incoming.remote or _caller_sent(device, incoming, lab, evidence)
    assert _digits(shown) == _digits(pstn.number), f"{device.id} shows the caller as {shown!r}, not {pstn.number}"
    audio = _two_way(device, incoming.id, pstn, origin, evidence, "two_way")
    assert audio.passed, audio.reason
    pstn.hangup(origin)
    ended = device[CallControl].wait_for_state(incoming.id, ENDED, timeout=t)
    assert ended.state is ENDED


@pytest.mark.feature("receive_calls")
def test_caller_identity_of_a_teams_user(device, teams, lab, evidence, sipgw_settings):
    """A Teams user calls: the device sees the Teams user's number and display name; the device hangs up."""
    t = sipgw_settings.deadline(5)
    calls = device[CallControl]
    origin = teams.call(device.number)
    incoming = calls.wait_for_incoming(timeout=t)
    evidence.add_call(incoming)
    evidence.add_call(origin)
    user = lab.control.user(teams.identity)
    calls.answer(incoming.id)
    incoming = calls.wait_for_state(incoming.id, CONFIRMED, timeout=t)
    teams.wait_state(origin, "confirmed", timeout=t)
    number = incoming.remote or _caller_sent(device, incoming, lab, evidence)
    assert _digits(number) == _digits(user["number"]), (
        f"{device.id} shows the caller as {number!r}, not {user['number']}")
    # The name: the From the device received (its driver's read-back when it reports one, else the INVITE the
    # gateway sent the device, from its trace: vendor APIs that show no caller name).
    reported = incoming.extra.get("from")
    if reported is None:
        assert incoming.sip_call_id, f"{device.id}: no Call-ID of the answered call to find its INVITE by"
        invite = next((e for e in lab.control.trace(call_id=incoming.sip_call_id)
                       if e["direction"] == "out" and e["first_line"].startswith("INVITE ")), None)
        assert invite is not None, f"no INVITE towards {device.id} on {incoming.sip_call_id} in the gateway's trace"
        reported = header(invite["message"], "From")
        evidence.note(f"{device.id}'s API shows no caller name: the From it was sent is {reported!r}")
    shown = _from_display(str(reported or ""))
    assert shown == user["name"], f"{device.id} is shown the caller name {shown!r}, not {user['name']!r}"
    calls.hangup(incoming.id)
    teams.wait_state(origin, "disconnected", timeout=t)


@pytest.mark.feature("make_calls")
def test_call_to_a_user_without_a_number_is_refused(device, lab, evidence, sipgw_settings):
    """Calls only to users with phone numbers: dialling a user who has none ends with 404 and the reason."""
    t = sipgw_settings.deadline(5)
    control = lab.control
    if not any(u["username"] == NO_NUMBER_USER[0] for u in control.users()):
        with contextlib.suppress(Exception):  # another worker's lab is separate; a race here is harmless
            control.create_user(NO_NUMBER_USER[0], NO_NUMBER_USER[1])
    calls = device[CallControl]
    call = calls.dial(NO_NUMBER_USER[0])
    ended = calls.wait_for_state(call.id, ENDED, timeout=t)
    evidence.add_call(ended)
    assert ended.status_code == 404, f"{device.id}: the call to a user without a number ended {ended.status_code}"
    final = responses(control.trace(call_id=ended.sip_call_id), 404)
    warning = header(final[-1]["message"], "Warning") if final else None
    assert warning and "SGW-ROUTE-NO-NUMBER" in warning, f"the 404 carries no clear reason: {warning!r}"


# --- forking ----------------------------------------------------------------------------------------------


class SecondPhone:
    """A second desk phone of the same user (a pjsua2 worker of the lab, not the device under test)."""

    def __init__(self, worker, gateway) -> None:
        self.worker = worker
        self.gateway = gateway
        self.account: str | None = None

    @contextlib.contextmanager
    def registered_as(self, line, t: float) -> Iterator[SecondPhone]:
        acc = f"p{next(_accounts)}"
        host, port = self.gateway.host, self.gateway.port("udp")
        mark = self.worker.mark()
        self.worker.add_account(acc, f"sip:{line.username}@{self.gateway.domain}", registrar=f"sip:{host}:{port}",
                                username=line.username, password=line.password, display_name=line.name)
        self.worker.wait_event("reg_state", since=mark, account=acc, code=200, timeout=t)
        self.account = acc
        try:
            yield self
        finally:
            self.worker.auto_answer("never")
            with contextlib.suppress(Exception):
                for c in self.worker.list_calls():
                    with contextlib.suppress(Exception):
                        self.worker.hangup(int(c["call"]))
            with contextlib.suppress(Exception):
                self.worker.remove_account(acc)
            self.account = None


@pytest.fixture(scope="module")
def second_phone(lab) -> Iterator[SecondPhone]:
    from sipua import UAWorker, WorkerConfig

    target = getattr(lab, "target", None)
    if target is None:
        raise Blocked("this lab gives no gateway address for a second phone")
    work = lab.data_dir / "second-phone"
    work.mkdir(parents=True, exist_ok=True)
    worker = UAWorker.spawn(WorkerConfig(name="second-phone", user_agent=SECOND_PHONE_UA,
                                         log_path=str(work / "second-phone.log")), allocator=lab.allocator)
    try:
        worker.auto_answer("never")
        yield SecondPhone(worker, target)
    finally:
        worker.close()


def _ring_second_phone(phone, ring, device, incoming, t: float) -> None:
    """The second phone rings (180). When its branch is already gone because the device answered by itself (an
    auto-answering speaker or paging adapter, read back as connected without being answered), the call cannot be
    left ringing at the device: not applicable, with what was observed."""
    try:
        phone.worker.answer(int(ring.data["call"]), 180)
    except Exception:
        try:  # why did the branch go? wait for the device's read-back to settle
            seen = device[CallControl].wait_for_state(incoming.id, {CONFIRMED, ENDED}, timeout=t)
        except Exception:
            seen = device[CallControl].call(incoming.id)
        if seen.state is CONFIRMED or seen.answered is not None:
            with contextlib.suppress(Exception):  # leave the device idle for the next test (read back ended)
                device[CallControl].hangup(incoming.id)
            raise NotApplicable(f"{device.id} answers calls by itself (its call was read back connected without "
                                "being answered): it cannot be left ringing while another endpoint answers",
                                device_id=device.id) from None
        raise


@contextlib.contextmanager
def teams_client_of(lab, username: str, answer: str) -> Iterator[None]:
    """The user also has a Teams client (a media-node party) answering as ``answer``, for one test."""
    control = lab.control
    before = control.user(username)["teams_client"]
    control.update_user(username, teams_client=True)
    control.media.set_party("teams", username, answer=answer, tone_hz=2300.0)
    try:
        yield
    finally:
        control.update_user(username, teams_client=before)


@contextlib.contextmanager
def without_voicemail(lab, username: str) -> Iterator[None]:
    """The user has no voicemail for one test, so busy and no-answer outcomes reach the caller itself."""
    control = lab.control
    before = control.user(username)["voicemail"]
    control.update_user(username, voicemail=False)
    try:
        yield
    finally:
        control.update_user(username, voicemail=before)


def _cancels(control, rec_id: str) -> list[dict]:
    return [e for e in control.trace(call=rec_id) if e["first_line"].startswith("CANCEL ") and e["direction"] == "out"]


@pytest.mark.feature("receive_calls")
def test_inbound_call_forks_and_completes_elsewhere(device, pstn, lab, second_phone, evidence, sipgw_settings):
    """Device, second phone and Teams client all ring; the device answers; the others get CANCEL with
    "Call completed elsewhere" and stop ringing."""
    t = sipgw_settings.deadline(5)
    control, calls = lab.control, device[CallControl]
    line = device.lines[0]
    with teams_client_of(lab, line.username, "manual"), second_phone.registered_as(line, t) as phone:
        mark = phone.worker.mark()
        origin = pstn.call(device.number)
        incoming = calls.wait_for_incoming(timeout=t)
        ring = phone.worker.wait_event("incoming_call", since=mark, timeout=t)
        _ring_second_phone(phone, ring, device, incoming, t)
        teams_leg = control.media.wait_call(line.username, state="early", timeout=t)
        early = pstn.wait_state(origin, "early", timeout=t)
        evidence.add_call(incoming)
        evidence.add_call(early)
        evidence.add_call(teams_leg)

        calls.answer(incoming.id)
        calls.wait_for_state(incoming.id, CONFIRMED, timeout=t)
        pstn.wait_state(origin, "confirmed", timeout=t)
        phone.worker.wait_event("call_state", since=mark, call=ring.data["call"], state="DISCONNECTED", timeout=t)
        wait_until(lambda: control.media.call(teams_leg["id"])["state"] == "disconnected", timeout=t,
                   what="the Teams client's ringing leg to end")
        rec = gateway_call(control, early["sip_call_id"], t)
        assert len(rec["b_call_ids"]) == 3, f"the call forked to {len(rec['b_call_ids'])} endpoints, expected 3"
        assert rec["answered_by"] and "device" in rec["answered_by"], f"answered by {rec['answered_by']}"
        cancels = _cancels(control, rec["id"])
        reasons = [header(c["message"], "Reason") or "" for c in cancels]
        assert len(cancels) == 2 and all(COMPLETED_ELSEWHERE in r for r in reasons), (
            f"the branches that did not answer got {len(cancels)} CANCEL(s) with Reason {reasons}")
        calls.hangup(incoming.id)
        pstn.wait_state(origin, "disconnected", timeout=t)


@pytest.mark.feature("receive_calls")
def test_busy_everywhere_gives_busy(device, pstn, lab, second_phone, evidence, sipgw_settings):
    """Device, second phone and Teams client all answer busy: the caller gets 486 Busy Here."""
    t = sipgw_settings.deadline(5)
    control, calls = lab.control, device[CallControl]
    line = device.lines[0]
    with without_voicemail(lab, line.username), teams_client_of(lab, line.username, "busy"), \
            second_phone.registered_as(line, t) as phone:
        phone.worker.auto_answer("immediate", 486, account=phone.account)
        origin = pstn.call(device.number)
        incoming = calls.wait_for_incoming(timeout=t)
        try:
            calls.reject(incoming.id, code=486)
        except NotApplicable:  # e.g. a device that answers by itself: leave it idle (read back) for the next test
            with contextlib.suppress(Exception):
                pstn.hangup(origin)
                calls.wait_for_state(incoming.id, ENDED, timeout=t)
            raise
        done = wait_until(lambda: (c := pstn.refresh(origin))["state"] == "disconnected" and c, timeout=t,
                          what="the caller's call to end")
        evidence.add_call(incoming)
        evidence.add_call(done)
        assert done["status_code"] == 486, f"every endpoint was busy; the caller got {done['status_code']}"
        rec = gateway_call(control, done["sip_call_id"], t)
        assert len(rec["b_call_ids"]) == 3, f"the call forked to {len(rec['b_call_ids'])} endpoints, expected 3"


@pytest.mark.feature("receive_calls")
def test_no_answer_leaves_the_caller_ringing_until_it_gives_up(device, pstn, lab, second_phone, evidence,
                                                               sipgw_settings):
    """Nobody answers: the caller hears ringback (180 relayed); when it gives up, every branch gets CANCEL."""
    t = sipgw_settings.deadline(5)
    control, calls = lab.control, device[CallControl]
    line = device.lines[0]
    # No voicemail pickup: the outcome the caller hears is ringing until it gives up.
    with without_voicemail(lab, line.username), teams_client_of(lab, line.username, "no_answer"), \
            second_phone.registered_as(line, t) as phone:
        mark = phone.worker.mark()
        origin = pstn.call(device.number)
        incoming = calls.wait_for_incoming(timeout=t)
        ring = phone.worker.wait_event("incoming_call", since=mark, timeout=t)
        _ring_second_phone(phone, ring, device, incoming, t)
        early = pstn.wait_state(origin, "early", timeout=t)
        evidence.add_call(incoming)
        evidence.add_call(early)
        rec = gateway_call(control, early["sip_call_id"], t)
        ringing = responses(control.trace(call_id=early["sip_call_id"]), 180)
        assert ringing, "the caller got no 180 Ringing while every endpoint rang"
        pstn.hangup(early)
        ended = calls.wait_for_state(incoming.id, ENDED, timeout=t)
        assert ended.state is ENDED and ended.answered is None
        phone.worker.wait_event("call_state", since=mark, call=ring.data["call"], state="DISCONNECTED",
                                timeout=t)
        cancels = _cancels(control, rec["id"])
        assert len(cancels) == 3, f"the caller gave up; {len(cancels)} of 3 branches got CANCEL"
        assert calls.call(incoming.id).state is CallState.DISCONNECTED
