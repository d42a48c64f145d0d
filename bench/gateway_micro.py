"""CPU cost of the whole gateway per REGISTER and per call, in one process, without sockets.

    .venv/bin/python -m bench.gateway_micro [--n 2000] [--rounds 3] [--profile FILE]
    PYTHONPATH=OTHER_CHECKOUT .venv/bin/python OTHER_CHECKOUT/bench/gateway_micro.py   # another checkout

The bench's gateway (``bench.gateway_proc``'s tenant, digest MD5, firmware gating on, trace off) runs on an
event loop; the messages SIPp would send are fed to its SIP core as datagrams (``SipCore._on_data``, what
the UDP transport calls) and what the gateway sends is captured instead of written to a socket
(``TransportManager.send_udp``), and answered from that captured text:

- **REGISTER**: REGISTER → 401 → REGISTER with ``Authorization`` → 200 (``bench/scenarios/register.xml``).
- **call**: INVITE → 407 → ACK → INVITE with ``Proxy-Authorization`` → 100 → INVITE to the callee →
  its 200 → 200 to the caller → ACK → ACK to the callee → BYE → BYE to the callee → its 200 → 200 to the
  caller (``uac.xml`` and ``uas.xml`` through the B2BUA, no media).

Each figure is the best of ``--rounds`` rounds of ``--n`` operations in µs of CPU (``time.process_time``)
per operation, and beside it the part spent inside the gateway (from each datagram handed to the SIP core until
the call returns): the rest is the harness playing SIPp (building messages, computing the digest response,
reading what the gateway sent). Transaction timers do not fire inside a round (they are due seconds later):
the figure is the work per operation without the timers' clean-up and without ``sendto``;
``bench.sip_load`` measures everything. Every operation's outcome is checked (a 200 at the end of each), so a
broken path fails loudly instead of looking fast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from bench.gateway_proc import CALLEE, CALLEE_NUMBER, WARM_UP_AGENT, bench_tenant, user_name, user_number
from device_profiles.verdict import check_user_agent
from gateway import sip
from gateway.config import GatewayConfig
from gateway.gc_policy import GcPolicy
from gateway.server import EmbeddedGateway
from gateway.services.model import Flow
from gateway.sip.auth import authorization_for

PASSWORD = "bench-Secret-42"
DOMAIN = "sipgw.lab"
PHONE_PORT = 40000
CALLEE_PORT = 40002
SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
       "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")


class BenchFailure(RuntimeError):
    """The gateway did not answer an operation as the scenario expects (the message says what it sent)."""


class Harness:
    """Feeds datagrams to a started gateway and collects what it sends, by destination port."""

    def __init__(self, gw: EmbeddedGateway, users: int):
        self.gw = gw
        self.core = gw.core
        self.users = users
        self.sent: list[tuple[bytes, str, int]] = []
        self.core.transports.send_udp = self._capture  # type: ignore[method-assign]
        self.flows = {port: Flow("UDP", "127.0.0.1", port) for port in (PHONE_PORT, CALLEE_PORT)}
        self.seq = 0
        self.in_gateway = 0.0  # CPU seconds spent inside the SIP core's datagram handler (see deliver)
        self.idle_s = 0.0  # sleep before each datagram: the CPU idles between datagrams, as under a paced load

    def _capture(self, data: bytes, host: str, port: int) -> bool:
        self.sent.append((data, host, port))
        return True

    def feed(self, text: str, port: int) -> list[tuple[bytes, str, int]]:
        self.sent = []
        self.deliver(text.encode(), self.flows[port])
        return self.sent

    def deliver(self, data: bytes, flow: Flow) -> None:
        """One datagram into the SIP core, as the UDP transport hands it over; its CPU time is added to
        ``in_gateway``."""
        if self.idle_s:
            time.sleep(self.idle_s)  # not CPU time: only what idling does to the work after it is measured
        started = time.process_time()
        self.core._on_data(data, flow, self.core.now())
        self.in_gateway += time.process_time() - started

    # --- REGISTER ------------------------------------------------------------------------------------------
    def register(self, user: str, number: str, port: int) -> None:
        self.seq += 1
        n = self.seq
        base = (f"REGISTER sip:{DOMAIN} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{n}-{{b}};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:{number}@{DOMAIN}>;tag={n}R\r\n"
                f"To: <sip:{number}@{DOMAIN}>\r\n"
                f"Call-ID: {n}-reg@127.0.0.1\r\n"
                "CSeq: {cseq} REGISTER\r\n"
                f"Contact: <sip:{number}@127.0.0.1:{port}>\r\n"
                "Expires: 3600\r\n"
                f"User-Agent: {WARM_UP_AGENT}\r\n"
                "{auth}Content-Length: 0\r\n\r\n")
        out = self.feed(base.format(b=1, cseq=1, auth=""), port)
        challenge = _header(_only(out, 401, "REGISTER"), "WWW-Authenticate")
        creds = authorization_for(challenge, username=user, method="REGISTER", uri=f"sip:{DOMAIN}",
                                  password=PASSWORD)
        out = self.feed(base.format(b=2, cseq=2, auth=f"Authorization: {creds}\r\n"), port)
        _only(out, 200, "authenticated REGISTER")

    # --- call --------------------------------------------------------------------------------------------
    def call(self, i: int) -> None:
        self.seq += 1
        n = self.seq
        number = user_number(i)
        head = (f"INVITE sip:{CALLEE_NUMBER}@{DOMAIN} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{PHONE_PORT};branch=z9hG4bK-{n}-{{b}};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:{number}@{DOMAIN}>;tag={n}C\r\n"
                f"To: <sip:{CALLEE_NUMBER}@{DOMAIN}>{{to_tag}}\r\n"
                f"Call-ID: {n}-call@127.0.0.1\r\n")
        invite = (head + "CSeq: {cseq} INVITE\r\n"
                  f"Contact: <sip:{number}@127.0.0.1:{PHONE_PORT}>\r\n{{auth}}"
                  f"User-Agent: {WARM_UP_AGENT}\r\nContent-Type: application/sdp\r\n"
                  f"Content-Length: {len(SDP)}\r\n\r\n{SDP}")
        out = self.feed(invite.format(b=1, cseq=1, auth="", to_tag=""), PHONE_PORT)
        r407 = _only(out, 407, "INVITE")
        tag407 = _to_tag(r407)
        ack = head.format(b=1, to_tag=f";tag={tag407}").replace("INVITE sip", "ACK sip", 1)
        self.feed(ack + "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", PHONE_PORT)
        creds = authorization_for(_header(r407, "Proxy-Authenticate"), username=user_name(i), method="INVITE",
                                  uri=f"sip:{CALLEE_NUMBER}@{DOMAIN}", password=PASSWORD)
        out = self.feed(invite.format(b=2, cseq=2, auth=f"Proxy-Authorization: {creds}\r\n", to_tag=""), PHONE_PORT)
        b_invite = next((d for d, _, p in out if p == CALLEE_PORT and d.startswith(b"INVITE ")), None)
        if b_invite is None:
            raise BenchFailure(f"no INVITE to the callee; the gateway sent {_firsts(out)}")
        b = _Leg(b_invite.decode())
        # The callee answers 200 (uas.xml): To tag added, Contact of the callee.
        ok = b.response("200 OK", "u" + str(n), f"Contact: <sip:127.0.0.1:{CALLEE_PORT}>\r\n"
                        f"Content-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n{SDP}")
        out = self.feed(ok, CALLEE_PORT)
        a200 = _only(out, 200, "the callee's 200")
        if not any(d.startswith(b"ACK ") and p == CALLEE_PORT for d, _, p in out):  # the offer was in the INVITE
            raise BenchFailure(f"no ACK to the callee; the gateway sent {_firsts(out)}")
        a_tag = _to_tag(a200)
        in_dialog = head.format(b=3, to_tag=f";tag={a_tag}").replace(
            f"INVITE sip:{CALLEE_NUMBER}@{DOMAIN}", f"{{method}} {_contact(a200)}", 1)
        self.feed(in_dialog.format(method="ACK").replace(f"-{n}-3", f"-{n}-4") +
                  "CSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n", PHONE_PORT)
        out = self.feed(in_dialog.format(method="BYE") + "CSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n", PHONE_PORT)
        bye = next((d for d, _, p in out if p == CALLEE_PORT and d.startswith(b"BYE ")), None)
        if bye is None:
            raise BenchFailure(f"no BYE to the callee; the gateway sent {_firsts(out)}")
        _only(out, 200, "the caller's BYE")  # answered at once (RFC 3261 §15.1.2)
        self.feed(_Leg(bye.decode()).response("200 OK", None, "Content-Length: 0\r\n\r\n"), CALLEE_PORT)
        if self.core.b2bua.calls:
            raise BenchFailure(f"{len(self.core.b2bua.calls)} calls still up after the BYE")


class _Leg:
    """A request the gateway sent, answered the way SIPp does (Via, From, To, Call-ID, CSeq copied)."""

    def __init__(self, text: str):
        self.text = text

    def response(self, status: str, to_tag: str | None, rest: str) -> str:
        lines = []
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            for value in re.findall(rf"^{name}: (.*?)\r$", self.text, re.M):
                if name == "To" and to_tag and ";tag=" not in value:
                    value += f";tag={to_tag}"
                lines.append(f"{name}: {value}\r\n")
        return f"SIP/2.0 {status}\r\n" + "".join(lines) + rest


def _firsts(out: list[tuple[bytes, str, int]]) -> list[str]:
    return [d.split(b"\r\n", 1)[0].decode() + f" → {p}" for d, _, p in out]


def _only(out: list[tuple[bytes, str, int]], status: int, what: str) -> str:
    wanted = f"SIP/2.0 {status} ".encode()
    for data, _, _ in out:
        if data.startswith(wanted):
            return data.decode()
    raise BenchFailure(f"expected {status} to {what}; the gateway sent {_firsts(out)}")


def _header(text: str, name: str) -> str:
    m = re.search(rf"^{name}: (.*?)\r$", text, re.M)
    if m is None:
        raise BenchFailure(f"no {name} in {text.splitlines()[0]!r}")
    return m.group(1)


def _to_tag(text: str) -> str:
    m = re.search(r"^To: .*;tag=([^;\r]+)", text, re.M)
    if m is None:
        raise BenchFailure(f"no To tag in {text.splitlines()[0]!r}")
    return m.group(1)


def _contact(text: str) -> str:
    m = re.search(r"^Contact: <([^>]+)>", text, re.M)
    if m is None:
        raise BenchFailure(f"no Contact in {text.splitlines()[0]!r}")
    return m.group(1)


@contextlib.asynccontextmanager
async def started_harness(users: int, harness: type[Harness] | None = None) -> AsyncIterator[Harness]:
    """The bench gateway started on the running loop, its callee and ``users`` callers registered, the start-up
    objects frozen for the collector (as ``bench.gateway_proc``): a Harness (or ``harness``) around it."""
    with tempfile.TemporaryDirectory(prefix="sipgw-micro-") as tmp:
        config = GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0", digest_algorithms=["MD5"], trace_entries=0,
                               firmware_policy="enforce")
        gw = EmbeddedGateway(Path(tmp), config, tenant=bench_tenant(users, PASSWORD), control_api=False)
        check_user_agent(WARM_UP_AGENT, source="sip")
        await gw.start()
        policy: GcPolicy | None = None
        try:
            h = (harness or Harness)(gw, users)
            h.register(CALLEE, CALLEE_NUMBER, CALLEE_PORT)
            for i in range(users):
                h.register(user_name(i), user_number(i), PHONE_PORT)
            policy = GcPolicy()  # as bench.gateway_proc
            policy.install()
            yield h
        finally:
            if policy is not None:
                policy.remove()
            with contextlib.suppress(Exception):
                await gw.stop()


def operations(h: Harness) -> dict[str, Callable[[int], None]]:
    """The measured operations by name: operation ``k`` uses bench user ``k % users``."""
    users = h.users
    return {"REGISTER": lambda k: h.register(user_name(k % users), user_number(k % users), PHONE_PORT),
            "call": lambda k: h.call(k % users)}


async def _measure(n: int, rounds: int, users: int, profile: Path | None,
                   idle_s: float = 0.0) -> dict[str, tuple[float, float]]:
    async with started_harness(users) as h:
        h.idle_s = idle_s
        prof = None
        if profile is not None:
            import cProfile

            prof = cProfile.Profile(time.process_time)
        results: dict[str, tuple[float, float]] = {}
        for name, op in operations(h).items():
            best = (float("inf"), float("inf"))
            for _ in range(rounds):
                if prof is not None:
                    prof.enable()
                h.in_gateway = 0.0
                t0 = time.process_time()
                for k in range(n):
                    op(k)
                best = min(best, ((time.process_time() - t0) / n * 1e6, h.in_gateway / n * 1e6))
                if prof is not None:
                    prof.disable()
                await asyncio.sleep(0)  # let the loop run its housekeeping between rounds
            results[name] = best
        if prof is not None:
            prof.dump_stats(profile)
        return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gateway_micro", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="operations per round (default 2000)")
    p.add_argument("--rounds", type=int, default=3, help="rounds; the best is reported (default 3)")
    p.add_argument("--users", type=int, default=100, help="bench users (default 100)")
    p.add_argument("--profile", type=Path, help="write a cProfile (CPU time) of the measured rounds to FILE")
    p.add_argument("--idle-us", type=float, default=0.0,
                   help="sleep this many µs before each datagram (default 0): the CPU idles between datagrams, "
                        "as it does when SIPp paces them, and the figure shows what that does to the same work")
    args = p.parse_args(argv)
    if args.n < 1 or args.rounds < 1 or not 1 <= args.users <= 9999:
        p.error("--n and --rounds must be at least 1, --users 1 to 9999")
    if not 0 <= args.idle_us <= 100_000:
        p.error(f"--idle-us: expected 0 to 100000, got {args.idle_us}")
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        try:
            results = runner.run(_measure(args.n, args.rounds, args.users, args.profile, args.idle_us / 1e6))
        except BenchFailure as exc:
            print(f"gateway_micro: {exc}", file=sys.stderr)
            return 1
    print(f"SIP core: {sip.BUILD.reason}")
    for name, (us, inside) in results.items():
        print(f"{us:8.1f} µs  per {name}  ({inside:.1f} µs of it in the gateway)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
