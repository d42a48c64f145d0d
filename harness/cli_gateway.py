"""``sipgw-lab gateway serve``: the embedded reference gateway as a foreground process.

    sipgw-lab gateway serve --sip 127.0.0.1:5060 --http 127.0.0.1:8080 --data ./gw-data \
        [--tls HOST:PORT] [--provisioning HOST:PORT] [--tenant tenant.yaml] [--config gateway.yaml] \
        [--control-token-file FILE]

Logs go to stderr, one line per event (``key=value``, or JSON with ``--log-format json``). Once every listener
is up and the gateway has answered an OPTIONS sent to its own UDP port, one line goes to stdout:

    event=ready udp=127.0.0.1:5060 tcp=127.0.0.1:5060 tls=127.0.0.1:5061 control=http://127.0.0.1:8080 \
        provisioning=http://127.0.0.1:40123 data=gw-data pid=4242 control_token=-

The control API (and the provisioning server's /admin pages) need ``Authorization: Bearer <token>`` when there is
a control token: the first line of ``--control-token-file FILE``, or, when ``--http`` is not on loopback and no
file is given, a token the gateway makes once in ``<data dir>/control-token`` (mode 0600) and reuses. The ready
line's ``control_token`` is the token file's path (``-``: no token, the API is open on loopback).

SIGINT or SIGTERM stop it cleanly (listeners closed, store flushed), exit status 0. Bad flags, a bad tenant or
configuration file, an unusable data directory or a port in use: a located message and exit status 2, with
nothing written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path

from pydantic import SecretStr

from device_profiles.yamlio import DataFileError
from gateway import sip as sip_core
from gateway.config import GatewayConfig, load_config, parse_hostport
from gateway.control_api.auth import TokenFileError, ensure_token_file, is_loopback, read_token_file, token_source
from gateway.gc_policy import GcPolicy
from gateway.tenant import load_tenant

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

log = logging.getLogger("sipgw.serve")

def loop_factory():
    """uvloop's event loop when it is installed (about a fifth less CPU per call), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


class ServeError(Exception):
    """Bad input or an unusable resource, reported as ``sipgw-lab: error: ...`` with exit status 2."""


# --- logging ------------------------------------------------------------------------------------------------

def _kv_value(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


class KeyValueFormatter(logging.Formatter):
    """``ts=… level=info logger=sipgw.server event=… key=value`` (messages already in key=value are kept)."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        msg = record.getMessage()
        body = msg if msg.startswith("event=") else f"msg={_kv_value(msg)}"
        line = f"ts={ts} level={record.levelname.lower()} logger={record.name} {body}"
        if record.exc_info:
            line += f" exc={_kv_value(self.formatException(record.exc_info))}"
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name,
        }
        msg = record.getMessage()
        if msg.startswith("event="):
            out.update(_parse_kv(msg))
        else:
            out["msg"] = msg
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def _parse_kv(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    decoder = json.JSONDecoder()
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] == " ":
            i += 1
        eq = text.find("=", i)
        if eq < 0:
            break
        key = text[i:eq]
        j = eq + 1
        if j < n and text[j] == '"':
            try:
                value, j = decoder.raw_decode(text, j)
            except ValueError:
                value = text[j:]
                j = n
        else:
            end = text.find(" ", j)
            end = n if end < 0 else end
            value, j = text[j:end], end
        out[key] = str(value)
        i = j
    return out


def setup_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))


# --- checks before anything is written ------------------------------------------------------------------------

def _address(flag: str, value: str | None, default_port: int) -> tuple[str, int] | None:
    if value is None:
        return None
    try:
        return parse_hostport(value, default_port)
    except ValueError as exc:
        raise ServeError(f"{flag} {value}: {exc}") from None


def _fmt(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_free(what: str, host: str, port: int, kinds: tuple[int, ...]) -> None:
    """Fail early, naming the flag, when a fixed port is taken (port 0 is always free)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for kind in kinds:
        sock = socket.socket(family, kind)
        try:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        except OSError as exc:
            proto = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
            if exc.errno == errno.EADDRINUSE:
                raise ServeError(f"{what} {_fmt(host, port)}: {proto} port {port} is already in use") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ServeError(f"{what} {_fmt(host, port)}: {host} is not an address of this machine") from None
            if exc.errno == errno.EACCES:
                raise ServeError(f"{what} {_fmt(host, port)}: not allowed to bind {proto} port {port} "
                                 "(ports below 1024 need privileges)") from None
            raise ServeError(f"{what} {_fmt(host, port)}: cannot bind {proto}: {exc.strerror}") from None
        finally:
            sock.close()


def _prepare_data_dir(path: str) -> Path:
    data = Path(path)
    if data.exists() and not data.is_dir():
        raise ServeError(f"--data {path}: exists and is not a directory")
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ServeError(f"--data {path}: cannot create the directory: {exc.strerror}") from None
    if not os.access(data, os.W_OK | os.X_OK):
        raise ServeError(f"--data {path}: the directory is not writable")
    return data


def build_config(args: argparse.Namespace) -> GatewayConfig:
    sip = _address("--sip", args.sip, 5060)
    tls = _address("--tls", args.tls, 5061)
    http = _address("--http", args.http, 8080)
    overrides = {
        "sip": _fmt(*sip) if sip else None,
        "tls": _fmt(*tls) if tls else None,
        "http": _fmt(*http) if http else None,
        "registrar_processes": getattr(args, "registrar_processes", None),
    }
    return load_config(args.config, **overrides)


# --- OPTIONS self-check -----------------------------------------------------------------------------------

class _Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr) -> None:
        self.received.put_nowait(data)


