"""``sipgw-lab report RUN_DIR``: rebuild matrix.html, junit.xml and the evidence pages from matrix.json.

Exit status: 0 written (missing evidence files are listed as warnings); 2 bad input — RUN_DIR is not a directory,
or its matrix.json is missing, not JSON or not a valid matrix, each problem given as ``file:line:col``. Nothing is
written when the input is bad.
"""

from __future__ import annotations

import argparse
import sys

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.reporting.html import render_report
    from harness.reporting.junit import write_junit
    from harness.reporting.model import MATRIX_FILE, MatrixFileError, load_matrix

    run_dir = Path(args.run_dir)
    if not run_dir.exists():
        print(f"sipgw-lab: error: {run_dir}: no such run directory", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not run_dir.is_dir():
        print(f"sipgw-lab: error: {run_dir}: not a directory (give the run directory that holds {MATRIX_FILE})",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        matrix = load_matrix(run_dir / MATRIX_FILE)
    except MatrixFileError as exc:
        print(f"sipgw-lab: error: {len(exc.problems)} problem(s) in {run_dir / MATRIX_FILE}; nothing was written",
              file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    result = render_report(matrix, run_dir)
    junit = write_junit(matrix, run_dir / "junit.xml")
    for warning in result.warnings:
        print(f"sipgw-lab: warning: {warning}", file=sys.stderr)
    counts = ", ".join(f"{n} {o}" for o, n in matrix.summary.counts.items() if n)
    print(f"{result.matrix_html}\n{junit}\n{len(result.evidence_pages)} evidence page(s) under {run_dir / 'evidence'}")
    print(f"run {matrix.manifest.run_id}: {len(matrix.manifest.devices)} devices, {len(matrix.cells)} cells"
          + (f" ({counts})" if counts else ""))
    return EXIT_OK


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("report", help="rebuild matrix.html, junit.xml and the evidence pages of a run",
                              description="Rebuild matrix.html, junit.xml and the evidence pages "
                                          "from RUN_DIR/matrix.json.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, e.g. reports/<run-id>")
    p.set_defaults(func=cmd_report)
    return p
