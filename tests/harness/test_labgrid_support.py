"""Power, consoles and shared places through labgrid: real labgrid drivers against loopback stand-ins.

Power goes through labgrid's NetworkPowerDriver with its ``simplerest`` backend pointed at a small HTTP outlet
this module runs on 127.0.0.1; the console through labgrid's SerialDriver on a RawSerialPort that is the slave
side of a pty the test drives; the place through a real ``labgrid-coordinator`` on loopback.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.inventory import InventoryError, load_inventory
from harness.lab import Lab
from harness.labgrid_support import LabgridError, LabgridMissing, LabgridPlace, LabgridSession
from harness.protocols import PowerState
from harness.pytest_plugin.evidence import EvidenceCollector

DEVICE = """\
  - id: poly-vvx450
    vendor: Poly
    model: VVX 450
    firmware: 5.9.5.0614
    driver: emulated
{extra}    lines:
      - {{number: "+14255550111", name: Blake Rivera}}
"""


def inventory_text(labgrid: str = "", extra: str = "") -> str:
    return f"gateway:\n  mode: embedded\n{labgrid}devices:\n" + DEVICE.format(extra=extra)


LG_DEVICE = "    power: {labgrid: {target: desk}}\n    console: {labgrid: {target: desk}}\n"


# --- inventory schema and the import guard (no labgrid needed) -----------------------------------------------


def test_inventory_names_labgrid_env_place_and_device_resources():
    inv = load_inventory("lab.yaml", text=inventory_text(
        "labgrid: {env: env.yaml, place: bench-1, coordinator: '127.0.0.1:20408'}\n", LG_DEVICE))
    assert inv.data.labgrid.place == "bench-1"
    assert inv.data.labgrid.coordinator == "127.0.0.1:20408"
    entry = inv.device("poly-vvx450").entry
    assert entry.power.labgrid.target == "desk" and entry.console.labgrid.driver is None


@pytest.mark.parametrize(("labgrid", "extra", "message"), [
    ("", LG_DEVICE, "poly-vvx450 name labgrid power/console resources"),
    ("labgrid: {env: e.yaml, coordinator: '127.0.0.1:20408'}\n", "", "needs the place to acquire"),
    ("labgrid: {env: e.yaml, place: p, coordinator: nohostport}\n", "", "coordinator"),
    ("labgrid: {}\n", "", "environment file"),
    ("", "    power: {labgrid: {target: desk, outlet: 3}}\n", "outlet"),
])
def test_bad_labgrid_inventory_is_a_located_error(labgrid, extra, message):
    with pytest.raises(InventoryError) as err:
        load_inventory("lab.yaml", text=inventory_text(labgrid, extra))
    text = str(err.value)
    assert message in text and "lab.yaml" in text


def test_without_labgrid_installed_a_device_naming_it_gets_the_extra_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "labgrid", None)  # import labgrid -> ImportError
    inv = load_inventory(tmp_path / "lab.yaml", text=inventory_text("labgrid: {env: env.yaml}\n", LG_DEVICE))
    session = LabgridSession.from_inventory(inv)
    with pytest.raises(LabgridMissing) as err:
        session.power("poly-vvx450")
    assert "poly-vvx450" in str(err.value) and "pip install 'sipgw-lab[labgrid]'" in str(err.value)
    with pytest.raises(LabgridMissing, match=r"sipgw-lab\[labgrid\]"):
        LabgridPlace("127.0.0.1:1", "bench").acquire()


def test_inventory_without_labgrid_section_has_no_session():
    inv = load_inventory("lab.yaml", text=inventory_text())
    assert LabgridSession.from_inventory(inv) is None


# --- through labgrid itself ----------------------------------------------------------------------------------

labgrid = pytest.importorskip("labgrid", reason="the labgrid extra is not installed")
# Import what labgrid's simplerest backend uses now, in this process's own module set: in-process pytest runs of
# other tests snapshot and restore sys.modules, which would otherwise leave requests half re-imported.
pytest.importorskip("labgrid.driver.power.simplerest")
pytest.importorskip("requests.sessions")


class _Outlet(BaseHTTPRequestHandler):
    """A relay answering labgrid's simplerest backend: GET /outlet/I/V sets, GET /outlet/I reads ("1"/"0")."""

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        server = self.server
        if len(parts) == 3 and parts[0] == "outlet":
            server.states[parts[1]] = parts[2] == "1"
            server.log_.append((parts[1], parts[2]))
            body = b"ok"
        elif len(parts) == 2 and parts[0] == "outlet":
            body = b"1" if server.states.get(parts[1]) else b"0"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def outlet():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Outlet)
    server.states, server.log_ = {}, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


class _PtyDevice:
    """The device end of a serial console: prints a boot log, answers ``show version`` with a prompt."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        buf = b""
        while not self.stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                buf += os.read(self.master, 1024)
            except OSError:
                return
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                cmd = line.strip()
                reply = b"FW 5.9.5.0614\r\n" if cmd == b"show version" else b"unknown command\r\n"
                os.write(self.master, cmd + b"\r\n" + reply + b"vvx450# ")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def pty_device():
    dev = _PtyDevice()
    dev.thread.start()
    yield dev
    dev.close()


def _session(tmp_path: Path, outlet_url: str, serial_path: str) -> LabgridSession:
    (tmp_path / "env.yaml").write_text(f"""\
