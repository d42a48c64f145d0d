"""bench.shard_ceiling: independent gateways driven at once, each by its own SIPp, figures from SIPp and /proc."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench import shard_ceiling
from tests.cli_usage import usage_error

needs_sipp = pytest.mark.skipif(shutil.which("sipp") is None,
                                reason="SIPp is not installed (Debian package sip-tester)")


@pytest.mark.slow
@needs_sipp
def test_two_gateways_register_their_users_at_once(tmp_path: Path, capsys) -> None:
    rows = shard_ceiling.measure(2, [40], 2.0, 20, tmp_path, cooldown_s=0.0)
    ((rate, results),) = rows
    assert rate == 40 and len(results) == 2
    for r in results:  # each SIPp run: 80 REGISTERs with digest, its own gateway's 20 users in turn
        assert (r.successful, r.failed) == (80, 0), r
        assert r.passed and r.cpu_s["gateway"] > 0 and r.cpu_s["sipp_client"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p2-gw0", "p2-gw1"]  # a workdir per gateway
    line = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert line[:3] == ["2", "40", "80"] and line[-1] == "pass"


@pytest.mark.parametrize("argv, message", [
    (["--rates", "fast"], "expected whole numbers separated by commas"),
    (["--rates", "0"], "expected positive numbers"),
    (["--processes", "5"], "at most 4 gateways at once"),
    (["--duration", "0.5"], "expected 1 to 60 seconds"),
    (["--users", "5"], "expected 10 to 100000"),
])
def test_bad_arguments_say_what_is_wrong(argv, message, capsys) -> None:
    assert message in usage_error(shard_ceiling.main, argv, capsys)
