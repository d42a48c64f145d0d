"""The controller's view of the run: every test's record, merged into ``reports/<run-id>/matrix.json``.

Registered only on the controller process (never on an xdist worker), so the matrix and its renderings are
written exactly once per run, from records that the workers send along with their reports.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.outcomes import Outcome, combine
from harness.pytest_plugin.state import PluginState


def sipgw_lab_version() -> str:
    try:
        from importlib.metadata import version

        return version("sipgw-lab")
    except Exception:
        return "0+unknown"


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).resolve().parents[2],
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


class MatrixCollector:
    """Collects test records (from ``report.sipgw``) and writes the run's reports at session end."""

    def __init__(self, config: pytest.Config, state: PluginState):
        self.config = config
        self.state = state
        self.records: list[dict] = []
        self.written: Path | None = None
        self.matrix: Any = None
        self.t0 = time.monotonic()

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, "sipgw", None)
        if isinstance(record, dict) and record.get("feature"):
            crash = self.config.pluginmanager.get_plugin("sipgw-crash")
            self.records.append(crash.merge(record) if crash is not None else record)

    def _add_unreported(self) -> None:
        """Crashed xdist workers: records for device tests that never reported (``crash.CrashHandler``)."""
        crash = self.config.pluginmanager.get_plugin("sipgw-crash")
        if crash is not None:
            self.records.extend(r for r in crash.unreported({r["nodeid"] for r in self.records}) if r.get("feature"))

    # --- building ------------------------------------------------------------------------------------

    def cells(self) -> list[dict]:
        by_cell: dict[tuple[str, str], list[dict]] = {}
        for r in self.records:
            by_cell.setdefault((r["device_id"], r["feature"]), []).append(r)
        cells = []
        for (device_id, feature), tests in by_cell.items():
            outcome = combine(t["outcome"] for t in tests)
            reason = ""
            if outcome != Outcome.PASS:
                firsts = [t for t in tests if t["outcome"] == outcome.value]
                reason = firsts[0]["reason"] if firsts else ""
                if self.state.settings.repeat > 1 and outcome in (Outcome.FAIL, Outcome.ERROR):
                    bad = sum(1 for t in tests if t["outcome"] in (Outcome.FAIL, Outcome.ERROR))
                    reason = f"{bad} of {len(tests)} runs did not pass; first: {reason}"
                if not reason.strip():
                    reason = f"{outcome.value} (no reason recorded)"
            cells.append({"device_id": device_id, "feature": feature, "outcome": outcome.value, "reason": reason,
                          "tests": [self._test(t) for t in tests]})
        order = {d.id: i for i, d in enumerate(self._devices())}
        from device_profiles.catalogue import default_catalogue

        forder = {f: i for i, f in enumerate(default_catalogue().feature_ids())}
        cells.sort(key=lambda c: (order.get(c["device_id"], 1 << 30), forder.get(c["feature"], 1 << 30)))
        return cells

    @staticmethod
    def _test(t: dict) -> dict:
        ev = dict(t.get("evidence") or {})
        ev["steps"] = [s for s in ev.get("steps", []) if isinstance(s, dict)]
        for s in ev["steps"]:
            s["duration_s"] = max(0.0, float(s.get("duration_s") or 0.0))
            if s.get("ok") is None:
                s["ok"] = False
        return {"nodeid": t["nodeid"], "name": t["name"], "outcome": t["outcome"],
                "duration_s": max(0.0, float(t.get("duration_s") or 0.0)), "reason": t.get("reason") or "",
                "attempts": t.get("attempts") or [], "evidence": ev}

    def _devices(self) -> list:
        try:
            return list(self.state.selected_devices())
        except Exception:
            return []

    def manifest(self, ended_at: datetime) -> dict:
        st = self.state
        inv = None
        with contextlib.suppress(Exception):
            inv = st.inventory()
        from device_profiles.catalogue import default_catalogue

        devices = []
        for spec in self._devices():  # every selected device is listed, run or not
            ident = st.identities.get(spec.id, {})
            devices.append({
                "id": spec.id, "vendor": spec.vendor, "model": spec.model, "kind": spec.profile.kind,
                "firmware_declared": spec.firmware, "firmware_read_back": ident.get("firmware"),
                "mac": ident.get("mac") or getattr(spec.entry, "mac", None), "user_agent": ident.get("user_agent"),
                "firmware_verdict": spec.verdict.verdict.value, "verdict_reason": spec.verdict.reason,
            })
        return {
            "run_id": st.run_id,
            "sipgw_lab_version": sipgw_lab_version(),
            "git_commit": git_commit(),
            "catalogue_digest": default_catalogue().digest,
            "inventory_digest": getattr(inv, "digest", "") or "",
            "inventory_path": str(getattr(inv, "path", st.settings.inventory)),
            "gateway_build": st.gateway_build or ("embedded" if st.settings.embedded else st.settings.gateway),
            "command_line": st.command_line,
            "started_at": st.started_at,
            "ended_at": ended_at,
            "host": st.host,
            "devices": devices,
        }

    def build(self):
        from harness.reporting.model import Matrix, features_from_catalogue

        ended = datetime.now(UTC)
        cells = self.cells()
        manifest = self.manifest(ended)
        for dev in manifest["devices"]:
            own = [c for c in cells if c["device_id"] == dev["id"]]
            self.config.hook.pytest_sipgw_matrix_row(device=dev, cells=own)
        known = {d["id"] for d in manifest["devices"]}
        cells = [c for c in cells if c["device_id"] in known]
        return Matrix.build(manifest, features_from_catalogue(), cells,
                            duration_s=(ended - self.state.started_at).total_seconds())

    # --- writing ---------------------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self._add_unreported()
        if not self.records:
            return
        self.matrix = self.build()
        run_dir = self.state.run_dir
        if run_dir is None:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        from harness.reporting.model import save_matrix

        path = save_matrix(self.matrix, run_dir / "matrix.json")
        self._render(run_dir)
        self._link_latest(run_dir)
        self.written = path
        self.config.hook.pytest_sipgw_matrix_written(run_dir=str(run_dir), matrix=self.matrix)

    def _render(self, run_dir: Path) -> None:
        """matrix.html (with its evidence pages) and junit.xml; a failed rendering keeps matrix.json intact."""
        from harness.reporting.html import render_report
        from harness.reporting.junit import write_junit

        for name, fn in (("matrix.html", lambda: render_report(self.matrix, run_dir)),
                         ("junit.xml", lambda: write_junit(self.matrix, run_dir / "junit.xml"))):
            try:
                fn()
            except Exception as exc:
                (run_dir / f"{name}.error.txt").write_text(f"{type(exc).__name__}: {exc}\n", encoding="utf-8")

    @staticmethod
    def _link_latest(run_dir: Path) -> None:
        latest = run_dir.parent / "latest"
        tmp = run_dir.parent / f".latest-{os.getpid()}"
        try:
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(run_dir.name)
            os.replace(tmp, latest)
        except OSError:
            tmp.unlink(missing_ok=True)
