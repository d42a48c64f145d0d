"""DTMF between devices: the helper is one whose driver reads back received digits when there is one; where none
does, an INFO receiver's digits are judged from the INFO ``application/dtmf-relay`` the gateway sent it."""

from __future__ import annotations

from types import SimpleNamespace

import harness.pytest_plugin.fixtures as fixtures
from harness.inventory import load_inventory
from harness.pytest_plugin.fixtures import reports_dtmf_received
from harness.pytest_plugin.state import STATE


def test_vendor_api_and_sip_side_drivers_report_no_received_digits():
    specs = {s.id: s for s in load_inventory("examples/simulated-physical-lab.yaml").devices}
    assert not any(reports_dtmf_received(s) for s in specs.values())
    emulated = load_inventory("lab_inventory.yaml").devices[0]
    assert emulated.entry.driver == "emulated" and reports_dtmf_received(emulated)
    assert not reports_dtmf_received(SimpleNamespace(driver="sip-side"))
    assert not reports_dtmf_received(SimpleNamespace(driver="no-such-driver"))


def _pick(monkeypatch, devices, me):
    monkeypatch.setattr(fixtures, "device_handle", lambda lab, device_id: device_id)
    config = SimpleNamespace(stash={STATE: SimpleNamespace(helpers=set())})
    request = SimpleNamespace(node=SimpleNamespace(callspec=SimpleNamespace(params={"device": me})), config=config)
    return fixtures._helper(request, None, SimpleNamespace(devices=devices), same_dtmf=False, reads_digits=True)


def test_a_helper_that_reads_back_digits_wins_over_the_other_dtmf_method(monkeypatch):
    physical = load_inventory("examples/simulated-physical-lab.yaml").devices
    poly, ac = (next(s for s in physical if s.id == i) for i in ("poly-vvx450", "audiocodes-mp114"))
    # No candidate reads digits back: the other method (the MP114's INFO) is preferred, as before.
    assert _pick(monkeypatch, physical, poly) == "audiocodes-mp114"
    # An emulated device (same RFC 4733 method) that reads digits back wins over the MP114 that does not.
    emulated = next(s for s in load_inventory("lab_inventory.yaml").devices
                    if s.entry.driver == "emulated" and fixtures.dtmf_method_of(s) == "rfc4733"
                    and s.verdict.acceptable)
    assert _pick(monkeypatch, [poly, ac, emulated], poly) == emulated.id


INFO = ("INFO sip:dev@192.0.2.40 SIP/2.0\r\nCSeq: {n} INFO\r\nContent-Type: {ct}\r\n\r\nSignal={d}\r\nDuration=160\r\n")


def test_info_digits_sent_to_the_device_in_order_from_the_trace():
    from test_suites import test_dtmf as dtmf_suite

    entries = []

    def add(seq, direction, digit, ct="application/dtmf-relay", call_id="leg-b"):
        entries.append({"seq": seq, "direction": direction, "first_line": "INFO sip:dev@192.0.2.40 SIP/2.0",
                        "message": INFO.format(n=seq, ct=ct, d=digit), "call_id": call_id, "time": seq / 10})

    add(5, "out", "2")
    add(3, "out", "1")
    add(4, "in", "9")  # sent by the device, not to it
    add(6, "out", "7", ct="application/dtmf")  # another package: not this one
    add(7, "out", "#")
    add(8, "out", "3", call_id="leg-a")  # another leg
    control = SimpleNamespace(trace=lambda call_id: [e for e in entries if e["call_id"] == call_id])
    got = dtmf_suite._info_digits_sent_to(control, "leg-b")
    assert [d["digit"] for d in got] == ["1", "2", "#"] and {d["method"] for d in got} == {"info"}
