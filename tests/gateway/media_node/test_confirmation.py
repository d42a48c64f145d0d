"""The ``*55*`` confirmation-tone service over a stand-in media node: each call to it gets the tone's settings
and a reserved slot, is hung up by the node once the tone has played its duration (armed once per call), and is
kept for evidence; calls of other parties are left alone."""

from __future__ import annotations

from gateway.media_node.confirmation import CONFIRM_S, CONFIRM_TONE_HZ, IDENTITY, KIND, ConfirmationTone
from gateway.media_node.node import MediaNodeError
from gateway.services.model import Flow


class StandInNode:
    def __init__(self):
        self.party_settings: dict = {}
        self.reserved: list[tuple[str, str, str]] = []
        self.scheduled: list[tuple[float, object]] = []
        self.hung_up: list[str] = []
        self.listeners: list = []

    def add_listener(self, fn) -> None:
        self.listeners.append(fn)

    def reserve(self, uri_user: str, kind: str, identity: str, *, settings=None) -> Flow:
        if settings is not None:
            self.party_settings[(kind, identity)] = settings
        self.reserved.append((uri_user, kind, identity))
        return Flow("UDP", "127.0.0.1", 40000)

    def schedule(self, fn, delay_s: float = 0.0):  # the control thread: run later, by the test
        self.scheduled.append((delay_s, fn))

    def hangup(self, call_id: str) -> None:
        if call_id in self.hung_up:
            raise MediaNodeError("call_ended", f"call {call_id} has ended", "path.id", status=409)
        self.hung_up.append(call_id)


def call(call_id: str, state: str, kind: str = KIND) -> dict:
    return {"id": call_id, "party": {"kind": kind, "identity": IDENTITY}, "state": state, "sip_call_id": "c1",
            "answered": 1.0 if state != "early" else None, "ended": 2.0 if state == "disconnected" else None}


def test_each_confirmation_call_is_answered_with_the_tone_and_hung_up_after_its_duration():
    node = StandInNode()
    svc = ConfirmationTone(node)
    flow = svc.party()
    assert node.reserved == [(IDENTITY, KIND, IDENTITY)]
    assert node.party_settings[(KIND, IDENTITY)].tone_hz == CONFIRM_TONE_HZ
    assert node.party_settings[(KIND, IDENTITY)].answer == "auto"
    assert svc.uri(flow) == f"sip:{IDENTITY}@127.0.0.1:40000"
    node.party_settings.clear()  # the node's per-test reset forgets party settings; the next call puts them back
    svc.party()
    assert node.party_settings[(KIND, IDENTITY)].tone_hz == CONFIRM_TONE_HZ

    (listener,) = node.listeners
    listener(call("m1", "early"))
    listener(call("m9", "confirmed", kind="pstn"))  # another party's call
    assert node.scheduled == []
    listener(call("m1", "confirmed"))
    listener(call("m1", "confirmed"))  # a repeated state report arms nothing more
    assert [d for d, _ in node.scheduled] == [CONFIRM_S]
    node.scheduled[0][1]()
    assert node.hung_up == ["m1"]
    node.scheduled[0][1]()  # the caller hung up first: nothing raised
    listener(call("m1", "disconnected"))
    assert svc.played == [{"id": "m1", "sip_call_id": "c1", "tone_hz": CONFIRM_TONE_HZ, "answered": 1.0,
                           "ended": 2.0}]
