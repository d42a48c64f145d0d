"""The results database on SQLite: recording, history, stability, firmware drift, changed-only, regressions,
an unreachable database, and the `history` command."""

from __future__ import annotations

import json
import socket
import time
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, text

from harness.cli import main
from harness.history.charts import trends_section
from harness.history.db import SCHEMA_VERSION, ResultsDB, ResultsDBError, record_run
from tests.harness.history.helpers import device, matrix, result


def three_runs() -> list:
    """Run 1 and 2 on 5.9.5.0614 (make_calls passes, hold is flaky once); run 3 on 6.4.3.5018: hold fails."""
    return [
        matrix("run-1", 1, [device()], {("poly-vvx450", "make_calls"): [result("pass", 3.0)],
                                        ("poly-vvx450", "hold_resume"): [result("pass", 5.0)]}),
        matrix("run-2", 2, [device()], {("poly-vvx450", "make_calls"): [result("pass", 3.0)],
                                        ("poly-vvx450", "hold_resume"): [result("flaky", 5.0, ["error", "pass"])]}),
        matrix("run-3", 3, [device(firmware="6.4.3.5018")],
               {("poly-vvx450", "make_calls"): [result("pass", 3.0)],
                ("poly-vvx450", "hold_resume"): [result("fail", 6.0)]}),
    ]


def check_history(url: str) -> None:
    """Shared by the SQLite and PostgreSQL tests."""
    runs = three_runs()
    with ResultsDB(url) as db:
        assert db.schema_version() == SCHEMA_VERSION
        for m in runs[:2]:
            db.record(m)
        # drift is said before run 3: the inventory now declares another firmware than run 2 reported
        inv = [SimpleNamespace(id="poly-vvx450", firmware="6.4.3.5018", vendor="Poly", model="VVX 450")]
        drift = db.drift(inv)
        assert [(d.before, d.after, d.source) for d in drift] == [("5.9.5.0614", "6.4.3.5018", "previous run run-2")]
        assert db.changed_since_last_pass(inv) == {"poly-vvx450": "firmware 5.9.5.0614 → 6.4.3.5018 since run run-2"}
        same = [SimpleNamespace(id="poly-vvx450", firmware="5.9.5.0614", vendor="Poly", model="VVX 450")]
        assert db.drift(same) == [] and db.changed_since_last_pass(same) == {}
        new = [SimpleNamespace(id="yealink-t46s", firmware="66.86.0.15", vendor="Yealink", model="T46S")]
        assert db.changed_since_last_pass(new) == {"yealink-t46s": "no recorded pass"}
        # regression: hold passed (flaky counts as a pass) on the previous firmware, fails on the new one
        regs = db.regressions(runs[2])
        assert [(r.feature, r.firmware_before, r.firmware_after, r.outcome_before) for r in regs] == \
            [("hold_resume", "5.9.5.0614", "6.4.3.5018", "flaky")]
        db.record(runs[2])
        db.record(runs[2])  # recorded again: replaced, not doubled
        hist = {h.feature: h for h in db.history(device="poly-vvx450")}
        hold = hist["hold_resume"]
        assert [p.outcome for p in hold.points] == ["pass", "flaky", "fail"]
        assert (hold.passes, hold.attempts, hold.flaky) == (2, 4, 1)
        assert hold.firmware_changes == [("5.9.5.0614", "6.4.3.5018", "run-3")]
        assert hist["make_calls"].stability == 1.0
        assert [h.feature for h in db.history(model="vvx-450", feature="make_calls")] == ["make_calls"]
        assert db.history(device="nobody") == []
        svg = trends_section(db.history())
    assert svg.count("<svg") == 3 and "hold_resume" in svg and "Poly VVX 450" in svg and "<script" not in svg


def test_sqlite_history_drift_regressions(tmp_path):
    check_history(f"sqlite:///{tmp_path / 'r' / 'results.db'}")


def test_unreachable_database_never_breaks_the_run(tmp_path):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    res = record_run(three_runs()[0], f"postgresql+psycopg://lab@127.0.0.1:{port}/results")
    assert not res.ok and "results not recorded" in res.message and f"127.0.0.1:{port}" in res.message
    assert time.monotonic() - t0 < 10
    bad = record_run(three_runs()[0], "not a url")
    assert not bad.ok and "not a database URL" in bad.message
    locked = tmp_path / "ro"
    locked.write_text("a file where a directory is expected")
    res = record_run(three_runs()[0], f"sqlite:///{locked / 'results.db'}")
    assert not res.ok and "the run's files are written" in res.message


def test_newer_schema_is_refused_with_both_versions(tmp_path):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    ResultsDB(url).close()
    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(text("INSERT INTO sipgw_schema (version, applied_at) VALUES (99, 'later')"))
    eng.dispose()
    with pytest.raises(ResultsDBError, match=f"schema version 99; this sipgw-lab knows up to {SCHEMA_VERSION}"):
        ResultsDB(url)


