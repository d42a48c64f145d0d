"""What ``sipgw-lab run`` and ``sipgw-lab certify`` do with the results database around a run.

Nothing here may break or slow a run: every database problem becomes one line of output, and the run's own
files are written regardless.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from harness.history.charts import trends_section
from harness.history.db import (
    FirmwareDrift,
    Regression,
    ResultsDB,
    ResultsDBError,
    _cause,
    default_url,
    display_url,
)

MARK_START, MARK_END = "<!-- sipgw-history -->", "<!-- /sipgw-history -->"
REGRESSIONS_FILE = "regressions.json"
TREND_RUNS = 30  # matrix.html draws the trends of the run's devices over the most recent runs


def resolve_url(arg: str | None, out_dir: str | Path) -> str:
    return arg or default_url(out_dir)


def say(con: Any, text: str) -> None:
    con.print(text, soft_wrap=True, markup=False, highlight=False)


def _no_sqlite_file(url: str) -> bool:
    """A SQLite database that does not exist yet: nothing recorded, and nothing is created before the run."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        u = make_url(url)
    except ArgumentError:
        return False
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return False
    path = Path(u.database)  # a path through a plain file is not "missing" but unusable: ResultsDB says why
    return not path.exists() and not any(p.exists() and not p.is_dir() for p in path.parents)


def drift_before_run(devices: list[Any], url: str, con: Any) -> list[FirmwareDrift]:
    """Say, before any test runs, which devices declare a firmware other than in their previous run."""
    if _no_sqlite_file(url):
        return []
    try:
        with ResultsDB(url) as db:
            drift = db.drift(devices)
    except ResultsDBError as exc:
        say(con, f"results history unavailable: {exc}; firmware drift since the previous run not checked")
        return []
    for d in drift:
        say(con, d.describe())
    return drift


def changed_only(devices: list[Any], url: str) -> dict[str, str]:
    """Devices whose firmware or catalogue entry changed since their last pass → why (raises ResultsDBError)."""
    if _no_sqlite_file(url):
        return {d.id: "no recorded pass" for d in devices}
    with ResultsDB(url) as db:
        return db.changed_since_last_pass(devices)


def read_back_drift(matrix: Any) -> list[FirmwareDrift]:
    return [FirmwareDrift(d.id, d.firmware_declared, d.firmware_read_back, "inventory")
            for d in matrix.manifest.devices
            if d.firmware_read_back and d.firmware_declared and d.firmware_read_back != d.firmware_declared]


def after_run(matrix: Any, run_dir: Path | None, url: str, con: Any, *, kind: str = "run") -> list[Regression]:
    """Record the run, call out regressions and firmware read back unlike the inventory, draw the trends."""
    for d in read_back_drift(matrix):
        say(con, d.describe())
    regressions: list[Regression] = []
    histories = []
    try:  # one connection attempt: an unreachable database costs at most its connect timeout once
        with ResultsDB(url) as db:
            regressions = db.regressions(matrix)
            db.record(matrix, kind=kind, run_dir=run_dir)
            say(con, f"recorded run {matrix.manifest.run_id} in {db.where}")
            histories = db.history(devices=[d.id for d in matrix.manifest.devices], last_runs=TREND_RUNS)
    except ResultsDBError as exc:
        say(con, f"results not recorded: {exc}; the run's files are written")
    except (SQLAlchemyError, OSError) as exc:
        say(con, f"results not recorded in {display_url(url)}: {_cause(exc)}; the run's files are written")
    for r in regressions:
        say(con, r.describe())
    if run_dir is not None and run_dir.is_dir():
        (run_dir / REGRESSIONS_FILE).write_text(json.dumps(
            [r.__dict__ for r in regressions], indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        html = run_dir / "matrix.html"
        if html.exists():
            inject(html, regressions_section(regressions, read_back_drift(matrix))
                   + (trends_section(histories) if histories else ""))
    return regressions


def regressions_section(regressions: list[Regression], drift: list[FirmwareDrift]) -> str:
    from html import escape

    parts = ['<section id="sipgw-regressions"><h2>Regressions since the previous firmware</h2>']
    if regressions:
        parts.append("<ul>" + "".join(f'<li class="regression"><strong>REGRESSION</strong> {escape(r.describe())}'
                                      "</li>" for r in regressions) + "</ul>")
    else:
        parts.append("<p>None: no cell that passed on a model's previous firmware fails on its new one.</p>")
    if drift:
        parts.append("<h3>Firmware drift</h3><ul>" + "".join(f"<li>{escape(d.describe())}</li>" for d in drift)
                     + "</ul>")
    return "".join(parts) + "</section>"


def inject(html_path: Path, section: str) -> None:
    """Put ``section`` at the end of a page's body, replacing what an earlier call put there."""
    text = html_path.read_text(encoding="utf-8")
    text = re.sub(re.escape(MARK_START) + ".*?" + re.escape(MARK_END), "", text, flags=re.S)
    block = f"{MARK_START}{section}{MARK_END}"
    text = text.replace("</body>", block + "</body>", 1) if "</body>" in text else text + block
    html_path.write_text(text, encoding="utf-8")
