"""The AudioCodes MediaPack / Mediant CLI over SSH, through netmiko (the ``physical`` extra).

netmiko's AudioCodes device types are ``audiocode_72``, ``audiocode_66`` and ``audiocode_shell`` (each also as
``…_ssh`` and ``…_telnet``; the names are ``audiocode_``, not ``audiocodes_``). This client uses
``audiocode_72`` by default: MediaPack MP-1288 (7.40A), MP-50x (7.26A) and Mediant gateways on 7.x have the
7.2 CLI (Basic mode ``>``, ``enable`` to ``#``, ``config system`` levels), and netmiko's ``audiocode_72`` turns
paging off the 7.2 way (``config system`` → ``cli-settings`` → ``window-height 0``). ``audiocode_66`` is for
MP-11x/MP-124 on 6.6 firmware with the newer CLI (``cli-terminal`` / ``set window-height``), ``audiocode_shell``
for 6.6 units that only have the old command shell; pass ``device_type`` for those (the parsers below are for
the 7.2 CLI's output).

Every operation is a command whose reply is parsed into a typed value; a reply the parser does not
understand raises :class:`CliParseError` naming the command, the line number and the line. A reply the device
marks as an error (``Invalid command``, ``Invalid parameter``) raises :class:`CliCommandError` with the
device's words. Operations that change the device read the state back afterwards (a port reset is confirmed
by the port reported idle and on-hook, a lock by the port reported locked).

Where the commands and layouts come from is in :mod:`harness.simulators.audiocodes_ssh`'s docstring:
``show system version`` and ``show network interface`` as third-party code parses them; ``show voip ports``,
``port <n> reset|lock|unlock`` and ``show logging`` are inferred and collected in :data:`COMMANDS`, so they
are changed in one place once checked against a device.

The session keeps a transcript (every command and its reply, with times) for the test's evidence
(``ssh.log``); passwords never appear in it (the login and enable passwords are masked wherever they occur,
and the user name is not written).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from harness.drivers.vendors import DeviceUnreachable, VendorApiError
from harness.protocols import HarnessError

VENDOR = "AudioCodes"
API = "AudioCodes CLI over SSH"
DEFAULT_DEVICE_TYPE = "audiocode_72"
DEVICE_TYPES = ("audiocode_72", "audiocode_66", "audiocode_shell")

#: the CLI commands this client sends (see the module docstring for which are inferred)
COMMANDS: dict[str, str] = {
    "version": "show system version",
    "interfaces": "show network interface",
    "ports": "show voip ports",
    "port_reset": "port {port} reset",
    "port_lock": "port {port} lock",
    "port_unlock": "port {port} unlock",
    "log": "show logging",
    "save": "write",
    "reload": "reload now",
    "reload_without_saving": "reload without-saving",
}

MASK = "********"
TRANSCRIPT_MAX = 4000  # entries kept

HOOK = ("on-hook", "off-hook")
CALL_STATES = ("idle", "ringing", "dialing", "connected", "hold")
REGISTRATION = ("registered", "not-registered")
ADMIN = ("locked", "unlocked")
_ERROR_LINE = re.compile(r"^\s*(Invalid (command|parameter|password)|Incomplete command|Error:|% ).*", re.I)


class CliError(VendorApiError):
    """Base of the CLI client's errors."""


class CliAuthError(CliError):
    """The device refused the SSH login or the enable password (the message says which; never the value)."""


class CliCommandError(CliError):
    """The device answered a command with an error (``Invalid command``…): ``command`` and ``line`` say which."""

    def __init__(self, command: str, line: str) -> None:
        self.command = command
        self.line = line
        super().__init__(f"{API}: the device refused {command!r}: {line.strip()!r}", code="cli", where=command)


