"""AudioCodes MediaPack / Mediant CLI over SSH (7.2 CLI), on paramiko's server mode, for the ``audiocodes-mp``
driver's CLI client (:mod:`harness.drivers.vendors.audiocodes_cli`) and netmiko's ``audiocode_72`` device type.

It serves the same simulated device as the REST simulator (:class:`~harness.simulators.audiocodes_mp.
AudioCodesMpSimulator`): port status, hook and lock state, resets and the device's own log are that object's,
so a port reset over SSH is seen over REST and a call placed through the analog side is seen in
``show voip ports``. The host key is generated at start (ECDSA P-256); the server listens on loopback on an
ephemeral port unless given one.

    rest = AudioCodesMpSimulator(backend); rest.start()
    with AudioCodesSshSimulator(rest, username="Admin", password="pw", enable_password="en") as ssh:
        ...  # ssh.host, ssh.port

What the CLI does, and where each detail comes from (vendor-control-apis.md §5.2):

- login with the administrator's user name and password; Basic mode prompt ``>``, ``enable`` asks
  ``Password:`` and Enable mode prompts ``#``; ``disable`` goes back [VENDOR-DOC: CLI Reference Guide
  LTRT-17940 §2.2]. The prompt is the host name followed by the mode's sign and a space.
- ``config system`` → ``cli-settings`` → ``window-height 0`` turns paging off, ``exit`` leaves a level
  [3P-CODE: netmiko ``audiocode_72``]; with paging on, output longer than the window stops at ``--MORE--``
  (space: next page, ``q``: stop) [3P-CODE: Netshot's AudioCodes driver pager pattern].
- ``show system version`` prints ``;Board:``, ``;Serial Number:``, ``;Software Version:`` … lines and
  ``show network interface`` the ``Hardware address is:`` of each interface [3P-CODE: Netshot's AudioCodes
  Mediant driver]; ``write`` answers ``Writing configuration...done`` [3P-DOC]; ``reload now`` /
  ``reload without-saving`` restart the device and end the session [3P-CODE: netmiko].
- [INFERRED, not seen on a device] the ``show voip ports`` table layout, ``port <n> reset|lock|unlock``,
  ``show logging`` (the device's log buffer), and the error text: an unknown command is echoed back under a
  caret line with ``Invalid command``; a bad argument is ``Invalid parameter: …``; a wrong enable password is
  ``Invalid password``. Check these against a real device before relying on them.

``override_reply(command, text)`` makes one command answer with other text (a garbled reply, for the client's
parser tests); ``commands`` keeps every command line received (passwords are never kept).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from typing import Any

import paramiko

log = logging.getLogger("sipgw.simulators.audiocodes_ssh")

PAGE_DEFAULT = 24
_MORE = " --MORE-- "


class _Auth(paramiko.ServerInterface):
    def __init__(self, sim: AudioCodesSshSimulator) -> None:
        self.sim = sim
        self.shell = threading.Event()
        self.user = ""

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        ok = (username, password) == (self.sim.username, self.sim.password)
        self.sim.logins.append((username, ok))
        if ok:
            self.user = username
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_pty_request(self, *args: Any) -> bool:
        return True

    def check_channel_shell_request(self, channel: Any) -> bool:
        self.shell.set()
        return True


class _Shell:
    """One CLI session on one channel: line editing with echo, modes, paging."""

    def __init__(self, sim: AudioCodesSshSimulator, chan: paramiko.Channel) -> None:
        self.sim = sim
        self.chan = chan
        self.enabled = False
        self.levels: list[str] = []  # configuration levels entered (config-system, cli-settings)
        self.window_height = PAGE_DEFAULT
        self.awaiting_password = False
        self.pending_pages: list[str] = []
        self.closed = False

    # --- output ---------------------------------------------------------------------------------------------
    def send(self, text: str) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.chan.sendall(text.replace("\r\n", "\n").replace("\n", "\r\n").encode())

    @property
    def prompt(self) -> str:
        if self.levels:
            return f"{self.sim.hostname}({self.levels[-1]})# "
        return f"{self.sim.hostname}{'#' if self.enabled else '>'} "

    def output(self, lines: list[str]) -> None:
        """Print ``lines`` then the prompt, a page at a time when paging is on."""
        height = self.window_height
        if height and len(lines) > height - 1:
            page, rest = lines[:height - 1], lines[height - 1:]
            self.pending_pages = rest
            self.send("\n".join(page) + "\n" + _MORE)
            return
        self.send(("\n".join(lines) + "\n" if lines else "") + self.prompt)

    def more(self, key: str) -> None:
        rest, self.pending_pages = self.pending_pages, []
        self.send("\r" + " " * len(_MORE) + "\r")
        if key == "q":
            self.send(self.prompt)
            return
        self.output(rest)

    # --- input ----------------------------------------------------------------------------------------------
    def run(self) -> None:
        self.send("\n" + self.prompt)
        buf = ""
        last = ""
        self.chan.settimeout(0.2)
        while not self.closed and not self.sim.stopping.is_set():
            try:
                data = self.chan.recv(4096)
            except TimeoutError:
                continue
            except (OSError, EOFError):
                break
            if not data:
                break
            for ch in data.decode(errors="replace"):
                if self.pending_pages:
                    self.more(ch)
                elif ch in "\r\n":
                    if ch == "\n" and last == "\r":
                        last = ch
                        continue
                    line, buf = buf, ""
                    self.send("\n")
                    self.line(line)
                    if self.closed:
                        break
                elif ch in "\x7f\x08":
                    if buf:
                        buf = buf[:-1]
                        if not self.awaiting_password:
                            self.send("\b \b")
                elif ch == "\x03":
                    buf = ""
                    self.send("\n" + self.prompt)
                else:
                    buf += ch
                    if not self.awaiting_password:
                        self.send(ch)
                last = ch
        with contextlib.suppress(Exception):
            self.chan.close()

    def line(self, raw: str) -> None:
        if self.awaiting_password:
            self.awaiting_password = False
            if raw == self.sim.enable_password:
                self.enabled = True
                self.send(self.prompt)
            else:
                self.output(["Invalid password"])
            return
        cmd = " ".join(raw.split())
        if not cmd:
            self.send(self.prompt)
            return
        self.sim.commands.append(cmd)
        override = self.sim.overrides.get(cmd)
        if override is not None:
            self.output(override.splitlines())
            return
        try:
            lines = self.execute(cmd)
        except _CliError as exc:
            lines = exc.lines
        if lines is None:  # the command printed its own prompt (or ended the session)
            return
        self.output(lines)

    # --- commands -------------------------------------------------------------------------------------------
    def execute(self, cmd: str) -> list[str] | None:
        words = cmd.split()
        if self.levels:
            return self.config_command(cmd, words)
        if cmd in ("exit", "quit", "logout"):
            self.closed = True
            return None
        if cmd in ("enable", "en"):
            if self.enabled:
                return []
            self.awaiting_password = True
            self.send("Password: ")
            return None
        if cmd == "disable":
            self.enabled = False
            return []
        if words[0] == "show":
            return self.show(cmd, words)
        if not self.enabled:
            raise _CliError.invalid(self.prompt, cmd, 0)
        if cmd in ("config system", "configure system"):
            self.levels.append("config-system")
            return []
        if cmd in ("write", "wr"):
            self.sim.device.saved_configurations += 1
            self.sim.device.log_event("[CLI] Configuration saved")
            return ["Writing configuration...done"]
        if cmd in ("reload now", "reload without-saving", "reload if-needed"):
            self.sim.device.reset_device(cmd != "reload without-saving", 0, "CLI", background=True)
            self.send("Resetting the board\n")
            self.closed = True
            return None
        if words[0] == "port" and len(words) == 3 and words[2] in ("reset", "lock", "unlock"):
            port = self.port_arg(words[1])
            if words[2] == "reset":
                self.sim.device.reset_port(port, "CLI")
            else:
                self.sim.device.set_port_locked(port, words[2] == "lock", "CLI")
            return []
        raise _CliError.invalid(self.prompt, cmd, 0)

    def port_arg(self, text: str) -> int:
        ports = self.sim.device.usable_ports()
        if not text.isdigit() or int(text) not in ports:
            raise _CliError([f"Invalid parameter: port {text} (ports: {min(ports)}-{max(ports)})"])
        return int(text)

    def config_command(self, cmd: str, words: list[str]) -> list[str]:
        level = self.levels[-1]
        if cmd == "exit":
            self.levels.pop()
            return []
        if cmd == "end":
            self.levels.clear()
            return []
        if level == "config-system" and cmd == "cli-settings":
            self.levels.append("cli-settings")
            return []
        if level == "cli-settings" and len(words) == 2 and words[0] == "window-height":
            if words[1] == "automatic":
                self.window_height = PAGE_DEFAULT
            elif words[1].isdigit():
                self.window_height = int(words[1])
            else:
                raise _CliError([f"Invalid parameter: window-height {words[1]} (0, a number of lines or automatic)"])
            self.sim.window_heights.append(self.window_height)
            return []
        raise _CliError.invalid(self.prompt, cmd, 0)

    def show(self, cmd: str, words: list[str]) -> list[str]:
        dev = self.sim.device
        if cmd == "show system version":
            ident = dev.backend.identity()
            return [f";Board: {ident.model}", f";Serial Number: {ident.serial or '0'}", ";Slot Number: 1",
                    f";Software Version: {ident.firmware}", ";DSP Software Version: 5014AE3_R => 700.40",
                    f";Board IP Address: {self.sim.host}", ";Board Subnet Mask: 255.0.0.0",
                    ";Ram size: 256M   Flash size: 64M   Core speed: 500Mhz",
                    ";Num of physical LAN ports: 1", ";Profile: NONE"]
        if cmd == "show network interface":
            mac = dev.backend.identity().mac_plain
            dashed = "-".join(mac[i:i + 2] for i in range(0, 12, 2))
            up = int(dev.uptime_s())
            return ["  Name: GROUP_1", f"  Hardware address is: {dashed}", "  Name: O+M+C",
                    f"    IP Address: {self.sim.host}/8",
                    f"  Uptime: {up // 86400}:{up // 3600 % 24:02d}:{up // 60 % 60:02d}:{up % 60:02d}"]
        if cmd == "show voip ports":
            return self.ports_table()
        if cmd == "show logging":
            return dev.log_lines() or ["No log entries"]
        raise _CliError.invalid(self.prompt, cmd, 0)

    def ports_table(self) -> list[str]:
        states = {"idle": "idle", "ringing": "ringing", "dialing": "dialing", "connected": "connected",
                  "hold": "hold"}
        out = [f"{'Port':<6}{'Type':<6}{'Number':<18}{'Hook':<10}{'State':<11}{'Remote':<18}"
               f"{'Registration':<16}Admin",
               f"{'----':<6}{'----':<6}{'-' * 16:<18}{'-' * 8:<10}{'-' * 9:<11}{'-' * 16:<18}{'-' * 14:<16}--------"]
        for p in self.sim.device.port_rows():
            out.append(f"{p['port']:<6}{p['type']:<6}{p['phoneNumber'] or '-':<18}"
                       f"{'off-hook' if p['hookState'] == 'offHook' else 'on-hook':<10}"
                       f"{states[p['callState']]:<11}{p['remoteNumber'] or '-':<18}"
                       f"{'registered' if p['registration'] == 'Registered' else 'not-registered':<16}"
                       f"{p['adminState']}")
        return out


class _CliError(Exception):
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))

    @classmethod
    def invalid(cls, prompt: str, cmd: str, at: int) -> _CliError:
        return cls([" " * (len(prompt) + at) + "^", "Invalid command"])


class AudioCodesSshSimulator:
    """The CLI of ``device`` (an :class:`AudioCodesMpSimulator`) over SSH on loopback."""

    def __init__(self, device: Any, *, username: str = "Admin", password: str = "Admin",
                 enable_password: str = "Admin", host: str = "127.0.0.1", port: int = 0,
                 hostname: str | None = None) -> None:
        if not (host.startswith("127.") or host in ("::1", "localhost")):
            raise ValueError(f"AudioCodesSshSimulator: host {host!r} is not a loopback address (127.0.0.0/8, ::1)")
        self.device = device
        self.username = username
        self.password = password
        self.enable_password = enable_password
        self.host = host
        self.port = port
        model = device.backend.identity().model
        self.hostname = hostname or "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in model) or "Mediant"
        self.commands: list[str] = []
        self.logins: list[tuple[str, bool]] = []
        self.window_heights: list[int] = []
        self.overrides: dict[str, str] = {}
        self.stopping = threading.Event()
        self._sock: socket.socket | None = None
        self._accept: threading.Thread | None = None
        self._sessions: list[tuple[threading.Thread, paramiko.Transport]] = []
        self._lock = threading.Lock()
        self.host_key = paramiko.ECDSAKey.generate(bits=256)

    def override_reply(self, command: str, text: str | None) -> None:
        """Answer ``command`` with ``text`` (None: the device's own answer again)."""
        if text is None:
            self.overrides.pop(command, None)
        else:
            self.overrides[command] = text

    # ------------------------------------------------------------------ life cycle
    def start(self) -> tuple[str, int]:
        if self._sock is not None:
            raise RuntimeError(f"AudioCodesSshSimulator is already listening on {self.host}:{self.port}")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(8)
        sock.settimeout(0.2)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self.stopping.clear()
        self._accept = threading.Thread(target=self._accept_loop, name="ac-ssh-accept", daemon=True)
        self._accept.start()
        return self.host, self.port

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        if self._accept is not None:
            self._accept.join(timeout)
            self._accept = None
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for thread, transport in sessions:
            with contextlib.suppress(Exception):
                transport.close()
            thread.join(timeout)

    def __enter__(self) -> AudioCodesSshSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ connections
    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self.stopping.is_set():
            try:
                conn, _peer = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            if self.device.restarting:  # a restarting device does not answer
                with contextlib.suppress(OSError):
                    conn.close()
                continue
            transport = paramiko.Transport(conn)
            thread = threading.Thread(target=self._serve, args=(transport,), name="ac-ssh-session", daemon=True)
            with self._lock:
                self._sessions = [(t, tr) for t, tr in self._sessions if t.is_alive()]
                self._sessions.append((thread, transport))
            thread.start()

    def _serve(self, transport: paramiko.Transport) -> None:
        auth = _Auth(self)
        try:
            transport.add_server_key(self.host_key)
            transport.start_server(server=auth)
            chan = transport.accept(10)
            if chan is None or not auth.shell.wait(10):
                return
            _Shell(self, chan).run()
        except (paramiko.SSHException, EOFError, OSError) as exc:
            log.debug("AudioCodes SSH session ended: %s", exc)
        finally:
            with contextlib.suppress(Exception):
                transport.close()

