"""Voicemail and message-waiting indicator.

Seed, "Voicemail": SIP device users can retrieve voicemail (``*99*``, or the message key). "Message waiting
indicator": the device's lamp shows when new voicemail is waiting.

A caller who does not get through — the device user is busy, or does not answer in time — leaves a message on
the gateway's voicemail (a party of its media node that records what it hears). The lamp goes on at the
device (its message-waiting state read back: the RFC 3842 NOTIFY it received), the device dials ``*99*`` and
hears the message (the caller's tone, detected in what the device recorded), and the lamp goes off once
every message is heard. Every verdict comes from what was observed: SIP responses, the message-summary the
device received, the box as the gateway reports it, tones detected.
"""

from __future__ import annotations

import io
import wave

import pytest

from harness.media import DetectorConfig, MediaOutcome, MediaVerdict, ToneDetector
from harness.protocols import AudioProbe, CallControl, CallState, MessageWaiting
from test_suites._feature_helpers import drain_stale

CONFIRMED = CallState.CONFIRMED
ENDED = CallState.DISCONNECTED
#: Seconds a test's unanswered call rings before the gateway sends it to voicemail.
NO_ANSWER_S = 1.0
#: Seconds of message the caller leaves (its tone, as recorded by the voicemail party).
MESSAGE_S = 0.9
LISTEN_S = 1.0


def _seconds(wav_bytes: bytes) -> float:
    try:
        with wave.open(io.BytesIO(wav_bytes)) as w:
            return w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError):
        return 0.0


def heard_tone(evidence, wav, hz: float, *, who: str, what: str, others: tuple[float, ...] = ()) -> MediaVerdict:
    """Did ``who`` hear ``hz`` in the recording ``wav``? A MediaVerdict with the detector's figures."""
    report = ToneDetector(DetectorConfig(settle_s=0.2)).analyse_wav(wav, [hz, *others])
    t = report.tone(hz)
    outcome = MediaOutcome.PASS if t.present else MediaOutcome.NO_AUDIO
    reason = f"{who} heard {what}: {t.describe()}" if t.present else f"{who} did not hear {what}: {t.describe()}"
    verdict = MediaVerdict(f"hear_{int(hz)}hz", outcome, reason, {"tone": t.to_dict(),
                                                                  "analysed_s": report.analysed_s})
    evidence.add_media(f"heard {what}", verdict)
    return verdict


@pytest.fixture(autouse=True)
def _no_stale_calls(device):
    drain_stale(device)


@pytest.fixture
def box(lab, device):
    """The device user's voicemail box, emptied, with a short no-answer time; emptied again afterwards."""
    features = lab.control.features
    username = device.lines[0].username
    before = features.clear_voicemail(username)["no_answer_s"]
    features.set_voicemail(username, no_answer_s=NO_ANSWER_S)
    yield username
    features.clear_voicemail(username)
    features.set_voicemail(username, no_answer_s=before)


def _leave_message(lab, username: str, sipgw_settings) -> dict:
    """Wait until the voicemail party answered the caller and recorded ``MESSAGE_S`` of it (observed)."""
    media = lab.control.media
    vm = media.wait_call(username, state="confirmed", timeout=sipgw_settings.deadline(NO_ANSWER_S + 5))
    assert vm["party"]["kind"] == "voicemail", f"the call was answered by {vm['party']}, not voicemail"

    def long_enough() -> dict | None:
        try:
            return vm if _seconds(media.recording(vm["id"])) >= MESSAGE_S else None
        except Exception as exc:  # 404 until the recorder is attached
            if getattr(exc, "code", None) == "no_recording":
                return None
            raise

    from harness.pytest_plugin.fixtures import wait_until

    return wait_until(long_enough, timeout=sipgw_settings.deadline(MESSAGE_S + 5),
                      what=f"{MESSAGE_S} s of message recorded by the voicemail of {username}")


