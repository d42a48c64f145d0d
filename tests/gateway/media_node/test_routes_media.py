"""The media routes through the control API and its Python client (``MediaApi``)."""

from __future__ import annotations

import io
import os
import time
import wave

import httpx
import pytest

from gateway.control_api.client_media import MediaApi, MediaApiError
from tests.gateway.media_node.conftest import DEVICE_USER, PSTN_PREFIX
from tests.sipua.sipua_helpers import assert_tone

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def api(lab):
    with httpx.Client(base_url=lab.eps.control_url, timeout=10.0) as http:
        yield MediaApi(http)


def test_pstn_party_originates_over_the_api(lab, api, tmp_path):
    device = lab.device
    number = PSTN_PREFIX + "0300"
    mark = device.mark()
    call = api.originate({"kind": "pstn", "number": number}, DEVICE_USER[2], tone_hz=1240)
    assert call["party"] == {"kind": "pstn", "identity": number} and call["direction"] == "out"
    assert call["tone_hz"] == 1240 and call["recording"].endswith(f"/calls/{call['id']}/recording.wav")
    incoming = device.wait_event("incoming_call", since=mark, timeout=10)
    assert number in incoming.data["from"]
    theirs = incoming.data["call"]
    device.wait_event("call_state", since=mark, call=theirs, state="CONFIRMED", timeout=10)
    device.play_tone(810, call=theirs)
    confirmed = api.wait_state(call["id"], "confirmed", timeout=5)
    assert confirmed["sip_call_id"] and confirmed["answered"] >= confirmed["started"]
    assert any(c["id"] == call["id"] for c in api.calls(number))

    m = device.mark()
    api.dtmf(call["id"], "5")
    ev = device.wait_event("dtmf", since=m, call=theirs, timeout=5)
    assert ev.data["digit"] == "5"

    deadline = time.monotonic() + 5
    while True:
        wav = api.recording(call["id"])
        with wave.open(io.BytesIO(wav)) as w:
            assert w.getsampwidth() == 2
            seconds = w.getnframes() / w.getframerate()
        if seconds > 1.4 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    (tmp_path / "heard.wav").write_bytes(wav)
    assert_tone(str(tmp_path / "heard.wav"), 810)

    media = api.call(call["id"])["media"]
    assert media["codec"] and media["rx"]["packets"] > 50 and media["tx"]["packets"] > 50, media

    after = api.tone(call["id"], 1580)
    assert after["tone_hz"] == 1580
    m = device.mark()
    api.hangup(call["id"])
    device.wait_event("call_state", since=m, call=theirs, state="DISCONNECTED", timeout=5)
    assert api.wait_state(call["id"], "disconnected", timeout=5)["ended"] is not None


def test_manual_party_is_answered_through_the_api(lab, api):
    device = lab.device
    number = PSTN_PREFIX + "0301"
    party = api.set_party("pstn", number, answer="manual", tone_hz=1870)
    assert party["answer"] == "manual" and party["tone_hz"] == 1870
    mark = device.mark()
    call = device.make_call("d", lab.gw_uri(number))
    device.wait_event("call_state", since=mark, call=call, state="EARLY", timeout=10)
    ringing = api.wait_call(number, state="early", timeout=5)
    assert ringing["direction"] == "in" and ringing["tone_hz"] == 1870
    api.answer(ringing["id"])
    device.wait_event("call_state", since=mark, call=call, state="CONFIRMED", timeout=5)
    api.wait_state(ringing["id"], "confirmed", timeout=5)
    with wave.open(io.BytesIO(api.recording(ringing["id"]))) as w:  # a confirmed call always has one
        assert w.getsampwidth() == 2
    api.set_party("pstn", number, answer="auto")
    m = device.mark()
    api.hangup(ringing["id"])
    device.wait_event("call_state", since=m, call=call, state="DISCONNECTED", timeout=5)


def test_bad_requests_are_located(api):
    with pytest.raises(MediaApiError) as info:
        api.set_party("pstn", "+1206", answer="sometimes")
    assert info.value.status == 400 and info.value.where == "body.answer"
    with pytest.raises(MediaApiError) as info:
        api.set_party("fax", "+12065550000", answer="auto")
    assert info.value.status == 400 and info.value.where == "path.kind"
    with pytest.raises(MediaApiError) as info:
        api.originate({"kind": "pstn", "number": "not-a-number"}, "+14255550111")
    assert info.value.status == 400 and info.value.where.startswith("body.from")
    with pytest.raises(MediaApiError) as info:
        api.originate({"kind": "teams", "user": "nobody"}, "+14255550111")
    assert info.value.status == 404 and info.value.where == "body.from.user"
    with pytest.raises(MediaApiError) as info:
        api.call("m999999")
    assert info.value.status == 404 and info.value.where == "path.id"
    with pytest.raises(MediaApiError) as info:
        api.dtmf("m999999", "12x")
    assert info.value.status == 400 and info.value.where == "body.digits"


def test_openapi_lists_the_media_routes(lab):
    doc = httpx.get(f"{lab.eps.control_url}/api/v1/openapi.json", timeout=5).json()
    for path in ("/api/v1/media/calls", "/api/v1/media/calls/{id}/recording.wav",
                 "/api/v1/media/parties/{kind}/{identity}"):
        assert path in doc["paths"], path


def test_reset_restores_defaults_and_forgets_ended_calls(lab, api):
    node = lab.node
    number = PSTN_PREFIX + "0302"
    device = lab.device
    mark = device.mark()
    call = device.make_call("d", lab.gw_uri(number))
    device.wait_event("call_state", since=mark, call=call, state="CONFIRMED", timeout=10)
    party = api.wait_call(number, state="confirmed", timeout=5)
    device.hangup(call)
    api.wait_state(party["id"], "disconnected", timeout=5)
    api.set_party("pstn", number, answer="busy", tone_hz=1930)
    ended = [c for c in node.calls() if c.state == "disconnected" and c.recording_started]
    assert any(c.id == party["id"] and os.path.exists(c.recording_path) for c in ended)
    resp = httpx.post(f"{lab.eps.control_url}/api/v1/reset", timeout=10)
    assert resp.status_code < 300, resp.text
    assert node.settings("pstn", number).answer == "auto"
    assert all(c.state != "disconnected" for c in node.calls())
    assert not any(os.path.exists(c.recording_path) for c in ended)