def test_history_command(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    with ResultsDB(url) as db:
        for m in three_runs():
            db.record(m)
    page = tmp_path / "history.html"
    assert main(["history", "--results-db", url, "--device", "poly-vvx450", "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert "..F" not in out and ".~F" in out  # hold_resume: pass, flaky, fail
    assert "firmware change: poly-vvx450 5.9.5.0614 → 6.4.3.5018 (run run-3)" in out
    html = page.read_text()
    assert html.count("<svg") == 3 and "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert main(["history", "--results-db", url, "--feature", "make_calls", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(d["feature"], d["passes"], d["attempts"]) for d in data] == [("make_calls", 3, 3)]
    assert main(["history", "--results-db", url, "--feature", "nope"]) == 2
    assert "unknown feature id" in capsys.readouterr().err
    assert main(["history", "--reports", str(tmp_path / "empty")]) == 2
    assert "no results database" in capsys.readouterr().err


def test_run_changed_only(tmp_path, capsys):
    out = tmp_path / "reports"
    inv = tmp_path / "lab.yaml"
    inv.write_text("gateway: {mode: embedded}\ndevices:\n"
                   "  - {id: poly-vvx450, vendor: Poly, model: VVX 450, firmware: 5.9.5.0614, driver: emulated,\n"
                   "     lines: [{number: '+14255550111', name: Blake Rivera}]}\n")
    with ResultsDB(f"sqlite:///{out / 'results.db'}") as db:
        for m in three_runs()[:2]:
            db.record(m)
    # the firmware the inventory declares passed last time: nothing to run, and nothing is run
    assert main(["run", "--inventory", str(inv), "--changed-only", "--out", str(out), "--no-live"]) == 0
    assert "no device's firmware or catalogue entry changed since its last pass" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["results.db"]
    # an unusable results database: --changed-only cannot decide, so it is bad input and nothing runs
    (tmp_path / "file").write_text("x")
    assert main(["run", "--inventory", str(inv), "--changed-only", "--out", str(out), "--no-live",
                 "--results-db", f"sqlite:///{tmp_path / 'file' / 'r.db'}"]) == 2
    assert "--changed-only needs the results history" in capsys.readouterr().err


def test_after_run_records_calls_out_regressions_and_survives_a_dead_database(tmp_path):
    import io

    from rich.console import Console

    from harness.history import runhooks

    runs = three_runs()
    url = f"sqlite:///{tmp_path / 'results.db'}"
    for n, m in enumerate(runs):
        run_dir = tmp_path / m.manifest.run_id
        run_dir.mkdir()
        (run_dir / "matrix.html").write_text("<html><body><h1>matrix</h1></body></html>")
        buf = io.StringIO()
        regs = runhooks.after_run(m, run_dir, url, Console(file=buf, width=200))
        assert f"recorded run {m.manifest.run_id}" in buf.getvalue()
        assert len(regs) == (1 if n == 2 else 0)
    html = (tmp_path / "run-3" / "matrix.html").read_text()
    assert "REGRESSION poly-vvx450 × hold_resume" in html and html.count("<svg") == 3
    assert json.loads((tmp_path / "run-3" / "regressions.json").read_text())[0]["feature"] == "hold_resume"
    runhooks.after_run(runs[2], tmp_path / "run-3", url, Console(file=io.StringIO()))  # again: replaced, not doubled
    assert (tmp_path / "run-3" / "matrix.html").read_text().count('id="sipgw-trends"') == 1

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    buf = io.StringIO()
    dead = f"postgresql+psycopg://lab:secret@127.0.0.1:{port}/results"
    assert runhooks.after_run(runs[0], tmp_path / "run-1", dead, Console(file=buf, width=300)) == []
    out = buf.getvalue()
    assert "results not recorded" in out and "the run's files are written" in out and "secret" not in out
    assert (tmp_path / "run-1" / "matrix.html").exists() and (tmp_path / "run-1" / "regressions.json").exists()


def test_pass_rate_chart_plots_passes_per_attempt(tmp_path):
    import re

    from harness.history.charts import pass_rate_over_runs

    with ResultsDB(f"sqlite:///{tmp_path / 'results.db'}") as db:
        for m in three_runs():
            db.record(m)
        hist = db.history(feature="hold_resume")
    svg = pass_rate_over_runs(hist)
    ys = [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg)]
    top, bottom = ys[0], ys[2]  # 100 % (pass), then 0 % (fail) on the new firmware
    assert bottom > top and abs(ys[1] - (top + bottom) / 2) < 0.2  # the flaky run: 1 pass in 2 attempts


def test_a_version_1_database_is_migrated_and_keeps_its_runs(tmp_path):
    from harness.history import db as dbmod

    url = f"sqlite:///{tmp_path / 'results.db'}"
    eng = create_engine(url)
    with eng.begin() as c:  # a database written by the first schema
        dbmod.schema_table.create(c)
        dbmod.MIGRATIONS[1](c)
        c.execute(dbmod.schema_table.insert().values(version=1, applied_at="then"))
    eng.dispose()
    with ResultsDB(url) as db:
        assert db.schema_version() == SCHEMA_VERSION == 2
        db.record(three_runs()[0])
    with ResultsDB(url) as db:
        assert db.run_ids() == ["run-1"]
    eng = create_engine(url)
    with eng.connect() as c:
        names = {r[0] for r in c.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'"))}
    eng.dispose()
    assert {"ix_run_devices_model", "ix_runs_started"} <= names
