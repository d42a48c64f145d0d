"""``*55*<code>`` confirmed in-band: an accepted code's INVITE goes on to the media node's confirmation-tone
party (here a stand-in UDP endpoint: what it receives is checked, and it answers as the node would), after the
enrolment is stored; a refused code gets no call, a 403 with its reason. The tone itself is detected at the
device by the sign-in suite (test_suites/test_sign_in_out.py)."""

from __future__ import annotations

import socket

import pytest

from gateway.config import GatewayConfig
from gateway.control_api.client import ControlClient
from gateway.media_node.confirmation import CONFIRM_S, CONFIRM_TONE_HZ, IDENTITY, ConfirmationTone
from gateway.server import EmbeddedGateway
from gateway.services.model import Flow
from gateway.sip import Request, Response, parse_message
from tests.gateway.provisioning.test_server import MAC, onboard, phone_for


class StandInParty:
    """Where the confirmation calls go: a loopback UDP socket that receives the gateway's INVITE."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5.0)
        self.port = self.sock.getsockname()[1]
        self.reserved = 0

    def party(self) -> Flow | None:
        self.reserved += 1
        return Flow("UDP", "127.0.0.1", self.port)

    def uri(self, flow: Flow) -> str:
        return f"sip:{IDENTITY}@{flow.host}:{flow.port}"

    def invite(self) -> tuple[Request, tuple[str, int]]:
        while True:
            data, addr = self.sock.recvfrom(65535)
            msg = parse_message(data)
            if isinstance(msg, Request) and msg.method == "INVITE":
                return msg, addr


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    g = EmbeddedGateway(tmp_path_factory.mktemp("gw"), GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0"))
    g.start_in_thread()
    party = StandInParty()
    g.provisioning.hooks.confirmation = party
    yield g, party
    g.stop_thread()
    party.sock.close()


def test_accepted_code_goes_to_the_confirmation_party_and_a_refused_one_gets_403(gw):
    g, party = gw
    with ControlClient(g.endpoints.control_url) as api:
        _, cfg = onboard(g)
        phone = phone_for(g, cfg)
        try:
            assert phone.register().status == 200
            code = api.signin.enrol(MAC)["verification_code"]
            call_id, req = phone.invite("*55*000000")  # refused: no tone, the reason in signalling
            resp = phone.response_to(call_id, req.cseq.seq)
            phone.ack_failure(req, resp)
            assert (resp.status, resp.reason) == (403, "Invalid Verification Code")
            assert "SGW-ENROL-REFUSED" in resp.headers.get("Warning") and party.reserved == 0

            call_id, req = phone.invite(f"*55*{code}")
            forwarded, addr = party.invite()
            assert str(forwarded.request_uri) == f"sip:{IDENTITY}@127.0.0.1:{party.port}"
            assert api.device(MAC)["pair_state"] == "unpaired"  # stored before the tone plays
            party.sock.sendto(Response.for_request(forwarded, 486, to_tag="x1").to_bytes(), addr)
            resp = phone.response_to(call_id, req.cseq.seq)
            phone.ack_failure(req, resp)
            assert resp.status == 486  # the party's answer reached the device: the call went through the B2BUA
            call_id, req = phone.invite(f"*55*{code}")  # used: refused, no call to the party
            resp = phone.response_to(call_id, req.cseq.seq)
            phone.ack_failure(req, resp)
            assert resp.status == 403 and party.reserved == 1
        finally:
            phone.register(expires=0)
            phone.close()


def test_confirmation_tone_is_distinct_from_every_other_lab_tone_and_checked():
    from gateway.media_node.ivr import DIGITS, MENU_TONE_HZ, echo_tone_hz
    from gateway.media_node.tones import _DEVICE_PLAN_HZ, _DTMF_HZ, PARTY_TONES_HZ

    others = [*PARTY_TONES_HZ, *_DEVICE_PLAN_HZ, *_DTMF_HZ, MENU_TONE_HZ, 2300.0, 425.0,
              *(echo_tone_hz(d) for d in DIGITS)]
    nearest = min(others, key=lambda f: abs(f - CONFIRM_TONE_HZ))
    assert abs(nearest - CONFIRM_TONE_HZ) >= 150.0, nearest
    assert 0.5 <= CONFIRM_S <= 10
    with pytest.raises(ValueError, match="telephone band"):
        ConfirmationTone(object(), tone_hz=5000.0)
    with pytest.raises(ValueError, match="duration"):
        ConfirmationTone(object(), duration_s=0.1)
