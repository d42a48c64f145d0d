"""The LIS, PIDF-LO and the lab network header of the emergency calling service (no I/O)."""

from __future__ import annotations

import pytest

from gateway.services.e911 import (
    LisError,
    LocationService,
    NetworkAttributes,
    civic_from_pidf,
    emergency_number,
    parse_network_header,
    pidf_lo,
    with_location,
)
from gateway.sip.multipart import parse_multipart, part_by_content_id

DOC = {
    "addresses": [
        {"id": "hq", "country": "US", "A1": "WA", "A3": "Redmond", "RD": "Main St", "HNO": "1", "PC": "98052"},
        {"id": "floor2", "country": "US", "A1": "WA", "A3": "Redmond", "RD": "Main St", "HNO": "1", "LOC": "Floor 2"},
        {"id": "port11", "country": "US", "A3": "Redmond", "LOC": "Desk 11"},
        {"id": "wide", "country": "US", "A3": "Redmond", "LOC": "Campus"},
        {"id": "desk", "country": "US", "A3": "Redmond", "LOC": "Static desk"},
    ],
    "subnets": [{"subnet": "10.20.0.0/16", "address": "wide"}, {"subnet": "10.20.2.0/24", "address": "floor2"}],
    "switches": [{"chassis": "00:1B:54:AA:10:01", "address": "floor2"}],
    "ports": [{"chassis": "00-1b-54-aa-10-01", "port": "Gi1/0/11", "address": "port11"}],
    "static": [{"number": "+14255550101", "address": "desk"}],
    "default_address": "hq",
}


def test_header_parsed_and_checked():
    a = parse_network_header("subnet=10.20.1.7/24; chassis=00-1B-54-AA-10-01; port=Gi1/0/11")
    assert a == NetworkAttributes("10.20.1.0/24", "00:1b:54:aa:10:01", "Gi1/0/11")
    for bad, where in [("subnet=10.300.0.0/8", "subnet"), ("chassis=xyz", "chassis"), ("port=Gi1", "port"),
                       ("colour=blue", "colour"), ("", "X-Sipgw-Lab-Network")]:
        with pytest.raises(LisError) as exc:
            parse_network_header(bad)
        assert exc.value.where.endswith(where), (bad, exc.value.where)


def test_resolution_prefers_port_then_switch_then_longest_subnet_then_static():
    lis = LocationService.from_json(DOC)
    port = NetworkAttributes("10.20.2.0/24", "00:1b:54:aa:10:01", "Gi1/0/11")
    assert lis.resolve(port, "+14255550101", dynamic=True).address.id == "port11"
    other_port = NetworkAttributes("10.20.2.0/24", "00:1b:54:aa:10:01", "Gi1/0/12")
    assert lis.resolve(other_port, None, dynamic=True).method == "switch"
    sub = lis.resolve(NetworkAttributes("10.20.2.0/24"), None, dynamic=True)
    assert (sub.address.id, sub.method) == ("floor2", "subnet")
    assert lis.resolve(NetworkAttributes("10.20.9.0/24"), None, dynamic=True).address.id == "wide"
    assert lis.resolve(NetworkAttributes("192.168.1.0/24"), "+14255550101", dynamic=True).address.id == "desk"
    assert lis.resolve(NetworkAttributes("192.168.1.0/24"), "+19999", dynamic=True).address.id == "hq"
    # not a footnote-1 model: the static address, whatever the network says
    assert lis.resolve(port, "+14255550101", dynamic=False).method == "static"


def test_cisco_is_lldp_only():
    lis = LocationService.from_json(DOC)
    no_lldp = lis.resolve(NetworkAttributes("10.20.2.0/24"), "+14255550101", dynamic=True, lldp_only=True,
                          model="Cisco 6821")
    assert (no_lldp.address.id, no_lldp.method) == ("desk", "static") and "LLDP only" in no_lldp.reason
    lldp = lis.resolve(NetworkAttributes(None, "00:1b:54:aa:10:01", "Gi1/0/11"), None, dynamic=True, lldp_only=True)
    assert lldp.address.id == "port11"


