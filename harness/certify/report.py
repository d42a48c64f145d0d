"""The certification report: its data (from the run's matrix and the catalogue), HTML, and PDF.

Every verdict comes from the run's observed outcomes: a feature is *certified* only when every test of it passed
in every repetition; *not applicable* only when the catalogue says so, with its reason; anything else is *not
certified*, with the reason the run recorded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

CERTIFIED, NOT_CERTIFIED, NOT_APPLICABLE = "certified", "not certified", "not applicable"
READ_BACK_STEPS = ("identity", "registration", "read", "get_", "state", "mwi", "forwarding.get")
CHROMIUM = "/usr/bin/chromium"


def _read_backs(steps: list[Any]) -> list[dict[str, Any]]:
    return [{"name": s.name, "result": s.result} for s in steps
            if s.ok and s.result is not None and s.name.split(".")[-1].startswith(READ_BACK_STEPS)]


def identity_read_back(matrix: Any, device_id: str) -> dict[str, Any]:
    """What the device itself reported (the ``identity`` step's result), first seen in the run."""
    for c in matrix.cells:
        if c.device_id != device_id:
            continue
        for t in c.tests:
            for s in t.evidence.steps:
                if s.name.split(".")[-1] == "identity" and s.ok and isinstance(s.result, dict):
                    return s.result
    return {}


def certification_data(matrix: Any, device_id: str, *, repeat: int, rerun_command: str,
                       regressions: list[Any] = ()) -> dict[str, Any]:
    from device_profiles.capabilities import applicability
    from device_profiles.catalogue import default_catalogue
    from device_profiles.verdict import check_firmware

    dev = matrix.device(device_id)
    cat = default_catalogue()
    profile = cat.find(dev.model, vendor=dev.vendor)
    ident = identity_read_back(matrix, device_id)
    firmware = dev.firmware_read_back or ident.get("firmware")
    if firmware:
        fv = check_firmware(dev.model, firmware, vendor=dev.vendor)
        fw_verdict = {"verdict": fv.verdict.value, "reason": fv.reason, "acceptable": fv.acceptable,
                      "firmware": firmware, "source": "read back from the device"}
    else:
        fw_verdict = {"verdict": dev.firmware_verdict, "reason": dev.verdict_reason + " (firmware not read back "
                      "from the device; the inventory's value)", "acceptable": dev.acceptable,
                      "firmware": dev.firmware_declared, "source": "inventory"}
    reg = {r.feature: r for r in regressions if r.device_id == device_id}
    features = []
    for f in matrix.features:
        cell = matrix.cell(device_id, f.id)
        app = applicability(profile, f.id, cat) if profile else None
        tests = cell.tests if cell else []
        attempts = [a for t in tests for a in t.attempts]
        if app is not None and not app.applicable:
            verdict, reason = NOT_APPLICABLE, app.reason or ""
        elif cell is None:
            verdict, reason = NOT_CERTIFIED, "no test of this feature ran in this certification"
        elif cell.outcome == "pass" and tests:
            verdict, reason = CERTIFIED, (f"{len(tests)} test run(s) ({repeat} repetition(s) of each test), "
                                          "every one passed")
        elif cell.outcome == "not_applicable":
            verdict, reason = NOT_APPLICABLE, cell.reason
        elif cell.outcome == "flaky":
            verdict, reason = NOT_CERTIFIED, f"flaky: passed only on a retry ({cell.reason})".replace(" ()", "")
        else:
            verdict, reason = NOT_CERTIFIED, f"{cell.outcome}: {cell.reason}"
        evidence = []
        for t in tests:
            ev = t.evidence
            evidence.append({
                "test": t.name, "outcome": t.outcome, "duration_s": t.duration_s, "reason": t.reason,
                "attempts": [a.model_dump(mode="json") for a in t.attempts],
                "ladder_txt": ev.ladder_txt, "ladder_html": ev.ladder_html, "pcap": ev.pcap,
                "media": ev.media, "sip_call_ids": ev.sip_call_ids, "device_log": ev.device_log,
                "steps": [{"name": s.name, "ok": s.ok, "duration_s": s.duration_s, "error": s.error}
                          for s in ev.steps],
                "manual": any(s.name.startswith("manual.") for s in ev.steps),
                "read_backs": _read_backs(ev.steps),
            })
        r = reg.get(f.id)
        features.append({
            "id": f.id, "title": f.title, "verdict": verdict, "reason": reason,
            "outcome": cell.outcome if cell else None, "tests": len(tests), "attempts": len(attempts),
            "passes": sum(1 for a in attempts if a.outcome == "pass"),
            "manual": any(e["manual"] for e in evidence),
            "regression": r.describe() if r else None, "evidence": evidence,
        })
    applicable = [f for f in features if f["verdict"] != NOT_APPLICABLE]
    certified = [f for f in applicable if f["verdict"] == CERTIFIED]
    overall = CERTIFIED if fw_verdict["acceptable"] and applicable and len(certified) == len(applicable) \
        else NOT_CERTIFIED
    m = matrix.manifest
    return {
        "format": "sipgw-lab-certification", "version": 1,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": m.run_id, "repeat": repeat, "rerun_command": rerun_command, "overall": overall,
        "summary": {"applicable": len(applicable), "certified": len(certified),
                    "not_applicable": len(features) - len(applicable),
                    "regressions": sum(1 for f in features if f["regression"]),
                    "manual_features": [f["id"] for f in features if f["manual"]]},
        "device": {"id": dev.id, "vendor": dev.vendor, "model": dev.model, "kind": dev.kind,
                   "model_read_back": ident.get("model"), "firmware_declared": dev.firmware_declared,
                   "firmware_read_back": dev.firmware_read_back or ident.get("firmware"),
                   "mac": dev.mac or ident.get("mac"), "user_agent": dev.user_agent},
        "firmware": fw_verdict,
        "run_manifest": m.model_dump(mode="json"),
        "features": features,
    }


TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>sipgw-lab certification: {{ d.device.vendor }} {{ d.device.model }} {{ d.firmware.firmware or '' }}</title>
<style>
body{font-family:sans-serif;font-size:12px;margin:18px;color:#111}
h1{font-size:20px;margin:0 0 4px} h2{font-size:15px;margin:18px 0 6px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%}
td,th{border:1px solid #ccc;padding:3px 5px;text-align:left;vertical-align:top}
.certified{background:#d7f5d7} .not-certified{background:#f8d0d0} .not-applicable{background:#eee}
.overall{font-size:18px;font-weight:bold;padding:6px 10px;display:inline-block}
code,pre{font-family:monospace;font-size:11px;white-space:pre-wrap;word-break:break-all}
.regression{color:#a00;font-weight:bold} .feature{page-break-inside:avoid}
</style></head><body>
<header>
<h1>Certification: {{ d.device.vendor }} {{ d.device.model }} — firmware {{ d.firmware.firmware or 'unknown' }}</h1>
<p class="overall {{ d.overall|replace(' ', '-') }}" id="overall">{{ d.overall|upper }}</p>
<p>{{ d.summary.certified }} of {{ d.summary.applicable }} applicable features certified;
{{ d.summary.not_applicable }} not applicable; each test run {{ d.repeat }} time(s).
{% if d.summary.regressions %}<span class="regression">{{ d.summary.regressions }} regression(s).</span>{% endif %}</p>
<p>Re-run this certification: <code id="rerun">{{ d.rerun_command }}</code></p>
<table>
<tr><th>Device</th><td>{{ d.device.id }} ({{ d.device.kind }})</td><th>Run</th><td>{{ d.run_id }}</td></tr>
<tr><th>Model (read back)</th><td>{{ d.device.model_read_back or 'not read back' }}</td>
<th>MAC (read back)</th><td>{{ d.device.mac or 'not read back' }}</td></tr>
<tr><th>Firmware read back</th><td>{{ d.device.firmware_read_back or 'not read back' }}</td>
<th>Firmware declared</th><td>{{ d.device.firmware_declared or '-' }}</td></tr>
<tr><th>Firmware verdict</th><td colspan="3"><strong>{{ d.firmware.verdict }}</strong> ({{ d.firmware.source }}):
{{ d.firmware.reason }}</td></tr>
<tr><th>User-Agent</th><td colspan="3">{{ d.device.user_agent or '-' }}</td></tr>
<tr><th>sipgw-lab</th><td>{{ m.sipgw_lab_version }} {{ m.git_commit or '' }}</td>
<th>Gateway build</th><td>{{ m.gateway_build }}</td></tr>
<tr><th>Catalogue digest</th><td><code>{{ m.catalogue_digest }}</code></td>
<th>Inventory digest</th><td><code>{{ m.inventory_digest }}</code></td></tr>
<tr><th>Started</th><td>{{ m.started_at }}</td><th>Ended</th><td>{{ m.ended_at }}</td></tr>
</table>
</header>
<h2>Verdict per seed feature</h2>
<table id="verdicts"><tr><th>Feature</th><th>Verdict</th><th>Passes / attempts</th><th>Manual</th><th>Reason</th></tr>
{% for f in d.features %}<tr class="{{ f.verdict|replace(' ', '-') }}" id="verdict-{{ f.id }}"><td>{{ f.title }}
<br><code>{{ f.id }}</code></td><td>{{ f.verdict }}</td><td>{{ f.passes }} / {{ f.attempts }}</td>
<td>{{ 'yes' if f.manual else 'no' }}</td><td>{{ f.reason }}{% if f.regression %}
<div class="regression">{{ f.regression }}</div>{% endif %}</td></tr>
{% endfor %}</table>
<h2>Evidence</h2>
{% for f in d.features if f.evidence %}<div class="feature" id="evidence-{{ f.id }}"><h3>{{ f.title }}
({{ f.verdict }})</h3>
{% for e in f.evidence %}<p><strong>{{ e.test }}</strong>: {{ e.outcome }} in {{ '%.1f'|format(e.duration_s) }} s;
attempts {{ e.attempts|map(attribute='outcome')|join(', ') }}{% if e.manual %}; <strong>includes a manual
step</strong>{% endif %}{% if e.reason %}<br>{{ e.reason }}{% endif %}</p>
<ul>
{% if e.ladder_html %}<li>SIP ladder: <a href="{{ e.ladder_html }}">{{ e.ladder_html }}</a>
{% if e.ladder_txt %}(<a href="{{ e.ladder_txt }}">text</a>){% endif %}</li>{% endif %}
{% if e.pcap %}<li>pcap: <a href="{{ e.pcap }}">{{ e.pcap }}</a></li>{% endif %}
{% if e.sip_call_ids %}<li>SIP Call-IDs: <code>{{ e.sip_call_ids|join(', ') }}</code></li>{% endif %}
{% if e.media %}<li>Audio figures (all of them in certification.json):<ul>
{% for line in e.media|media_summary %}<li><code>{{ line }}</code></li>{% endfor %}</ul></li>{% endif %}
{% if e.device_log %}<li>Device log: <a href="{{ e.device_log }}">{{ e.device_log }}</a></li>{% endif %}
{% for r in e.read_backs %}<li>Read back ({{ r.name }}): <code>{{ r.result|tojson }}</code></li>{% endfor %}
<li>Steps: {% for s in e.steps %}{{ s.name }}{% if not s.ok %} (failed: {{ s.error }}){% endif %}
{{- ', ' if not loop.last }}{% endfor %}</li>
</ul>{% endfor %}</div>
{% endfor %}
</body></html>
"""


MEDIA_KEYS = ("passed", "reason", "frequency_hz", "level_dbfs", "snr_db", "coverage", "present", "outcome",
              "rms_dbfs", "hop_s")


def media_summary(media: Any, prefix: str = "", limit: int = 24) -> list[str]:
    """The audio figures a reader looks for, as ``path: value`` lines (the full figures are in the JSON)."""
    out: list[str] = []

    def walk(value: Any, path: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                if k in ("recording", "recordings", "paths", "segments", "settings", "thresholds", "source"):
                    continue
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(value, bool | int | float | str) and path.rsplit(".", 1)[-1] in MEDIA_KEYS:
            out.append(f"{path}: {round(value, 2) if isinstance(value, float) else value}")

    walk(media, prefix)
    return out


def render_html(data: dict[str, Any]) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["media_summary"] = media_summary
    return env.from_string(TEMPLATE).render(d=data, m=data["run_manifest"])


class PdfError(Exception):
    pass


def html_to_pdf(html: Path, pdf: Path, *, timeout_s: float = 90.0) -> Path:
    """Print ``html`` to ``pdf`` with Debian's headless Chromium (no browser download)."""
    exe = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if exe is None:
        raise PdfError("chromium not found (Debian package 'chromium'): the PDF was not written")
    with tempfile.TemporaryDirectory(prefix="sipgw-pdf-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", f"--user-data-dir={profile}", "--no-pdf-header-footer",
               f"--print-to-pdf={pdf}", html.resolve().as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise PdfError(f"chromium did not print {html} within {timeout_s:.0f} s") from None
    if not pdf.exists() or pdf.stat().st_size == 0:
        raise PdfError(f"chromium did not write {pdf} (exit {proc.returncode}): {proc.stderr.strip()[-400:]}")
    return pdf


@dataclass
class CertificationFiles:
    json: Path
    html: Path
    pdf: Path | None
    bundle: Path | None
    pdf_error: str | None = None


def write_report(data: dict[str, Any], out_dir: Path) -> tuple[Path, Path, Path | None, str | None]:
    j = out_dir / "certification.json"
    j.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    h = out_dir / "certification.html"
    h.write_text(render_html(data), encoding="utf-8")
    try:
        return j, h, html_to_pdf(h, out_dir / "certification.pdf"), None
    except PdfError as exc:
        return j, h, None, str(exc)
