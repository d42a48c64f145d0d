"""Helpers for the interop tests: SIPp runs, a small raw SIP client, free ports.

Every SIPp process is started with a bounded ``-m`` and ``-timeout`` and stopped by its PID when a test
ends. Results come from what was observed on the wire: SIPp's message log (``-trace_msg``) is parsed back
into SIP messages with the gateway's own parser.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from gateway.sip import Headers, Request, Response, SipParseError, parse_message
from gateway.sip.auth import DigestClient
from gateway.sip.framing import StreamFramer
from sipua.ports import default_allocator

SIPP = "/usr/bin/sipp"
SCENARIOS = Path(__file__).parent / "scenarios"
DOMAIN = "sipgw.lab"
#: A User-Agent the catalogue accepts (Poly VVX 450 at the minimum firmware); the MAC makes each device unique.
GOOD_UA = "PolycomVVX-VVX_450-UA/5.9.5.0614_0004f28e{:04x}"
OLD_UA = "PolycomVVX-VVX_450-UA/5.9.4.3247_0004f28e{:04x}"

class Ports:
    """SIP ports for SIPp and raw clients from ``sipua.PortAllocator`` blocks (xdist-safe)."""

    def __init__(self) -> None:
        self._alloc = default_allocator()
        self._leases: list = []
        self._free: list[int] = []

    def take(self) -> int:
        if not self._free:
            lease = self._alloc.lease()
            self._leases.append(lease)
            self._free = [lease.sip_port(i) for i in range(lease.block.sip_count)]
        return self._free.pop(0)

    def release(self) -> None:
        for lease in self._leases:
            lease.release()
        self._leases.clear()
        self._free.clear()


# --- SIPp -----------------------------------------------------------------------------------------------------

_LOG_SPLIT = re.compile(r"^-{20,} [0-9-]+ [0-9:.]+\n", re.M)
_LOG_HEAD = re.compile(r"^(UDP|TCP|TLS) message (received|sent) (?:\[\d+\] bytes ?:|\(\d+ bytes\):)\n\n", re.I)


@dataclass
class Logged:
    direction: str  # "in" or "out", as SIPp saw it
    message: Request | Response


@dataclass
class SippResult:
    returncode: int
    messages: list[Logged]
    stderr: str
    errors: str
    scenario: str

    def received(self) -> list[Request | Response]:
        return [m.message for m in self.messages if m.direction == "in"]

    def sent(self) -> list[Request | Response]:
        return [m.message for m in self.messages if m.direction == "out"]

    def responses(self, method: str | None = None) -> list[Response]:
        return [m for m in self.received() if isinstance(m, Response) and (method is None or m.cseq.method == method)]

    def requests(self, method: str | None = None) -> list[Request]:
        return [m for m in self.received() if isinstance(m, Request) and (method is None or m.method == method)]

    def explain(self) -> str:
        lines = [f"sipp {self.scenario} exited {self.returncode}", self.stderr[-1500:], self.errors[-1500:]]
        for m in self.messages:
            msg = m.message
            first = f"{msg.status} {msg.reason}" if isinstance(msg, Response) else f"{msg.method} {msg.uri}"
            lines.append(f"  {m.direction}: {first} ({msg.cseq})")
        return "\n".join(lines)


def parse_sipp_log(text: str) -> list[Logged]:
    out: list[Logged] = []
    for chunk in _LOG_SPLIT.split(text):
        m = _LOG_HEAD.match(chunk)
        if not m:
            continue
        raw = chunk[m.end():].encode("latin-1")
        raw = raw.rstrip(b"\n") + b"\n"
        # SIPp logs messages with LF line ends; the gateway parser accepts bare LF (RFC 3261 §7 tolerance).
        head, _, body = raw.partition(b"\n\n")
        data = head.replace(b"\n", b"\r\n") + b"\r\n\r\n" + body.rstrip(b"\n")
        try:
            msg = parse_message(_fix_length(data))
        except Exception:
            continue
        out.append(Logged("in" if m.group(2).lower() == "received" else "out", msg))
    return out


def _fix_length(data: bytes) -> bytes:
    head, _, body = data.partition(b"\r\n\r\n")
    head = re.sub(rb"(?im)^(content-length|l)\s*:\s*\d+", b"Content-Length: %d" % len(body), head)
    return head + b"\r\n\r\n" + body


class Sipp:
    """One SIPp process (UAC or UAS) on loopback, stopped by PID in :meth:`stop`."""

    def __init__(self, workdir: Path, scenario: str, target: tuple[str, int] | None, *, port: int,
                 keys: dict[str, str] | None = None, calls: int = 1, timeout_s: float = 15,
                 transport: str = "u1", local_ip: str = "127.0.0.1", extra: tuple[str, ...] = (),
                 inf: list[list[str]] | None = None):
        self.scenario = scenario
        self.name = f"{Path(scenario).stem}-{port}-{secrets.token_hex(3)}"
        self.dir = workdir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.msg_log = self.dir / "messages.log"
        self.err_log = self.dir / "errors.log"
        args = [SIPP, "-sf", str(SCENARIOS / scenario), "-m", str(calls), "-l", str(calls),
                "-timeout", f"{int(timeout_s)}s", "-timeout_error", "-recv_timeout", str(int(timeout_s * 1000)),
                "-nostdin", "-t", transport, "-i", local_ip, "-p", str(port), "-trace_msg", "-message_file",
                str(self.msg_log), "-trace_err", "-error_file", str(self.err_log), "-nd"]
        for k, v in (keys or {}).items():
            args += ["-key", k, v]
        if inf:
            csv = self.dir / "fields.csv"
            csv.write_text("SEQUENTIAL\n" + "".join(";".join(row) + ";\n" for row in inf))
            args += ["-inf", str(csv)]
        args += list(extra)
        if target is not None:
            args.append(f"{target[0]}:{target[1]}")
        self.args = args
        self.proc = subprocess.Popen(args, cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout: float = 30) -> SippResult:
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            _, err = self.proc.communicate()
        return self.result(err.decode("utf-8", "replace") if err else "")

    def result(self, stderr: str = "") -> SippResult:
        text = self.msg_log.read_text("latin-1") if self.msg_log.exists() else ""
        errors = self.err_log.read_text("latin-1") if self.err_log.exists() else ""
        rc = self.proc.returncode if self.proc.returncode is not None else -1
        return SippResult(rc, parse_sipp_log(text), stderr, errors, self.scenario)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(3)


@dataclass
class SippRunner:
    """Starts SIPp processes for one test and stops every one of them (by PID) at the end."""

    workdir: Path
    gateway: tuple[str, int]
    procs: list[Sipp] = field(default_factory=list)

    def start(self, scenario: str, *, port: int, target: tuple[str, int] | None = None, **kw) -> Sipp:
        p = Sipp(self.workdir, scenario, target or self.gateway, port=port, **kw)
        self.procs.append(p)
        return p

    def run(self, scenario: str, *, port: int, timeout: float = 30, **kw) -> SippResult:
        return self.start(scenario, port=port, **kw).wait(timeout)

    def uas(self, scenario: str, *, port: int, **kw) -> Sipp:
        return self.start(scenario, port=port, target=None, **kw)

    def register(self, user: str, password: str, port: int, *, ua: str, expires: int = 300,
                 scenario: str = "register.xml", **kw) -> SippResult:
        return self.run(scenario, port=port, keys={"ua": ua, "expires": str(expires)},
                        inf=[[user, password]], **kw)

    def stop_all(self) -> None:
        for p in self.procs:
            p.stop()


def wait_listening_udp(port: int, host: str = "127.0.0.1", timeout: float = 5.0, proc=None,
                       kind: int = socket.SOCK_DGRAM) -> None:
    """Wait until something is bound to a UDP (or TCP) port (SIPp UAS up), polling the bind with a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
            raise RuntimeError(f"SIPp exited with {proc.returncode} before listening on {port}: {err[-1000:]}")
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((host, port))
        except OSError:
            return
        finally:
            s.close()
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on udp {host}:{port} after {timeout} s")