def _retrieve(device, evidence, sipgw_settings, tone_hz: float) -> None:
    """The device dials *99* and must hear the caller's tone (the message); it hangs up."""
    t = sipgw_settings.deadline(5)
    calls = device[CallControl]
    out = calls.dial("*99*")
    out = calls.wait_for_state(out.id, CONFIRMED, timeout=t)
    evidence.add_call(out)
    wav = device[AudioProbe].record(out.id, LISTEN_S)
    evidence.add_file(f"{device.id}-voicemail", wav)
    verdict = heard_tone(evidence, wav, tone_hz, who=device.id, what=f"the message ({tone_hz:g} Hz)")
    calls.hangup(out.id)
    assert verdict.passed, verdict.reason


@pytest.mark.feature("voicemail")
def test_busy_device_pstn_caller_leaves_a_message_heard_with_star99(device, pstn, box, lab, evidence,
                                                                    sipgw_settings):
    """The device rejects a PSTN call as busy; the caller leaves a message; *99* plays it back; it is heard."""
    t = sipgw_settings.deadline(5)
    calls = device[CallControl]
    origin = pstn.call(device.number)
    incoming = calls.wait_for_incoming(timeout=t)
    calls.reject(incoming.id, code=486)
    _leave_message(lab, box, sipgw_settings)
    pstn.hangup(origin)
    stored = lab.control.features.wait_voicemail(box, new=1, timeout=t)
    assert stored["messages"][0]["duration_s"] >= MESSAGE_S - 0.3, stored

    _retrieve(device, evidence, sipgw_settings, pstn.tone_hz)
    after = lab.control.features.wait_voicemail(box, new=0, timeout=t)
    assert after["old"] == 1, f"the heard message should be kept as old: {after}"


@pytest.mark.feature("message_waiting")
def test_lamp_on_for_a_message_from_a_device_and_off_once_heard(device, other_device, box, lab, evidence,
                                                                sipgw_settings):
    """Another device calls; nobody answers; the caller leaves a message: the lamp goes on (read back from the
    device), stays on across a registration refresh, and goes off once the message is heard (marked heard in the
    box, as *99* does — retrieval itself is the voicemail test). The state sent again to a rebooted device (new
    registration) and across a gateway restart is tested in tests/gateway/services/test_{mwi,voicemail}.py."""
    t = sipgw_settings.deadline(5)
    calls, caller = device[CallControl], other_device[CallControl]
    lamp = device[MessageWaiting]
    drain_stale(other_device)
    out = caller.dial(device.number)
    incoming = calls.wait_for_incoming(timeout=t)  # rings, unanswered
    _leave_message(lab, box, sipgw_settings)
    caller.hangup(out.id)
    calls.wait_for_state(incoming.id, ENDED, timeout=t)

    on = lamp.wait_for_mwi(True, timeout=t)
    if on.new or on.old:
        assert on.new == 1, f"{device.id} shows {on.new} new messages, expected 1 (body {on.raw!r})"
    else:  # a lamp-only read-back (Cisco Message_Waiting_<n>_): the count is the one the gateway sent the device
        sent = [n["body"] for n in lab.control.features.mwi(box)["notifies"]]
        assert sent and "Voice-Message: 1/" in sent[-1].replace("\r\n", "\n"), (
            f"{device.id}'s lamp is on, but the last message-summary the gateway sent says {sent[-1:]!r}, not 1 new")
        evidence.note(f"{device.id} reads back the lamp only ({on.raw!r}); the gateway sent {sent[-1]!r}")
    evidence.note(f"message-waiting on: {on.raw!r}")

    calls.register(0, timeout=t)  # a registration refresh: the lamp stays as it is
    assert lamp.mwi().waiting, f"{device.id} lost its lamp after registering again"

    box_now = lab.control.features.voicemail(box)
    assert len(box_now["messages"]) == 1, box_now
    lab.control.features.mark_heard(box, box_now["messages"][0]["id"])
    off = lamp.wait_for_mwi(False, timeout=t)
    assert off.new == 0, f"{device.id} still shows {off.new} new messages (body {off.raw!r})"
