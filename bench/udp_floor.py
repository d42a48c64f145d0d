"""The floor under the gateway's REGISTER figure: what Python and its event loop cost per REGISTER, with no SIP stack.

    .venv/bin/python -m bench.udp_floor [--rates 2000,4000] [--duration 5] [--loop uvloop|asyncio]

A responder in a process of its own answers SIPp's ``bench/scenarios/register.xml`` as a registrar would be seen
on the wire (401 to a REGISTER without ``Authorization``, 200 to one with it), by copying Via, From, To, Call-ID
and CSeq with one regular expression: no parsing, no digest check, no transaction, no binding. It is not a
registrar and nothing else uses it. For each rate SIPp sends ``rate × duration`` registrations; the figure is the
responder's CPU time (``/proc/<pid>/stat``) per successful registration (four datagrams: two received, two sent)
next to the rate SIPp achieved. Compare it with ``bench.sip_load``'s CPU per REGISTER of the gateway in the same
minute: the difference is the gateway's own work, which no change of sockets, event loop or process layout
removes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.sip_load import BenchError, cpu_seconds, free_udp_port, run_sipp, stop_process, write_users_csv

_COPIED = re.compile(rb"^(?:Via|From|To|Call-ID|CSeq):[^\r\n]*\r\n", re.M | re.I)


class _Responder(asyncio.DatagramProtocol):
    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[override]
        if not data.startswith(b"REGISTER "):
            return  # SIPp sends nothing else in this scenario
        copied = b"".join(m.group(0) for m in _COPIED.finditer(data))
        if b"\r\nAuthorization:" in data:
            head = b"SIP/2.0 200 OK\r\n" + copied + b"Contact: <sip:floor@127.0.0.1>;expires=3600\r\n"
        else:
            nonce = b"%x" % time.monotonic_ns()
            head = (b"SIP/2.0 401 Unauthorized\r\n" + copied +
                    b'WWW-Authenticate: Digest realm="sipgw.lab", nonce="' + nonce + b'", algorithm=MD5\r\n')
        self.transport.sendto(head + b"Content-Length: 0\r\n\r\n", addr)


def serve(port: int, loop_name: str) -> None:
    """The responder's process: listen on 127.0.0.1:port, print READY, run until SIGTERM."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(_Responder, local_addr=("127.0.0.1", port))
        print("READY", flush=True)
        await asyncio.Event().wait()

    if loop_name == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def measure(rates: list[float], duration: float, loop_name: str, users: int = 1000) -> list[dict]:
    port = free_udp_port()
    results = []
    with tempfile.TemporaryDirectory(prefix="sipgw-floor-") as tmp:
        work = Path(tmp)
        users_csv = write_users_csv(work / "users.csv", users)
        proc = subprocess.Popen([sys.executable, "-m", "bench.udp_floor", "--serve", str(port), "--loop", loop_name],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                cwd=Path(__file__).resolve().parent.parent)
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            if line.strip() != "READY":
                raise BenchError(f"the responder did not start (exit status {proc.poll()}, said {line!r})")
            for rate in rates:
                before = cpu_seconds(proc.pid)
                stats, sipp_cpu, _ = run_sipp("register.xml", target=f"127.0.0.1:{port}", csv_file=users_csv,
                                              rate=rate, calls=int(rate * duration), workdir=work,
                                              hard_timeout_s=duration * 3 + 10)
                used = cpu_seconds(proc.pid) - before
                ok = max(stats.successful, 1)
                results.append({"target_rate": rate, "achieved_rate": stats.successful / max(stats.elapsed_s, 1e-9),
                                "successful": stats.successful, "failed": stats.failed,
                                "responder_cpu_us_per_op": used / ok * 1e6, "sipp_cpu_us_per_op": sipp_cpu / ok * 1e6})
        finally:
            stop_process(proc)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.udp_floor", description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="2000,4000", help="comma-separated REGISTER rates (default 2000,4000)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per rate, 1 to 10 (default 5)")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop", help="the responder's event loop")
    p.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.loop)
        return 0
    try:
        rates = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        p.error(f"--rates {args.rates!r}: expected numbers separated by commas, e.g. 2000,4000")
    if not rates or any(not 1 <= r <= 50_000 for r in rates):
        p.error(f"--rates {args.rates!r}: each rate must be 1 to 50000 per second")
    if not 1 <= args.duration <= 10:
        p.error(f"--duration {args.duration}: expected 1 to 10 seconds")
    try:
        results = measure(rates, args.duration, args.loop)
    except BenchError as exc:
        print(f"udp_floor: {exc}", file=sys.stderr)
        return 1
    print(f"{'target/s':>9} {'achieved/s':>11} {'failed':>7} {'µs/REG responder':>17} {'µs/REG SIPp':>12}")
    for r in results:
        print(f"{r['target_rate']:9.0f} {r['achieved_rate']:11.0f} {r['failed']:7d} "
              f"{r['responder_cpu_us_per_op']:17.1f} {r['sipp_cpu_us_per_op']:12.1f}")
    print(f"(load average {os.getloadavg()[0]:.1f}; {args.loop})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
