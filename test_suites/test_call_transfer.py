"""Call transfer, blind and consultative.

Seed, "Call transfer": SIP device users can transfer calls, blind and consultative (Tango Extend excepted
where the mobile dialler menu presents it; speakers, intercoms and paging adapters have no transfer control —
those devices report not applicable with the catalogue's reason).

The device under test is the transferor. Blind: it holds the call and sends REFER (RFC 3515); the transferee
calls the target through the gateway; the NOTIFY ``message/sipfrag`` progress the device receives ends with
``200``; the device's call ends and the transferee and the target hear each other. Consultative: the device
holds the first call, calls the target, then transfers with ``Replaces`` (RFC 3891): the transferee ends up
connected to the target and the consultation call is replaced. Transferees and targets are another device,
a PSTN party and a Teams user. Failure path: the target is busy, the sipfrag says ``486`` and the device
resumes the call it held, with audio both ways again.

Every verdict comes from what was observed: the device's transfer events (the sipfrag it received), call states
read back at each party, tones detected in each party's recording.
"""

from __future__ import annotations

import io
import re
import tempfile
import wave
from pathlib import Path

import pytest

from harness.media import DetectorConfig, MediaOutcome, MediaVerdict, ToneDetector
from harness.protocols import CallControl, CallState, EventKind
from test_suites._feature_helpers import drain_stale

CONFIRMED = CallState.CONFIRMED
ENDED = CallState.DISCONNECTED
LISTEN_S = 0.9


def _seconds(data: bytes) -> float:
    try:
        with wave.open(io.BytesIO(data)) as w:
            return w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError):
        return 0.0


def wait_transfer_result(calls: CallControl, call_id: str, after_seq: int, timeout: float, *, lab=None) -> int:
    """The status in the final NOTIFY sipfrag of the transfer the device started on ``call_id`` (RFC 3515 §2.4.5):
    the device's own transfer event when its driver reports one, else the NOTIFY the gateway sent the device on
    that call (its trace), for drivers whose vendor API does not report transfer progress."""
    from harness.protocols import OperationTimeout

    seq = after_seq
    try:
        while True:
            ev = calls.wait_for_event(EventKind.TRANSFER, call_id=call_id, after_seq=seq,
                                      timeout=timeout if lab is None else min(timeout, 2.0))
            if ev.detail.get("final"):
                return int(ev.detail.get("code") or 0)
            seq = ev.seq
    except OperationTimeout:
        if lab is None:
            raise
    sip_call_id = calls.call(call_id).sip_call_id
    assert sip_call_id, f"call {call_id} has no SIP Call-ID to find its transfer NOTIFYs in the trace"
    from harness.pytest_plugin.fixtures import wait_until

    def final() -> int | None:
        for e in lab.control.trace(call_id=sip_call_id):
            msg = e["message"]
            if e["direction"] == "out" and msg.startswith("NOTIFY ") and "terminated" in msg.lower() \
                    and (m := re.search(r"\r\n\r\nSIP/2\.0 (\d{3})", msg)):
                return int(m.group(1))
        return None

    return wait_until(final, timeout=timeout, what=f"the final NOTIFY sipfrag on {sip_call_id} in the trace")


def parties_hear_each_other(evidence, a, a_call: dict, b, b_call: dict, sipgw_settings) -> MediaVerdict:
    """Two media-node parties on one call: each one's recording must hold the other's tone (after both
    recorded ``LISTEN_S`` more from now)."""
    from harness.pytest_plugin.fixtures import wait_until

    start = {p.kind: _seconds(p.wait_recording(c)) for p, c in ((a, a_call), (b, b_call))}

    def recorded() -> dict | None:
        out = {}
        for p, c in ((a, a_call), (b, b_call)):
            data = p.recording(c)
            if _seconds(data) < start[p.kind] + LISTEN_S:
                return None
            out[p.kind] = data
        return out

    try:
        wavs = wait_until(recorded, timeout=sipgw_settings.deadline(LISTEN_S + 5), what="both parties' recordings")
    except TimeoutError as exc:
        now = {p.kind: _seconds(p.recording(c)) for p, c in ((a, a_call), (b, b_call))}
        raise TimeoutError(f"{exc}: recorded {start} s before, {now} s now; calls "
                           f"{[p.refresh(c) for p, c in ((a, a_call), (b, b_call))]}") from None
    detector = ToneDetector(DetectorConfig(settle_s=0.0))
    figures, problems = {}, []
    with tempfile.TemporaryDirectory(prefix="sipgw-xfer-") as tmp:
        for listener, speaker in ((a, b), (b, a)):
            path = Path(tmp) / f"{listener.kind}.wav"
            path.write_bytes(wavs[listener.kind])
            evidence.add_bytes(f"{listener.kind}-heard", f"{listener.kind}-heard.wav", wavs[listener.kind])
            from harness.media import read_wav

            audio = read_wav(path)
            end = len(audio.samples) / audio.sample_rate
            rep = detector.analyse_audio(audio, [a.tone_hz, b.tone_hz], window=(start[listener.kind], end))
            t = rep.tone(speaker.tone_hz)
            figures[f"{listener.kind}_hears_{speaker.kind}"] = t.to_dict()
            if not t.present:
                problems.append(f"{listener.kind} {listener.identity} did not hear {speaker.kind}: {t.describe()}")
    verdict = MediaVerdict("two_way_parties", MediaOutcome.NO_AUDIO if problems else MediaOutcome.PASS,
                           "; ".join(problems) or f"{a.kind} and {b.kind} hear each other", figures)
    evidence.add_media("transferee-target", verdict)
    return verdict


