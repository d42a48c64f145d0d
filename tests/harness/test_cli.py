"""The sipgw-lab command line: output contracts and exit statuses (0 ok, 1 verdict, 2 bad input)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_catalogue_json_contract(capsys):
    code, out, _ = run(capsys, "catalogue", "--json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) >= 150
    for row in rows:
        assert {"vendor", "model", "kind", "min_firmware", "approved_firmware", "e911", "ports_usable",
                "ports_total", "notes"} <= set(row)
        assert isinstance(row["e911"], bool)
        if row["kind"] != "ata":
            assert row["ports_usable"] is None and row["ports_total"] is None
    mp = next(r for r in rows if r["model"] == "MP118-FXS")
    assert (mp["ports_usable"], mp["ports_total"]) == (6, 8)


def test_catalogue_vendor_filter_and_table(capsys):
    code, out, _ = run(capsys, "catalogue", "--vendor", "gigaset", "--json")
    assert code == 0 and {r["vendor"] for r in json.loads(out)} == {"Gigaset"}
    code, out, _ = run(capsys, "catalogue", "--vendor", "Algo")
    assert code == 0 and "8180g2" in out and "8301" in out and "VVX" not in out


def test_catalogue_unknown_vendor_is_bad_input(capsys):
    code, _, err = run(capsys, "catalogue", "--vendor", "Nokia")
    assert code == 2 and "unknown vendor 'Nokia'" in err


@pytest.mark.parametrize("argv,code,verdict", [
    (["check-firmware", "VVX 450", "5.9.5.0614"], 0, "supported"),
    (["check-firmware", "vvx450", "5.9.4"], 1, "below_minimum"),
    (["check-firmware", "N870 IP PRO", "2.52.0"], 0, "supported"),
    (["check-firmware", "6821", "12-0-3MPP"], 0, "newer_than_approved"),
    (["check-firmware", "VVX 455", "5.9.5"], 1, "unknown_model"),
    (["check-firmware", "T46S", "sixty-six"], 1, "unparseable"),
    (["check-firmware", "T46S", "66.86.0.15", "--vendor", "Yealink"], 0, "supported"),
])
def test_check_firmware_json(capsys, argv, code, verdict):
    got, out, _ = run(capsys, *argv, "--json")
    data = json.loads(out)
    assert got == code
    assert data["verdict"] == verdict
    assert {"vendor", "model", "verdict", "reason"} <= set(data)


@pytest.mark.parametrize("ua,code,expect", [
    ("PolycomVVX-VVX_400-UA/5.9.5.0614_0004f28e5a79", 0, {"vendor": "Poly", "model": "VVX 400",
                                                          "firmware": "5.9.5.0614", "verdict": "supported"}),
    ("Cisco-CP8851/12.1.1", 1, {"vendor": "Cisco", "model": "8851", "verdict": "wrong_family"}),
    ("Yealink SIP-T46S 66.82.0.20", 1, {"vendor": "Yealink", "model": "T46S", "verdict": "below_minimum"}),
    ("Mozilla/5.0 (X11; Linux x86_64)", 1, {"verdict": "unknown_model"}),
])
def test_check_ua_json(capsys, ua, code, expect):
    got, out, _ = run(capsys, "check-ua", ua, "--json")
    data = json.loads(out)
    assert got == code
    assert {"vendor", "model", "firmware", "verdict", "reason"} <= set(data)
    for key, value in expect.items():
        assert data[key] == value, (key, data)


def test_check_ua_human_output(capsys):
    code, out, _ = run(capsys, "check-ua", "Cisco-CP-8832-3PCC/11.3.5 (00562b043615)")
    assert code == 0 and "supported" in out and "8832" in out


def test_empty_arguments_are_bad_input(capsys):
    assert run(capsys, "check-ua", "  ")[0] == 2
    assert run(capsys, "check-firmware", "", "1.0")[0] == 2


def test_argument_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["check-firmware", "VVX 450"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_inventory_validate_default(capsys):
    code, out, _ = run(capsys, "inventory", "validate", str(ROOT / "lab_inventory.yaml"))
    assert code == 0
    assert "cisco-7841-old" in out and "below_minimum" in out
    code, out, _ = run(capsys, "inventory", "validate", str(ROOT / "lab_inventory.yaml"), "--json")
    data = json.loads(out)
    assert {d["id"]: d["verdict"] for d in data["devices"]}["cisco-7841-old"] == "below_minimum"


def test_inventory_errors_exit_2_and_write_nothing(capsys, tmp_path):
    bad = tmp_path / "lab.yaml"
    bad.write_text("devices:\n  - id: a\n    vendor: Poly\n    model: VVX 999\n    lines: [{number: '100'}]\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run(capsys, "inventory", "validate", str(bad))
    assert code == 2 and f"{bad}:4:12" in err and "VVX 999" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    code, _, err = run(capsys, "inventory", "validate", str(tmp_path / "missing.yaml"))
    assert code == 2 and "file not found" in err


def test_console_script_is_installed():
    exe = Path(sys.executable).with_name("sipgw-lab")
    proc = subprocess.run([str(exe), "check-firmware", "8832", "11.3.4MPP", "--json"], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "120"}, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["verdict"] == "below_minimum"
