"""Run the embedded gateway in a process of its own for the load benchmark.

    python -m bench.gateway_proc --data-dir DIR --users 1000 --password PW [--sip 127.0.0.1:0]

It creates a tenant of ``--users`` users (``bench0000`` … with numbers ``+1425700NNNN``, one shared password)
plus the callee ``benchcallee`` (``+14257999999``), starts the gateway (control API off, firmware gating on,
digest with MD5 only because SIPp 3.6 computes nothing else) and prints one line
``READY udp=HOST:PORT pid=PID sip_core=compiled|python`` on stdout once it listens. SIGTERM or SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import sys
import time
from pathlib import Path

from device_profiles.verdict import check_user_agent
from gateway import sip
from gateway.config import GatewayConfig
from gateway.gc_policy import THRESHOLD0, GcPolicy
from gateway.server import EmbeddedGateway
from gateway.services.model import User
from gateway.tenant import Tenant

CALLEE = "benchcallee"
CALLEE_NUMBER = "+14257999999"
WARM_UP_AGENT = "Yealink SIP-T54W 96.86.0.100"  # the User-Agent of the bench scenarios


def user_name(i: int) -> str:
    return f"bench{i:04d}"


def user_number(i: int) -> str:
    return f"+1425700{i:04d}"


def bench_tenant(users: int, password: str) -> Tenant:
    entries = [(User(username=user_name(i), name=f"Bench User {i}", number=user_number(i)), password)
               for i in range(users)]
    entries.append((User(username=CALLEE, name="Bench Callee", number=CALLEE_NUMBER), password))
    return Tenant(tuple(entries), ())


async def serve(args: argparse.Namespace) -> None:
    config = GatewayConfig(sip=args.sip, http="127.0.0.1:0", digest_algorithms=["MD5"],
                           trace_entries=args.trace_entries, firmware_policy="enforce",
                           registrar_processes=args.registrar_processes)
    gw = EmbeddedGateway(Path(args.data_dir), config, tenant=bench_tenant(args.users, args.password),
                         control_api=False)
    # Load the device catalogue now rather than on the first REGISTER (as a long-running gateway has).
    check_user_agent(WARM_UP_AGENT, source="sip")
    eps = await gw.start()
    policy = None
    if args.gc_threshold:
        # As `sipgw-lab gateway serve`: start-up objects frozen, short pauses under load (gateway/gc_policy.py).
        policy = GcPolicy(threshold0=args.gc_threshold)
        policy.install(asyncio.get_running_loop())
    prof = None
    if args.profile:
        import cProfile

        prof = cProfile.Profile(time.process_time)  # CPU time: a busy machine's waits do not count
        prof.enable()
    gc_time = [0.0, 0.0, 0.0]
    gc_count = [0, 0, 0]
    started: list[float] = []

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            started.append(time.process_time())
        elif started:
            gc_time[info["generation"]] += time.process_time() - started.pop()
            gc_count[info["generation"]] += 1

    gc.callbacks.append(on_gc)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # sip_core: whether gateway.sip runs compiled (tools/compile_sip_core.py) or as Python source.
    print(f"READY udp={eps.udp[0]}:{eps.udp[1]} pid={os.getpid()} "
          f"sip_core={'compiled' if sip.COMPILED else 'python'}", flush=True)
    print(f"sip core: {sip.BUILD.reason}", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        gc.callbacks.remove(on_gc)
        print(f"gc: collections by generation {gc_count}, CPU seconds {[round(t, 3) for t in gc_time]}, "
              f"process CPU {time.process_time():.3f} s", file=sys.stderr, flush=True)
        if policy is not None:
            print(f"gc policy: {policy.stats.summary()}", file=sys.stderr, flush=True)
            policy.remove()
        if prof is not None:
            prof.disable()
            prof.dump_stats(args.profile)
        await gw.stop()


def _default_loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gateway_proc", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True, help="directory for the gateway's store and certificates")
    p.add_argument("--users", type=int, default=1000, help="tenant users bench0000… (default 1000)")
    p.add_argument("--password", required=True, help="SIP password of every bench user")
    p.add_argument("--sip", default="127.0.0.1:0", help="UDP/TCP listening address (default 127.0.0.1:0)")
    p.add_argument("--trace-entries", type=int, default=0,
                   help="size of the SIP trace ring (default 0: off, as a loaded production gateway)")
    p.add_argument("--profile", metavar="FILE",
                   help="write cProfile statistics (CPU time, from READY to the end) to FILE")
    p.add_argument("--gc-threshold", type=int, default=THRESHOLD0, metavar="N",
                   help=f"the gateway's GC policy (gateway/gc_policy.py) with generation 0 collected every N "
                        f"allocations (default {THRESHOLD0}; 0: Python's defaults, no policy). Transactions live "
                        "32 s (Timer J), so with Python's defaults full collections of ~0.1 s run every few seconds "
                        "under load")
    p.add_argument("--registrar-processes", type=int, default=1, metavar="N",
                   help="processes that answer UDP REGISTERs, the gateway's included (default 1; gateway/shards)")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default=_default_loop(),
                   help="event loop (default uvloop when installed, as EmbeddedGateway.start_in_thread does)")
    args = p.parse_args(argv)
    if not 1 <= args.users <= 9999:
        p.error(f"--users {args.users}: expected 1 to 9999")
    if not 1 <= args.registrar_processes <= 16:
        p.error(f"--registrar-processes {args.registrar_processes}: expected 1 to 16")
    if args.loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            p.error("--loop uvloop: uvloop is not installed (pip install uvloop)")
        factory = uvloop.new_event_loop
    else:
        factory = asyncio.new_event_loop
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
