"""``Endpoints.control_url``: an IPv6 control host is written in brackets (RFC 3986 §3.2.2), and that URL
reaches the control API of a gateway listening on ::1."""

from __future__ import annotations

import socket

import pytest

from gateway.config import GatewayConfig
from gateway.control_api.client import ControlClient
from gateway.server import EmbeddedGateway, Endpoints

LOCAL = (("127.0.0.1", 5060), ("127.0.0.1", 5060), ("127.0.0.1", 5061))


@pytest.mark.parametrize(("http", "url"), [
    (("127.0.0.1", 8080), "http://127.0.0.1:8080"),
    (("::1", 8080), "http://[::1]:8080"),
    (("fe80::1%lo", 18080), "http://[fe80::1%lo]:18080"),
    (None, None),
])
def test_control_url(http, url):
    assert Endpoints(*LOCAL, http).control_url == url


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_control_api_on_ipv6_loopback_is_reached_through_control_url(tmp_path):
    gw = EmbeddedGateway(tmp_path, GatewayConfig(sip="127.0.0.1:0", http="[::1]:0"))
    eps = gw.start_in_thread()
    try:
        assert eps.http is not None and eps.http[0] == "::1" and eps.http[1] > 0
        assert eps.control_url == f"http://[::1]:{eps.http[1]}"
        with ControlClient(eps.control_url, timeout=10) as api:
            health = api.health()
        assert health["endpoints"]["control"] == eps.control_url
    finally:
        gw.stop_thread()