class CliParseError(CliError):
    """A reply the parser does not understand: ``command``, ``line_no`` (1-based) and ``line`` say where."""

    def __init__(self, command: str, line_no: int, line: str, expected: str) -> None:
        self.command = command
        self.line_no = line_no
        self.line = line
        super().__init__(f"{API}: cannot parse the reply to {command!r}, line {line_no}: {line!r}: expected "
                         f"{expected}", code="parse", where=f"{command}:{line_no}")


@dataclass(frozen=True)
class SshEndpoint:
    """Where a device's CLI is and how to log in. Secrets come from environment variables (resolved by the
    driver) and are never logged: ``repr`` hides them."""

    host: str
    port: int = 22
    username: str = ""
    password: str = field(default="", repr=False)
    enable_password: str | None = field(default=None, repr=False)  # None: the login password
    device_type: str = DEFAULT_DEVICE_TYPE
    timeout: float = 10.0  # TCP connect, SSH banner and authentication
    read_timeout: float = 10.0  # the longest a command's reply may take


@dataclass(frozen=True)
class CliVersion:
    """``show system version``."""

    board: str
    firmware: str
    serial: str | None
    fields: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class CliIdentity:
    model: str
    firmware: str
    mac: str | None  # 12 lower-case hex digits
    serial: str | None
    source: str = "ssh-cli"


@dataclass(frozen=True)
class PortStatus:
    """One analog port as ``show voip ports`` reports it."""

    port: int
    kind: str  # FXS | FXO
    number: str | None
    off_hook: bool
    call_state: str  # one of CALL_STATES
    remote: str | None
    registered: bool
    locked: bool


@dataclass(frozen=True)
class LogEntry:
    at: datetime
    text: str


# --- parsers (pure: text in, typed values out) ------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def check_error(command: str, reply: str) -> None:
    """:class:`CliCommandError` when the device marked ``reply`` as an error."""
    for line in _lines(reply):
        if _ERROR_LINE.match(line):
            raise CliCommandError(command, line)


def parse_version(reply: str, command: str = COMMANDS["version"]) -> CliVersion:
    fields: dict[str, str] = {}
    for i, line in enumerate(_lines(reply), 1):
        if not line.strip():
            continue
        m = re.match(r"^;([A-Za-z][A-Za-z ]*?):\s*(.*?)\s*$", line)
        if m is None:
            if line.startswith(";") or line.lower().startswith("version info"):
                continue  # ;;;Key features… and other lines without a "Name: value" pair
            raise CliParseError(command, i, line, "';Name: value' lines such as ';Software Version: 7.24A.256.468'")
        fields.setdefault(m.group(1), m.group(2))
    missing = [k for k in ("Board", "Software Version") if not fields.get(k)]
    if missing:
        raise CliParseError(command, 0, "", f"the lines ;{' and ;'.join(missing)}: (not in the reply)")
    fw = fields["Software Version"]
    if not re.fullmatch(r"\d+\.\d+[A-Z]?\.\d+\.\d+", fw):
        line_no = next(i for i, ln in enumerate(_lines(reply), 1) if ln.startswith(";Software Version:"))
        raise CliParseError(command, line_no, f";Software Version: {fw}", "a version such as 7.24A.256.468")
    return CliVersion(fields["Board"], fw, fields.get("Serial Number") or None, fields)


def parse_mac(reply: str, command: str = COMMANDS["interfaces"]) -> str:
    """The first interface's hardware address, as 12 lower-case hex digits."""
    for i, line in enumerate(_lines(reply), 1):
        m = re.match(r"^\s*Hardware [Aa]ddress is:\s*(\S*)\s*$", line)
        if m is None:
            continue
        mac = m.group(1).replace("-", "").replace(":", "").replace(".", "").lower()
        if not re.fullmatch(r"[0-9a-f]{12}", mac):
            raise CliParseError(command, i, line, "a hardware address such as 00-90-8f-4a-5b-6c")
        return mac
    raise CliParseError(command, 0, "", "a line 'Hardware address is: 00-90-8f-…' (not in the reply)")


