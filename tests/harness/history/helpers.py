"""Small matrices as a run would write them, for the results-history tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from harness.reporting.model import Matrix, features_from_catalogue

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def device(dev_id: str = "poly-vvx450", firmware: str = "5.9.5.0614", read_back: str | None = None,
           model: str = "VVX 450", vendor: str = "Poly", verdict: str = "supported") -> dict:
    return {"id": dev_id, "vendor": vendor, "model": model, "kind": "desk_phone", "firmware_declared": firmware,
            "firmware_read_back": read_back or firmware, "mac": "00:04:f2:8e:5a:79", "user_agent": None,
            "firmware_verdict": verdict, "verdict_reason": "as checked"}


def result(outcome: str, duration: float = 2.0, attempts: list[str] | None = None) -> dict:
    attempts = attempts or [outcome]
    return {"nodeid": f"suites/test_x.py::test_{outcome}", "name": f"test_{outcome}", "outcome": outcome,
            "duration_s": duration, "reason": "" if outcome in ("pass", "flaky") else "observed: no 200 OK",
            "attempts": [{"outcome": a, "duration_s": duration / len(attempts), "error": None} for a in attempts]}


def matrix(run_id: str, n: int, devices: list[dict], cells: dict[tuple[str, str], list[dict]]) -> Matrix:
    """Run number ``n`` (an hour apart) with ``cells``: (device, feature) → tests."""
    manifest = {"run_id": run_id, "sipgw_lab_version": "0.1.0", "git_commit": "abc", "catalogue_digest": "sha256:c",
                "inventory_digest": "sha256:i", "inventory_path": "/lab.yaml", "gateway_build": "embedded",
                "command_line": "sipgw-lab run", "started_at": (T0 + timedelta(hours=n)).isoformat(),
                "ended_at": (T0 + timedelta(hours=n, minutes=5)).isoformat(), "host": "lab", "devices": devices}
    out = []
    for (dev_id, feature), tests in cells.items():
        outcomes = {t["outcome"] for t in tests}
        outcome = "fail" if "fail" in outcomes else "flaky" if "flaky" in outcomes else "pass"
        out.append({"device_id": dev_id, "feature": feature, "outcome": outcome,
                    "reason": "" if outcome in ("pass", "flaky") else "observed: no 200 OK", "tests": tests})
    return Matrix.build(manifest, features_from_catalogue(), out)
