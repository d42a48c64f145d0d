"""``sipgw-lab report RUN_DIR [--baseline BASE_RUN_DIR]``: rebuild matrix.html, junit.xml and the evidence pages
from matrix.json; with a baseline run, also list what changed since it (``diff.json`` and a section of matrix.html).

Exit status: 0 written (missing evidence files are listed as warnings); 1 written, and a cell regressed since the
baseline (it passed there and now fails or is blocked), so a CI job fails on it; 2 bad input — a run directory
that does not exist, or a matrix.json that is missing, not JSON or not a valid matrix, each problem given as
``file:line:col``. Nothing is written when the input is bad.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_BAD_INPUT = 2


class _BadRun(Exception):
    pass


def _load(run_dir: Path, what: str):
    from harness.reporting.model import MATRIX_FILE, MatrixFileError, load_matrix

    if not run_dir.exists():
        raise _BadRun(f"{run_dir}: no such {what} directory")
    if not run_dir.is_dir():
        raise _BadRun(f"{run_dir}: not a directory (give the {what} directory that holds {MATRIX_FILE})")
    try:
        return load_matrix(run_dir / MATRIX_FILE)
    except MatrixFileError as exc:
        lines = [f"{len(exc.problems)} problem(s) in {run_dir / MATRIX_FILE}; nothing was written"]
        raise _BadRun("\n".join(lines + [f"  {p}" for p in exc.problems])) from None


def cmd_report(args: argparse.Namespace) -> int:
    from harness.reporting.diff import diff_matrices
    from harness.reporting.html import render_report
    from harness.reporting.junit import write_junit

    run_dir = Path(args.run_dir)
    try:
        matrix = _load(run_dir, "run")
        baseline = _load(Path(args.baseline), "baseline run") if args.baseline else None
    except _BadRun as exc:
        print(f"sipgw-lab: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    diff = diff_matrices(baseline, matrix) if baseline is not None else None
    result = render_report(matrix, run_dir, diff)
    junit = write_junit(matrix, run_dir / "junit.xml")
    for warning in result.warnings:
        print(f"sipgw-lab: warning: {warning}", file=sys.stderr)
    counts = ", ".join(f"{n} {o}" for o, n in matrix.summary.counts.items() if n)
    print(f"{result.matrix_html}\n{junit}\n{len(result.evidence_pages)} evidence page(s) under {run_dir / 'evidence'}")
    print(f"run {matrix.manifest.run_id}: {len(matrix.manifest.devices)} devices, {len(matrix.cells)} cells"
          + (f" ({counts})" if counts else ""))
    if diff is None:
        return EXIT_OK
    path = run_dir / "diff.json"
    path.write_text(json.dumps(diff.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{path}: {len(diff.cells)} cell change(s), {len(diff.firmware)} firmware change(s) since run "
          f"{diff.baseline_run_id}")
    for fc in diff.firmware:
        print(f"  firmware {fc.kind}: {fc.device_id} {fc.before} -> {fc.after} "
              f"({fc.verdict_before} -> {fc.verdict_after})")
    for ch in diff.regressions:
        print(f"  REGRESSION {ch.device_id} {ch.feature}: {ch.before} -> {ch.after}: {ch.reason}")
    return EXIT_REGRESSION if diff.regressions else EXIT_OK


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("report", help="rebuild matrix.html, junit.xml and the evidence pages of a run",
                              description="Rebuild matrix.html, junit.xml and the evidence pages "
                                          "from RUN_DIR/matrix.json.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, e.g. reports/<run-id>")
    p.add_argument("--baseline", metavar="BASE_RUN_DIR",
                   help="an earlier run to compare with: list changed cells and firmware; exit 1 on a regression")
    p.set_defaults(func=cmd_report)
    return p