def parse_ports(reply: str, command: str = COMMANDS["ports"]) -> list[PortStatus]:
    lines = [(i, ln) for i, ln in enumerate(_lines(reply), 1) if ln.strip()]
    if not lines or lines[0][1].split()[:2] != ["Port", "Type"]:
        i, ln = lines[0] if lines else (0, "")
        raise CliParseError(command, i, ln, "the table header 'Port  Type  Number  Hook  State  Remote  "
                                            "Registration  Admin'")
    out: list[PortStatus] = []
    for i, ln in lines[1:]:
        if set(ln.replace(" ", "")) == {"-"}:
            continue
        cols = ln.split()
        if len(cols) != 8:
            raise CliParseError(command, i, ln, f"8 columns (port, type, number, hook, state, remote, "
                                                f"registration, admin), found {len(cols)}")
        port, kind, number, hook, state, remote, reg, admin = cols
        for value, allowed, what in ((hook, HOOK, "hook"), (state, CALL_STATES, "state"),
                                     (reg, REGISTRATION, "registration"), (admin, ADMIN, "admin state"),
                                     (kind, ("FXS", "FXO"), "port type")):
            if value not in allowed:
                raise CliParseError(command, i, ln, f"{what} one of {', '.join(allowed)}, not {value!r}")
        if not port.isdigit():
            raise CliParseError(command, i, ln, f"a port number, not {port!r}")
        out.append(PortStatus(int(port), kind, None if number == "-" else number, hook == "off-hook", state,
                              None if remote == "-" else remote, reg == "registered", admin == "locked"))
    return out


def parse_log(reply: str, command: str = COMMANDS["log"]) -> list[LogEntry]:
    out: list[LogEntry] = []
    for i, line in enumerate(_lines(reply), 1):
        if not line.strip() or line.strip() == "No log entries":
            continue
        m = re.match(r"^(\d\d/\d\d/\d{4} \d\d:\d\d:\d\d) (.*)$", line)
        if m is None:
            raise CliParseError(command, i, line, "'DD/MM/YYYY HH:MM:SS text' log lines")
        try:
            at = datetime.strptime(m.group(1), "%d/%m/%Y %H:%M:%S")
        except ValueError:
            raise CliParseError(command, i, line, "a valid date and time") from None
        out.append(LogEntry(at, m.group(2)))
    return out


# --- the session ------------------------------------------------------------------------------------------------


class Transcript:
    """What was sent and answered on the device's CLI, with secrets masked; ``take_since_mark()`` is one test's
    share of it (the evidence's ``ssh.log``)."""

    def __init__(self, secrets: tuple[str | None, ...] = ()) -> None:
        # a secret is masked where it stands as a word of its own, so a password "en" leaves "enable" alone
        self._secrets = [re.compile(rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])")
                         for s in sorted({s for s in secrets if s}, key=len, reverse=True)]
        self._entries: list[str] = []
        self._mark = 0
        self._dropped = 0
        self._lock = threading.Lock()

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = secret.sub(MASK, text)
        return text

    def add(self, kind: str, text: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime()) + f".{int(time.time() * 1000) % 1000:03d}"
        body = self.mask(text).replace("\r\n", "\n").rstrip("\n")
        prefix = {"send": ">>> ", "reply": "", "note": "--- "}.get(kind, "")
        with self._lock:
            self._entries.append(f"[{stamp}] {prefix}{body.splitlines()[0] if body else ''}\n"
                                 + "".join(f"    {ln}\n" for ln in body.splitlines()[1:]))
            if len(self._entries) > TRANSCRIPT_MAX:
                cut = len(self._entries) - TRANSCRIPT_MAX
                del self._entries[:cut]
                self._mark = max(0, self._mark - cut)
                self._dropped += cut

    def text(self) -> str:
        with self._lock:
            return "".join(self._entries)

    def take_since_mark(self) -> str:
        with self._lock:
            data, self._mark = "".join(self._entries[self._mark:]), len(self._entries)
        return data