def device_and_party_hear_each_other(evidence, device, call_id: str, party, party_call: dict, sipgw_settings,
                                     listen_s: float = 1.3) -> MediaVerdict:
    """After a media change (resume): the device records ``listen_s`` and must hear the party's tone; the party's
    recording over the same time must hold the device's tone."""
    from harness.media import read_wav
    from harness.protocols import AudioProbe

    probe = device[AudioProbe]
    start = _seconds(party.wait_recording(party_call))
    probe.play_tone(call_id)
    dev_wav = probe.record(call_id, listen_s)
    data = party.recording(party_call)
    evidence.add_file(f"{device.id}-heard", dev_wav)
    evidence.add_bytes(f"{party.kind}-heard", f"{party.kind}-heard.wav", data)
    detector = ToneDetector(DetectorConfig(settle_s=0.3))
    tones = [probe.tone_hz, party.tone_hz]
    heard = detector.analyse_wav(dev_wav, tones).tone(party.tone_hz)
    with tempfile.TemporaryDirectory(prefix="sipgw-xfer-") as tmp:
        path = Path(tmp) / "party.wav"
        path.write_bytes(data)
        audio = read_wav(path)
    end = len(audio.samples) / audio.sample_rate
    back = detector.analyse_audio(audio, tones, window=(min(start, end), end)).tone(probe.tone_hz)
    problems = [f"{who} did not hear {what}: {t.describe()}" for who, what, t in
                ((device.id, f"{party.kind} {party.identity}", heard), (f"{party.kind} {party.identity}", device.id,
                                                                        back)) if not t.present]
    verdict = MediaVerdict("two_way_after_resume", MediaOutcome.NO_AUDIO if problems else MediaOutcome.PASS,
                           "; ".join(problems) or "both sides hear each other again",
                           {"device_hears_party": heard.to_dict(), "party_hears_device": back.to_dict()})
    evidence.add_media("after-resume", verdict)
    return verdict


def _newest_call(party, *, other_than: set[str], state: str, sipgw_settings) -> dict:
    from harness.pytest_plugin.fixtures import wait_until

    def found() -> dict | None:
        calls = [c for c in party.media.calls(party.identity) if c["id"] not in other_than and c["state"] == state]
        return calls[-1] if calls else None

    return wait_until(found, timeout=sipgw_settings.deadline(5), what=f"a new {state} call of {party.kind} "
                                                                       f"{party.identity}")


@pytest.fixture(autouse=True)
def _no_stale_calls(device):
    drain_stale(device)


def _answer(device, sipgw_settings):
    t = sipgw_settings.deadline(5)
    calls = device[CallControl]
    incoming = calls.wait_for_incoming(timeout=t)
    calls.answer(incoming.id)
    return calls.wait_for_state(incoming.id, CONFIRMED, timeout=t)


@pytest.mark.feature("call_transfer")
def test_blind_transfer_of_a_pstn_caller_to_a_teams_user_right_after_hold(device, pstn, teams, evidence, lab,
                                                                          sipgw_settings):
    """A PSTN party calls the device; the device holds and at once transfers blind to a Teams user; the Teams
    user answers; the PSTN party and the Teams user hear each other; the device's call ends."""
    t = sipgw_settings.deadline(5)
    calls = device[CallControl]
    origin = pstn.call(device.number)
    call = _answer(device, sipgw_settings)
    evidence.add_call(call)
    calls.hold(call.id)
    mark = calls.last_seq()
    calls.blind_transfer(call.id, teams.number)
    result = wait_transfer_result(calls, call.id, mark, t, lab=lab)
    assert result == 200, f"the transfer's final sipfrag was {result}"
    at_target = teams.wait_incoming(state="confirmed", timeout=t)
    moved = _newest_call(pstn, other_than={origin["id"]}, state="confirmed", sipgw_settings=sipgw_settings)
    evidence.add_call(at_target)
    evidence.add_call(moved)
    calls.wait_for_state(call.id, ENDED, timeout=t)

    audio = parties_hear_each_other(evidence, pstn, moved, teams, at_target, sipgw_settings)
    assert audio.passed, audio.reason
    pstn.hangup(moved)
    teams.wait_state(at_target, "disconnected", timeout=t)


