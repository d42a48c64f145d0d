"""bench.udp_floor: the responder answers SIPp's register.xml and the figures come from SIPp and /proc."""

from __future__ import annotations

import shutil

import pytest

from bench import udp_floor
from tests.cli_usage import usage_error

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp is not installed (Debian package sip-tester)"),
]


def test_every_registration_completes_and_costs_measured_cpu() -> None:
    # 400 registrations: the responder's CPU comes from /proc in 10 ms clock ticks, and 40 of them (a few ms) could
    # fall between two ticks and read as none.
    (result,) = udp_floor.measure([200.0], 2.0, "asyncio", users=5)
    assert (result["successful"], result["failed"]) == (400, 0), result
    assert result["responder_cpu_us_per_op"] > 0 and result["sipp_cpu_us_per_op"] > 0


@pytest.mark.parametrize("argv, message", [
    (["--rates", "fast"], "expected numbers separated by commas"),
    (["--rates", "0"], "each rate must be 1 to 50000"),
    (["--duration", "60"], "expected 1 to 10 seconds"),
])
def test_bad_arguments_say_what_is_wrong(argv, message, capsys) -> None:
    assert message in usage_error(udp_floor.main, argv, capsys)
