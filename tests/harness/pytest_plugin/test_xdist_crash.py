"""An xdist worker that dies in a test: the controller records the test as an ``error`` cell with the worker's exit
status and last output, retries it only within the run's rerun budget, reschedules the rest of the device's tests
and ends the run (pytester, against the stub lab of ``test_plugin``)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from tests.harness.pytest_plugin.test_plugin import CONFTEST, INVENTORY

pytest_plugins = ["pytester"]

# One suite for every case; CRASH_MODE says which device's test kills its worker, and how.
SUITE = textwrap.dedent("""
    import faulthandler
    import os
    from pathlib import Path

    import pytest

    def _ran(device, name):
        marker = Path(os.environ["CRASH_DIR"]) / f"{device.id}-{name}.ran"
        with open(marker, "a") as fh:
            fh.write("x\\n")
        return len(marker.read_text().split())

    @pytest.mark.feature("make_calls")
    def test_first(device):
        _ran(device, "first")

    @pytest.mark.feature("receive_calls")
    def test_crash(device):
        runs = _ran(device, "crash")
        mode = os.environ.get("CRASH_MODE", "")
        if f"{device.id}:exit-once" in mode and runs == 1:
            print("about to leave")
            os._exit(3)
        if f"{device.id}:segv" in mode:
            faulthandler._sigsegv()  # what a native library's crash does to the worker

    @pytest.mark.sipgw_infrastructure
    def test_lab_only():
        marker = Path(os.environ["CRASH_DIR"]) / "lab-only.ran"
        with open(marker, "a") as fh:
            fh.write("x\\n")
        if "lab:exit" in os.environ.get("CRASH_MODE", ""):
            os._exit(5)

    @pytest.mark.feature("dtmf")
    def test_after(device):
        runs = _ran(device, "after")
        if f"{device.id}:exit-last" in os.environ.get("CRASH_MODE", ""):
            os._exit(7)
""")

# Three interpreters start (controller and two workers, plus a replacement per crash): plugins this run does not
# need are left out.
LEAN = ("-p", "no:cacheprovider", "-p", "no:allure_pytest", "-p", "no:hypothesispytest", "-p", "no:anyio")


@pytest.fixture
def crash_lab(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makefile(".yaml", lab_inventory=INVENTORY)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=SUITE)
    (pytester.path / "ran").mkdir()
    monkeypatch.setenv("CRASH_DIR", str(pytester.path / "ran"))
    return pytester


def _run(lab: pytest.Pytester, mode: str, budget: int, *devices: str) -> tuple[pytest.RunResult, dict]:
    os.environ["CRASH_MODE"] = mode  # monkeypatch (fixture) restores the environment
    args = ["-n", "2", "--dist", "loadgroup", "--sipgw-report", "reports", "--rerun-budget", str(budget), *LEAN]
    for d in devices:
        args += ["--device", d]
    result = lab.runpytest_subprocess(*args, timeout=150)
    runs = [p for p in (lab.path / "reports").iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(runs) == 1, result.stdout.str()[-3000:]
    return result, json.loads((runs[0] / "matrix.json").read_text())


def _test(matrix: dict, device: str, name: str) -> dict:
    found = [t for c in matrix["cells"] if c["device_id"] == device for t in c["tests"]
             if t["name"].startswith(name + "[")]
    assert len(found) == 1, (device, name, [t["name"] for c in matrix["cells"] for t in c["tests"]])
    return found[0]


def _runs(lab: pytest.Pytester, device: str, name: str) -> int:  # how often a device's test ran
    path = lab.path / "ran" / f"{device}-{name}.ran"
    return len(path.read_text().split()) if path.exists() else 0


def test_a_crash_within_the_budget_is_retried_and_becomes_flaky(crash_lab: pytest.Pytester,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRASH_MODE", "")
    result, m = _run(crash_lab, "poly-vvx450:exit-once", 1, "poly-vvx450", "yealink-t46s")
    crashed = _test(m, "poly-vvx450", "test_crash")
    assert crashed["outcome"] == "flaky", crashed
    first, second = crashed["attempts"]
    assert first["outcome"] == "error" and second["outcome"] == "pass"
    assert "xdist worker gw" in first["error"] and "exit status 3" in first["error"]
    assert "(call)" in first["error"]
    assert "exit status 3" in crashed["reason"]
    # The rest of the device's group ran once on the replacement worker; the other device was not disturbed.
    assert _test(m, "poly-vvx450", "test_after")["outcome"] == "pass"
    assert _test(m, "yealink-t46s", "test_crash")["outcome"] == "pass"
    assert (_runs(crash_lab, "poly-vvx450", "first"), _runs(crash_lab, "poly-vvx450", "crash"),
            _runs(crash_lab, "poly-vvx450", "after")) == (1, 2, 1)
    assert m["summary"]["counts"]["flaky"] == 1 and m["summary"]["counts"]["pass"] == 5
    result.stdout.fnmatch_lines(["*replacing crashed worker*"])


def test_a_crash_past_the_budget_is_an_error_cell_and_never_rerun(crash_lab: pytest.Pytester,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRASH_MODE", "")
    # yealink: a segfault in the middle of its group; poly: os._exit in its group's last test (no test left
    # behind it, so the controller sends the report itself).
    result, m = _run(crash_lab, "yealink-t46s:segv poly-vvx450:exit-last lab:exit", 0, "poly-vvx450",
                     "yealink-t46s")
    segv = _test(m, "yealink-t46s", "test_crash")
    assert segv["outcome"] == "error", segv
    assert "killed by SIGSEGV" in segv["reason"] and "(call)" in segv["reason"]
    assert "Segmentation fault" in segv["reason"]  # faulthandler's report, the worker's last output
    assert [a["outcome"] for a in segv["attempts"]] == ["error"]
    assert _runs(crash_lab, "yealink-t46s", "crash") == 1  # not run again: the budget is 0
    assert _test(m, "yealink-t46s", "test_after")["outcome"] == "pass"  # rescheduled
    assert _runs(crash_lab, "yealink-t46s", "after") == 1
    last = _test(m, "poly-vvx450", "test_after")
    assert last["outcome"] == "error" and "exit status 7" in last["reason"], last
    assert _runs(crash_lab, "poly-vvx450", "after") == 1
    cell = next(c for c in m["cells"] if c["device_id"] == "yealink-t46s" and c["feature"] == "receive_calls")
    assert cell["outcome"] == "error" and "SIGSEGV" in cell["reason"]
    assert m["summary"]["counts"]["error"] == 2 and m["summary"]["counts"]["pass"] == 4
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*ERROR*test_crash*yealink-t46s*"])
    # A lab test without a device: the same budget (not run again), reported, no cell.
    assert (crash_lab.path / "ran" / "lab-only.ran").read_text().split() == ["x"]
    result.stdout.fnmatch_lines(["*ERROR at call of test_lab_only*", "*crashed (exit status 5)*"])
    assert not any("test_lab_only" in t["name"] for c in m["cells"] for t in c["tests"])
    logs = sorted(p.name for p in Path(crash_lab.path / "reports").glob("*/workers/gw*.log"))
    assert len(logs) >= 3, logs  # two workers and at least one replacement, each with its own output file
