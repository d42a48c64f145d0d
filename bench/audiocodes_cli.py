"""What one AudioCodes CLI session over SSH costs: netmiko (``audiocode_72``) against the paramiko simulator.

    .venv/bin/python -m bench.audiocodes_cli [--sessions 5] [--commands 20]

Prints, for ``--sessions`` sessions of ``--commands`` ``show voip ports`` each (bounded: at most 50 sessions and
500 commands): the session set-up (TCP, SSH, login, enable, paging off), the command round trip parsed into port
values, and the close (netmiko turns paging back on). Everything runs on 127.0.0.1; the simulator's device is an
in-memory backend, so the figures are the client's and the CLI dialogue's, not a real device's.
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness.drivers.vendors.audiocodes_cli import AudioCodesCli, SshEndpoint
from harness.simulators import DeviceIdentity, FakeBackend, LineInfo
from harness.simulators.audiocodes_mp import AudioCodesMpSimulator
from harness.simulators.audiocodes_ssh import AudioCodesSshSimulator


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(values) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   n={len(values)}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.audiocodes_cli", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=5)
    ap.add_argument("--commands", type=int, default=20)
    args = ap.parse_args(argv)
    sessions, commands = max(1, min(args.sessions, 50)), max(1, min(args.commands, 500))
    ident = DeviceIdentity("AudioCodes", "MP124", "7.24A.256.468", "00:90:8f:4a:5b:6c", "bench", "SN1",
                           tuple(LineInfo(i, f"port{i}", f"+142570000{i:02d}", "sipgw.lab") for i in range(1, 25)))
    rest = AudioCodesMpSimulator(FakeBackend(ident))
    rest.start()
    ssh = AudioCodesSshSimulator(rest, username="Admin", password="bench-pw", enable_password="bench-en")
    host, port = ssh.start()
    setup, rtt, close = [], [], []
    try:
        for _ in range(sessions):
            cli = AudioCodesCli(SshEndpoint(host, port, "Admin", "bench-pw", "bench-en", timeout=10, read_timeout=10))
            t0 = time.perf_counter()
            cli.connect()
            setup.append(time.perf_counter() - t0)
            for _ in range(commands):
                t0 = time.perf_counter()
                ports = cli.ports()
                rtt.append(time.perf_counter() - t0)
                assert len(ports) == 24
            t0 = time.perf_counter()
            cli.close()
            close.append(time.perf_counter() - t0)
    finally:
        ssh.stop()
        rest.stop()
    print(f"session set-up (SSH, login, enable, paging off): {_ms(setup)}")
    print(f"show voip ports, 24 ports, parsed:                 {_ms(rtt)}")
    print(f"session close (paging back on, exit):              {_ms(close)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
