"""Transfer helpers (Refer-To rewriting, Replaces parsing) and a Replaces INVITE that names no call."""

from __future__ import annotations

import contextlib

import pytest

from gateway.config import GatewayConfig
from gateway.control_api.client import ControlClient
from gateway.server import EmbeddedGateway
from gateway.services.transfer import parse_replaces, rewrite_refer_to
from gateway.sip import Request, Response
from tests.gateway.control_api.sipphone import DOMAIN, UdpPhone


@pytest.mark.parametrize(("value", "expected"), [
    ("<sip:+14255550111@sipgw.lab>", "<sip:+14255550111@127.0.0.1:5070>"),
    ("<sip:+14255550111@sipgw.lab;user=phone>", "<sip:+14255550111@127.0.0.1:5070;user=phone>"),
    ("<sip:bob@10.0.0.1:5099;transport=tcp?Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2>",
     "<sip:bob@127.0.0.1:5070?Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2>"),
    ('"Bob" <sip:bob@sipgw.lab>', '"Bob" <sip:bob@127.0.0.1:5070>'),
    ("sip:bob@sipgw.lab", "<sip:bob@127.0.0.1:5070>"),
    ("not a uri", "not a uri"),
])
def test_rewrite_refer_to(value, expected):
    assert rewrite_refer_to(value, "127.0.0.1:5070", "UDP") == expected


def test_rewrite_refer_to_keeps_the_transport_of_the_transferee():
    assert rewrite_refer_to("<sip:bob@sipgw.lab>", "127.0.0.1:5071", "TLS") == "<sip:bob@127.0.0.1:5071;transport=tls>"


@pytest.mark.parametrize(("value", "expected"), [
    ("abc@h;to-tag=1;from-tag=2", ("abc@h", "1", "2", False)),
    ("abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2%3Bearly-only", ("abc@h", "1", "2", True)),
    ("abc;from-tag=2;to-tag=1", ("abc", "1", "2", False)),
    ("abc;to-tag=1", None), ("", None), (";to-tag=1;from-tag=2", None),
])
def test_parse_replaces(value, expected):
    assert parse_replaces(value) == expected


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = EmbeddedGateway(tmp_path_factory.mktemp("gw"), GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0"))
    gw.start_in_thread()
    with ControlClient(gw.endpoints.control_url) as api:
        api.create_user("xfer-amy", "Amy", password="pw", number="+14255557201")
    yield gw
    gw.stop_thread()


def _invite_with(phone: UdpPhone, replaces: str):
    call_id = "xfer-1@127.0.0.1"
    uri = f"sip:+14255557201@{DOMAIN}"
    authz = None
    for cseq in (1, 2):
        headers = [("Via", phone._via()), ("Max-Forwards", "70"), ("From", f"<sip:xfer-amy@{DOMAIN}>;tag=t1"),
                   ("To", f"<{uri}>"), ("Call-ID", call_id), ("CSeq", f"{cseq} INVITE"),
                   ("Contact", f"<sip:xfer-amy@{phone.addr[0]}:{phone.addr[1]}>"), ("Replaces", replaces)]
        if authz:
            headers.append(("Proxy-Authorization", authz))
        req = Request.build("INVITE", uri, headers)
        phone.send(req)
        resp = phone.response_to(call_id, cseq)
        phone.ack_failure(req, resp)
        if resp.status != 407:
            return resp
        authz = str(phone.digest.authorize(resp.headers.get_all("Proxy-Authenticate"), method="INVITE", uri=uri))
    return resp


def test_replaces_naming_no_call_is_481_and_malformed_is_400(gateway):
    phone = UdpPhone(gateway.endpoints.udp, "xfer-amy", "pw")
    try:
        assert phone.register().status == 200
        resp = _invite_with(phone, "nosuch@x;to-tag=1;from-tag=2")
        assert isinstance(resp, Response) and resp.status == 481
        assert "SGW-TRANSFER" in (resp.headers.get("Warning") or "")
        bad = _invite_with(phone, "nosuch@x")
        assert bad.status == 400 and "RFC 3891" in (bad.headers.get("Warning") or "")
    finally:
        with contextlib.suppress(Exception):
            phone.register(expires=0)
        phone.close()
