"""Power, serial consoles and shared places through labgrid (the optional ``sipgw-lab[labgrid]`` extra).

labgrid is imported lazily: an inventory that names no labgrid resources never needs it, and one that does
gets :class:`LabgridMissing` naming the extra to install. Nothing here drives hardware itself; every
operation goes through labgrid's own drivers (``NetworkPowerDriver``, ``ManualPowerDriver``, ``SerialDriver``,
...) found by protocol on the target the inventory names, and the shared place is acquired and released with
labgrid's own ``labgrid-client``.

    session = LabgridSession.from_inventory(inventory)   # None when the inventory has no labgrid: section
    session.acquire()                                    # the place, when a coordinator is configured
    session.power("poly-vvx450").power_cycle()
    console = session.console("poly-vvx450")
    console.run("uname -a"); console.write_evidence(test_dir)
    session.release()

A device of the lab gets these as its capabilities: ``device[Power]`` and ``device[Console]``
(:func:`device_capability`) are the labgrid ones when its inventory entry names ``power:`` / ``console:``
resources, else the driver's own (an emulated device restarts its worker), else ``NotApplicable`` saying
what the inventory entry lacks.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from harness.protocols import (
    Console,
    ConsoleResult,
    HarnessError,
    InfrastructureError,
    NotApplicable,
    OperationFailed,
    Power,
    PowerState,
)
from harness.resources import InventoryFile, LabgridRef

EXTRA_HINT = "install the labgrid extra: pip install 'sipgw-lab[labgrid]'"


class LabgridMissing(HarnessError):
    """The inventory names labgrid resources but labgrid is not installed."""


class LabgridError(InfrastructureError):
    """labgrid could not do what was asked (bad environment file, unknown target or driver, coordinator)."""


def import_labgrid(what: str = "labgrid resources") -> Any:
    """The ``labgrid`` module, or :class:`LabgridMissing` saying what needs it and what to install."""
    try:
        import labgrid
    except ImportError as exc:
        raise LabgridMissing(f"{what} need labgrid, which is not installed ({exc}); {EXTRA_HINT}") from None
    return labgrid


# --- power --------------------------------------------------------------------------------------------------


class LabgridPower(Power):
    """:class:`Power` through any labgrid driver that implements ``PowerProtocol``.

    The state returned is read back from the driver (``get()``) where it can read it, else ``UNKNOWN``:
    a manual or write-only outlet never reports what it was asked to do as observed.
    """

    def __init__(self, target: Any, driver: Any, *, device_id: str = "") -> None:
        self.target = target
        self.driver = driver
        self.device_id = device_id

    def _do(self, action: str) -> PowerState:
        try:
            self.target.activate(self.driver)
            getattr(self.driver, action)()
        except HarnessError:
            raise
        except Exception as exc:
            raise OperationFailed(f"{self.device_id}: labgrid {type(self.driver).__name__}.{action}() failed: "
                                  f"{type(exc).__name__}: {exc}") from exc
        return self.power_state()

    def power_on(self) -> PowerState:
        return self._do("on")

    def power_off(self) -> PowerState:
        return self._do("off")

    def power_cycle(self) -> PowerState:
        return self._do("cycle")

    def power_state(self) -> PowerState:
        get = getattr(self.driver, "get", None)
        if get is None:  # ManualPowerDriver: a person switches the outlet; nothing can be read back
            return PowerState.UNKNOWN
        self.target.activate(self.driver)
        try:
            state = get()
        except NotImplementedError:
            return PowerState.UNKNOWN
        except Exception as exc:
            raise OperationFailed(f"{self.device_id}: reading the outlet through labgrid failed: "
                                  f"{type(exc).__name__}: {exc}") from exc
        if state is None:
            return PowerState.UNKNOWN
        return PowerState.ON if state else PowerState.OFF


# --- console ------------------------------------------------------------------------------------------------


class LabgridConsole(Console):
    """:class:`Console` on a labgrid ``ConsoleProtocol`` driver (``SerialDriver`` on a serial port).

    Everything read from the console, and every command sent (as ``>>> command``), is kept in a log that
    :meth:`read_log` tails and :meth:`write_evidence` saves into a test's evidence directory.
    ``run`` sends the command and reads until ``prompt`` (a regular expression) is seen or the deadline.
    """

    def __init__(self, target: Any, driver: Any, *, device_id: str = "", prompt: str = r"[#$>] ?$",
                 max_log_bytes: int = 4 << 20) -> None:
        self.target = target
        self.driver = driver
        self.device_id = device_id
        self.prompt = re.compile(prompt.encode(), re.MULTILINE)
        self._log = bytearray()
        self._max = max_log_bytes
        self._mark = 0  # log position at the last take_since_mark(): each test gets what the console said since
        self._lock = threading.Lock()

    def _activate(self) -> None:
        try:
            self.target.activate(self.driver)
        except Exception as exc:
            raise LabgridError(f"{self.device_id}: opening the console through labgrid failed: "
                               f"{type(exc).__name__}: {exc}", device_id=self.device_id) from exc

    def _keep(self, data: bytes) -> None:
        with self._lock:
            self._log += data
            if len(self._log) > self._max:
                cut = len(self._log) - self._max
                del self._log[:cut]
                self._mark = max(0, self._mark - cut)

    def take_since_mark(self) -> bytes:
        """Drain the console and return what it said (and was sent) since the previous call: one test's log."""
        self.capture(timeout=0.1)
        with self._lock:
            data, self._mark = bytes(self._log[self._mark:]), len(self._log)
        return data

    def capture(self, *, timeout: float = 0.2) -> bytes:
        """Read whatever the device has printed (boot messages, its own log) into the log; returns it."""
        self._activate()
        got = bytearray()
        deadline = time.monotonic() + timeout
        while True:
            chunk = self._read(max(0.01, min(0.05, deadline - time.monotonic())))
            got += chunk
            if not chunk and time.monotonic() >= deadline:
                break
        self._keep(bytes(got))
        return bytes(got)

    def _read(self, timeout: float) -> bytes:
        try:
            return self.driver.read(size=4096, timeout=timeout)
        except TimeoutError:
            return b""
        except Exception as exc:
            if type(exc).__name__ == "TIMEOUT":  # labgrid's pexpect-style timeout
                return b""
            raise

    def run(self, command: str, *, timeout: float = 10.0) -> ConsoleResult:
        if "\n" in command or "\r" in command:
            raise ValueError(f"{self.device_id}: one console command per run(), without line breaks: {command!r}")
        self.capture(timeout=0.0)
        start = time.monotonic()
        self._keep(f">>> {command}\n".encode())
        self.driver.write(command.encode() + b"\n")
        out = bytearray()
        deadline = start + timeout
        while time.monotonic() < deadline:
            chunk = self._read(min(0.1, max(0.01, deadline - time.monotonic())))
            if chunk:
                out += chunk
                self._keep(chunk)
                if self.prompt.search(bytes(out)):
                    break
        else:
            from harness.protocols import OperationTimeout

            raise OperationTimeout(f"{self.device_id}: no prompt matching {self.prompt.pattern.decode()!r} within "
                                   f"{timeout:g}s after {command!r} on the console; it printed "
                                   f"{bytes(out[-200:]).decode(errors='replace')!r}")
        text = bytes(out).decode(errors="replace").replace("\r\n", "\n")
        lines = text.split("\n")
        if lines and lines[0].strip() == command:  # the device's echo of the command
            lines = lines[1:]
        body = "\n".join(lines[:-1]) if lines else ""  # the last line is the prompt
        return ConsoleResult(command=command, output=body, exit_status=None, duration_s=time.monotonic() - start)

    def read_log(self, max_lines: int = 200) -> str:
        with self._lock:
            text = bytes(self._log).decode(errors="replace").replace("\r\n", "\n")
        return "\n".join(text.split("\n")[-max_lines:])

    def write_evidence(self, directory: str | Path, name: str = "console.log") -> Path:
        """Drain the console and save its whole log as ``directory/name`` (the test's evidence)."""
        self.capture(timeout=0.1)
        path = Path(directory) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            path.write_bytes(bytes(self._log))
        return path


