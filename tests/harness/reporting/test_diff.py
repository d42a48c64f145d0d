"""Comparing a run with a baseline run: regressions, fixes, firmware drift, and `report --baseline`."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.reporting.diff import diff_matrices
from harness.reporting.model import Cell, ManifestDevice, Matrix, save_matrix


def _baseline(matrix: Matrix) -> Matrix:
    """The fixture run as it was a week earlier."""
    cells = []
    for c in matrix.cells:
        key = (c.device_id, c.feature)
        if key == ("poly-vvx450", "hold_resume"):
            c = Cell(device_id=c.device_id, feature=c.feature, outcome="pass")
        elif key == ("yealink-t46s", "dtmf"):
            c = Cell(device_id=c.device_id, feature=c.feature, outcome="fail", reason="DTMF 5 not detected")
        elif key == ("cisco-8865", "voicemail"):
            c = Cell(device_id=c.device_id, feature=c.feature, outcome="pass")
        elif key == ("audiocodes-c450hd", "dnd"):
            continue  # not run then
        cells.append(c)
    devices = []
    for d in matrix.manifest.devices:
        if d.id == "cisco-8865":
            d = ManifestDevice(**{**d.model_dump(), "firmware_read_back": "12-0-1MPP", "firmware_declared": "12-0-1MPP",
                                  "firmware_verdict": "supported"})
        elif d.id == "poly-vvx450":
            d = ManifestDevice(**{**d.model_dump(), "firmware_read_back": "5.9.6.1000"})
        devices.append(d)
    manifest = matrix.manifest.model_copy(update={"run_id": "20261119T120000Z-lab1", "devices": devices})
    return Matrix.build(manifest, matrix.features, cells)


def test_diff(run):
    _, matrix = run
    diff = diff_matrices(_baseline(matrix), matrix)
    kinds = {(c.device_id, c.feature): c.kind for c in diff.cells}
    assert kinds == {("poly-vvx450", "hold_resume"): "regression", ("yealink-t46s", "dtmf"): "fixed",
                     ("cisco-8865", "voicemail"): "changed", ("audiocodes-c450hd", "dnd"): "new"}
    assert [c.feature for c in diff.regressions] == ["hold_resume"]
    fw = {f.device_id: (f.before, f.after, f.kind) for f in diff.firmware}
    assert fw == {"cisco-8865": ("12-0-1MPP", "12-0-3MPP", "upgrade"),
                  "poly-vvx450": ("5.9.6.1000", "5.9.5.0614", "downgrade")}
    assert diff_matrices(matrix, matrix).cells == [] and diff_matrices(matrix, matrix).firmware == []
    back = diff_matrices(matrix, _baseline(matrix))
    assert {(c.device_id, c.feature): c.kind for c in back.cells}[("audiocodes-c450hd", "dnd")] == "not_run"


@pytest.fixture
def two_runs(tmp_path, run):
    run_dir, matrix = run
    base = tmp_path / "base"
    save_matrix(_baseline(matrix), base / "matrix.json")
    return run_dir, base


def test_report_with_baseline_fails_on_regression(two_runs, capsys):
    run_dir, base = two_runs
    assert main(["report", str(run_dir), "--baseline", str(base)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION poly-vvx450 hold_resume: pass -> fail: hold: no re-INVITE" in out
    assert "firmware upgrade: cisco-8865 12-0-1MPP -> 12-0-3MPP (supported -> newer_than_approved)" in out
    diff = json.loads((run_dir / "diff.json").read_text())
    assert diff["regressions"] == 1 and diff["baseline_run_id"] == "20261119T120000Z-lab1"
    html = (run_dir / "matrix.html").read_text()
    assert 'id="changes"' in html and "change-regression" in html and "downgrade from 5.9.6.1000" in html
    # the same run against itself: nothing regressed
    assert main(["report", str(run_dir), "--baseline", str(run_dir)]) == 0
    assert "0 cell change(s), 0 firmware change(s)" in capsys.readouterr().out


def test_bad_baseline_is_bad_input(two_runs, tmp_path, capsys):
    run_dir, base = two_runs
    (base / "matrix.json").write_text('{"schema": 1, "manifest": 3}')
    assert main(["report", str(run_dir), "--baseline", str(base)]) == 2
    err = capsys.readouterr().err
    assert f"{base / 'matrix.json'}:1:27: manifest: Input should be a valid dictionary" in err
    assert main(["report", str(run_dir), "--baseline", str(tmp_path / "nope")]) == 2
    assert "no such baseline run directory" in capsys.readouterr().err