async def options_check(host: str, port: int, timeout: float = 3.0) -> tuple[int, float]:
    """Send an OPTIONS to the gateway's UDP port and return (status, round trip in ms) of its answer."""
    from gateway.sip import Request, parse_message

    target = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    transport, proto = await loop.create_datagram_endpoint(_Collect, local_addr=(target, 0), family=family)
    try:
        lhost, lport = transport.get_extra_info("sockname")[:2]
        branch = "z9hG4bK" + secrets.token_hex(8)
        req = Request.build("OPTIONS", f"sip:{_fmt(target, port)}", [
            ("Via", f"SIP/2.0/UDP {_fmt(lhost, lport)};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:self-check@{_fmt(lhost, lport)}>;tag={secrets.token_hex(4)}"),
            ("To", f"<sip:{_fmt(target, port)}>"),
            ("Call-ID", f"self-check-{secrets.token_hex(8)}"),
            ("CSeq", "1 OPTIONS"),
            ("User-Agent", "sipgw-lab-serve"),
        ])
        started = time.monotonic()
        deadline = started + timeout
        transport.sendto(req.to_bytes(), (target, port))
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer to OPTIONS from udp {_fmt(target, port)} within {timeout} s")
            data = await asyncio.wait_for(proto.received.get(), remaining)
            msg = parse_message(data)
            status = getattr(msg, "status", None)
            if status is not None and status >= 200:
                return status, (time.monotonic() - started) * 1000
    finally:
        transport.close()


# --- serve ------------------------------------------------------------------------------------------------

def _control_token(args: argparse.Namespace, config: GatewayConfig) -> str | None:
    """The token of ``--control-token-file`` (checked before anything is written), or None; a non-loopback
    ``--http`` without a file gets its token later, from :func:`_generated_token`."""
    if token_source(config.http_address[0], args.control_token_file) != "file":
        return None
    try:
        return read_token_file(args.control_token_file)
    except TokenFileError as exc:
        raise ServeError(f"--control-token-file {exc}") from None


def _generated_token(data: Path) -> tuple[str, Path]:
    try:
        return ensure_token_file(data)
    except TokenFileError as exc:
        raise ServeError(f"{exc} (delete the file to have a new token made)") from None


async def _serve(gw, ready_out, token_path: Path | None = None) -> int:
    eps = await gw.start()
    loop = asyncio.get_running_loop()
    policy = GcPolicy()  # short collector pauses under load (gateway/gc_policy.py), as bench.gateway_proc runs
    policy.install(loop)
    log.info("event=loop loop=%s gc_threshold=%d sip_core=%s", type(loop).__module__.split(".")[0],
             gc.get_threshold()[0], "compiled" if sip_core.COMPILED else "python")
    log.debug("event=sip_core detail=%s", _kv_value(sip_core.BUILD.reason))
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            status, rtt = await options_check(*eps.udp)
        except (TimeoutError, OSError) as exc:
            log.error("event=self_check ok=false error=%s", _kv_value(exc))
            return EXIT_FAILED
        if status != 200:
            log.error("event=self_check ok=false status=%d", status)
            return EXIT_FAILED
        log.info("event=self_check ok=true method=OPTIONS status=%d rtt_ms=%.1f", status, rtt)
        fields = {"udp": _fmt(*eps.udp), "tcp": _fmt(*eps.tcp), "tls": _fmt(*eps.tls),
                  "control": eps.control_url or "-", "provisioning": eps.provisioning_url or "-",
                  "data": str(gw.data_dir), "pid": os.getpid(), "control_token": str(token_path or "-")}
        ready_out.write("event=ready " + " ".join(f"{k}={_kv_value(v)}" for k, v in fields.items()) + "\n")
        ready_out.flush()
        log.info("event=ready %s", " ".join(f"{k}={_kv_value(v)}" for k, v in fields.items()))
        await stop.wait()
        log.info("event=stopping reason=signal")
        return EXIT_OK
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await gw.stop()
        log.info("event=gc %s", policy.stats.summary())
        policy.remove()
        log.info("event=stopped")


