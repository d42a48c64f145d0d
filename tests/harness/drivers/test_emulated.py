"""What only the emulated driver does: multi-line DECT and ATA workers, vendor DTMF, gateway gating, transfer."""

from __future__ import annotations

import time

import pytest

from device_profiles.catalogue import default_catalogue
from harness.drivers.base import DriverContext, LineAccount
from harness.drivers.emulated import EmulatedDriver
from harness.inventory import load_inventory
from harness.lab import Lab
from harness.protocols import CallControl, CallState, EventKind, NotApplicable

T = 5.0

INVENTORY = """\
gateway:
  mode: embedded
defaults:
  transport: udp
devices:
  - id: dect
    vendor: Gigaset
    model: N870 IP PRO
    firmware: 2.52.0
    driver: emulated
    lines:
      - {number: "+14255550161", name: Shop Floor 1, handset: {model: S700H PRO}}
      - {number: "+14255550162", name: Shop Floor 2, handset: {model: R700H PRO}}
  - id: ata
    vendor: AudioCodes
    model: MP114-FXS
    firmware: 6.60A.367.001
    driver: emulated
    lines:
      - {number: "+14255550132", name: Loading Dock, port: 1}
      - {number: "+14255550133", name: Elevator, port: 2}
      - {number: "+14255550134", name: Security Desk, port: 3}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    inv = load_inventory("emulated-specifics.yaml", text=INVENTORY)
    the_lab = Lab(inv, gateway="embedded", data_dir=tmp_path_factory.mktemp("emu"), media=None, control_api=False)
    the_lab.start()
    try:
        yield the_lab
    finally:
        the_lab.stop()


def test_one_worker_registers_one_account_per_line(lab):
    for dev_id, n in (("dect", 2), ("ata", 3)):
        dev = lab.device(dev_id)
        assert [r.status_code for r in dev.registrations] == [200] * n
        now = lab.gateway.core.now()
        for acc in dev.lines:
            bindings = lab.gateway.registrar.bindings(acc.username, now)
            assert len(bindings) == 1, acc
        assert dev.driver.worker.pid  # one process for all of them


def test_handset_to_handset_call_with_sip_info_dtmf(lab):
    cc = lab.device("dect")[CallControl]
    lines = lab.device("dect").lines
    out = cc.dial(lines[1].number, line=0)
    inc = cc.wait_for_incoming(line=1, timeout=T)
    assert inc.remote == lines[0].number
    cc.answer(inc.id)
    cc.wait_for_state(out.id, CallState.CONFIRMED, timeout=T)
    try:
        cc.send_dtmf(out.id, "5")
        ev = cc.wait_for_event(EventKind.DTMF, call_id=inc.id, timeout=T)
        assert ev.detail == {"digit": "5", "method": "info"}  # Gigaset relays digits as SIP INFO
    finally:
        cc.hangup(out.id)
        cc.wait_for_state(inc.id, CallState.DISCONNECTED, timeout=T)


def test_ata_port_mute_is_not_applicable(lab):
    with pytest.raises(NotApplicable, match="ATA port has no mute"):
        lab.device("ata")[CallControl].mute("1")


def test_blind_transfer_through_the_gateway(lab):
    ata = lab.device("ata")[CallControl]
    dect = lab.device("dect")[CallControl]
    ata_lines, dect_lines = lab.device("ata").lines, lab.device("dect").lines
    out = ata.dial(dect_lines[0].number, line=0)
    inc = dect.wait_for_incoming(line=0, timeout=T)
    dect.answer(inc.id)
    ata.wait_for_state(out.id, CallState.CONFIRMED, timeout=T)
    # The handset transfers the ATA's port 1 to port 2 (REFER, RFC 3515).
    dect.blind_transfer(inc.id, ata_lines[1].number)
    transferred = ata.wait_for_incoming(line=1, timeout=T)
    try:
        ata.answer(transferred.id)
        assert dect.wait_for_state(inc.id, CallState.DISCONNECTED, timeout=T).state is CallState.DISCONNECTED
    finally:
        for c in ata.calls():
            if c.active:
                ata.hangup(c.id)


def test_gateway_refuses_below_minimum_firmware_with_403(lab, tmp_path):
    from gateway.services.model import User

    profile = default_catalogue().find("7841", "Cisco")
    acc = LineAccount(0, "+14255550199", "Old Phone", "old.phone", "pw-old-phone")
    lab.gateway.directory.put_user(User(acc.username, acc.name, acc.number), password=acc.password)
    drv = EmulatedDriver(DriverContext(device_id="old-7841", vendor="Cisco", model="7841", firmware="11.0.1MPP",
                                       profile=profile, lines=(acc,), transport="udp", gateway=lab.target,
                                       work_dir=tmp_path, allocator=lab.allocator))
    drv.activate()
    try:
        reg = drv.register(0)
        assert reg.status_code == 403 and not reg.ok
        assert drv.identity().user_agent == "Cisco-CP-7841-3PCC/11.0.1MPP"
    finally:
        drv.deactivate()


def test_local_forwarding_always_answers_302_and_clearing_restores_ringing(lab):
    from harness.protocols import Forwarding, ForwardingKind, ForwardingRule

    ata, dect = lab.device("ata"), lab.device("dect")
    fwd = ata[Forwarding]
    cc = dect[CallControl]
    rule = fwd.set_forwarding(ForwardingRule(ForwardingKind.ALWAYS, dect.lines[0].number))
    assert fwd.forwarding() == (rule,)
    try:
        mark = cc.last_seq()
        out = cc.dial(ata.lines[0].number, line=1)
        # Either the gateway relays the device's 302 Moved Temporarily to the caller (RFC 3261 §21.3.3), or it
        # follows it and the target (this base's line 1) rings; both show the device redirected the call.
        seq, deadline = mark, time.monotonic() + T
        while True:
            ev = cc.wait_for_event({EventKind.STATE, EventKind.INCOMING}, after_seq=seq,
                                   timeout=max(0.1, deadline - time.monotonic()))
            seq = ev.seq
            if ev.kind is EventKind.INCOMING and ev.call.line == 0:
                cc.hangup(out.id)
                break
            if ev.call.id == out.id and ev.call.state is CallState.DISCONNECTED:
                assert ev.call.status_code == 302
                break
        # The device itself answered the INVITE with the redirect (its SIP trace shows the 302 sent); the call
        # was never connected to it.
        redirected = ata[CallControl].wait_for_incoming(line=0, timeout=T)
        redirected = ata[CallControl].wait_for_state(redirected.id, CallState.DISCONNECTED, timeout=T)
        assert redirected.answered is None
        assert "Response msg 302/INVITE" in ata.driver.read_log(4000)
    finally:
        fwd.clear_forwarding()
    assert fwd.forwarding() == ()
    out = cc.dial(ata.lines[0].number, line=1)
    inc = ata[CallControl].wait_for_incoming(line=0, timeout=T)
    assert inc.remote == dect.lines[1].number
    ata[CallControl].hangup(inc.id)
    cc.wait_for_state(out.id, CallState.DISCONNECTED, timeout=T)


def test_power_cut_leaves_the_binding_and_power_on_registers_again(lab):
    from harness.protocols import Power, PowerState, StateError, UnknownCall

    dect = lab.device("dect")
    cc, power = dect[CallControl], dect[Power]
    before = cc.dial(dect.lines[1].number, line=0)
    cc.wait_for_incoming(line=1, timeout=T)
    old_pid = dect.driver.pid
    assert power.power_off() is PowerState.OFF
    # No un-REGISTER on a power cut: the gateway still holds the bindings (RFC 3261 §10.2.4: they expire).
    now = lab.gateway.core.now()
    assert all(lab.gateway.registrar.bindings(acc.username, now) for acc in dect.lines)
    assert cc.call(before.id).state is CallState.DISCONNECTED
    with pytest.raises(StateError, match="powered off"):
        cc.dial(dect.lines[1].number)
    assert power.power_on() is PowerState.ON
    assert dect.driver.pid != old_pid
    assert all(cc.registration(i).ok for i in range(len(dect.lines)))
    with pytest.raises(UnknownCall, match="lost power"):
        cc.answer(before.id)
    out = cc.dial(dect.lines[1].number, line=0)
    inc = cc.wait_for_incoming(line=1, timeout=T)
    assert out.id != before.id
    cc.answer(inc.id)
    cc.hangup(out.id)
    cc.wait_for_state(inc.id, CallState.DISCONNECTED, timeout=T)
