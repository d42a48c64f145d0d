"""ControlClient: errors carry status, code, message and where; an unreachable gateway is status 0."""

from __future__ import annotations

import socket

import pytest

from gateway.control_api.client import ControlApiError, ControlClient
from gateway.control_api.client_media import MediaApi
from tests.gateway.control_api.conftest import error_of


def test_errors_carry_the_located_document(api):
    err = error_of(lambda: api.user("nobody"))
    assert (err.status, err.code, err.where) == (404, "not_found", "path.username")
    assert "nobody" in err.message and "path.username" in str(err)
    api.create_user("avery", "Avery Chen", password="pw")
    err = error_of(lambda: api.create_user("avery", "Avery Again"))
    assert (err.status, err.code, err.where) == (409, "conflict", "body.username")
    err = error_of(lambda: api.advance_clock("60"))  # type: ignore[arg-type]
    assert err.status == 400 and err.where == "body.seconds"


def test_media_attribute_shares_the_http_client(api):
    assert isinstance(api.media, MediaApi)
    assert api.media._http is api._http


def test_set_clock_needs_exactly_one_argument(api):
    with pytest.raises(ValueError):
        api.set_clock()
    with pytest.raises(ValueError):
        api.set_clock(1.0, offset=2.0)


def test_unreachable_gateway_is_status_0():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        with ControlClient(f"http://127.0.0.1:{port}", timeout=2.0) as client:
            with pytest.raises(ControlApiError) as info:
                client.health()
            assert info.value.status == 0 and info.value.code == "unreachable"
            with pytest.raises(ControlApiError):
                client.wait_ready(timeout=0.2)
