"""Cost of the results history at a run's end: recording a run, the regression check, and `history` queries.

    .venv/bin/python -m bench.history_record [--runs 50] [--devices 30] [--url sqlite:///…]

Synthetic runs of ``--devices`` devices × the 16 seed features (two tests per cell), recorded one after the
other into a fresh SQLite database in a temporary directory (or ``--url``, e.g. a PostgreSQL server; its tables
are used as they are). Prints the median wall time per record, per regression check against the history so far,
and of a full ``history`` query at the end, so the time a run spends on its history is known.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.history.db import ResultsDB
from harness.reporting.model import Matrix, features_from_catalogue

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def synthetic_run(n: int, devices: int) -> Matrix:
    feats = features_from_catalogue()
    devs = [{"id": f"poly-vvx450-{i}", "vendor": "Poly", "model": "VVX 450", "kind": "desk_phone",
             "firmware_declared": "5.9.5.0614" if n % 10 < 5 else "6.4.3.5018", "firmware_read_back": None,
             "mac": None, "user_agent": None, "firmware_verdict": "supported", "verdict_reason": ""}
            for i in range(devices)]
    cells = []
    for d in devs:
        for k, f in enumerate(feats):
            outcome = "fail" if (n + k) % 13 == 0 else "pass"
            tests = [{"nodeid": f"s/t.py::t{j}", "name": f"t{j}", "outcome": outcome, "duration_s": 2.0 + j,
                      "reason": "" if outcome == "pass" else "observed: 486",
                      "attempts": [{"outcome": outcome, "duration_s": 2.0 + j}]} for j in range(2)]
            cells.append({"device_id": d["id"], "feature": f.id, "outcome": outcome,
                          "reason": "" if outcome == "pass" else "observed: 486", "tests": tests})
    manifest = {"run_id": f"bench-{n:04d}", "sipgw_lab_version": "bench", "catalogue_digest": "c",
                "inventory_digest": "i", "inventory_path": "bench.yaml", "gateway_build": "bench",
                "command_line": "bench", "started_at": (T0 + timedelta(hours=n)).isoformat(),
                "ended_at": (T0 + timedelta(hours=n, minutes=10)).isoformat(), "host": "bench", "devices": devs}
    return Matrix.build(manifest, feats, cells)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--devices", type=int, default=30)
    ap.add_argument("--url", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'results.db'}"
        record, regress = [], []
        with ResultsDB(url) as db:
            for n in range(args.runs):
                m = synthetic_run(n, args.devices)
                t = time.perf_counter()
                db.regressions(m)
                regress.append(time.perf_counter() - t)
                t = time.perf_counter()
                db.record(m)
                record.append(time.perf_counter() - t)
            t = time.perf_counter()
            hist = db.history()
            query = time.perf_counter() - t
    cells = args.devices * 16
    print(f"runs={args.runs} devices={args.devices} cells_per_run={cells} db={url.split(':')[0]}")
    print(f"record_run_median_ms={statistics.median(record) * 1000:.1f} record_run_last_ms={record[-1] * 1000:.1f}")
    print(f"regression_check_median_ms={statistics.median(regress) * 1000:.1f} "
          f"regression_check_last_ms={regress[-1] * 1000:.1f}")
    print(f"history_query_ms={query * 1000:.1f} rows={sum(len(h.points) for h in hist)}")


if __name__ == "__main__":
    main()
