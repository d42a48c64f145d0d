"""Lab run figures: basic call test time, the default lab through every suite, --all-models, memory and CPU.

    .venv/bin/python -m bench.lab_run [--only lab,all-models] [--workers N|auto] [--timeout S]

Runs ``sipgw-lab run`` as a child process (``--no-live``) and, while it runs, samples ``/proc`` twice a second:
the RSS of every pjsua2 worker process (a descendant with ``pjsua`` mapped), and the CPU time of every
``sipgw-gateway`` thread (the embedded gateway runs in a thread of each pytest process) against the CPU time of
the whole process tree. Prints:

- the median duration of a basic call test (register, call, two-way audio verified, hang up) from matrix.json;
  target < 1.5 s;
- the default lab (``lab_inventory.yaml``) through every existing suite: wall time; target < 5 min; test counts per
  outcome, test time per suite module and the largest device groups (a device's tests stay on one worker);
- ``--all-models`` (one emulated device per catalogue model) through the basic call suite; target < 10 min;
- worker RSS (median and max) and the gateway's CPU share.

Bounded: each run is killed (its own process group) at ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
BASIC_CALL_TESTS = ("test_call_another_sip_device", "test_call_a_pstn_number", "test_receive_a_call_from_a_teams_user")


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def _stat_fields(path: str) -> list[str] | None:
    text = _read(path)
    if text is None:
        return None
    return text.rsplit(")", 1)[1].split()


def _cpu_s(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _rss_mib(pid: int) -> float:
    text = _read(f"/proc/{pid}/status") or ""
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class TreeSampler(threading.Thread):
    """Samples a process tree until stopped: worker RSS, gateway-thread CPU, total CPU."""

    def __init__(self, root_pid: int, period_s: float = 0.5):
        super().__init__(daemon=True)
        self.root = root_pid
        self.period_s = period_s
        self.stop_event = threading.Event()
        self.cpu: dict[int, float] = {}  # pid -> last utime+stime
        self.gateway_cpu: dict[tuple[int, int], float] = {}  # (pid, tid) -> last cpu of a sipgw-gateway thread
        self.worker_rss: dict[int, float] = {}  # pid -> max RSS MiB
        self.workers: set[int] = set()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            fields = _stat_fields(f"/proc/{entry}/stat")
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
        out, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children.get(pid, []))
        return out

    def sample(self) -> None:
        for pid in self._tree():
            fields = _stat_fields(f"/proc/{pid}/stat")
            if fields is None:
                continue
            self.cpu[pid] = _cpu_s(fields)
            if pid not in self.workers and "pjsua" in (_read(f"/proc/{pid}/maps") or ""):
                self.workers.add(pid)
            if pid in self.workers:
                self.worker_rss[pid] = max(self.worker_rss.get(pid, 0.0), _rss_mib(pid))
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tids:
                if (_read(f"/proc/{pid}/task/{tid}/comm") or "").strip() == "sipgw-gateway":
                    tf = _stat_fields(f"/proc/{pid}/task/{tid}/stat")
                    if tf:
                        self.gateway_cpu[(pid, int(tid))] = _cpu_s(tf)

    def run(self) -> None:
        while not self.stop_event.wait(self.period_s):
            self.sample()


def run_lab(args: list[str], timeout_s: float) -> dict:
    out_dir = Path(tempfile.mkdtemp(prefix="sipgw-bench-"))
    cmd = [str(ROOT / ".venv" / "bin" / "sipgw-lab"), "run", "--no-live", "--out", str(out_dir), *args]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    timed_out = False
    try:
        _, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
    wall = time.monotonic() - t0
    sampler.stop_event.set()
    sampler.join()
    matrix = None
    latest = out_dir / "latest" / "matrix.json"
    if latest.exists():
        matrix = json.loads(latest.read_text())
    total_cpu = sum(sampler.cpu.values())
    gw_cpu = sum(sampler.gateway_cpu.values())
    # The plugin records each lab's gateway-thread CPU (Python does not name OS threads, so /proc cannot tell).
    for f in (out_dir / "latest" / "figures").glob("lab-*.json") if (out_dir / "latest").exists() else []:
        gw_cpu += float(json.loads(f.read_text()).get("gateway_thread_cpu_s") or 0.0)
    return {"wall_s": wall, "exit": proc.returncode, "timed_out": timed_out, "matrix": matrix,
            "stderr": (err or "")[-2000:], "worker_rss": list(sampler.worker_rss.values()),
            "total_cpu_s": total_cpu, "gateway_cpu_s": gw_cpu, "reports": str(out_dir)}


def basic_call_durations(matrix: dict | None) -> list[float]:
    if not matrix:
        return []
    return [t["duration_s"] for c in matrix["cells"] for t in c["tests"]
            if t["outcome"] == "pass" and t["name"].split("[")[0] in BASIC_CALL_TESTS]


def suite_times(matrix: dict | None) -> tuple[dict[str, tuple[float, int]], dict[str, float]]:
    """Per suite module: (sum of its test durations, number of tests); per device: sum of its test durations
    (worker-seconds: a device's tests run on one worker, so the largest device is a floor for the wall time)."""
    suites: dict[str, list] = {}
    devices: dict[str, float] = {}
    for c in (matrix or {}).get("cells", []):
        for t in c["tests"]:
            mod = t["nodeid"].split("::")[0].rsplit("/", 1)[-1]
            s = suites.setdefault(mod, [0.0, 0])
            s[0] += t["duration_s"]
            s[1] += 1
            devices[c["device_id"]] = devices.get(c["device_id"], 0.0) + t["duration_s"]
    return {k: (v[0], v[1]) for k, v in suites.items()}, devices


def test_counts(matrix: dict | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in (matrix or {}).get("cells", []):
        for t in c["tests"]:
            out[t["outcome"]] = out.get(t["outcome"], 0) + 1
    return out


def report(name: str, res: dict, target_s: float) -> None:
    m = res["matrix"]
    counts = ", ".join(f"{v} {k}" for k, v in (m["summary"]["counts"].items() if m else []) if v)
    status = "TIMED OUT" if res["timed_out"] else f"exit {res['exit']}"
    print(f"{name}: {res['wall_s']:.1f} s wall (target < {target_s:.0f} s) — {status}; cells: {counts or 'none'}")
    tests = ", ".join(f"{v} {k}" for k, v in sorted(test_counts(m).items(), key=lambda kv: -kv[1]))
    if tests:
        print(f"  tests: {tests}")
    suites, devices = suite_times(m)
    if suites:
        total = sum(v[0] for v in suites.values())
        print(f"  test time per suite (worker-seconds, sum {total:.0f} s):")
        for mod, (secs, n) in sorted(suites.items(), key=lambda kv: -kv[1][0]):
            print(f"    {mod:28s} {secs:7.1f} s  {n:4d} tests")
        top = sorted(devices.items(), key=lambda kv: -kv[1])[:3]
        print("  largest device groups: " + ", ".join(f"{d} {v:.0f} s" for d, v in top))
    d = basic_call_durations(m)
    if d:
        print(f"  basic call test: median {statistics.median(d):.2f} s over {len(d)} tests "
              f"(min {min(d):.2f}, max {max(d):.2f}; target < 1.5 s)")
    rss = res["worker_rss"]
    if rss:
        print(f"  pjsua2 worker RSS: median {statistics.median(rss):.1f} MiB, max {max(rss):.1f} MiB "
              f"over {len(rss)} worker processes")
    if res["total_cpu_s"] > 0:
        share = 100 * res["gateway_cpu_s"] / res["total_cpu_s"]
        core = 100 * res["gateway_cpu_s"] / res["wall_s"]
        print(f"  gateway threads: {res['gateway_cpu_s']:.1f} s CPU = {share:.1f} % of the run's "
              f"{res['total_cpu_s']:.1f} s CPU ({core:.1f} % of one core over the wall time)")
    print(f"  reports: {res['reports']}")
    if res["exit"] not in (0, 1):
        print(f"  stderr: {res['stderr'][-600:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="lab,all-models", help="comma list of: lab, all-models")
    ap.add_argument("--workers", default="auto",
                    help="pytest-xdist workers: a number or auto (sipgw-lab run's default; default auto)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds before a run is killed (default 900)")
    a = ap.parse_args(argv)
    wanted = {w.strip() for w in a.only.split(",") if w.strip()}
    unknown = wanted - {"lab", "all-models"}
    workers_ok = a.workers == "auto" or (a.workers.isdigit() and 1 <= int(a.workers) <= 16)
    if unknown or not workers_ok or not 10 <= a.timeout <= 3600:
        print(f"bad arguments: only={sorted(unknown) or 'ok'} workers={a.workers} timeout={a.timeout}",
              file=sys.stderr)
        return 2
    print(f"sipgw-lab lab run bench on {os.cpu_count()} CPU(s), load {os.getloadavg()[0]:.2f}")
    if "lab" in wanted:
        report(f"default lab, every suite, {a.workers} worker(s)",
               run_lab(["--inventory", "lab_inventory.yaml", "--workers", str(a.workers)], a.timeout), 300)
    if "all-models" in wanted:
        report(f"--all-models, basic call suite, {a.workers} workers",
               run_lab(["--all-models", "--workers", str(a.workers), "--feature", "make_calls",
                        "--feature", "receive_calls"], a.timeout), 600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
