"""Instructions the gateway executes per REGISTER and per call, counted by Valgrind (callgrind): a figure that
does not move with the machine's load, for before/after comparisons of a change.

    .venv/bin/python -m bench.instructions [--n 200] [--operations REGISTER,call] [--keep DIR]
    .venv/bin/python -m bench.instructions --root OTHER_CHECKOUT      # the same count for another checkout

CPU time on a shared 2-vCPU VM moves by ±20 % between back-to-back runs (``bench/README.md``), more than most
single changes gain; an instruction count moves by well under 0.1 %. The operations are
``bench.gateway_micro``'s (the bench gateway on an event loop, SIPp's messages fed to its SIP core as datagrams,
its answers captured instead of sent), but only the gateway's own work is counted: each datagram is handed to
``SipCore._on_data`` through ``sys.call_tracing`` and callgrind collects inside that function only
(``--toggle-collect``), so the harness's own work (building the requests, the client's digest, reading the
answers), the start-up and the interpreter's exit are left out. Not counted either, as in ``gateway_micro``:
sockets, the event loop, timer clean-up and the collector. Instructions are not time (a cache miss costs more
than an add), so a change is judged by both: this count, and ``sip_load``'s CPU per operation.

It needs Valgrind (Debian ``valgrind``). Under Valgrind the gateway runs about 50 times slower: 200 operations
of each kind take about a minute and a half.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = ("REGISTER", "call")
#: The one C function whose calls are counted: nothing else in the gateway or the harness calls it.
TOGGLE = "sys_call_tracing"
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


class InstructionError(RuntimeError):
    """The count could not be taken; the message says why."""


def count(root: Path, operation: str, n: int, users: int, keep: Path | None = None) -> int:
    """Instructions of the gateway at ``root`` for ``n`` operations (callgrind's total inside TOGGLE)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise InstructionError("valgrind is not installed (Debian package valgrind)")
    with tempfile.TemporaryDirectory(prefix="sipgw-instr-") as tmp:
        out = (keep or Path(tmp)) / f"callgrind.{operation}.out"
        # This file runs the child with the other checkout first on the path: its gateway is counted, while the
        # harness (this checkout's bench.gateway_micro, loaded by file name) stays the same for both.
        cmd = [valgrind, "--tool=callgrind", f"--toggle-collect={TOGGLE}", f"--callgrind-out-file={out}",
               sys.executable, str(Path(__file__).resolve()), "--child", operation, "--n", str(n),
               "--users", str(users)]
        env = {**os.environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": "0"}
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise InstructionError(f"{operation} under valgrind exited with {proc.returncode}: {' | '.join(tail)}")
        m = _COLLECTED.search(proc.stderr)
        if m is None:
            raise InstructionError(f"no 'Collected' total in valgrind's output for {operation}")
        return int(m.group(1))


def _child(operation: str, n: int, users: int) -> int:
    """Under valgrind: run ``n`` operations, every datagram through ``sys.call_tracing`` (the counted call)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("sipgw_lab_gateway_micro", ROOT / "bench" / "gateway_micro.py")
    assert spec is not None and spec.loader is not None
    micro = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(micro)
    BenchFailure, Harness, operations, started_harness = (
        micro.BenchFailure, micro.Harness, micro.operations, micro.started_harness)

    class Counted(Harness):  # type: ignore[misc,valid-type]
        counting = False  # the start-up's registrations are not counted

        def deliver(self, data: bytes, flow) -> None:
            if self.counting:
                sys.call_tracing(self.core._on_data, (data, flow, self.core.now()))
            else:
                super().deliver(data, flow)

    async def run() -> None:
        async with started_harness(users, Counted) as h:
            op = operations(h)[operation]
            h.counting = True
            for k in range(n):
                op(k)

    try:
        asyncio.run(run())
    except BenchFailure as exc:  # the gateway answered an operation wrongly: no figure
        print(f"instructions: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=200, help="operations of each kind (default 200)")
    p.add_argument("--users", type=int, default=100, help="bench users (default 100)")
    p.add_argument("--operations", default=",".join(OPERATIONS), help="comma-separated: REGISTER,call")
    p.add_argument("--root", type=Path, default=ROOT, help="the checkout to count (default this one)")
    p.add_argument("--keep", type=Path, help="keep callgrind's files here (for callgrind_annotate)")
    p.add_argument("--child", choices=OPERATIONS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not 1 <= args.n <= 100_000 or not 1 <= args.users <= 9999:
        p.error("--n must be 1 to 100000 and --users 1 to 9999")
    if args.child:
        return _child(args.child, args.n, args.users)
    wanted = [o.strip() for o in args.operations.split(",") if o.strip()]
    unknown = [o for o in wanted if o not in OPERATIONS]
    if unknown or not wanted:
        p.error(f"--operations: unknown {', '.join(unknown) or '(none given)'}; expected REGISTER and/or call")
    root = args.root.resolve()
    if not (root / "bench" / "gateway_micro.py").is_file():
        p.error(f"--root {root}: not a sipgw-lab checkout (no bench/gateway_micro.py)")
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    core = subprocess.run([sys.executable, "-c", "import gateway.sip as s; print(s.BUILD.reason)"], cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True)
    print(f"checkout: {root}")
    print(f"SIP core: {core.stdout.strip() or core.stderr.strip().splitlines()[-1:]}")
    try:
        for operation in wanted:
            total = count(root, operation, args.n, args.users, args.keep)
            print(f"{total / args.n:12,.0f} instructions per {operation}  ({total:,} in {args.n})")
    except (InstructionError, subprocess.TimeoutExpired) as exc:
        print(f"instructions: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