class AudioCodesCli:
    """One device's CLI over SSH through netmiko; connects on first use and again after the device restarted.

    Thread-safe (one command at a time). ``connect_handler`` is netmiko's ``ConnectHandler`` unless a test
    passes another.
    """

    def __init__(self, ep: SshEndpoint, *, connect_handler: Any = None) -> None:
        if ep.device_type not in DEVICE_TYPES and ep.device_type.removesuffix("_ssh") not in DEVICE_TYPES:
            raise ValueError(f"ssh.device_type {ep.device_type!r} is not a netmiko AudioCodes type; "
                             f"use one of {', '.join(DEVICE_TYPES)}")
        self.ep = ep
        self.transcript = Transcript((ep.password, ep.enable_password))
        self._connect_handler = connect_handler
        self._conn: Any = None
        self._lock = threading.RLock()

    @property
    def where(self) -> str:
        return f"{self.ep.host}:{self.ep.port}"

    # --- connection ---------------------------------------------------------------------------------------------
    def _handler(self) -> Any:
        if self._connect_handler is not None:
            return self._connect_handler
        try:
            from netmiko import ConnectHandler
        except ImportError as exc:
            raise HarnessError(f"the AudioCodes CLI over SSH needs netmiko, which is not installed ({exc}); "
                               "install the physical extra: pip install 'sipgw-lab[physical]'") from None
        return ConnectHandler

    def connect(self) -> None:
        with self._lock:
            if self._conn is not None:
                return
            from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException, ReadTimeout

            self.transcript.add("note", f"ssh {self.where} ({self.ep.device_type}): connecting")
            t0 = time.monotonic()
            try:
                self._conn = self._handler()(
                    device_type=self.ep.device_type, host=self.ep.host, port=self.ep.port,
                    username=self.ep.username, password=self.ep.password,
                    secret=self.ep.password if self.ep.enable_password is None else self.ep.enable_password,
                    fast_cli=True, conn_timeout=self.ep.timeout, auth_timeout=self.ep.timeout,
                    banner_timeout=self.ep.timeout, read_timeout_override=self.ep.read_timeout,
                    use_keys=False, allow_agent=False)
            except NetmikoAuthenticationException:
                self.transcript.add("note", "login refused")
                raise CliAuthError(f"{API} at {self.where}: the device refused the SSH login (user name or "
                                   "password wrong)", code="auth", where="ssh.password") from None
            except (ValueError, ReadTimeout) as exc:
                if "enable mode" in str(exc) or "'#'" in str(exc):  # no '#' prompt after the enable password
                    self.transcript.add("note", "enable password refused")
                    raise CliAuthError(f"{API} at {self.where}: logged in, but the device refused the enable "
                                       "password (ssh.enable_password, else the login password)", code="auth",
                                       where="ssh.enable_password") from None
                first = self.transcript.mask(str(exc)).strip().splitlines()
                raise CliError(f"{API} at {self.where}: session set-up failed: {type(exc).__name__}: "
                               f"{first[0] if first else ''}", where="connect") from None
            except (NetmikoTimeoutException, OSError, EOFError) as exc:
                self.transcript.add("note", f"no connection: {type(exc).__name__}")
                raise DeviceUnreachable(f"{API} at {self.where}: no SSH session: {type(exc).__name__}: "
                                        f"{self.transcript.mask(str(exc)).splitlines()[0] if str(exc) else ''}"
                                        ) from None
            prompt = self._conn.base_prompt
            self.transcript.add("note", f"logged in, enable mode, paging off; prompt {prompt!r} "
                                        f"({time.monotonic() - t0:.2f}s)")

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.disconnect()
                self.transcript.add("note", "session closed")

    def _drop(self, why: str) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.disconnect()
        self.transcript.add("note", f"session dropped: {why}")

    def command(self, command: str, *, reconnect: bool = True) -> str:
        """Send one command and return its reply (echo and prompt removed); device errors raise."""
        with self._lock:
            self.connect()
            self.transcript.add("send", command)
            try:
                reply = self._conn.send_command(command, read_timeout=self.ep.read_timeout)
            except (OSError, EOFError) as exc:
                self._drop(f"{type(exc).__name__}: {exc}")
                if reconnect:  # the device restarted since the last command: one new session
                    return self.command(command, reconnect=False)
                raise DeviceUnreachable(f"{API} at {self.where}: {command!r} failed: {type(exc).__name__}: "
                                        f"{exc}") from None
            except Exception as exc:
                if type(exc).__name__ == "ReadTimeout":
                    self._drop("no prompt after the reply")
                    raise DeviceUnreachable(f"{API} at {self.where}: no prompt within {self.ep.read_timeout:g}s "
                                            f"after {command!r}") from None
                raise
            self.transcript.add("reply", reply)
            check_error(command, reply)
            return reply

    # --- operations ---------------------------------------------------------------------------------------------
    def version(self) -> CliVersion:
        return parse_version(self.command(COMMANDS["version"]))

    def mac(self) -> str:
        return parse_mac(self.command(COMMANDS["interfaces"]))

    def identity(self) -> CliIdentity:
        v = self.version()
        return CliIdentity(v.board, v.firmware, self.mac(), v.serial)

    def ports(self) -> list[PortStatus]:
        return parse_ports(self.command(COMMANDS["ports"]))

    def port(self, port: int) -> PortStatus:
        ports = self.ports()
        for p in ports:
            if p.port == port:
                return p
        raise CliError(f"{API} at {self.where}: the device reports no port {port} (ports: "
                       f"{', '.join(str(p.port) for p in ports) or 'none'})", where="port")

    def _read_back(self, port: int, test: Any, what: str, timeout: float) -> PortStatus:
        deadline = time.monotonic() + timeout
        while True:
            st = self.port(port)
            if test(st):
                return st
            if time.monotonic() > deadline:
                raise CliError(f"{API} at {self.where}: port {port} did not read back {what} within {timeout:g}s: "
                               f"hook {'off' if st.off_hook else 'on'}, state {st.call_state}, "
                               f"{'locked' if st.locked else 'unlocked'}", where="port")
            time.sleep(0.05)

    def reset_port(self, port: int, *, timeout: float = 5.0) -> PortStatus:
        """Reset the analog channel; returns the port as read back idle and on-hook."""
        self.command(COMMANDS["port_reset"].format(port=port))
        return self._read_back(port, lambda p: p.call_state == "idle" and not p.off_hook, "idle and on-hook",
                               timeout)

    def lock_port(self, port: int, *, timeout: float = 5.0) -> PortStatus:
        self.command(COMMANDS["port_lock"].format(port=port))
        return self._read_back(port, lambda p: p.locked, "locked", timeout)

    def unlock_port(self, port: int, *, timeout: float = 5.0) -> PortStatus:
        self.command(COMMANDS["port_unlock"].format(port=port))
        return self._read_back(port, lambda p: not p.locked, "unlocked", timeout)

    def device_log(self) -> list[LogEntry]:
        return parse_log(self.command(COMMANDS["log"]))

    def reload(self, *, save: bool = True) -> None:
        """Restart the device; the session ends with it (the next command opens a new one)."""
        with self._lock:
            self.connect()
            cmd = COMMANDS["reload" if save else "reload_without_saving"]
            self.transcript.add("send", cmd)
            try:
                reply = self._conn.send_command_timing(cmd, last_read=0.5, read_timeout=self.ep.read_timeout)
                self.transcript.add("reply", reply)
                check_error(cmd, reply)
            except CliCommandError:
                raise
            except Exception as exc:  # the device closes the session as it restarts
                self.transcript.add("note", f"session ended by the restart ({type(exc).__name__})")
            finally:
                if self._conn is not None:
                    self._drop("the device restarts")