@pytest.mark.feature("call_transfer")
def test_blind_transfer_of_a_teams_caller_to_another_device(device, other_device, teams, two_way_audio, evidence,
                                                            lab, sipgw_settings):
    """A Teams user calls the device; the device transfers blind to another SIP device, which answers; the Teams
    user and that device hear each other."""
    t = sipgw_settings.deadline(5)
    calls, target = device[CallControl], other_device[CallControl]
    drain_stale(other_device)
    origin = teams.call(device.number)
    call = _answer(device, sipgw_settings)
    mark = calls.last_seq()
    calls.blind_transfer(call.id, other_device.number)
    incoming = target.wait_for_incoming(timeout=t)
    target.answer(incoming.id)
    incoming = target.wait_for_state(incoming.id, CONFIRMED, timeout=t)
    result = wait_transfer_result(calls, call.id, mark, t, lab=lab)
    assert result == 200, f"the transfer's final sipfrag was {result}"
    moved = _newest_call(teams, other_than={origin["id"]}, state="confirmed", sipgw_settings=sipgw_settings)
    evidence.add_call(incoming)
    evidence.add_call(moved)
    calls.wait_for_state(call.id, ENDED, timeout=t)

    audio = two_way_audio.with_party(other_device, incoming.id, teams, moved)
    assert audio.passed, audio.reason
    target.hangup(incoming.id)


@pytest.mark.feature("call_transfer")
def test_consultative_transfer_of_another_device_to_a_pstn_party(device, other_device, pstn, two_way_audio,
                                                                 evidence, lab, sipgw_settings):
    """Another device calls; the device holds it, calls a PSTN party, then transfers with Replaces: the other
    device and the PSTN party are connected and hear each other; both of the device's calls end."""
    t = sipgw_settings.deadline(5)
    calls, transferee = device[CallControl], other_device[CallControl]
    drain_stale(other_device)
    first_out = transferee.dial(device.number)
    first = _answer(device, sipgw_settings)
    transferee.wait_for_state(first_out.id, CONFIRMED, timeout=t)
    calls.hold(first.id)
    consult = calls.dial(pstn.number)
    far = pstn.wait_incoming(state="confirmed", timeout=t)
    consult = calls.wait_for_state(consult.id, CONFIRMED, timeout=t)
    mark = calls.last_seq()
    calls.consultative_transfer(first.id, consult.id)
    result = wait_transfer_result(calls, first.id, mark, t, lab=lab)
    assert result == 200, f"the transfer's final sipfrag was {result}"
    replaced = _newest_call(pstn, other_than={far["id"]}, state="confirmed", sipgw_settings=sipgw_settings)
    pstn.wait_state(far, "disconnected", timeout=t)  # the consultation call was replaced
    calls.wait_for_state(first.id, ENDED, timeout=t)
    calls.wait_for_state(consult.id, ENDED, timeout=t)
    new_leg = next((c for c in transferee.calls() if c.id != first_out.id and c.state is CONFIRMED), None)
    assert new_leg is not None, f"{other_device.id} has no confirmed call to the target: {transferee.calls()}"
    evidence.add_call(new_leg)
    evidence.add_call(replaced)

    audio = two_way_audio.with_party(other_device, new_leg.id, pstn, replaced)
    assert audio.passed, audio.reason
    transferee.hangup(new_leg.id)


@pytest.mark.feature("call_transfer")
def test_blind_transfer_to_a_busy_target_gives_the_held_call_back(device, pstn, teams, evidence, lab,
                                                                  sipgw_settings):
    """A Teams user calls; the device transfers to a busy PSTN number: the sipfrag says 486, the device still has
    the held call, resumes it and audio flows both ways again."""
    t = sipgw_settings.deadline(5)
    calls = device[CallControl]
    pstn.configure("busy")  # a PSTN number has no voicemail to take the call instead
    origin = teams.call(device.number)
    call = _answer(device, sipgw_settings)
    calls.hold(call.id)
    mark = calls.last_seq()
    calls.blind_transfer(call.id, pstn.number)
    result = wait_transfer_result(calls, call.id, mark, t, lab=lab)
    assert result == 486, f"expected a 486 sipfrag from the busy target, got {result}"
    still = calls.call(call.id)
    assert still.state is CONFIRMED, f"{device.id} lost the call it held: {still.state}"
    calls.resume(call.id)
    evidence.add_call(calls.call(call.id))
    from harness.pytest_plugin.fixtures import wait_until

    far = wait_until(lambda: (c := teams.refresh(origin))["media"].get("direction") == "sendrecv" and c,
                     timeout=t, what=f"the Teams user's call {origin['id']} resumed (sendrecv)")
    assert far["state"] == "confirmed", f"the Teams user's call is {far['state']}"

    audio = device_and_party_hear_each_other(evidence, device, call.id, teams, far, sipgw_settings)
    assert audio.passed, audio.reason
    teams.hangup(far)
