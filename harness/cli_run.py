"""``sipgw-lab run``: the lab through the feature suites, with a live view, reports and an exit status.

    sipgw-lab run [--inventory FILE] [--feature F ...] [--device ID ...] [--workers N|auto] [--repeat N]
                  [--all-models] [--gateway embedded|HOST:PORT] [--out reports/]

It checks every input first (exit 2 and nothing written on bad input), prints each device's firmware verdict,
runs pytest on ``test_suites/`` with the sipgw-lab plugin (``-n N --dist loadgroup`` through pytest-xdist when
N > 1, so one device's tests stay on one worker; N is three per CPU by default, see :func:`auto_workers`),
shows a live device × feature view, and prints the matrix.
pytest's own output goes to ``<run dir>/pytest.log``.

Exit status: 0 when every cell is pass, not_applicable, or blocked by the device's firmware verdict; 1 when any
cell failed, errored, was flaky or was blocked for another reason (or the run itself broke); 2 on bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from harness.pytest_plugin.options import check_gateway
from harness.pytest_plugin.state import new_run_id

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
SUITES_DIR = Path(__file__).resolve().parent.parent / "test_suites"
OK_OUTCOMES = {"pass", "not_applicable"}


class RunInputError(Exception):
    """Bad input to ``sipgw-lab run``: the message says which argument and what is expected."""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="run the lab: every device through the feature suites, then write the reports")
    p.add_argument("--inventory", default="lab_inventory.yaml", metavar="FILE", help="lab inventory")
    p.add_argument("--feature", action="append", default=[], metavar="F",
                   help="only this seed feature id (repeatable)")
    p.add_argument("--device", action="append", default=[], metavar="ID", help="only this device (repeatable)")
    p.add_argument("--workers", type=_workers_arg, default="auto", metavar="N|auto",
                   help="parallel pytest-xdist workers (default auto: three per CPU, at most one per device run, "
                        "at most 16)")
    p.add_argument("--repeat", type=int, default=1, metavar="N", help="stability mode: every test N times")
    p.add_argument("--all-models", action="store_true",
                   help="one emulated device per catalogue model instead of the inventory's devices")
    p.add_argument("--gateway", default="embedded", metavar="embedded|HOST:PORT")
    p.add_argument("--out", default="reports", metavar="DIR", help="reports go to DIR/<run-id>/ (default reports/)")
    p.add_argument("--rerun-budget", type=int, default=3, metavar="N",
                   help="infrastructure errors that may be retried in the whole run")
    p.add_argument("--slowness", type=float, default=None, metavar="FACTOR", help="scale every deadline")
    p.add_argument("--suites", default=str(SUITES_DIR), metavar="DIR", help=argparse.SUPPRESS)
    p.add_argument("--no-live", action="store_true", help="no live view (for logs and CI)")
    p.add_argument("--results-db", default=None, metavar="URL",
                   help="results database (default sqlite in DIR/results.db; postgresql+psycopg://… to share)")
    p.add_argument("--changed-only", action="store_true",
                   help="only devices whose firmware or catalogue entry changed since their last pass")
    p.set_defaults(func=cmd_run)
    return p


# --- input checks ---------------------------------------------------------------------------------------------

def _workers_arg(value: str) -> int | str:
    value = value.strip().lower()
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a number of workers or 'auto'") from None


#: Most of a suite's time is spent waiting on events (SIP answers, recordings in real time, timers), so more xdist
#: workers than CPUs keep the CPUs busy; past three per CPU the audio checks start to starve (measured on 2 CPUs:
#: bench/README.md, "The lab run").
AUTO_WORKERS_PER_CPU = 3
AUTO_WORKERS_MAX = 16


def auto_workers(devices: int, cpus: int | None = None) -> int:
    """``--workers auto``: three per CPU, at most one worker per device that will run (a device's tests stay on
    one worker), at most 16, at least 1."""
    cpus = cpus or os.cpu_count() or 1
    return max(1, min(AUTO_WORKERS_PER_CPU * cpus, devices, AUTO_WORKERS_MAX))


def check_args(args: argparse.Namespace) -> None:
    from device_profiles.catalogue import default_catalogue

    if args.workers != "auto" and (args.workers < 1 or args.workers > 64):
        raise RunInputError(f"--workers {args.workers}: expected 1 to 64, or auto")
    if args.repeat < 1 or args.repeat > 1000:
        raise RunInputError(f"--repeat {args.repeat}: expected 1 to 1000")
    if args.rerun_budget < 0:
        raise RunInputError(f"--rerun-budget {args.rerun_budget}: expected 0 or more")
    if args.slowness is not None and not 0 < args.slowness <= 100:
        raise RunInputError(f"--slowness {args.slowness}: expected a factor above 0 and at most 100")
    try:
        check_gateway(args.gateway)
    except ValueError as exc:
        raise RunInputError(str(exc)) from None
    known = default_catalogue().feature_ids()
    unknown = [f for f in args.feature if f not in known]
    if unknown:
        raise RunInputError(f"--feature {', '.join(unknown)}: unknown feature id; known: {', '.join(known)}")
    suites = Path(args.suites)
    if not suites.is_dir():
        raise RunInputError(f"suites directory {suites} does not exist")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise RunInputError(f"--out {out}: exists and is not a directory")


def models_not_emulated() -> list[tuple[str, str]]:
    """Catalogue models the emulated driver cannot stand in for, as (vendor model, reason)."""
    from device_profiles.catalogue import default_catalogue
    from device_profiles.ua_format import NoUserAgent, format_user_agent

    out = []
    for m in default_catalogue():
        try:
            format_user_agent(m, emulated_firmware(m) or "1.0", "0004f2000001")
        except NoUserAgent as exc:
            out.append((f"{m.vendor} {m.model}", exc.reason))
    return out


def all_models_inventory_text() -> str:
    """An inventory with one emulated device per catalogue model, each with a firmware its verdict accepts.

    Models the emulated driver cannot stand in for (:func:`models_not_emulated`) are left out.

    ATAs get one line on port 1; DECT bases and IP-DECT servers one handset line (a handset of the same vendor).
    """
    from device_profiles.capabilities import line_source
    from device_profiles.catalogue import default_catalogue

    cat = default_catalogue()
    handsets: dict[str, Any] = {}
    for m in cat:
        if m.kind == "dect_handset":
            handsets.setdefault(m.vendor, m)
    lines = ["# Generated by 'sipgw-lab run --all-models': one emulated device per catalogue model.",
             "gateway: {mode: embedded}", "defaults: {transport: udp}", "devices:"]
    seen: set[str] = set()
    skip = {name for name, _ in models_not_emulated()}
    for n, m in enumerate(cat, 1):
        if f"{m.vendor} {m.model}" in skip:
            continue
        dev_id = m.slug
        while dev_id in seen:
            dev_id += "-x"
        seen.add(dev_id)
        number = f"+1425557{n:04d}"
        fw = emulated_firmware(m)
        lines.append(f"  - id: {dev_id}")
        lines.append(f"    vendor: {_q(m.vendor)}")
        lines.append(f"    model: {_q(m.model)}")
        if fw:
            lines.append(f"    firmware: {_q(fw)}")
        lines.append("    driver: emulated")
        source = line_source(m)
        extra = ""
        if source == "usable_ports":
            extra = ", port: 1"
        elif source == "handsets":
            hs = handsets.get(m.vendor) or next(iter(handsets.values()))
            hfw = emulated_firmware(hs)
            hfw_part = f", firmware: {_q(hfw)}" if hfw else ""
            extra = f", handset: {{model: {_q(hs.model)}{hfw_part}}}"
        lines.append(f"    lines: [{{number: {_q(number)}, name: {_q(m.model + ' line')}{extra}}}]")
    return "\n".join(lines) + "\n"


#: Versions of real firmware per vendor, tried when the table gives no usable version for a model (the table
#: lists no version for Poly Trio, Edge, Rove and OBi; a Yealink entry is a series such as 83; the AudioCodes
#: 4xxHD minimum is on the Skype for Business line while SIP Gateway installs the 2.x SIP line).
FALLBACK_FIRMWARE = {
    "Poly": ("7.2.2.1094", "8.0.3.1032", "8.0.2.0020", "3.2.2.5921"),
    "AudioCodes": ("2.2.8.61",),
}


def emulated_firmware(model) -> str | None:
    """A firmware version for an emulated ``model`` whose verdict is acceptable, or the table's own version."""
    from device_profiles.ua_format import format_user_agent
    from device_profiles.verdict import check_firmware, check_user_agent

    def accepted(version: str) -> bool:
        if not check_firmware(model.model, version, vendor=model.vendor).acceptable:
            return False
        try:  # the gateway gates on the SIP User-Agent the emulated device will send
            ua = format_user_agent(model, version, "0004f2000001")
        except Exception:
            return True
        return check_user_agent(ua).acceptable

    e = model.entry
    candidates = [v for v in (e.approved_firmware, e.min_firmware) if v]
    if model.vendor == "Yealink" and e.min_firmware and e.min_firmware.isdigit():
        candidates.append(f"66.{e.min_firmware}.0.35")  # the table's 83 is the series: x.83.y.z
    candidates += FALLBACK_FIRMWARE.get(model.vendor, ())
    for version in candidates:
        if accepted(version):
            return version
    return candidates[0] if candidates else None


