"""DTMF to an IVR.

Seed, "Dual-tone multi-frequency (DTMF)": SIP device users can send DTMF digits to an interactive voice
response (IVR) system.

The IVR is a party of the gateway's media node at a tenant number (``gateway.media_node.ivr``). The device calls
it and sends every digit 0-9 * # in its own method (RFC 4733 events in RTP, or SIP INFO
``application/dtmf-relay`` relayed by the gateway, which does not convert between the two: RFC 4733 travels
end to end because the gateway does not anchor media). Verdicts come from what the IVR received (digits, order,
method and time, read back over the media API) and from the IVR's echo tone for the last digit, heard by the
device. Digits and timing are kept as evidence.
"""

from __future__ import annotations

import itertools
import os

import pytest

from gateway.media_node.ivr import IVR_NUMBER, echo_tone_hz
from harness.protocols import CallControl
from test_suites._feature_helpers import AFTER_CHANGE_S, CONFIRMED, device_ear, listen, wait_until

ALL_DIGITS = "0123456789*#"


def _ivr_number() -> str:
    return os.environ.get("SIPGW_IVR_NUMBER", IVR_NUMBER)


@pytest.mark.feature("dtmf")
def test_every_digit_reaches_the_ivr(device, lab, evidence, sipgw_settings):
    """0-9 * # in the device's own method reach the IVR in order; the IVR echoes the last digit."""
    t = sipgw_settings.deadline(5)
    media = getattr(lab.control, "media", None)
    if media is None:
        pytest.skip("this lab has no media node: there is no IVR to call")
    number = _ivr_number()
    calls = device[CallControl]
    out = calls.dial(number)
    out = calls.wait_for_state(out.id, CONFIRMED, timeout=t)
    evidence.add_call(out)
    ivr_call = media.wait_call(number, state="confirmed", timeout=t)
    evidence.add_call(ivr_call)
    assert ivr_call["party"]["kind"] == "ivr", f"{number} was answered by {ivr_call['party']}, not the IVR"

    calls.send_dtmf(out.id, ALL_DIGITS)
    got = wait_until(lambda: len((c := media.call(ivr_call["id"]))["dtmf"]) >= len(ALL_DIGITS) and c,
                     timeout=sipgw_settings.deadline(8), what=f"{len(ALL_DIGITS)} digits at the IVR")["dtmf"]
    evidence.add_media("dtmf", {"sent": ALL_DIGITS, "received": got,
                                "gaps_s": [round(b["t"] - a["t"], 3) for a, b in itertools.pairwise(got)]})
    digits = "".join(d["digit"] for d in got)
    assert digits == ALL_DIGITS, f"the IVR received {digits!r} from {device.id}, sent {ALL_DIGITS!r}"
    methods = {d["method"] for d in got}
    assert len(methods) == 1, f"{device.id} switched DTMF methods mid-sequence: {[d['method'] for d in got]}"
    evidence.note(f"{device.id} sent DTMF as {methods.pop()}")
    times = [d["t"] for d in got]
    assert times == sorted(times), f"digits arrived out of order in time: {times}"

    # The IVR echoes: its tone is now the tone of '#'. The device hears it; the IVR still hears the device.
    echo = echo_tone_hz(ALL_DIGITS[-1])
    ear = device_ear(device, out.id)
    rep = listen([ear], evidence, "echo", tones=[echo], settle_s=AFTER_CHANGE_S)
    heard = rep[ear.name].tone(echo)
    evidence.add_media("echo", {"tone_hz": echo, **heard.to_dict()})
    assert heard.present, f"{device.id} does not hear the IVR's echo tone for '#': {heard.describe()}"
    calls.hangup(out.id)
