"""``sipgw-lab history [--device ID | --model M] [--feature F] [--results-db URL] [--html FILE] [--json]``.

Per device × feature: the outcomes over time (one letter per run, oldest first), the stability score (passes
per attempt), the flaky count, and the firmware changes between runs. ``--html`` also writes the history page
with the trend charts (inline SVG, self-contained). Exit status 0; 2 on bad input or an unusable database.
"""

from __future__ import annotations

import argparse
import json
import sys
from html import escape
from pathlib import Path
from typing import Any

LETTER = {"pass": ".", "fail": "F", "not_applicable": "n", "blocked": "b", "error": "E", "flaky": "~"}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("history", help="outcomes over time per device × feature, stability, firmware changes")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--device", metavar="ID")
    who.add_argument("--model", metavar="M")
    p.add_argument("--feature", metavar="F")
    p.add_argument("--results-db", default=None, metavar="URL", help="default: sqlite in reports/results.db")
    p.add_argument("--reports", default="reports", metavar="DIR", help=argparse.SUPPRESS)
    p.add_argument("--html", metavar="FILE", help="also write the history page with trend charts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_history)


def cmd_history(args: argparse.Namespace) -> int:
    from harness.cli import _console
    from harness.history.db import ResultsDB, ResultsDBError, default_url

    if args.feature:
        from device_profiles.catalogue import default_catalogue

        known = default_catalogue().feature_ids()
        if args.feature not in known:
            print(f"sipgw-lab: error: --feature {args.feature}: unknown feature id; known: {', '.join(known)}",
                  file=sys.stderr)
            return 2
    url = args.results_db or default_url(args.reports)
    if not args.results_db and not (Path(args.reports) / "results.db").exists():
        print(f"sipgw-lab: error: no results database at {Path(args.reports) / 'results.db'} (no run recorded "
              "yet; or give --results-db URL)", file=sys.stderr)
        return 2
    try:
        with ResultsDB(url) as db:
            hist = db.history(device=args.device, model=args.model, feature=args.feature)
    except ResultsDBError as exc:
        print(f"sipgw-lab: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        out = [{"device_id": h.device_id, "vendor": h.vendor, "model": h.model, "feature": h.feature,
                "stability": h.stability, "passes": h.passes, "attempts": h.attempts, "flaky": h.flaky,
                "firmware_changes": [{"before": a, "after": b, "run_id": r} for a, b, r in h.firmware_changes],
                "runs": [p.__dict__ for p in h.points]} for h in hist]
        sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    else:
        from rich.table import Table

        table = Table(title=f"sipgw-lab history ({len(hist)} device × feature)")
        for col in ("device", "model", "feature", "runs (oldest first)", "stability", "flaky", "firmware"):
            table.add_column(col)
        for h in hist:
            fw = " → ".join(dict.fromkeys(p.firmware or "-" for p in h.points))
            table.add_row(h.device_id, f"{h.vendor} {h.model}", h.feature,
                          "".join(LETTER.get(p.outcome, "?") for p in h.points),
                          f"{h.passes}/{h.attempts}" + (f" ({h.stability:.0%})" if h.stability is not None else ""),
                          str(h.flaky), fw)
        con = _console()
        con.print(table)
        changes = {(h.device_id, a, b, r) for h in hist for a, b, r in h.firmware_changes}
        for dev, a, b, r in sorted(changes, key=lambda c: (c[0], c[3])):
            con.print(f"firmware change: {dev} {a} → {b} (run {r})", markup=False)
    if args.html:
        write_history_html(Path(args.html), hist, args)
        print(f"history page: {args.html}")
    return 0


def write_history_html(path: Path, hist: list[Any], args: argparse.Namespace) -> Path:
    from harness.history.charts import trends_section

    what = " ".join(f"{k}={v}" for k, v in (("device", args.device), ("model", args.model),
                                             ("feature", args.feature)) if v) or "all devices"
    rows = "".join(
        f"<tr><td>{escape(h.device_id)}</td><td>{escape(h.vendor)} {escape(h.model)}</td><td>{escape(h.feature)}"
        f"</td><td><code>{''.join(LETTER.get(p.outcome, '?') for p in h.points)}</code></td>"
        f"<td>{h.passes}/{h.attempts}</td><td>{h.flaky}</td>"
        f"<td>{escape(' → '.join(dict.fromkeys(p.firmware or '-' for p in h.points)))}</td></tr>" for h in hist)
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>sipgw-lab history</title>"
            "<style>body{font-family:sans-serif;font-size:13px}td,th{border:1px solid #ccc;padding:2px 5px}"
            "table{border-collapse:collapse}</style></head><body>"
            f"<h1>sipgw-lab history: {escape(what)}</h1><table><tr><th>device</th><th>model</th><th>feature</th>"
            f"<th>runs</th><th>passes/attempts</th><th>flaky</th><th>firmware</th></tr>{rows}</table>"
            f"{trends_section(hist)}</body></html>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
