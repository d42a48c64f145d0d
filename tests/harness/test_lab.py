"""harness.lab.Lab: inventory → gateway users → drivers → registered devices, and a clean stop."""

from __future__ import annotations

import pytest

from harness.drivers.fake import FakeDriver, FakeNetwork
from harness.inventory import InventoryError, load_inventory
from harness.lab import Lab, LabError
from harness.protocols import CallControl, DeviceBroken, Identity, NotApplicable, Power

INVENTORY = """\
gateway:
  mode: embedded
devices:
  - id: desk
    vendor: Yealink
    model: T46S
    firmware: 66.86.0.15
    driver: fake
    lines:
      - {number: "+14255550121", name: Drew Patel}
  - id: ata
    vendor: Cisco
    model: ATA191-MPP
    firmware: 11-2-2MPP0101-013
    driver: fake
    lines:
      - {number: "+14255550103", name: Lobby Phone, port: 1}
      - {number: "+14255550104", name: Fax Line, port: 2}
  - id: old
    vendor: Cisco
    model: "7841"
    firmware: 11.0.1MPP
    driver: fake
    lines:
      - {number: "+14255550105", name: Stock Room}
"""


@pytest.fixture
def inventory():
    return load_inventory("lab-test.yaml", text=INVENTORY)


def fake_lab(inventory, tmp_path, **kw):
    net = FakeNetwork()
    return Lab(inventory, gateway="none", data_dir=tmp_path,
               driver_options={d.id: {"network": net} for d in inventory.devices}, **kw)


def test_start_registers_every_line_and_reads_identity_back(inventory, tmp_path):
    with fake_lab(inventory, tmp_path) as lab:
        ata = lab.device("ata")
        assert ata.state == "registered"
        assert [r.status_code for r in ata.registrations] == [200, 200]
        assert ata.identity is not None and ata.identity.model == "ATA191-MPP"
        assert ata.identity.firmware == "11-2-2MPP0101-013"
        assert isinstance(ata[CallControl], FakeDriver)
        assert ata[Identity] is ata.driver
        assert ata.has(Power)
    assert not lab.started


def test_below_minimum_device_is_blocked_and_never_started(inventory, tmp_path):
    with fake_lab(inventory, tmp_path) as lab:
        old = lab.device("old")
        assert old.state == "blocked" and old.driver is None
        assert "below_minimum" in old.blocked_reason
        with pytest.raises(DeviceBroken, match="below the minimum"):
            old[CallControl]


def test_subset_of_devices(inventory, tmp_path):
    with fake_lab(inventory, tmp_path, devices=["desk"]) as lab:
        assert list(lab.devices) == ["desk"]
        with pytest.raises(LabError, match="not part of this lab; devices: desk"):
            lab.device("ata")
    with pytest.raises(LabError, match=r"nope are not in lab-test\.yaml"):
        fake_lab(inventory, tmp_path, devices=["desk", "nope"])


def test_lazy_lab_starts_a_device_on_first_use(inventory, tmp_path):
    with fake_lab(inventory, tmp_path, lazy=True) as lab:
        assert lab.devices["desk"].state == "not_started"
        assert lab.device("desk").state == "registered"
        assert lab.devices["ata"].state == "not_started"


def test_a_device_that_fails_to_register_is_broken_with_its_first_cause(inventory, tmp_path):
    net = FakeNetwork()
    opts = {d.id: {"network": net} for d in inventory.devices}
    opts["desk"]["register_status"] = 403
    with Lab(inventory, gateway="none", data_dir=tmp_path, driver_options=opts) as lab:
        desk = lab.device("desk")
        assert desk.state == "broken"
        with pytest.raises(DeviceBroken, match="REGISTER answered 403"):
            desk[CallControl]


def test_capability_the_driver_lacks_is_not_applicable(inventory, tmp_path):
    from harness.protocols import Capability

    class Teleport(Capability):
        pass

    with fake_lab(inventory, tmp_path) as lab:
        with pytest.raises(NotApplicable, match="no Teleport capability"):
            lab.device("desk")[Teleport]
        with pytest.raises(TypeError):
            lab.device("desk")[int]


def test_bad_gateway_choice(inventory, tmp_path):
    with pytest.raises(LabError, match="expected 'embedded' or HOST:PORT"):
        Lab(inventory, gateway="somewhere", data_dir=tmp_path).start()


def test_from_inventory_reports_bad_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices:\n  - id: x\n    vendor: Nokia\n    model: 3310\n    lines: [{number: '+1', name: a}]\n")
    with pytest.raises(InventoryError):
        Lab.from_inventory(bad)


def test_embedded_gateway_gets_a_tenant_user_per_line(inventory, tmp_path):
    net = FakeNetwork()
    lab = Lab(inventory, gateway="embedded", data_dir=tmp_path, media=None,
              driver_options={d.id: {"network": net} for d in inventory.devices})
    with lab:
        gw = lab.gateway
        assert lab.target is not None and lab.target.udp_port > 0
        for number in ("+14255550121", "+14255550103", "+14255550104"):
            user = gw.directory.by_number(number)
            assert user is not None and user.ha1, number
        assert gw.directory.by_number("+14255550105") is None  # blocked: never provisioned
        usernames = {acc.username for acc in lab.device("ata").lines}
        assert len(usernames) == 2
        if lab.control is not None:  # the control API sees the same users
            listed = {u["username"] for u in lab.control.users()}
            assert usernames <= listed
    assert lab.gateway._thread is None  # the gateway thread was joined


def test_example_script_drives_two_emulated_devices():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, str(root / "examples" / "two_emulated_devices.py"),
                           str(root / "lab_inventory.yaml")], capture_output=True, text=True, timeout=120, cwd=root)
    verdicts = [line for line in proc.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(verdicts) == 10 and all(v.startswith("PASS") for v in verdicts)
