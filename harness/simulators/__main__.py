"""Run one vendor-API simulator in the foreground, for developing a driver without the device:

    python -m harness.simulators poly --fake
    python -m harness.simulators yealink --gateway 127.0.0.1:5060 --user blake --password secret \\
        --number +14255550111 --log-dir /tmp/sim

It prints the simulator's base URL on the first line of stdout and serves until interrupted. ``audiocodes``
also serves its CLI over SSH (user ``Admin``, login and enable password ``Admin``) and prints
``ssh://HOST:PORT`` on the second line.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading

from harness.simulators.algo_rest import AlgoRestSimulator
from harness.simulators.audiocodes_mp import AudioCodesMpSimulator
from harness.simulators.backend import DeviceBackend, DeviceIdentity, FakeBackend, LineInfo
from harness.simulators.base import SimulatorServer
from harness.simulators.cisco_mpp import CiscoMppSimulator
from harness.simulators.poly_rest import PolyRestSimulator
from harness.simulators.yealink_action_uri import YealinkActionUriSimulator

#: vendor -> (simulator, model, firmware, SIP User-Agent)
KINDS: dict[str, tuple[type[SimulatorServer], str, str, str]] = {
    "poly": (PolyRestSimulator, "VVX 450", "6.4.3.5018", "PolycomVVX-VVX_450-UA/6.4.3.5018"),
    "yealink": (YealinkActionUriSimulator, "T54W", "96.86.0.100", "Yealink SIP-T54W 96.86.0.100"),
    "cisco": (CiscoMppSimulator, "8841", "11.3.5MPP", "Cisco-CP-8841-3PCC/11.3.5MPP"),
    "algo": (AlgoRestSimulator, "8301", "5.3.4", "Algo-8301/5.3.4"),
    "audiocodes": (AudioCodesMpSimulator, "MP114-FXS", "6.60A.367.001",
                   "Audiocodes-Sip-Gateway-MP-114 FXS/v.6.60A.367.001"),
}


def parse_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.simulators", description=__doc__.split("\n\n")[0])
    ap.add_argument("vendor", choices=sorted(KINDS))
    ap.add_argument("--port", type=int, default=0, help="HTTP port on 127.0.0.1 (default: an ephemeral one)")
    ap.add_argument("--fake", action="store_true", help="an in-memory device instead of a pjsua2 user agent")
    ap.add_argument("--gateway", type=parse_hostport, help="registrar and proxy HOST:PORT (UDP)")
    ap.add_argument("--domain", default="sipgw.lab")
    ap.add_argument("--user", default="lab-device")
    ap.add_argument("--password", default="")
    ap.add_argument("--number", default=None)
    ap.add_argument("--mac", default="00:04:f2:00:00:01")
    ap.add_argument("--log-dir", default=None)
    ap.add_argument("--control-server-url", default="", help="cisco: the Remote SDK server to connect to")
    args = ap.parse_args(argv)
    if not args.fake and args.gateway is None:
        ap.error("give --gateway HOST:PORT (a registrar to register with) or --fake")
    sim_cls, model, firmware, ua = KINDS[args.vendor]
    vendor = sim_cls.vendor
    backend: DeviceBackend
    if args.fake:
        backend = FakeBackend(DeviceIdentity(vendor=vendor, model=model, firmware=firmware, mac=args.mac,
                                             user_agent=ua, lines=(LineInfo(1, args.user, args.number, args.domain),)))
    else:
        from harness.simulators.sipua_backend import SipLine, SipuaBackend

        backend = SipuaBackend.spawn(name=f"sim-{args.vendor}", vendor=vendor, model=model, firmware=firmware,
                                     mac=args.mac, user_agent=ua,
                                     lines=[SipLine(args.user, args.password, args.number)], gateway=args.gateway,
                                     domain=args.domain, log_dir=args.log_dir or tempfile.mkdtemp(prefix="sim-"))
    kwargs: dict = {"port": args.port}
    if sim_cls is CiscoMppSimulator:
        kwargs["control_server_url"] = args.control_server_url
    if sim_cls is YealinkActionUriSimulator:
        kwargs["allowed_ips"] = ("127.0.0.1",)
    sim = sim_cls(backend, **kwargs)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    ssh = None
    try:
        print(sim.start(), flush=True)
        if sim_cls is AudioCodesMpSimulator:
            from harness.simulators.audiocodes_ssh import AudioCodesSshSimulator

            ssh = AudioCodesSshSimulator(sim)
            host, port = ssh.start()
            print(f"ssh://{host}:{port}", flush=True)
        stop.wait()
    finally:
        if ssh is not None:
            ssh.stop()
        sim.stop()
        backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
