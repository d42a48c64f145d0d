"""The lab inventory: the default lab is complete, and every kind of mistake is located and explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_profiles.verdict import Verdict
from harness.inventory import InventoryError, load_inventory

ROOT = Path(__file__).resolve().parents[2]

VALID_DEVICE = """\
gateway:
  mode: embedded
devices:
  - id: vvx
    vendor: Poly
    model: VVX 450
    firmware: 5.9.5.0614
    driver: emulated
    lines:
      - {number: "+14255550111", name: Blake}
"""


def load(text: str, **kw):
    return load_inventory("lab.yaml", text=text, **kw)


def problems(text: str, **kw) -> list[str]:
    with pytest.raises(InventoryError) as info:
        load(text, **kw)
    return [str(p) for p in info.value.problems]


def test_default_inventory_is_a_complete_emulated_lab():
    inv = load_inventory(ROOT / "lab_inventory.yaml")
    assert len(inv.devices) >= 15
    vendors = {d.vendor for d in inv.devices}
    assert vendors >= {"Cisco", "Poly", "Yealink", "AudioCodes", "Spectralink", "Ascom", "Gigaset", "Algo",
                       "Tango Extend"}
    kinds = {d.profile.kind for d in inv.devices}
    assert {"ata", "dect_base", "ip_dect_server", "desk_phone", "conference_phone", "speaker",
            "paging_adapter", "esim_endpoint"} <= kinds
    below = [d for d in inv.devices if d.verdict.verdict == Verdict.BELOW_MINIMUM]
    assert below, "the default lab must hold a device below its minimum firmware"
    assert all(d.driver == "emulated" for d in inv.devices)
    assert inv.device("cisco-ata191").lines[1].port == 2
    rove = inv.device("poly-rove-b4")
    assert [line.handset.model for line in rove.lines] == ["Rove 30", "Rove 40"]
    assert inv.device("poly-vvx450").test_id == "poly-vvx450-poly-vvx450"


def test_valid_minimal_inventory():
    inv = load(VALID_DEVICE)
    (dev,) = inv.devices
    assert dev.verdict.verdict == Verdict.SUPPORTED
    assert dev.transport == "tls"
    assert dev.lines[0].username == "14255550111"


def test_yaml_syntax_error_is_located():
    (msg,) = problems("devices:\n  - id: a\n    model: [VVX\n")
    assert msg.startswith("lab.yaml:") and "YAML syntax" in msg


def test_duplicate_yaml_key_is_an_error():
    (msg,) = problems(VALID_DEVICE.replace("    driver: emulated\n", "    driver: emulated\n    driver: emulated\n"))
    assert "lab.yaml:9:" in msg and "duplicate" in msg.lower()


def test_unknown_model_names_the_closest():
    (msg,) = problems(VALID_DEVICE.replace("VVX 450", "VVX 455"))
    assert msg.startswith("lab.yaml:6:12:")
    assert "'VVX 455' is not in the Poly catalogue" in msg and "Poly VVX 450" in msg


def test_unknown_vendor_lists_the_known():
    (msg,) = problems(VALID_DEVICE.replace("vendor: Poly", "vendor: Nokia"))
    assert msg.startswith("lab.yaml:5:") and "unknown vendor 'Nokia'" in msg and "Yealink" in msg


def test_unparseable_firmware():
    (msg,) = problems(VALID_DEVICE.replace("5.9.5.0614", "banana"))
    assert msg.startswith("lab.yaml:7:") and "VVX 450" in msg and "banana" in msg


def test_numeric_firmware_must_be_quoted():
    (msg,) = problems(VALID_DEVICE.replace("firmware: 5.9.5.0614", "firmware: 5.3"))
    assert msg.startswith("lab.yaml:7:") and "quotes" in msg


def test_duplicate_ids_and_numbers():
    text = VALID_DEVICE + """\
  - id: vvx
    vendor: Yealink
    model: T46S
    firmware: 66.86.0.15
    lines:
      - {number: "+14255550111"}
