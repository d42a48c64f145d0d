"""``sipgw-lab report RUN_DIR``: rebuild the renderings from matrix.json; exit 2 with located errors on bad input."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET

from harness.cli import main
from tests.harness.reporting.fixture_run import build_run


def test_report_rebuilds_everything(tmp_path, capsys):
    build_run(tmp_path)
    assert main(["report", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "79 evidence page(s)" in out and "48 pass, 1 fail" in out and err == ""
    html = (tmp_path / "matrix.html").read_text()
    assert "poly-vvx450" in html and "evidence/poly-vvx450/hold_resume/index.html" in html
    assert ET.parse(tmp_path / "junit.xml").getroot().get("tests") == "79"
    page = (tmp_path / "evidence/poly-vvx450/hold_resume/index.html").read_text()
    assert "no re-INVITE with a=sendonly" in page and "<svg" in page


def test_missing_evidence_is_a_warning(tmp_path, capsys):
    m = build_run(tmp_path)
    ev = m.cell("yealink-t46s", "make_calls").tests[0].evidence
    (tmp_path / ev.pcap).unlink()
    assert main(["report", str(tmp_path)]) == 0
    _, err = capsys.readouterr()
    assert err == (f"sipgw-lab: warning: evidence/yealink-t46s/make_calls: test_make_calls[yealink-t46s]: "
                   f"pcap slice: missing file {ev.pcap}\n")
    page = (tmp_path / "evidence/yealink-t46s/make_calls/index.html").read_text()
    assert f"pcap slice: missing file {ev.pcap}" in page


def test_bad_run_dirs(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    (tmp_path / "f").write_text("x")
    assert main(["report", str(tmp_path / "f")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert f"{tmp_path / 'matrix.json'}:1:1: file not found" in capsys.readouterr().err


def test_bad_matrix_writes_nothing(tmp_path, capsys):
    build_run(tmp_path)
    good = tmp_path / "matrix.json"
    data = json.loads(good.read_text())
    data["cells"][7]["outcome"] = "PASS"
    good.write_text(json.dumps(data, indent=2))
    for name in ("matrix.html", "junit.xml"):
        (tmp_path / name).unlink(missing_ok=True)
    shutil.rmtree(tmp_path / "evidence/algo-8301", ignore_errors=True)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "1 problem(s)" in err and "nothing was written" in err
    assert "matrix.json:" in err and "cells[7].outcome" in err and "'PASS'" in err
    assert not (tmp_path / "matrix.html").exists() and not (tmp_path / "junit.xml").exists()
    assert not (tmp_path / "evidence/algo-8301").exists()
