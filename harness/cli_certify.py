"""``sipgw-lab certify`` and ``sipgw-lab verify``.

    sipgw-lab certify --inventory FILE --device ID [--repeat N] [--out reports/] [--results-db URL]
    sipgw-lab verify BUNDLE [--key PUBLIC_KEY_PEM]

``certify`` runs every suite that applies to one device, each test N times (default 3), and writes into the
run directory ``certification.json``, ``certification.html``, ``certification.pdf`` and a signed evidence bundle
``certification-<device>-<run-id>.zip``. Exit status: 0 certified; 1 not certified (a feature not certified, the
firmware verdict not acceptable, or the run broke); 2 bad input, nothing written.

``verify`` checks a bundle's signature and every file's SHA-256 and names each file changed, missing or added.
With ``--key`` (or when the lab's own public key exists in the lab data directory) it also checks the bundle was
signed by that key. Exit status: 0 intact; 1 altered; 2 not a bundle / unreadable.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shlex
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_parser(sub: Any) -> None:
    from harness.cli_run import SUITES_DIR

    p = sub.add_parser("certify", help="certify one device's firmware: every applicable suite N times, a report "
                                       "(HTML, PDF) and a signed evidence bundle")
    p.add_argument("--inventory", required=True, metavar="FILE", help="lab inventory that lists the device")
    p.add_argument("--device", required=True, metavar="ID", help="the device to certify")
    p.add_argument("--repeat", type=int, default=3, metavar="N", help="runs of every test (default 3)")
    p.add_argument("--out", default="reports", metavar="DIR", help="reports go to DIR/<run-id>/")
    p.add_argument("--results-db", default=None, metavar="URL",
                   help="results database (default sqlite in DIR/results.db; postgresql+psycopg://… to share)")
    p.add_argument("--gateway", default="embedded", metavar="embedded|HOST:PORT")
    p.add_argument("--rerun-budget", type=int, default=3, metavar="N")
    p.add_argument("--slowness", type=float, default=None, metavar="FACTOR")
    p.add_argument("--suites", default=str(SUITES_DIR), metavar="DIR", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_certify)

    p = sub.add_parser("verify", help="check an evidence bundle's signature and every file's digest")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("--key", metavar="PUBLIC_KEY_PEM",
                   help="the lab public key the bundle must be signed by (default: this lab's own, if present)")
    p.set_defaults(func=cmd_verify)

    from harness.history.cli import add_parser as add_history_parser

    add_history_parser(sub)


def rerun_command(args: argparse.Namespace) -> str:
    from harness.cli_run import SUITES_DIR

    words = ["sipgw-lab", "certify", "--inventory", os.path.abspath(args.inventory), "--device", args.device,
             "--repeat", str(args.repeat)]
    if args.gateway != "embedded":
        words += ["--gateway", args.gateway]
    if args.slowness is not None:
        words += ["--slowness", str(args.slowness)]
    if Path(args.suites).resolve() != SUITES_DIR.resolve():
        words += ["--suites", os.path.abspath(args.suites)]
    return " ".join(shlex.quote(w) for w in words)


def cmd_certify(args: argparse.Namespace) -> int:
    import pytest

    from harness.certify.bundle import lab_key, write_bundle
    from harness.certify.report import certification_data, write_report
    from harness.cli import _console, _load_inventory, verdict_table
    from harness.cli_run import RunInputError, RunObserver, check_args, pytest_args
    from harness.history import runhooks
    from harness.pytest_plugin.state import new_run_id

    run_args = argparse.Namespace(workers=1, repeat=args.repeat, rerun_budget=args.rerun_budget,
                                  slowness=args.slowness, gateway=args.gateway, feature=[], suites=args.suites,
                                  out=args.out, device=[args.device], no_live=True)
    try:
        check_args(run_args)
    except RunInputError as exc:
        print(f"sipgw-lab: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    inventory_path = os.path.abspath(args.inventory)
    inv = _load_inventory(inventory_path)
    dev = next((d for d in inv.devices if d.id == args.device), None)
    if dev is None:
        print(f"sipgw-lab: error: --device {args.device}: not in {inv.path}; devices: "
              f"{', '.join(sorted(d.id for d in inv.devices))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    con = _console()
    con.print(verdict_table(type(inv)(inv.path, inv.data, (dev,), inv.digest), "Certification pre-flight"))
    url = runhooks.resolve_url(args.results_db, args.out)
    runhooks.drift_before_run([dev], url, con)
    rerun = rerun_command(args)
    observer = RunObserver(None)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        ret = pytest.main(pytest_args(run_args, inventory_path, rerun, new_run_id()), plugins=[observer])
    run_dir = observer.run_dir
    if run_dir is not None and run_dir.exists():
        (run_dir / "pytest.log").write_text(log.getvalue(), encoding="utf-8")
    if observer.matrix is None or run_dir is None:
        sys.stderr.write("\n".join(log.getvalue().splitlines()[-40:]) + "\n")
        print(f"sipgw-lab: the certification run produced no results (pytest exit status {int(ret)})",
              file=sys.stderr)
        return EXIT_FAILED
    matrix = observer.matrix
    regressions = runhooks.after_run(matrix, run_dir, url, con, kind="certify")
    data = certification_data(matrix, dev.id, repeat=args.repeat, rerun_command=rerun, regressions=regressions)
    j, h, pdf, pdf_error = write_report(data, run_dir)
    if pdf_error:
        con.print(f"[red]{pdf_error}[/red]")
    files = [(str(p.relative_to(run_dir)), p) for p in sorted(run_dir.rglob("*"))
             if p.is_file() and not p.is_symlink() and not p.name.endswith((".zip", ".part"))
             and "allure-results" not in p.relative_to(run_dir).parts]
    bundle = write_bundle(run_dir / f"certification-{dev.id}-{matrix.manifest.run_id}.zip", files,
                          run_manifest=matrix.manifest.model_dump(mode="json"),
                          certification={k: data[k] for k in ("overall", "summary", "device", "firmware",
                                                              "rerun_command", "repeat")}
                          | {"verdicts": {f["id"]: f["verdict"] for f in data["features"]}},
                          key=lab_key())
    for f in data["features"]:
        con.print(f"  {f['verdict']:<15} {f['id']}: {f['reason']}", soft_wrap=True, markup=False)
    con.print(f"{data['overall'].upper()}: {dev.vendor} {dev.model} firmware {data['firmware']['firmware']} "
              f"({data['firmware']['verdict']})", markup=False)
    con.print(f"report: {h}\npdf: {pdf or 'not written'}\njson: {j}\nbundle: {bundle}\nre-run: {rerun}",
              markup=False, soft_wrap=True)
    return EXIT_OK if data["overall"] == "certified" and pdf is not None else EXIT_FAILED


def cmd_verify(args: argparse.Namespace) -> int:
    from harness.certify.bundle import PUB_FILE, BundleError, lab_data_dir, verify_bundle

    trusted = None
    key_path = Path(args.key) if args.key else lab_data_dir() / PUB_FILE
    if args.key and not key_path.is_file():
        print(f"sipgw-lab: error: --key {key_path}: no such file", file=sys.stderr)
        return EXIT_BAD_INPUT
    if key_path.is_file():
        trusted = key_path.read_text(encoding="utf-8")
    try:
        result = verify_bundle(args.bundle, trusted)
    except BundleError as exc:
        print(f"sipgw-lab: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as exc:  # a --key that is not a PEM public key
        print(f"sipgw-lab: error: --key {key_path}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for line in result.lines():
        print(line)
    return EXIT_OK if result.ok else EXIT_FAILED