"""
    msgs = problems(text)
    assert any("lab.yaml:11:" in m and "duplicate device id 'vvx'" in m for m in msgs)
    assert any("lab.yaml:16:" in m and "duplicate number +14255550111" in m and "vvx line 1" in m for m in msgs)


def test_missing_environment_variable():
    text = VALID_DEVICE.replace(
        "    driver: emulated\n",
        "    driver: emulated\n    credentials: {username: {env: POLY_USER}, password: {env: POLY_PASS}}\n",
    )
    msgs = problems(text, environ={"POLY_USER": "admin"})
    (msg,) = msgs
    assert msg.startswith("lab.yaml:9:") and "POLY_PASS" in msg and "not set" in msg
    assert load(text, environ={"POLY_USER": "a", "POLY_PASS": "b"}).devices[0].entry.credentials


def test_literal_credentials_are_refused():
    text = VALID_DEVICE.replace("    driver: emulated\n",
                                "    driver: emulated\n    credentials: {password: hunter2}\n")
    (msg,) = problems(text)
    assert "environment variable" in msg and "hunter2" not in msg


def test_more_lines_than_usable_ata_ports():
    text = """\
devices:
  - id: mp114
    vendor: AudioCodes
    model: MP114-FXS
    firmware: 6.60A.367.001
    lines:
      - {number: "1001"}
      - {number: "1002"}
      - {number: "1003"}
      - {number: "1004"}
"""
    msgs = problems(text)
    assert any("lab.yaml:7:" in m and "3 usable port(s) of 4" in m and "4 lines" in m for m in msgs)
    assert any("lab.yaml:10:" in m and "port 4 is not usable" in m for m in msgs)


def test_unknown_driver_lists_the_known():
    (msg,) = problems(VALID_DEVICE.replace("driver: emulated", "driver: telepathy"))
    assert msg.startswith("lab.yaml:8:") and "unknown driver 'telepathy'" in msg and "emulated" in msg


def test_unknown_key_and_missing_lines():
    msgs = problems(VALID_DEVICE.replace("    driver: emulated\n", "    drivr: emulated\n").replace(
        '    lines:\n      - {number: "+14255550111", name: Blake}\n', ""))
    assert any("unknown key 'drivr'" in m for m in msgs)
    assert any("missing required key 'lines'" in m for m in msgs)


def test_dect_lines_need_handsets_of_the_right_vendor():
    text = """\
devices:
  - id: ipdect
    vendor: Spectralink
    model: IP-DECT Server 400
    firmware: PCS22Ab
    lines:
      - {number: "2001", handset: {model: "7742", firmware: PCS21A}}
      - {number: "2002", handset: {model: d63}}
      - {number: "2003"}
"""
    msgs = problems(text)
    assert any("lab.yaml:8:" in m and "'d63' is not in the Spectralink catalogue" in m for m in msgs)
    assert any("lab.yaml:9:" in m and "DECT handset" in m for m in msgs)
    inv = load(text.replace('      - {number: "2002", handset: {model: d63}}\n', "").replace(
        '      - {number: "2003"}\n', ""))
    assert inv.devices[0].lines[0].handset_verdict.verdict == Verdict.BELOW_MINIMUM


def test_bad_number_and_bad_subnet():
    text = VALID_DEVICE.replace('"+14255550111"', '"call-me"').replace(
        "    driver: emulated\n", "    driver: emulated\n    network: {subnet: 10.1.300.0/24}\n")
    msgs = problems(text)
    assert any("not a phone number" in m for m in msgs)
    assert any("not a subnet" in m for m in msgs)


def test_external_gateway_needs_its_section():
    (msg,) = problems(VALID_DEVICE.replace("mode: embedded", "mode: external"))
    assert "external" in msg and msg.startswith("lab.yaml:2:")


def test_empty_and_non_mapping_files():
    assert "empty" in problems("")[0]
    assert "mapping" in problems("- a\n- b\n")[0]


def test_missing_file():
    with pytest.raises(InventoryError, match="file not found"):
        load_inventory("/nonexistent/lab.yaml")
