"""The settable clock: read, set (epoch, ISO 8601, offset), advance, reset; bad input leaves it alone."""

from __future__ import annotations

import time

import pytest

from tests.gateway.control_api.conftest import assert_error


def test_read_set_advance_reset(api, gateway):
    c = api.clock()
    assert abs(c["now"] - time.time()) < 5 and c["offset"] == 0
    out = api.set_clock("2030-01-31T09:00:00Z")
    assert out["iso"].startswith("2030-01-31T09:00:0")
    assert abs(gateway.clock.now() - 1896080400) < 5
    out = api.advance_clock(30 * 86400)
    assert out["iso"].startswith("2030-03-02")
    out = api.set_clock(offset=-3600)
    assert out["offset"] == pytest.approx(-3600, abs=1)
    out = api.set_clock(1_900_000_000)
    assert abs(out["now"] - 1_900_000_000) < 5
    assert api.reset()["clock_offset_was"] == pytest.approx(out["offset"], abs=1)
    assert abs(gateway.clock.offset) == 0


@pytest.mark.parametrize(("method", "path", "content", "where"), [
    ("PUT", "/clock", b'{"now": "tomorrow"}', "body.now"),
    ("PUT", "/clock", b'{"now": "2030-01-31T09:00:00"}', "body.now"),
    ("PUT", "/clock", b'{"now": 1, "offset": 2}', "body"),
    ("PUT", "/clock", b"{}", "body"),
    ("PUT", "/clock", b'{"now": true}', "body.now"),
    ("PUT", "/clock", b'{"offset": 1e300}', "body.offset"),
    ("POST", "/clock/advance", b'{"seconds": "60"}', "body.seconds"),
    ("POST", "/clock/advance", b'{"seconds": NaN}', "body.seconds"),
    ("POST", "/clock/advance", b'{"secs": 60}', "body.secs"),
    ("POST", "/clock/advance", b'{"seconds": 60', "body"),
])
def test_bad_clock_input_leaves_the_clock_alone(api, raw, gateway, method, path, content, where):
    api.advance_clock(3600)
    offset = gateway.clock.offset
    assert_error(raw.request(method, path, content=content), 400, where)
    assert gateway.clock.offset == offset
