"""Media node figures: pool growth, call set-up through the gateway, CPU and memory with tones flowing.

    .venv/bin/python -m bench.media_node [--calls 8] [--hold-s 5]

Starts an embedded gateway with the media node on loopback, has PSTN parties call a Teams user whose only
endpoint is its Teams client (so both legs of every call are media-node parties, two pool slots per
call), and prints: worker spawn times, INVITE-to-confirmed latency (median and max), CPU per worker
process from /proc/<pid>/stat over ``--hold-s`` seconds with G.711 tones both ways, RSS per process, and
the time to end every call and close the node.  Bounded: at most 32 calls, 60 s of holding.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from gateway.config import GatewayConfig
from gateway.server import EmbeddedGateway
from gateway.services.model import PstnRange, User

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=8, help="simultaneous calls (two media-node legs each), 1-32")
    ap.add_argument("--hold-s", type=float, default=5.0, help="seconds to hold all calls up, 1-60")
    args = ap.parse_args(argv)
    if not 1 <= args.calls <= 32 or not 1 <= args.hold_s <= 60:
        ap.error("--calls must be 1-32 and --hold-s 1-60")
    with tempfile.TemporaryDirectory(prefix="sipgw-bench-media-") as tmp:
        cfg = GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0", firmware_policy="warn",
                            media_workers_max=max(2, args.calls // 2 + 2))
        gw = EmbeddedGateway(tmp, cfg, media="node", control_api=False)
        gw.directory.put_user(User("teams", "Teams User", "+14255550999", teams_client=True), password="x")
        gw.directory.set_pstn_ranges([PstnRange("+1206555", None)])
        t0 = time.monotonic()
        gw.start_in_thread()
        node = gw.media
        print(f"gateway + first media worker up in {time.monotonic() - t0:.3f} s")
        setup: list[float] = []
        t_all = time.monotonic()
        for i in range(args.calls):
            t = time.monotonic()
            c = node.originate("pstn", f"+1206555{i:04d}", "+14255550999")
            deadline = t + 10
            while node.call(c.id).state != "confirmed":
                if node.call(c.id).state == "disconnected" or time.monotonic() > deadline:
                    print(f"call {i} failed: {node.call(c.id).state} {node.call(c.id).status_code}", file=sys.stderr)
                    break
                time.sleep(0.002)
            setup.append(time.monotonic() - t)
        print(f"{args.calls} calls set up one after another in {time.monotonic() - t_all:.3f} s; originate to "
              f"confirmed: median {statistics.median(setup) * 1000:.1f} ms, max {max(setup) * 1000:.1f} ms "
              "(includes spawning workers as the pool grows)")
        pool = node.pool
        workers = pool.workers
        print(f"pool: {len(workers)} worker processes for {2 * args.calls} party legs; spawn times "
              + ", ".join(f"{w.spawn_s * 1000:.0f} ms" for w in workers))
        pids = [w.pid for w in workers]
        c0 = {p: cpu_s(p) for p in pids}
        t = time.monotonic()
        time.sleep(args.hold_s)
        wall = time.monotonic() - t
        used = {p: cpu_s(p) - c0[p] for p in pids}
        total = sum(used.values())
        print(f"CPU over {wall:.1f} s with {args.calls} calls (tones both ways, PCMU): {total / wall * 100:.1f} % of "
              f"one core in total, {total / wall * 100 / (2 * args.calls):.2f} % per party leg; per process "
              + ", ".join(f"{used[p] / wall * 100:.1f} %" for p in pids))
        print("RSS per process: " + ", ".join(f"{rss_mib(p):.1f} MiB" for p in pids))
        t = time.monotonic()
        for c in [c for c in node.calls() if c.direction == "out"]:
            node.hangup(c.id)
        while any(c.state != "disconnected" for c in node.calls()):
            if time.monotonic() - t > 15:
                print("calls still up after 15 s", file=sys.stderr)
                break
            time.sleep(0.005)
        print(f"all calls ended in {time.monotonic() - t:.3f} s")
        t = time.monotonic()
        gw.stop_thread()
        print(f"gateway and media node stopped in {time.monotonic() - t:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
