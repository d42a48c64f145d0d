"""``sipgw-lab run`` on examples/simulated-physical-lab.yaml: the basic call suite through the vendor drivers
(Poly REST and Yealink Action URI here) against their simulators, read from the run's matrix.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def test_basic_call_suite_through_vendor_drivers(tmp_path):
    suites = tmp_path / "suites"  # the basic call suite alone (other suites' needs are not this test's subject)
    suites.mkdir()
    for name in ("conftest.py", "test_basic_call.py"):
        (suites / name).symlink_to(ROOT / "test_suites" / name)
    cmd = [sys.executable, "-m", "harness.cli", "run", "--inventory", str(ROOT / "examples" /
           "simulated-physical-lab.yaml"), "--device", "poly-vvx450", "--device", "yealink-t46s", "--no-live",
           "--suites", str(suites),
           "--out", str(tmp_path / "out")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "SIPGW_MANUAL": "none"})
    found = sorted({p.resolve() for p in (tmp_path / "out").glob("*/matrix.json")})  # the run dir (and a "latest" link)
    assert len(found) == 1, (found, proc.stdout[-2000:], proc.stderr[-2000:])
    matrix = json.loads(found[0].read_text())
    cells = {(c["device_id"], c["feature"]): c["outcome"] for c in matrix["cells"]}
    assert cells == {("poly-vvx450", "make_calls"): "pass", ("poly-vvx450", "receive_calls"): "pass",
                     ("yealink-t46s", "make_calls"): "pass", ("yealink-t46s", "receive_calls"): "pass"}, \
        proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0
    devices = {d["id"]: d for d in matrix["manifest"]["devices"]}
    assert devices["poly-vvx450"]["firmware_read_back"] == "6.4.3.5018"  # read over the Poly REST API


ENV = ("POLY_ADMIN_USER", "POLY_ADMIN_PASSWORD", "YEALINK_WEB_USER", "YEALINK_WEB_PASSWORD", "ALGO_API_PASSWORD",
       "MP_ADMIN_USER", "MP_ADMIN_PASSWORD")


def test_physical_lab_example_is_valid_and_names_a_missing_credential(monkeypatch):
    from harness.inventory import InventoryError, load_inventory

    for var in ENV:
        monkeypatch.setenv(var, "set-in-the-lab")
    inv = load_inventory(ROOT / "examples" / "physical-lab.yaml")
    drivers = {d.id: d.driver for d in inv.devices}
    assert drivers["poly-vvx450"] == "poly-rest" and drivers["gigaset-n870"] == "sip-side"
    monkeypatch.delenv("ALGO_API_PASSWORD")
    with pytest.raises(InventoryError, match="ALGO_API_PASSWORD"):
        load_inventory(ROOT / "examples" / "physical-lab.yaml")
