"""The most a gateway spread over several processes could reach: independent gateways, one SIPp each.

    .venv/bin/python -m bench.shard_ceiling                          # 1 process, then 2, REGISTER with digest
    .venv/bin/python -m bench.shard_ceiling --processes 1,2,3 --rates 900,1200,1500 --duration 10

Every gateway process (``bench.gateway_proc``, the tenant ``bench.sip_load`` uses) gets its own port, its own users
and its own SIPp client, and all of them run at once at the same rate each, for ``--duration`` seconds. Nothing
is dispatched or shared between them, so the combined rate of a row that passes is an upper bound for any gateway
that spreads REGISTERs over that many processes on this machine: a real one also pays for handing datagrams to the
process that owns them and for sharing registrations. A row passes when every SIPp run passes ``bench.sip_load``'s
test (< 0.1 % failed, ≥ 97 % of the target rate achieved). Set the passing combined rate against Kamailio's
REGISTER figure from ``bench.sip_load`` on the same machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.sip_load import (
    BenchError,
    GatewayServer,
    RunResult,
    free_udp_port,
    measure_run,
    register_users,
    write_users_csv,
)


def _numbers(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def run_row(servers: list[tuple[GatewayServer, Path]], rate: int, duration_s: float) -> list[RunResult]:
    """All gateways at ``rate`` REGISTER/s each, at the same time."""
    results: list[RunResult | BaseException | None] = [None] * len(servers)

    def one(i: int) -> None:
        server, workdir = servers[i]
        try:
            results[i] = measure_run(server, "register", rate, duration_s, csv_file=workdir / "users.csv",
                                     workdir=workdir)
        except BaseException as exc:  # reported below, in the main thread
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(servers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        if isinstance(r, BaseException):
            raise BenchError(f"a SIPp run failed: {r}") from r
    return [r for r in results if isinstance(r, RunResult)]


def measure(processes: int, rates: list[int], duration_s: float, users: int, workdir: Path,
            cooldown_s: float) -> list[tuple[int, list[RunResult]]]:
    servers: list[tuple[GatewayServer, Path]] = []
    rows = []
    try:
        for i in range(processes):
            wd = workdir / f"p{processes}-gw{i}"
            wd.mkdir(parents=True, exist_ok=True)
            server = GatewayServer(wd, users)
            servers.append((server, wd))
            server.start()
            server.client_port = free_udp_port()
            register_users(server, write_users_csv(wd / "users.csv", users), wd)
        for rate in rates:
            rows.append((rate, run_row(servers, rate, duration_s)))
            print(format_row(processes, rate, rows[-1][1]), flush=True)
            time.sleep(cooldown_s)
    finally:
        for server, _ in servers:
            server.stop()
    return rows


def format_row(processes: int, rate: int, results: list[RunResult]) -> str:
    total = sum(r.achieved_rate for r in results)
    passed = all(r.passed for r in results)
    gw = "/".join(f"{r.cpu_us_per_op['gateway'] or 0:.0f}" for r in results)
    sipp = "/".join(f"{r.cpu_us_per_op['sipp_client'] or 0:.0f}" for r in results)
    retrans = sum(r.retransmissions for r in results)
    drops = sum(r.server_udp_drops for r in results)
    verdict = "pass" if passed else "FAIL: " + "; ".join(r.reason for r in results if not r.passed)
    return (f"{processes:>9}  {rate:>8}  {processes * rate:>8}  {total:>8.0f}  {gw:>17}  {sipp:>13}  "
            f"{retrans:>7}  {drops:>6}  {verdict}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.shard_ceiling", description=__doc__.split("\n\n")[0])
    p.add_argument("--processes", default="1,2", type=_numbers,
                   help="process counts to measure, in turn (default 1,2)")
    p.add_argument("--rates", default="1000,1300,1600,1900", type=_numbers,
                   help="REGISTER/s offered to each process, in turn (default 1000,1300,1600,1900)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per run (default 10, at most 60)")
    p.add_argument("--users", type=int, default=1000, help="bench users per gateway (default 1000)")
    p.add_argument("--cooldown", type=float, default=3.0, help="seconds between runs (default 3)")
    args = p.parse_args(argv)
    if not 1 <= args.duration <= 60:
        p.error(f"--duration: expected 1 to 60 seconds, got {args.duration}")
    if max(args.processes) > 4:
        p.error(f"--processes: at most 4 gateways at once, got {max(args.processes)}")
    if not 10 <= args.users <= 100_000:
        p.error(f"--users: expected 10 to 100000, got {args.users}")
    with tempfile.TemporaryDirectory(prefix="shard-ceiling-") as tmp:
        print("processes  rate/proc   offered  achieved  µs/REG (gateways)  µs/REG (SIPp)  retrans   drops  verdict")
        try:
            for n in args.processes:
                measure(n, args.rates, args.duration, args.users, Path(tmp), args.cooldown)
        except BenchError as exc:
            print(f"shard_ceiling: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