# --- place and environment ----------------------------------------------------------------------------------


def _client_command() -> list[str]:
    exe = Path(sys.executable).with_name("labgrid-client")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("labgrid-client")
    if found:
        return [found]
    raise LabgridMissing(f"labgrid-client is not on PATH nor beside {sys.executable}; {EXTRA_HINT}")


class LabgridPlace:
    """A labgrid place acquired from a coordinator for the run and released after (labgrid-client)."""

    def __init__(self, coordinator: str, place: str, *, timeout: float = 30.0) -> None:
        self.coordinator = coordinator
        self.place = place
        self.timeout = timeout
        self.acquired = False

    def client(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        import_labgrid(f"the labgrid place {self.place!r}")
        cmd = [*_client_command(), "-x", self.coordinator, "-p", self.place, *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LG_")}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout, env=env, check=False)
        except subprocess.TimeoutExpired:
            raise LabgridError(f"labgrid-client {' '.join(args)} on place {self.place!r} at coordinator "
                               f"{self.coordinator} gave no answer within {self.timeout:g}s") from None
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise LabgridError(f"labgrid-client {' '.join(args)} on place {self.place!r} at coordinator "
                               f"{self.coordinator} failed (exit {proc.returncode}): "
                               f"{detail[-1] if detail else 'no output'}")
        return proc

    def acquire(self) -> None:
        if not self.acquired:
            self.client("acquire")
            self.acquired = True

    def release(self) -> None:
        if self.acquired:
            self.client("release")
            self.acquired = False

    def show(self) -> str:
        return self.client("show").stdout

    def __enter__(self) -> LabgridPlace:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class LabgridSession:
    """The inventory's ``labgrid:`` section made live: its environment, its place, and per-device adapters."""

    def __init__(self, data: InventoryFile, *, base_dir: str | Path = ".") -> None:
        if data.labgrid is None:
            raise ValueError("the inventory has no labgrid: section")
        self.data = data
        section = data.labgrid
        self.env_path = (Path(base_dir) / section.env) if section.env else None
        self.place = (LabgridPlace(section.coordinator, section.place)
                      if section.coordinator and section.place else None)
        self._env: Any = None
        self._targets: dict[str, Any] = {}
        self._consoles: dict[str, LabgridConsole] = {}

    @classmethod
    def from_inventory(cls, inventory: Any) -> LabgridSession | None:
        """A session for ``inventory`` (a :class:`harness.inventory.Inventory`), or None without ``labgrid:``."""
        if inventory.data.labgrid is None:
            return None
        return cls(inventory.data, base_dir=Path(inventory.path).parent)

    def acquire(self) -> None:
        if self.place is not None:
            self.place.acquire()

    def release(self) -> None:
        if self.place is not None:
            self.place.release()

    def _device(self, device_id: str) -> Any:
        for d in self.data.devices:
            if d.id == device_id:
                return d
        raise KeyError(f"device {device_id!r} is not in the inventory")

    def target(self, name: str, *, what: str = "labgrid resources") -> Any:
        labgrid = import_labgrid(what)
        if self.env_path is None:
            raise LabgridError("the inventory's labgrid: section names no environment file (env: FILE)")
        if self._env is None:
            if not self.env_path.is_file():
                raise LabgridError(f"labgrid environment file {self.env_path} does not exist")
            try:
                self._env = labgrid.Environment(config_file=str(self.env_path))
            except Exception as exc:
                raise LabgridError(f"{self.env_path}: labgrid cannot load it: {type(exc).__name__}: {exc}") from exc
        if name not in self._targets:
            try:
                target = self._env.get_target(name)
            except Exception as exc:
                raise LabgridError(f"{self.env_path}: target {name!r} cannot be built: "
                                   f"{type(exc).__name__}: {exc}") from exc
            if target is None:
                known = ", ".join(sorted(self._env.config.get_targets())) or "none"
                raise LabgridError(f"{self.env_path}: no labgrid target {name!r} (targets: {known})")
            self._targets[name] = target
        return self._targets[name]

    def _driver(self, ref: LabgridRef, protocol: str, device_id: str, what: str) -> tuple[Any, Any]:
        target = self.target(ref.target, what=f"{device_id}: {what}")
        try:
            driver = target.get_driver(protocol, name=ref.driver, activate=False)
        except Exception as exc:
            raise LabgridError(f"{device_id}: labgrid target {ref.target!r} in {self.env_path} has no "
                               f"{protocol} driver{f' named {ref.driver!r}' if ref.driver else ''} "
                               f"({type(exc).__name__}: {exc})", device_id=device_id) from exc
        return target, driver

    def power(self, device_id: str) -> LabgridPower:
        entry = self._device(device_id)
        if entry.power is None:
            raise KeyError(f"device {device_id!r} names no power: resource in the inventory")
        target, driver = self._driver(entry.power.labgrid, "PowerProtocol", device_id, "power: through labgrid")
        return LabgridPower(target, driver, device_id=device_id)

    def console(self, device_id: str, **kw: Any) -> LabgridConsole:
        if device_id in self._consoles:
            return self._consoles[device_id]
        entry = self._device(device_id)
        if entry.console is None:
            raise KeyError(f"device {device_id!r} names no console: resource in the inventory")
        target, driver = self._driver(entry.console.labgrid, "ConsoleProtocol", device_id,
                                      "console: through labgrid")
        self._consoles[device_id] = console = LabgridConsole(target, driver, device_id=device_id, **kw)
        return console

    def add_evidence(self, device_id: str, collector: Any) -> None:
        """Put what ``device_id``'s console said during the test into the test's evidence (``console.log``).

        Only a console the run opened is read; evidence never changes a test's outcome, so a console that
        fails to read is noted in the log text instead.
        """
        console = self._consoles.get(device_id)
        if console is None:
            return
        try:
            data = console.take_since_mark()
        except Exception as exc:
            data = f"[sipgw-lab: console not read: {type(exc).__name__}: {exc}]\n".encode()
        collector.add_bytes("console_log", "console.log", data)

    def close(self) -> None:
        for target in self._targets.values():
            with contextlib.suppress(Exception):  # closing goes on for every target
                target.deactivate_all_drivers()
        self._targets.clear()
        self._consoles.clear()
        self._env = None


# --- device capabilities ------------------------------------------------------------------------------------


def device_capability(device: Any, protocol: type[Power] | type[Console]) -> Any:
    """``device[Power]`` / ``device[Console]`` of a lab device (:class:`harness.lab.LabDevice`).

    The labgrid resource its inventory entry names comes first (the outlet or serial port of the real device),
    then the driver's own capability; without either, :class:`NotApplicable` says what to add.
    """
    entry = device.spec.entry
    key = "power" if protocol is Power else "console"
    ref = getattr(entry, key)
    if ref is not None:
        session = getattr(device, "labgrid", None)
        if session is None:
            raise NotApplicable(f"{key}: names the labgrid target {ref.labgrid.target!r}, but the lab has no labgrid "
                                "session (the inventory's 'labgrid: {env: FILE}' section was not loaded)",
                                device_id=device.id)
        return session.power(device.id) if protocol is Power else session.console(device.id)
    if isinstance(device.driver, protocol):
        return device.driver
    example = "{labgrid: {target: NAME}}" if protocol is Power else "{labgrid: {target: NAME, driver: uart}}"
    raise NotApplicable(f"no {protocol.__name__}: the inventory entry of {device.id} names no {key}: resource "
                        f"(add {key}: {example} and a 'labgrid: {{env: FILE}}' section) and the "
                        f"{type(device.driver).__name__} driver has no {key} control of its own",
                        device_id=device.id)
