"""``sipgw-lab run``: input checks (exit 2, nothing written), exit status from the matrix, the --all-models
inventory, and one end-to-end run on the fake driver (a suites folder of its own, no processes or sockets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from device_profiles.catalogue import default_catalogue
from harness.cli import main
from harness.cli_run import all_models_inventory_text, auto_workers, exit_status, models_not_emulated
from harness.inventory import load_inventory
from harness.reporting.model import Matrix, features_from_catalogue

FAKE_INVENTORY = """\
gateway: {mode: embedded}
devices:
  - id: poly-vvx450
    vendor: Poly
    model: VVX 450
    firmware: 5.9.5.0614
    driver: fake
    lines: [{number: "+14255550111", name: Blake Rivera}]
  - id: yealink-t46s
    vendor: Yealink
    model: T46S
    firmware: 66.86.0.15
    driver: fake
    lines: [{number: "+14255550121", name: Drew Patel}]
  - id: cisco-7841-old
    vendor: Cisco
    model: "7841"
    firmware: 11.0.1MPP
    driver: fake
    lines: [{number: "+14255550105", name: Stock Room}]
"""

FAKE_CONFTEST = """\
import pytest
from harness.lab import Lab

@pytest.fixture(scope="session")
def sipgw_lab_factory(tmp_path_factory):
    def make(settings):
        return Lab.from_inventory(str(settings.inventory), gateway="fake", media=None,
                                  data_dir=tmp_path_factory.mktemp("fake-lab"))
    return make
"""

FAKE_SUITE = """\
import pytest
from harness.protocols import CallControl, CallState

@pytest.mark.feature("make_calls")
def test_call_another_device(device, other_device, evidence):
    out = device[CallControl].dial(other_device.number)
    callee = other_device[CallControl]
    inc = callee.wait_for_incoming(timeout=2)
    callee.answer(inc.id)
    assert device[CallControl].wait_for_state(out.id, CallState.CONFIRMED, timeout=2).state == CallState.CONFIRMED
    device[CallControl].hangup(out.id)
    assert callee.wait_for_state(inc.id, CallState.DISCONNECTED, timeout=2).state == CallState.DISCONNECTED

@pytest.mark.feature("receive_calls")
def test_registered(device):
    assert device[CallControl].registration(0).ok
    assert device.id != "yealink-t46s" or FAIL_YEALINK is False