# --- a raw SIP client ------------------------------------------------------------------------------------------

class RawClient:
    """A minimal SIP UA over UDP, TCP or TLS for the gateway tests: builds requests, reads responses."""

    def __init__(self, transport: str, gateway: tuple[str, int], *, host: str = "127.0.0.1",
                 ca_file: str | None = None, tls_version: ssl.TLSVersion | None = None):
        self.transport = transport.upper()
        self.gateway = gateway
        if self.transport == "UDP":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((host, 0))
        else:
            raw = socket.create_connection(gateway, timeout=5, source_address=(host, 0))
            if self.transport == "TLS":
                ctx = ssl.create_default_context(cafile=ca_file)
                if tls_version is not None:
                    ctx.minimum_version = ctx.maximum_version = tls_version
                raw = ctx.wrap_socket(raw, server_hostname=gateway[0])
            self.sock = raw
        self.local = self.sock.getsockname()[:2]
        self.framer = StreamFramer(1 << 20)
        self._queue: list[bytes] = []
        self.tag = secrets.token_hex(4)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        if self.transport == "UDP":
            self.sock.sendto(data, self.gateway)
        else:
            self.sock.sendall(data)

    def recv(self, timeout: float = 3.0) -> Request | Response | None:
        """The next message, or None when nothing came before the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            if self._queue:
                data = self._queue.pop(0)
                try:
                    return parse_message(data, stream=self.transport != "UDP")
                except SipParseError:
                    return LooseResponse.parse(data)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                if self.transport == "UDP":
                    data, _ = self.sock.recvfrom(65535)
                    self._queue.append(data)
                else:
                    data = self.sock.recv(65535)
                    if not data:
                        return None
                    for item in self.framer.feed(data):
                        if isinstance(item, bytes) and item.strip():
                            self._queue.append(item)
            except TimeoutError:
                return None

    def recv_response(self, call_id: str, timeout: float = 8.0, final: bool = True) -> Response | None:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            msg = self.recv(remaining)
            if msg is None:
                return None
            if (isinstance(msg, Response | LooseResponse) and msg.call_id == call_id
                    and (msg.status >= 200 or not final)):
                return msg
        return None

    def request(self, method: str, uri: str, headers: list[tuple[str, str]], *, call_id: str, cseq: int,
                from_user: str = "probe", to: str | None = None, body: bytes = b"") -> Request:
        tp = self.transport
        via = f"SIP/2.0/{tp} {self.local[0]}:{self.local[1]};branch=z9hG4bK{secrets.token_hex(8)};rport"
        base = [("Via", via), ("From", f"<sip:{from_user}@{DOMAIN}>;tag={self.tag}"),
                ("To", to or f"<sip:{from_user}@{DOMAIN}>"), ("Call-ID", call_id), ("CSeq", f"{cseq} {method}"),
                ("Max-Forwards", "70")]
        return Request.build(method, uri, base + headers, body)

    def register(self, user: str, password: str, *, ua: str, expires: int = 300, contact: str | None = None,
                 timeout: float = 8.0) -> Response:
        """REGISTER, answer the 401 with digest, return the final response."""
        call_id = f"reg-{secrets.token_hex(6)}"
        tp = "" if self.transport == "UDP" else f";transport={self.transport.lower()}"
        contact = contact or f"<sip:{user}@{self.local[0]}:{self.local[1]}{tp}>"
        uri = f"sip:{DOMAIN}"
        hdrs = [("Contact", contact), ("Expires", str(expires)), ("User-Agent", ua)]
        req = self.request("REGISTER", uri, hdrs, call_id=call_id, cseq=1, from_user=user)
        self.send_raw(req.to_bytes())
        resp = self.recv_response(call_id, timeout)
        assert resp is not None, f"no answer to REGISTER over {self.transport}"
        if resp.status != 401:
            return resp
        authz = DigestClient(user, password).authorize(resp.headers.get_all("WWW-Authenticate"),
                                                       method="REGISTER", uri=uri)
        req = self.request("REGISTER", uri, [*hdrs, ("Authorization", str(authz))], call_id=call_id, cseq=2,
                           from_user=user)
        self.send_raw(req.to_bytes())
        resp = self.recv_response(call_id, timeout)
        assert resp is not None, f"no answer to the authenticated REGISTER over {self.transport}"
        return resp


@dataclass
class LooseResponse:
    """A response the strict parser refuses, e.g. a 400 that echoes the malformed CSeq it complains about
    (RFC 3261 §8.2.6.1 copies CSeq into the response)."""

    status: int
    reason: str
    headers: Headers
    body: bytes

    @property
    def call_id(self) -> str | None:
        return self.headers.get("Call-ID")

    @classmethod
    def parse(cls, data: bytes) -> LooseResponse | None:
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        m = re.match(r"SIP/2\.0 (\d{3}) ?(.*)", lines[0])
        if not m:
            return None
        fields = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
        return cls(int(m.group(1)), m.group(2), Headers(fields), body)


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.02, what: str = "condition"):
    """Poll a cheap state read-back until it holds; raises with ``what`` after the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        time.sleep(interval)