targets:
  desk:
    resources:
      NetworkPowerPort: {{model: simplerest, host: "{outlet_url}/outlet/{{index}}/{{value}}", index: 3}}
      RawSerialPort: {{port: "{serial_path}", speed: 115200}}
    drivers:
      NetworkPowerDriver: {{delay: 0.0}}
      SerialDriver: {{}}
""")
    inv = load_inventory(tmp_path / "lab.yaml", text=inventory_text("labgrid: {env: env.yaml}\n", LG_DEVICE))
    return LabgridSession.from_inventory(inv)


def test_power_on_off_cycle_through_network_power_driver(tmp_path, outlet, pty_device):
    url = f"http://127.0.0.1:{outlet.server_address[1]}"
    session = _session(tmp_path, url, pty_device.path)
    try:
        power = session.power("poly-vvx450")
        assert power.power_off() is PowerState.OFF
        assert outlet.states["3"] is False
        assert power.power_on() is PowerState.ON
        outlet.log_.clear()
        assert power.power_cycle() is PowerState.ON
        assert outlet.log_ == [("3", "0"), ("3", "1")]  # labgrid's cycle: off, then on
        outlet.states["3"] = False  # switched at the PDU: the state is read back, not remembered
        assert power.power_state() is PowerState.OFF
    finally:
        session.close()


def test_serial_console_through_labgrid_and_its_log_in_the_evidence(tmp_path, outlet, pty_device):
    session = _session(tmp_path, "http://127.0.0.1:9", pty_device.path)
    try:
        console = session.console("poly-vvx450", prompt=r"vvx450# $")
        console.capture(timeout=0.0)  # opens the port
        os.write(pty_device.master, b"U-Boot 2024.01 booting\r\n")
        result = console.run("show version", timeout=5)
        assert result.output.strip() == "FW 5.9.5.0614"
        assert "unknown command" in console.run("reboot now", timeout=5).output
        with pytest.raises(ValueError, match="line breaks"):
            console.run("a\nb")
        path = console.write_evidence(tmp_path / "evidence" / "poly-vvx450" / "boot" / "test_x")
        log = path.read_text()
        assert "U-Boot 2024.01 booting" in log and ">>> show version" in log and "FW 5.9.5.0614" in log
        assert "FW 5.9.5.0614" in console.read_log(max_lines=5)

        # Each test's evidence gets what the console said during that test, written by the evidence writer.
        first, second = EvidenceCollector("t::first", device_id="poly-vvx450"), EvidenceCollector("t::second")
        session.add_evidence("poly-vvx450", first)
        console.run("show version", timeout=5)
        session.add_evidence("poly-vvx450", second)
        first_log = first.blobs["console_log"][1].decode()
        second_log = second.blobs["console_log"][1].decode()
        assert "U-Boot" in first_log and "reboot now" in first_log
        assert "U-Boot" not in second_log and second_log.startswith(">>> show version")
        record = first.finalise(tmp_path / "run", feature="boot")
        written = list((tmp_path / "run").rglob("console.log"))
        assert len(written) == 1 and "U-Boot 2024.01 booting" in written[0].read_text(), record
    finally:
        session.close()


def test_unknown_target_and_missing_driver_are_named(tmp_path, pty_device):
    session = _session(tmp_path, "http://127.0.0.1:9", pty_device.path)
    (tmp_path / "env.yaml").write_text("targets:\n  other:\n    resources: {}\n    drivers: {}\n")
    with pytest.raises(LabgridError, match=r"no labgrid target 'desk' \(targets: other\)"):
        session.power("poly-vvx450")
    (tmp_path / "env.yaml").write_text("targets:\n  desk:\n    resources: {}\n    drivers: {}\n")
    inv = load_inventory(tmp_path / "lab.yaml", text=inventory_text("labgrid: {env: env.yaml}\n", LG_DEVICE))
    with pytest.raises(LabgridError, match="has no PowerProtocol driver"):
        LabgridSession.from_inventory(inv).power("poly-vvx450")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_place_acquired_and_released_on_a_loopback_coordinator(tmp_path):
    exe = Path(sys.executable).with_name("labgrid-coordinator")
    if not exe.exists():
        pytest.skip("labgrid-coordinator is not installed")
    address = f"127.0.0.1:{_free_port()}"
    proc = subprocess.Popen([str(exe), "-l", address], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        place = LabgridPlace(address, "bench-1", timeout=15)
        deadline = time.monotonic() + 15
        while True:  # the coordinator is up once its port accepts a connection
            try:
                socket.create_connection(("127.0.0.1", int(address.rsplit(":", 1)[1])), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "labgrid-coordinator did not come up"
                select.select([], [], [], 0.05)
        place.client("create")
        inv = load_inventory(tmp_path / "lab.yaml", text=inventory_text(
            f"labgrid: {{place: bench-1, coordinator: '{address}'}}\n"))
        lab = Lab(inv, gateway="none", lazy=True)
        with lab:  # the place is acquired around the run
            held = place.show()
        released = place.show()
        assert lab.labgrid is None
        acquired_line = next(line for line in held.splitlines() if line.strip().startswith("acquired:"))
        assert acquired_line.split(":", 1)[1].strip() not in ("", "None"), held
        assert "acquired: None" in released, released
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