FAIL_YEALINK = False
"""


@pytest.fixture
def fake_lab(tmp_path: Path) -> Path:
    (tmp_path / "lab.yaml").write_text(FAKE_INVENTORY)
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "conftest.py").write_text(FAKE_CONFTEST)
    (suites / "test_fake_suite.py").write_text(FAKE_SUITE)
    return tmp_path


def _run(lab: Path, *extra: str) -> int:
    return main(["run", "--inventory", str(lab / "lab.yaml"), "--out", str(lab / "reports"),
                 "--suites", str(lab / "suites"), "--no-live",
                 *(() if "--workers" in extra else ("--workers", "1")), *extra])


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers 0: expected 1 to 64"),
    (["--feature", "teleport"], "--feature teleport: unknown feature id; known: make_calls"),
    (["--device", "nope"], "--device nope: not in"),
    (["--gateway", "somewhere"], "--gateway 'somewhere': expected 'embedded' or HOST:PORT"),
    (["--repeat", "0"], "--repeat 0: expected 1 to 1000"),
])
def test_bad_input_exits_2_and_writes_nothing(fake_lab: Path, capsys, args, message) -> None:
    assert _run(fake_lab, *args) == 2
    assert message in capsys.readouterr().err
    assert not (fake_lab / "reports").exists()


def test_unreadable_inventory_exits_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "lab.yaml"
    bad.write_text("devices:\n  - id: x\n    vendor: Nokia\n    model: 3310\n    driver: emulated\n")
    assert main(["run", "--inventory", str(bad), "--out", str(tmp_path / "reports")]) == 2
    err = capsys.readouterr().err
    assert "lab.yaml:2:5" in err and "lines" in err and "nothing was written" in err
    assert not (tmp_path / "reports").exists()


def test_run_on_the_fake_driver_writes_reports_and_exits_0(fake_lab: Path, capsys) -> None:
    assert _run(fake_lab) == 0
    out = capsys.readouterr().out
    assert "cisco-7841-old" in out and "below_minimum" in out
    run_dir = (fake_lab / "reports" / "latest").resolve()
    m = json.loads((run_dir / "matrix.json").read_text())
    outcomes = {(c["device_id"], c["feature"]): c["outcome"] for c in m["cells"]}
    assert outcomes == {
        ("poly-vvx450", "make_calls"): "pass", ("poly-vvx450", "receive_calls"): "pass",
        ("yealink-t46s", "make_calls"): "pass", ("yealink-t46s", "receive_calls"): "pass",
        ("cisco-7841-old", "make_calls"): "blocked", ("cisco-7841-old", "receive_calls"): "blocked",
    }
    assert m["manifest"]["command_line"].startswith("sipgw-lab ")
    assert (run_dir / "pytest.log").read_text().count("passed") >= 1
    assert (run_dir / "junit.xml").exists() and (run_dir / "matrix.html").exists()
    assert list((run_dir / "allure-results").glob("*-result.json")), "allure-pytest wrote no results"


def test_a_failed_cell_exits_1(fake_lab: Path, capsys) -> None:
    suite = fake_lab / "suites" / "test_fake_suite.py"
    # A module name of its own: an earlier in-process run may have imported test_fake_suite already.
    (fake_lab / "suites" / "test_fake_failing.py").write_text(
        suite.read_text().replace("FAIL_YEALINK = False", "FAIL_YEALINK = True"))
    suite.unlink()
    assert _run(fake_lab, "--feature", "receive_calls") == 1
    out = capsys.readouterr().out
    assert "fail yealink-t46s × receive_calls" in out


def _matrix(cells: list[dict], verdicts: dict[str, str]) -> Matrix:
    devices = [{"id": d, "vendor": "Poly", "model": "VVX 450", "kind": "desk_phone", "firmware_verdict": v}
               for d, v in verdicts.items()]
    manifest = {"run_id": "r1", "sipgw_lab_version": "0", "catalogue_digest": "c", "inventory_digest": "i",
                "inventory_path": "lab.yaml", "gateway_build": "g", "command_line": "x",
                "started_at": "2026-01-01T00:00:00Z", "host": "h", "devices": devices}
    return Matrix.build(manifest, features_from_catalogue(), cells)


@pytest.mark.parametrize("outcome, verdict, status", [
    ("pass", "supported", 0),
    ("not_applicable", "supported", 0),
    ("blocked", "below_minimum", 0),
    ("blocked", "supported", 1),  # blocked because the device broke: not a clean run
    ("flaky", "supported", 1),
    ("error", "supported", 1),
    ("fail", "supported", 1),
])
def test_exit_status_from_cells(outcome, verdict, status) -> None:
    cell = {"device_id": "d1", "feature": "make_calls", "outcome": outcome, "reason": "r"}
    if outcome == "flaky":
        cell["tests"] = [{"nodeid": "t", "name": "t", "outcome": "flaky", "duration_s": 1,
                          "attempts": [{"outcome": "error", "duration_s": 0.5},
                                       {"outcome": "pass", "duration_s": 0.5}]}]
    assert exit_status(_matrix([cell], {"d1": verdict})) == status


def test_all_models_inventory_has_every_catalogue_model() -> None:
    text = all_models_inventory_text()
    inv = load_inventory("all-models.yaml", text=text)
    cat = default_catalogue()
    skipped = {name for name, _ in models_not_emulated()}
    assert all(reason for _, reason in models_not_emulated())
    assert len(inv.devices) == len(cat) - len(skipped)
    assert {(d.vendor, d.model) for d in inv.devices} == {
        (m.vendor, m.model) for m in cat if f"{m.vendor} {m.model}" not in skipped}
    assert all(d.verdict.acceptable for d in inv.devices)
    assert all(d.driver == "emulated" for d in inv.devices)


def test_auto_workers_three_per_cpu_at_most_one_per_device() -> None:
    assert auto_workers(19, cpus=2) == 6
    assert auto_workers(3, cpus=2) == 3  # a device's tests stay on one worker: no idle workers
    assert auto_workers(0, cpus=2) == 1
    assert auto_workers(200, cpus=64) == 16
    assert auto_workers(5, cpus=1) == 3


def test_workers_must_be_a_count_or_auto(fake_lab: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        _run(fake_lab, "--workers", "two")
    assert exc.value.code == 2 and "expected a number of workers or 'auto'" in capsys.readouterr().err
    assert _run(fake_lab, "--workers", "-1") == 2
    assert "--workers -1: expected 1 to 64, or auto" in capsys.readouterr().err
    assert not (fake_lab / "reports").exists()