@pytest.mark.parametrize("doc,where", [
    ({"addresses": [{"id": "a", "country": "USA"}]}, "body.addresses[0].country"),
    ({"addresses": [{"id": "a", "country": "US", "street": "x"}]}, "body.addresses[0].street"),
    ({"addresses": [{"id": "a", "country": "US"}], "subnets": [{"subnet": "x", "address": "a"}]},
     "body.subnets[0].subnet"),
    ({"addresses": [{"id": "a", "country": "US"}], "ports": [{"chassis": "00:1b:54:aa:10:01", "port": "1",
                                                              "address": "b"}]}, "body.ports[0].address"),
    ({"addresses": [], "bogus": 1}, "body.bogus"),
    ({"addresses": [{"id": "a", "country": "US"}, {"id": "a", "country": "US"}]}, "body.addresses[1].id"),
])
def test_bad_documents_are_located(doc, where):
    with pytest.raises(LisError) as exc:
        LocationService.from_json(doc)
    assert exc.value.where == where


def test_document_round_trip():
    lis = LocationService.from_json(DOC)
    assert LocationService.from_json(lis.to_json()).to_json() == lis.to_json()


def test_pidf_lo_in_multipart_body_named_by_content_id():
    lis = LocationService.from_json(DOC)
    addr = lis.addresses["floor2"]
    pidf = pidf_lo(addr, "pres:+14255550101@sipgw.lab", method="subnet", now=0)
    assert civic_from_pidf(pidf) == {"country": "US", "A1": "WA", "A3": "Redmond", "RD": "Main St", "HNO": "1",
                                     "LOC": "Floor 2"}
    sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    body, ctype, cid = with_location(sdp, "application/sdp", pidf)
    parts = parse_multipart(body, ctype)
    assert ctype.startswith("multipart/mixed") and [p.media_type for p in parts] == ["application/sdp",
                                                                                      "application/pidf+xml"]
    assert parts[0].body == sdp and part_by_content_id(parts, f"cid:{cid}").body == pidf


def test_emergency_numbers():
    assert emergency_number("911") == "911" and emergency_number("+933") == "933"
    assert emergency_number("112;phone-context=x") == "112"
    assert emergency_number("9110") is None and emergency_number(None) is None
    assert emergency_number("9-1-1") == "911" and emergency_number("(933)") == "933"  # as people type them


# --- through the control API of a running gateway ------------------------------------------------------------------

@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    from gateway.config import GatewayConfig
    from gateway.server import EmbeddedGateway

    data = tmp_path_factory.mktemp("gw-e911")
    gw = EmbeddedGateway(data, GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0"))
    gw.start_in_thread()
    yield gw
    gw.stop_thread()


def test_lis_api_rejects_bad_documents_and_keeps_the_stored_one(gateway):
    from gateway.control_api.client import ControlApiError, ControlClient

    with ControlClient(gateway.endpoints.control_url) as api:
        stored = api.voiceapps.set_lis(DOC)
        assert stored["default_address"] == "hq" and len(stored["ports"]) == 1
        with pytest.raises(ControlApiError) as exc:
            api.voiceapps.set_lis({**DOC, "ports": [{"chassis": "00:1b:54:aa:10:01", "port": "Gi1", "address": "x"}]})
        assert (exc.value.status, exc.value.code, exc.value.where) == (400, "invalid_lis", "body.ports[0].address")
        assert api.voiceapps.lis() == stored
        numbers = api.voiceapps.e911_numbers()
        assert "911" in numbers["emergency"] and numbers["test"] == "933"
        assert numbers["network_header"] == "X-Sipgw-Lab-Network"
        assert api.voiceapps.e911_calls() == []
    # the document is in the store: a new service on the same store reads it back
    from gateway.services.e911 import E911Service

    assert E911Service(gateway).lis.to_json() == stored
