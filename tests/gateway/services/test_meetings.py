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