def _q(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- the run ----------------------------------------------------------------------------------------------------

class RunObserver:
    """Registered in the run's pytest session: keeps the matrix the controller built."""

    def __init__(self, live_stream: Any = None) -> None:
        #: where the live view draws: a duplicate of the terminal's descriptor, out of reach of pytest's capture
        self.sipgw_live_stream = live_stream
        self.matrix: Any = None
        self.written: Path | None = None
        self.run_dir: Path | None = None

    def pytest_sipgw_matrix_written(self, run_dir: str, matrix: Any) -> None:
        self.matrix = matrix
        self.run_dir = Path(run_dir)


def pytest_args(args: argparse.Namespace, inventory: str, command_line: str, run_id: str) -> list[str]:
    out = [args.suites, "--inventory", inventory, "--gateway", args.gateway, "--sipgw-report", args.out,
           "--sipgw-run-id", run_id, "--alluredir", str(Path(args.out) / run_id / "allure-results"),
           "--rerun-budget", str(args.rerun_budget), "--repeat", str(args.repeat),
           "--sipgw-command-line", command_line, "-p", "no:cacheprovider", "--rootdir", str(Path(args.suites).parent),
           "-o", "testpaths=", "-rfE", "--import-mode=importlib",
           # The suites need neither the repository's own conftest.py (Hypothesis profiles for tests/) nor the
           # Hypothesis and anyio plugins: every pytest process (each xdist worker too) would import and
           # assertion-rewrite them (about 120 modules) before its first test.
           "--confcutdir", str(Path(args.suites).resolve()), "-p", "no:hypothesispytest", "-p", "no:anyio"]
    if args.slowness is not None:
        out += ["--slowness", str(args.slowness)]
    for f in args.feature:
        out += ["--feature", f]
    for d in args.device:
        out += ["--device", d]
    if args.workers > 1:
        out += ["-n", str(args.workers), "--dist", "loadgroup"]
    if not args.no_live:
        out.append("--sipgw-live")
    return out


def exit_status(matrix: Any) -> int:
    """0 when every cell is pass / not_applicable / blocked by its device's firmware verdict; 1 otherwise."""
    verdict_ok = {d.id: d.acceptable for d in matrix.manifest.devices}
    for cell in matrix.cells:
        if cell.outcome in OK_OUTCOMES:
            continue
        if cell.outcome == "blocked" and not verdict_ok.get(cell.device_id, True):
            continue
        return EXIT_FAILED
    return EXIT_OK


def print_summary(con: Any, matrix: Any, run_dir: Path | None) -> None:
    from rich.table import Table

    from harness.pytest_plugin.progress import STYLE

    features = [f.id for f in matrix.features if any(c.feature == f.id for c in matrix.cells)]
    table = Table(title=f"sipgw-lab matrix {matrix.manifest.run_id}")
    table.add_column("device")
    table.add_column("firmware")
    for f in features:
        table.add_column(f)
    for d in matrix.manifest.devices:
        row = [d.id, f"{d.firmware or '-'} ({d.firmware_verdict})"]
        for f in features:
            c = matrix.cell(d.id, f)
            row.append(f"[{STYLE[c.outcome]}]{c.outcome}[/{STYLE[c.outcome]}]" if c else "")
        table.add_row(*row)
    con.print(table)
    counts = ", ".join(f"{v} {k}" for k, v in matrix.summary.counts.items() if v)
    con.print(f"cells: {counts}; {matrix.summary.duration_s:.1f} s")
    for c in matrix.cells:
        if c.outcome not in OK_OUTCOMES:
            con.print(f"  [{STYLE[c.outcome]}]{c.outcome}[/{STYLE[c.outcome]}] {c.device_id} × {c.feature}: "
                      f"{c.reason}", soft_wrap=True)
    if run_dir is not None:
        con.print(f"reports: {run_dir}/matrix.json, matrix.html, junit.xml")


def cmd_run(args: argparse.Namespace) -> int:
    from harness.cli import _console, _load_inventory, verdict_table

    try:
        check_args(args)
    except RunInputError as exc:
        print(f"sipgw-lab: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    con = _console()
    generated = None
    if args.all_models:
        from harness.inventory import load_inventory

        generated = Path(tempfile.mkdtemp(prefix="sipgw-all-models-")) / "all-models.yaml"
        generated.write_text(all_models_inventory_text(), encoding="utf-8")
        inventory_path = str(generated)
        inv = load_inventory(inventory_path)
        for name, reason in models_not_emulated():
            con.print(f"[yellow]not emulated[/yellow] {name}: {reason}")
    else:
        inventory_path = os.path.abspath(args.inventory)
        inv = _load_inventory(inventory_path)  # DataFileError: exit 2 in cli.main, every problem listed
    known = {d.id for d in inv.devices}
    missing = [d for d in args.device if d not in known]
    if missing:
        print(f"sipgw-lab: error: --device {', '.join(missing)}: not in {inv.path}; devices: "
              f"{', '.join(sorted(known))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    selected = [d for d in inv.devices if not args.device or d.id in args.device]
    from harness.history import runhooks

    results_db = runhooks.resolve_url(getattr(args, "results_db", None), args.out)
    if getattr(args, "changed_only", False):
        from harness.history.db import ResultsDBError

        try:
            changed = runhooks.changed_only(selected, results_db)
        except ResultsDBError as exc:
            print(f"sipgw-lab: error: --changed-only needs the results history: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        for dev_id, why in changed.items():
            con.print(f"changed: {dev_id}: {why}", markup=False)
        if not changed:
            con.print("--changed-only: no device's firmware or catalogue entry changed since its last pass")
            return EXIT_OK
        selected = [d for d in selected if d.id in changed]
        args.device = [d.id for d in selected]
    if args.workers == "auto":
        args.workers = auto_workers(sum(1 for d in selected if d.verdict.acceptable))
    runhooks.drift_before_run(selected, results_db, con)
    if len(selected) <= 60:
        con.print(verdict_table(type(inv)(inv.path, inv.data, tuple(selected), inv.digest),
                                f"Pre-flight firmware verdicts: {inv.path}"))
    for d in selected:
        if not d.verdict.acceptable:
            con.print(f"[red]blocked[/red] {d.id}: {d.verdict.reason}")
    import shlex

    command_line = "sipgw-lab " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else "sipgw-lab run"
    live_stream = None
    if not args.no_live:
        try:
            live_stream = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
        except (AttributeError, OSError, ValueError):  # no real descriptor (embedded use): draw on sys.stdout
            live_stream = sys.stdout
    observer = RunObserver(live_stream)
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log):
            ret = pytest.main(pytest_args(args, inventory_path, command_line, new_run_id()), plugins=[observer])
    finally:
        if live_stream is not None and live_stream is not sys.stdout:
            live_stream.close()
    run_dir = observer.run_dir
    if run_dir is not None and run_dir.exists():
        (run_dir / "pytest.log").write_text(log.getvalue(), encoding="utf-8")
        if generated is not None:
            (run_dir / "all-models.yaml").write_text(generated.read_text(), encoding="utf-8")
    if ret == pytest.ExitCode.USAGE_ERROR:
        sys.stderr.write(_tail(log.getvalue()))
        return EXIT_BAD_INPUT
    if ret == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("sipgw-lab: error: no test matches the selection (check --feature and --device)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if observer.matrix is None:
        sys.stderr.write(_tail(log.getvalue()))
        print(f"sipgw-lab: the run produced no results (pytest exit status {int(ret)})", file=sys.stderr)
        return EXIT_FAILED
    print_summary(con, observer.matrix, run_dir)
    runhooks.after_run(observer.matrix, run_dir, results_db, con)
    if ret in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR):
        sys.stderr.write(_tail(log.getvalue()))
        return EXIT_FAILED
    return exit_status(observer.matrix)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:]) + "\n"
