"""The load benchmark's machinery against the embedded gateway, at a low fixed rate for a few seconds.

Not a speed test: it checks that the gateway process starts and stops, that SIPp registers users with
digest and places calls through the B2BUA to a registered SIPp callee, and that every call completes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.sip_load import (
    Callee,
    GatewayServer,
    cpu_seconds,
    free_udp_port,
    measure_run,
    rate_search,
    write_users_csv,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp is not installed (Debian package sip-tester)"),
]

USERS = 20


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("sip-load")
    server = GatewayServer(workdir, USERS)
    server.start()
    server.client_port = free_udp_port()
    try:
        yield server, workdir
    finally:
        pid = server.proc.pid if server.proc else None
        server.stop()
        assert pid is None or cpu_seconds(pid) == 0.0  # gone: /proc has nothing left to read


def test_register_then_call_with_no_failures(gateway) -> None:
    server, workdir = gateway
    csv_file = write_users_csv(workdir / "users.csv", USERS)
    reg = measure_run(server, "register", 10, 2, csv_file=csv_file, workdir=workdir)
    assert (reg.created, reg.successful, reg.failed) == (20, 20, 0), reg
    assert reg.cpu_s["gateway"] > 0  # read from /proc, not assumed

    with Callee(server, workdir) as callee:
        call = measure_run(server, "call", 5, 2, csv_file=csv_file, workdir=workdir, callee=callee)
    # Counts, not the achieved rate: on a loaded machine the rate criterion is about the machine, not the script.
    assert (call.created, call.successful, call.failed) == (10, 10, 0), call
    assert not call.errors, call.errors
    assert set(call.cpu_us_per_op) == {"gateway", "sipp_client", "sipp_callee"}


def test_unregistered_callers_are_refused_and_counted_as_failures(tmp_path: Path, gateway) -> None:
    """The figures come from what SIPp observed: calls the gateway refuses are failures, not successes."""
    server, workdir = gateway
    from bench import sip_load

    # A user the tenant does not have: the gateway answers 403 to the authenticated INVITE.
    csv_file = tmp_path / "strangers.csv"
    csv_file.write_text(f"SEQUENTIAL\nnobody;{sip_load.PASSWORD};+14259990000\n")
    run = measure_run(server, "call", 5, 1, csv_file=csv_file, workdir=workdir)
    assert run.successful == 0
    assert run.failed == run.created == 5
    assert not run.passed


def test_rate_search_narrows_to_the_knee() -> None:
    """The search on a fake server that passes up to 1000/s ends between 1000/1.07 and 1000."""
    from bench.sip_load import RunResult

    def fake(rate: float) -> RunResult:
        ok = rate <= 1000
        return RunResult("fake", "call", rate, 1.0, int(rate), int(rate) if ok else 0, 0 if ok else int(rate), 1.0,
                         rate if ok else 0.0, 0, 0, {}, {}, ok, "pass" if ok else "fail", [])

    search = rate_search(fake, start=100, hint=None, deadline=float("inf"), run_cost_s=0)
    assert search.complete
    assert search.best is not None and 1000 / 1.07 <= search.best.target_rate <= 1000
    again = rate_search(fake, start=100, hint=search.best.target_rate, deadline=float("inf"), run_cost_s=0)
    assert again.best is not None and 1000 / 1.07 <= again.best.target_rate <= 1000
    assert len(again.runs) < len(search.runs)


def test_sipp_watchdog_lines_are_warnings_not_scenario_errors(tmp_path: Path) -> None:
    from bench.sip_load import read_sipp_stats

    stat = tmp_path / "s.csv"
    stat.write_text("StartTime;CurrentTime;TotalCallCreated;SuccessfulCall(C);FailedCall(C);Retransmissions(C)\n"
                    "2026-11-26\t12:00:00.0\t100.0;2026-11-26\t12:00:02.0\t102.0;10;9;1;3\n")
    err = tmp_path / "e.log"
    err.write_text("sipp: The following events occurred:\n"
                   "2026-11-26\t12:00:01.0\t101.0: Overload warning: the minor watchdog timer 500ms has been "
                   "tripped (612), 119 trips remaining.\n"
                   "2026-11-26\t12:00:01.5\t101.5: Aborting call on unexpected message for Call-Id 'x': "
                   "while expecting '200' (index 7), received 'SIP/2.0 481'\n")
    stats = read_sipp_stats(stat, 1, err)
    assert (stats.created, stats.successful, stats.failed, stats.retransmissions) == (10, 9, 1, 3)
    assert stats.elapsed_s == 2.0
    assert len(stats.errors) == 1 and "Aborting call" in stats.errors[0]
    assert len(stats.warnings) == 1 and "watchdog" in stats.warnings[0]


def test_requests_sipp_answered_itself_are_counted_apart_from_errors(tmp_path: Path) -> None:
    """SIPp answers requests outside its scenario calls itself (-aa), e.g. the gateway's unsolicited MWI NOTIFY,
    and reports each such call as aborted when it exits; entries are not always ended by a newline."""
    from bench.sip_load import read_sipp_stats

    stat = tmp_path / "s.csv"
    stat.write_text("StartTime;CurrentTime;TotalCallCreated;SuccessfulCall(C);FailedCall(C);Retransmissions(C)\n"
                    "2026-11-26\t12:00:00.0\t100.0;2026-11-26\t12:00:02.0\t102.0;10;10;0;0\n")
    err = tmp_path / "e.log"
    auto = ("2026-11-27\t05:09:20.044470\t1795756160.044470: Automatic response mode for an unexpected INFO, "
            "NOTIFY, OPTIONS or UPDATE for call: {}@sipgw.lab")
    aborted = "2026-11-27\t05:09:21.947\t1795756161.947: Aborted call with Call-ID '{}'"
    err.write_text("The following events occurred:\n" + auto.format("n1") + auto.format("n2")
                   + aborted.format("n1@sipgw.lab") + aborted.format("n2@sipgw.lab")
                   + aborted.format("scenario-call-7@127.0.0.1") + "\n")
    stats = read_sipp_stats(stat, 0, err)
    assert stats.auto_answered == 2
    assert stats.errors == ["2026-11-27\t05:09:21.947\t1795756161.947: Aborted call with Call-ID "
                            "'scenario-call-7@127.0.0.1'"]
    assert stats.warnings == []