def cmd_gateway_serve(args: argparse.Namespace) -> int:
    try:
        config = build_config(args)
        tenant = load_tenant(args.tenant) if args.tenant else None
        sip_host, sip_port = config.sip_address
        _check_free("--sip", sip_host, sip_port, (socket.SOCK_DGRAM, socket.SOCK_STREAM))
        _check_free("--tls", *config.tls_address, (socket.SOCK_STREAM,))
        _check_free("--http", *config.http_address, (socket.SOCK_STREAM,))
        # --provisioning: the provisioning HTTP server (DHCP option 66/160); default the --http host, a free port
        prov = _address("--provisioning", args.provisioning, 0) or (config.http_address[0], 0)
        if prov[1] != 0 and prov == config.http_address:
            raise ServeError(f"--provisioning {args.provisioning}: the control API (--http) already uses "
                             f"{_fmt(*prov)}")
        _check_free("--provisioning", *prov, (socket.SOCK_STREAM,))
        token = _control_token(args, config)
        data = _prepare_data_dir(args.data)
    except ServeError as exc:
        print(f"sipgw-lab: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except DataFileError as exc:
        print(f"sipgw-lab: error: {len(exc.problems)} problem(s) found; nothing was written", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT

    from gateway.server import EmbeddedGateway

    try:
        gw = EmbeddedGateway(data, config)
    except Exception as exc:  # StoreError (newer schema), sqlite3.DatabaseError (not a database), OSError
        print(f"sipgw-lab: error: --data {args.data}: cannot open the gateway's store: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    gw.provisioning_address = prov
    if tenant is not None:
        # A tenant number that the stored data gives to another user: refuse before writing any of the file.
        for user, _password in tenant.users:
            owner = gw.directory.by_number(user.number) if user.number else None
            if owner is not None and owner.username != user.username:
                gw.store.close()
                print(f"sipgw-lab: error: --tenant {args.tenant}: number {user.number} of {user.username!r} "
                      f"belongs to user {owner.username!r} in {args.data}; nothing was written", file=sys.stderr)
                return EXIT_BAD_INPUT
    token_path: Path | None = Path(args.control_token_file) if token is not None else None
    if token is None and token_source(config.http_address[0], None) == "generated":
        try:
            token, token_path = _generated_token(data)
        except ServeError as exc:
            gw.store.close()
            print(f"sipgw-lab: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if token is not None:
        gw.config.control_token = SecretStr(token)  # read by the control API and the provisioning server
    if tenant is not None:
        gw.load_tenant(tenant)
    setup_logging(args.log_format, args.log_level)
    log.info("event=starting data=%s tenant=%s config=%s", _kv_value(data), _kv_value(args.tenant or "-"),
             _kv_value(args.config or "-"))
    if token is None and not is_loopback(prov[0]):
        log.warning("event=admin_pages_open provisioning=%s note=\"no control token: the /admin pages are open to "
                    "the network; give --control-token-file\"", _kv_value(_fmt(*prov)))
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(_serve(gw, sys.stdout, token_path))
    except OSError as exc:  # a listener that could not bind after all (a race with another process)
        with contextlib.suppress(Exception):
            gw.store.close()
        print(f"sipgw-lab: error: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _positive_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 16:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and 16")
    return value


def add_parser(subparsers) -> None:
    """Add ``gateway serve`` to the ``sipgw-lab`` command line."""
    gw = subparsers.add_parser("gateway", help="the embedded reference gateway")
    sub = gw.add_subparsers(dest="gateway_command", required=True, parser_class=type(gw))
    p = sub.add_parser("serve", help="run the embedded gateway in the foreground (Ctrl-C stops it)")
    p.add_argument("--sip", metavar="HOST:PORT",
                   help="SIP over UDP and TCP (default 127.0.0.1:5060; TLS on PORT + 1 unless --tls)")
    p.add_argument("--tls", metavar="HOST:PORT", help="SIP over TLS (default: the --sip host, port + 1)")
    p.add_argument("--http", metavar="HOST:PORT", help="the control API (default 127.0.0.1:8080)")
    p.add_argument("--provisioning", metavar="HOST:PORT",
                   help="the provisioning HTTP server and sign-in pages, what DHCP option 66/160 hands devices "
                        "(default: the --http host, a free port; the ready line prints provisioning=URL)")
    p.add_argument("--data", required=True, metavar="DIR", help="the gateway's data directory (store, lab CA)")
    p.add_argument("--tenant", metavar="FILE", help="a tenant file of users and PSTN numbers to load")
    p.add_argument("--config", metavar="FILE", help="a gateway configuration file (flags override it)")
    p.add_argument("--control-token-file", metavar="FILE",
                   help="a file whose first line is the control token (16 characters or more): the control API "
                        "and the /admin pages then need 'Authorization: Bearer <token>'. Without it a non-loopback "
                        "--http gets a token made in DIR/control-token (the ready line prints control_token=PATH)")
    p.add_argument("--registrar-processes", type=_positive_count, metavar="N",
                   help="processes that answer UDP REGISTERs, this one included (default 1; up to 16): above 1, "
                        "registrar workers share them by address of record (README, 'Registrar workers')")
    p.add_argument("--log-format", choices=("kv", "json"), default="kv", help="log line format (default kv)")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    p.set_defaults(func=cmd_gateway_serve)
