"""``matrix.html`` and the evidence pages, rendered from the matrix data (``model.Matrix``).

Everything is self-contained: inline CSS and JavaScript, no fonts or scripts from the network, so a report can
be mailed or archived as a folder. Each cell of the matrix links to its evidence page,
``evidence/<device>/<feature>/index.html``, which shows the tests that decided it with their steps, media
figures, attempts, the SIP ladder drawn from the saved trace, the device log and links to the pcap slice.

A referenced evidence file that is missing does not stop the report: the page says which file is missing and
:func:`render_report` returns the list of such warnings.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2
from markupsafe import Markup

from harness.reporting import ladder as ladders
from harness.reporting.diff import RunDiff
from harness.reporting.evidence import cell_dir, read_trace_file
from harness.reporting.model import OUTCOMES, Cell, ManifestDevice, Matrix, TestResult

TEMPLATES = Path(__file__).with_name("templates")

LABELS = {"pass": "pass", "fail": "fail", "not_applicable": "n/a", "blocked": "blocked", "error": "error",
          "flaky": "flaky"}
SHORT = {"pass": "PASS", "fail": "FAIL", "not_applicable": "N/A", "blocked": "BLOCKED", "error": "ERROR",
         "flaky": "FLAKY"}
_MAX_INLINE_LOG = 256 * 1024


def _verdict_class(verdict: str) -> str:
    return {"supported": "v-ok", "newer_than_approved": "v-new"}.get(verdict, "v-bad")


def _dt(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    m, s = divmod(round(seconds), 60)
    return f"{m // 60} h {m % 60} min" if m >= 60 else f"{m} min {s} s"


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, default=str)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(dt=_dt, duration=_duration, figure=_figure)
    env.globals.update(verdict_class=_verdict_class, labels=LABELS, short=SHORT, outcomes=OUTCOMES)
    return env


@dataclass
class RenderResult:
    matrix_html: Path
    evidence_pages: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Row:
    device: ManifestDevice
    cells: dict[str, Cell]


def cell_page(device_id: str, feature: str) -> PurePosixPath:
    return cell_dir(device_id, feature) / "index.html"


def render_matrix_html(matrix: Matrix, env: jinja2.Environment | None = None, diff: RunDiff | None = None) -> str:
    env = env or environment()
    by_device: dict[str, dict[str, Cell]] = {d.id: {} for d in matrix.manifest.devices}
    for c in matrix.cells:
        by_device[c.device_id][c.feature] = c
    rows = [_Row(d, by_device[d.id]) for d in matrix.manifest.devices]
    links = {(c.device_id, c.feature): str(cell_page(c.device_id, c.feature)) for c in matrix.cells}
    total = len(matrix.manifest.devices) * len(matrix.features)
    return env.get_template("matrix.html.j2").render(
        m=matrix, rows=rows, c_links=links, diff=diff, vendors=sorted({d.vendor for d in matrix.manifest.devices}),
        not_run=total - len(matrix.cells), blocked_devices=[d for d in matrix.manifest.devices if not d.acceptable])


def _inside(run_dir: Path, rel: str) -> Path:
    p = (run_dir / rel).resolve()
    if not p.is_relative_to(run_dir.resolve()):  # also catches symlinks pointing out of the run
        raise ValueError(f"{rel}: points outside the run directory")
    return p


@dataclass
class _TestView:
    r: TestResult
    t0: float
    links: list[tuple[str, str]]
    warnings: list[str]
    ladder: Markup | None
    ladder_href: str
    device_log: str | None


def _test_view(run_dir: Path, root: str, result: TestResult, index: int, warnings: list[str], where: str) -> _TestView:
    ev = result.evidence
    links: list[tuple[str, str]] = []
    notes: list[str] = []

    def present(label: str, rel: str | None) -> Path | None:
        if not rel:
            return None
        try:
            path = _inside(run_dir, rel)
        except ValueError as exc:
            notes.append(f"{label}: {exc}")
            return None
        if not path.is_file():
            notes.append(f"{label}: missing file {rel}")
            return None
        links.append((label, root + rel))
        return path

    present("SIP ladder (HTML)", ev.ladder_html)
    present("SIP ladder (text)", ev.ladder_txt)
    present("pcap slice", ev.pcap)
    trace_path = present("trace entries (JSON)", ev.trace)
    log_path = present("device log", ev.device_log)
    for label, rel in ev.files.items():
        present(label, rel)

    ladder_markup = None
    if trace_path is not None:
        try:
            entries, labels, rows = read_trace_file(trace_path)
            ladder_markup = ladders.render_fragment(ladders.build_ladder(entries, labels, rows),
                                                    id_prefix=f"t{index}m")
        except ladders.LadderError as exc:
            notes.append(f"SIP ladder: {exc}")
    device_log = None
    if log_path is not None:
        data = log_path.read_bytes()
        device_log = data[-_MAX_INLINE_LOG:].decode("utf-8", "replace")
        if len(data) > _MAX_INLINE_LOG:
            device_log = f"[… first {len(data) - _MAX_INLINE_LOG} bytes not shown; open the file …]\n" + device_log
    warnings.extend(f"{where}: {n}" for n in notes)
    t0 = min((s.t for s in ev.steps), default=0.0)
    return _TestView(result, t0, links, notes, ladder_markup, root + ev.ladder_html if ev.ladder_html else "",
                     device_log)


def render_cell_page(matrix: Matrix, cell: Cell, run_dir: Path, warnings: list[str],
                     env: jinja2.Environment | None = None) -> str:
    env = env or environment()
    page = cell_page(cell.device_id, cell.feature)
    root = "../" * (len(page.parts) - 1)
    feature = next(f for f in matrix.features if f.id == cell.feature)
    device = matrix.device(cell.device_id)
    tests = [_test_view(run_dir, root, t, i, warnings, f"{page.parent}: {t.name}") for i, t in enumerate(cell.tests, 1)]
    return env.get_template("evidence.html.j2").render(
        m=matrix, c=cell, d=device, f=feature, tests=tests, root=root,
        ladder_css=Markup(ladders.LADDER_CSS), ladder_js=Markup(ladders.LADDER_JS))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def render_report(matrix: Matrix, run_dir: str | Path, diff: RunDiff | None = None) -> RenderResult:
    """Write ``matrix.html`` (with the changes since a baseline run, when given) and every cell's evidence page."""
    run_dir = Path(run_dir)
    env = environment()
    result = RenderResult(_write(run_dir / "matrix.html", render_matrix_html(matrix, env, diff)))
    for cell in matrix.cells:
        html = render_cell_page(matrix, cell, run_dir, result.warnings, env)
        result.evidence_pages.append(_write(run_dir / cell_page(cell.device_id, cell.feature), html))
    return result


__all__ = ["LABELS", "SHORT", "RenderResult", "cell_page", "render_cell_page", "render_matrix_html",
           "render_report"]
