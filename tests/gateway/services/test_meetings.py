"""Meeting definitions and the audio-conferencing IVR's digit handling (no I/O)."""

from __future__ import annotations

import pytest

from gateway.services.meetings import MeetingError, check_meeting, conference_digits

USERS = {"org", "ann", "bob"}


def test_meeting_checked_and_members():
    m = check_meeting({"id": "m1", "conference_id": "4711", "organiser": "org", "participants": ["ann"],
                       "subject": "Sync"}, USERS)
    assert m.members() == {"org", "ann"} and m.to_json()["conference_id"] == "4711"


@pytest.mark.parametrize("doc,where,status", [
    ({"id": "m 1", "conference_id": "4711", "organiser": "org"}, "body.id", 400),
    ({"id": "m1", "conference_id": 4711, "organiser": "org"}, "body.conference_id", 400),
    ({"id": "m1", "conference_id": "47", "organiser": "org"}, "body.conference_id", 400),
    ({"id": "m1", "conference_id": "4711", "organiser": "zed"}, "body.organiser", 404),
    ({"id": "m1", "conference_id": "4711", "organiser": "org", "participants": ["ann", "zed"]},
     "body.participants[1]", 404),
    ({"id": "m1", "conference_id": "4711", "organiser": "org", "subject": "a\r\nb"}, "body.subject", 400),
    ({"id": "m1", "conference_id": "4711", "organiser": "org", "colour": "red"}, "body.colour", 400),
])
def test_bad_meetings_are_located(doc, where, status):
    with pytest.raises(MeetingError) as exc:
        check_meeting(doc, USERS)
    assert (exc.value.where, exc.value.status) == (where, status)


def d(digits: str) -> list[dict]:
    return [{"digit": c, "method": "rfc4733", "t": i} for i, c in enumerate(digits)]


def test_conference_ids_end_with_hash():
    assert conference_digits(d("4711")) == []
    assert conference_digits(d("4711#")) == ["4711"]
    assert conference_digits(d("12#4711#")) == ["12", "4711"]
    assert conference_digits(d("12*4711#")) == ["4711"]  # '*' starts over


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    from gateway.config import GatewayConfig
    from gateway.server import EmbeddedGateway

    gw = EmbeddedGateway(tmp_path_factory.mktemp("gw-meet"), GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0"))
    gw.start_in_thread()
    yield gw
    gw.stop_thread()


def test_meeting_api_without_a_media_node(gateway):
    from gateway.control_api.client import ControlApiError, ControlClient

    with ControlClient(gateway.endpoints.control_url) as api:
        api.create_user("mo", "Meeting Organiser", password="pw-mo-1", number="+14255550911")
        m = api.voiceapps.put_meeting("m1", "123456", "mo", subject="Plan")
        assert m["access_number"] == "+14255559500" and m["roster"] == []
        with pytest.raises(ControlApiError) as exc:
            api.voiceapps.put_meeting("m2", "123456", "mo")
        assert (exc.value.status, exc.value.where) == (409, "body.conference_id")
        with pytest.raises(ControlApiError) as exc:
            api.voiceapps.meeting_dial_out("m1", "stranger", "+12065550100")
        assert (exc.value.status, exc.value.code) == (403, "not_a_participant")
        with pytest.raises(ControlApiError) as exc:  # no media node: no mixer
            api.voiceapps.meeting_dial_out("m1", "mo", "+12065550100")
        assert exc.value.status == 409
        assert api.voiceapps.meeting("m1")["subject"] == "Plan"  # the refused requests changed nothing
        api.voiceapps.delete_meeting("m1")
        with pytest.raises(ControlApiError) as exc:
            api.voiceapps.meeting("m1")
        assert exc.value.status == 404
        api.delete_user("mo")
