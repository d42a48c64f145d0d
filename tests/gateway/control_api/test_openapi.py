"""The OpenAPI document lists every mounted route (and nothing that is not mounted); health and reset."""

from __future__ import annotations

import re

from gateway.control_api.app import ROUTE_MODULES, load_route_modules


def _template(path: str) -> str:
    return re.sub(r"\{([^}:]+)(:[^}]*)?\}", r"{\1}", path)


def test_every_mounted_route_is_documented_and_every_documented_route_is_mounted(api, gateway):
    doc = api.openapi()
    assert doc["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    mounted = {(m, _template(p)) for m, p in gateway._control.route_table()}
    assert mounted == documented
    # Route modules from the list that are present all contributed routes.
    for module in load_route_modules(ROUTE_MODULES):
        for path in module.OPENAPI_PATHS:
            assert path in doc["paths"]
    for expected in [("GET", "/api/v1/users"), ("PATCH", "/api/v1/users/{username}"), ("GET", "/api/v1/devices"),
                     ("GET", "/api/v1/registrations"), ("POST", "/api/v1/calls/{id}/hangup"),
                     ("GET", "/api/v1/trace"), ("GET", "/api/v1/trace.pcap"), ("PUT", "/api/v1/clock"),
                     ("POST", "/api/v1/reset"), ("GET", "/api/v1/health"), ("GET", "/api/v1/openapi.json")]:
        assert expected in documented


def test_every_reference_resolves_and_every_operation_has_responses(api):
    doc = api.openapi()
    schemas = doc["components"]["schemas"]
    refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', __import__("json").dumps(doc))
    assert refs and all(name in schemas for name in refs)
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (method, path)
            assert operation["summary"]
            for param in re.findall(r"\{([^}]+)\}", path):
                assert any(p["in"] == "path" and p["name"] == param for p in operation.get("parameters", ())), (
                    method, path, param)
    # Request models are published with their closed field lists.
    assert schemas["UserCreate"]["additionalProperties"] is False
    assert "username" in schemas["UserCreate"]["required"]


def test_health_names_the_build_and_endpoints(api, gateway):
    h = api.health()
    assert h["status"] == "ok" and h["build"].startswith("sipgw-lab-gateway/")
    assert h["endpoints"]["udp"] == f"127.0.0.1:{gateway.endpoints.udp[1]}"
    assert h["endpoints"]["control"] == gateway.endpoints.control_url
    assert h["uptime_s"] >= 0


def test_reset_takes_no_body(api, raw):
    from tests.gateway.control_api.conftest import assert_error

    api.advance_clock(60)
    assert_error(raw.post("/reset", content=b'{"everything": true}'), 400, "body")
    assert api.clock()["offset"] == 60
    assert raw.post("/reset", json={}).status_code == 200
    assert api.clock()["offset"] == 0


class _ResettableMedia:
    def __init__(self):
        self.resets = 0

    def teams_client(self, user):
        return None

    def pstn_party(self, number):
        return None

    def reset(self):
        self.resets += 1


def test_reset_resets_the_media_node(tmp_path):
    from gateway.config import GatewayConfig
    from gateway.control_api.client import ControlClient
    from gateway.server import EmbeddedGateway

    media = _ResettableMedia()
    gw = EmbeddedGateway(tmp_path, GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0"), media=media)
    eps = gw.start_in_thread()
    try:
        with ControlClient(eps.control_url) as api:
            api.reset()
            assert media.resets == 1
            assert api.health()["media"] == "_ResettableMedia"
    finally:
        gw.stop_thread()
