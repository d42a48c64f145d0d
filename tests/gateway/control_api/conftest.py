"""One embedded gateway per test module (ephemeral loopback ports), a fresh client and a clean tenant per test."""

from __future__ import annotations

import contextlib

import pytest

from gateway.config import GatewayConfig
from gateway.control_api.client import ControlApiError, ControlClient
from gateway.server import EmbeddedGateway
from tests.gateway.control_api.sipphone import UdpPhone


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = EmbeddedGateway(tmp_path_factory.mktemp("gw"), GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0"))
    gw.start_in_thread()
    yield gw
    gw.stop_thread()


@pytest.fixture
def api(gateway):
    with ControlClient(gateway.endpoints.control_url, timeout=10.0) as client:
        yield client
        client.reset()
        for device in client.devices():
            client.delete_device(device["key"])
        for user in client.users():
            client.delete_user(user["username"])


@pytest.fixture
def phones(gateway):
    """Factory of registered-or-not UDP phones; each is unregistered and closed after the test."""
    made: list[UdpPhone] = []

    def make(username: str, password: str, **kw) -> UdpPhone:
        phone = UdpPhone(gateway.endpoints.udp, username, password, **kw)
        made.append(phone)
        return phone

    yield make
    for phone in made:
        with contextlib.suppress(TimeoutError, OSError, AssertionError):
            phone.register(expires=0)
        phone.close()


def error_of(call) -> ControlApiError:
    """Run ``call`` and return the ControlApiError it raised (fails the test if none)."""
    with pytest.raises(ControlApiError) as info:
        call()
    return info.value


@pytest.fixture
def raw(gateway):
    """A plain httpx client on the control URL, for requests the typed client would never send."""
    import httpx

    with httpx.Client(base_url=gateway.endpoints.control_url + "/api/v1", timeout=10.0) as client:
        yield client


def assert_error(resp, status: int, where: str | None, code: str | None = None) -> dict:
    """The response is a located JSON error with this status and ``where``."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    err = resp.json()["error"]
    assert set(err) >= {"code", "message", "where"}
    assert err["where"] == where, err
    assert err["message"]
    if code is not None:
        assert err["code"] == code, err
    return err
