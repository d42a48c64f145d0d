"""JUnit XML for CI servers, from the matrix data.

One ``<testsuite>`` per device, one ``<testcase>`` per test of each cell (``classname`` = ``device.feature``), or
one named after the feature when a cell has no test (a device blocked by its firmware, a feature that does not
apply). Device, vendor, model, firmware (as read back), firmware verdict and gateway build are properties of the
suite and of every testcase, so a CI server can group and filter on them.

Outcome mapping: pass → passed; flaky → passed with the property ``flaky=true`` and the attempts; fail →
``<failure>``; error → ``<error>``; not applicable → ``<skipped>`` with the reason; blocked → ``<skipped>`` with the
verdict. Steps and evidence paths go into ``<system-out>`` and the tail of the device log into ``<system-err>`` for
tests that did not pass; passing tests stay lean.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from harness.reporting.model import Cell, ManifestDevice, Matrix, TestResult

_BAD = {"fail", "error", "flaky"}
DEVICE_LOG_TAIL = 16 * 1024


def _props(parent: ET.Element, items: Iterable[tuple[str, object]]) -> None:
    props = ET.SubElement(parent, "properties")
    for name, value in items:
        if value is not None and value != "":
            ET.SubElement(props, "property", name=name, value=str(value))


def _device_props(m: Matrix, d: ManifestDevice) -> list[tuple[str, object]]:
    return [("device", d.id), ("vendor", d.vendor), ("model", d.model), ("firmware", d.firmware),
            ("firmware_declared", d.firmware_declared), ("firmware_read_back", d.firmware_read_back),
            ("firmware_verdict", d.firmware_verdict), ("gateway_build", m.manifest.gateway_build)]


def _xml_text(text: str) -> str:
    """XML 1.0 cannot carry most control characters; show them as \\xNN instead of writing an invalid file."""
    return "".join(ch if ch in "\t\n\r" or (ord(ch) >= 0x20 and ch not in "\ufffe\uffff") else f"\\x{ord(ch):02x}"
                   for ch in text)


def _details(t: TestResult) -> str:
    lines = []
    for i, a in enumerate(t.attempts, 1):
        lines.append(f"attempt {i}: {a.outcome} in {a.duration_s:.3f}s" + (f": {a.error}" if a.error else ""))
    for s in t.evidence.steps:
        status = "ok" if s.ok else f"FAILED: {s.error}"
        lines.append(f"step {s.name} {s.args} -> {status if not s.ok else s.result!r} ({s.duration_s:.3f}s)")
    ev = t.evidence
    for label, path in (("ladder", ev.ladder_txt), ("ladder html", ev.ladder_html), ("pcap", ev.pcap),
                        ("device log", ev.device_log), *ev.files.items()):
        if path:
            lines.append(f"evidence {label}: {path}")
    if ev.sip_call_ids:
        lines.append(f"SIP Call-IDs: {', '.join(ev.sip_call_ids)}")
    return "\n".join(lines)


def _log_tail(run_dir: Path | None, rel: str | None) -> str | None:
    if run_dir is None or not rel:
        return None
    path = (run_dir / rel).resolve()
    if not path.is_relative_to(run_dir.resolve()) or not path.is_file():
        return None
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(size - DEVICE_LOG_TAIL, 0))
        tail = f.read().decode("utf-8", "replace")
    head = f"device log {rel}" + (f" (last {DEVICE_LOG_TAIL} of {size} bytes)" if size > DEVICE_LOG_TAIL else "")
    return f"{head}:\n{tail}"


def _case(suite: ET.Element, m: Matrix, d: ManifestDevice, cell: Cell, name: str, outcome: str, reason: str,
          duration: float, test: TestResult | None, run_dir: Path | None = None) -> str:
    case = ET.SubElement(suite, "testcase", classname=f"{d.id}.{cell.feature}", name=name, time=f"{duration:.3f}")
    extra: list[tuple[str, object]] = [("feature", cell.feature), ("outcome", outcome)]
    if test is not None:
        extra.append(("nodeid", test.nodeid))
        if outcome == "flaky":
            extra += [("flaky", "true"), ("attempts", len(test.attempts))]
    _props(case, _device_props(m, d) + extra)
    if outcome == "fail":
        ET.SubElement(case, "failure", message=_xml_text(reason), type="fail").text = _xml_text(reason)
    elif outcome == "error":
        ET.SubElement(case, "error", message=_xml_text(reason), type="error").text = _xml_text(reason)
    elif outcome == "not_applicable":
        ET.SubElement(case, "skipped", message=_xml_text(f"not applicable: {reason}"), type="not_applicable")
    elif outcome == "blocked":
        ET.SubElement(case, "skipped", message=_xml_text(f"blocked: {reason}"), type="blocked")
    if test is not None and outcome in _BAD:
        details = _details(test)
        if details:
            ET.SubElement(case, "system-out").text = _xml_text(details)
        log = _log_tail(run_dir, test.evidence.device_log)
        if log:
            ET.SubElement(case, "system-err").text = _xml_text(log)
    return outcome


def build_junit(matrix: Matrix, run_dir: str | Path | None = None) -> ET.ElementTree:
    """The JUnit tree; with ``run_dir``, failing tests carry the tail of their device log."""
    run_dir = Path(run_dir) if run_dir is not None else None
    root = ET.Element("testsuites", name=f"sipgw-lab {matrix.manifest.run_id}")
    cells_by_device: dict[str, list[Cell]] = {d.id: [] for d in matrix.manifest.devices}
    for c in matrix.cells:
        cells_by_device[c.device_id].append(c)
    order = {f.id: i for i, f in enumerate(matrix.features)}
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for d in matrix.manifest.devices:
        suite = ET.SubElement(root, "testsuite", name=d.id, hostname=matrix.manifest.host,
                              timestamp=matrix.manifest.started_at.isoformat())
        _props(suite, [*_device_props(matrix, d), ("run_id", matrix.manifest.run_id),
                       ("sipgw_lab_version", matrix.manifest.sipgw_lab_version),
                       ("git_commit", matrix.manifest.git_commit), ("verdict_reason", d.verdict_reason)])
        outcomes: list[str] = []
        time = 0.0
        for cell in sorted(cells_by_device[d.id], key=lambda c: order[c.feature]):
            if not cell.tests:
                outcomes.append(_case(suite, matrix, d, cell, cell.feature, cell.outcome, cell.reason, 0.0, None))
            for t in cell.tests:
                reason = t.reason or cell.reason
                outcomes.append(_case(suite, matrix, d, cell, t.name, t.outcome, reason, t.duration_s, t, run_dir))
                time += t.duration_s
        counts = {"tests": len(outcomes), "failures": outcomes.count("fail"), "errors": outcomes.count("error"),
                  "skipped": outcomes.count("not_applicable") + outcomes.count("blocked")}
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
        suite.set("time", f"{time:.3f}")
        total_time += time
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(matrix: Matrix, path: str | Path, run_dir: str | Path | None = None) -> Path:
    """Write ``junit.xml``; evidence paths are read relative to ``run_dir`` (default: the file's folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    build_junit(matrix, run_dir if run_dir is not None else path.parent).write(tmp, encoding="utf-8",
                                                                              xml_declaration=True)
    os.replace(tmp, path)
    return path
