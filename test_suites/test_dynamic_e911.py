"""Dynamic emergency calling (E911).

Seed, footnote 1 of the vendor table: "device supports dynamic emergency calling (E911) with SIP Gateway.
Compatible Cisco SIP IP phones support dynamic location discovery over LLDP only."

The tenant's location information service (LIS) is built from the inventory: every subnet, switch and switch port
a device is on gets an address of its own, and every line's number a static emergency address of its own, so the
address that reaches the PSAP says which rule chose it. Each device dials the test number 933 (answered by the
emulated PSAP on the PSTN side); the gateway's INVITE towards the PSAP is read from its trace, and the PIDF-LO
civic address named by its ``Geolocation`` header (RFC 6442) must be the one the LIS gives for the device's
network attributes: port, then switch, then subnet, for a model marked with footnote 1; LLDP only for Cisco, so a
Cisco phone without LLDP data gets its static address; a model without dynamic E911 always gets its static address
(``make_calls`` column: its dynamic E911 cell is not applicable, with the catalogue's reason). Audio flows both ways
with the PSAP; 911 from a signed-out device reaches the PSAP; the PSAP's callback to the number rings the device.
"""

from __future__ import annotations

import re

import pytest

from gateway.services.e911 import civic_from_pidf
from gateway.sip.multipart import parse_multipart, part_by_content_id
from harness.protocols import CallControl
from harness.pytest_plugin.fixtures import MediaParty
from test_suites._feature_helpers import (
    CONFIRMED,
    ENDED,
    gateway_call,
    hang_up_all,
    header,
    line_for,
    receive_from_party,
)

PSAP_TONE_HZ = 630.0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)[:60]


def lis_document(lab) -> dict:
    """An address per subnet, switch and port of the inventory and a static address per line number."""
    addresses: dict[str, dict] = {"company": {"id": "company", "country": "US", "A1": "WA", "A3": "Redmond",
                                              "RD": "Main Street", "HNO": "1", "NAM": "Company address",
                                              "PC": "98052"}}
    subnets, switches, ports, static = [], [], [], []

    def add(aid: str, loc: str) -> str:
        addresses.setdefault(aid, {"id": aid, "country": "US", "A1": "WA", "A3": "Redmond", "RD": "Lab Way",
                                   "HNO": str(len(addresses) + 1), "LOC": loc, "PC": "98052"})
        return aid

    for dev in lab.devices.values():
        net = dev.spec.entry.network
        if net is not None and net.subnet:
            subnets.append({"subnet": net.subnet, "address": add(_slug(f"subnet-{net.subnet}"),
                                                                 f"subnet {net.subnet}")})
        if net is not None and net.lldp is not None:
            switches.append({"chassis": net.lldp.chassis,
                             "address": add(_slug(f"switch-{net.lldp.chassis}"), f"switch {net.lldp.chassis}")})
            ports.append({"chassis": net.lldp.chassis, "port": net.lldp.port,
                          "address": add(_slug(f"port-{net.lldp.chassis}-{net.lldp.port}"),
                                         f"switch {net.lldp.chassis} port {net.lldp.port}")})
        for acc in dev.lines:
            static.append({"number": acc.number, "address": add(_slug(f"static-{acc.number}"),
                                                                f"static {acc.number}")})
    dedup = {(s["subnet"]): s for s in subnets}
    return {"addresses": list(addresses.values()), "subnets": list(dedup.values()),
            "switches": list({s["chassis"]: s for s in switches}.values()), "ports": ports, "static": static,
            "default_address": "company"}


def expected_location(device, number: str) -> tuple[str, str]:
    """(address id, method) the documented rules give for this device's emergency call from ``number``."""
    net = device.spec.entry.network
    lldp_only = device.profile.vendor_file.e911_location_discovery == "lldp-only"
    static = (_slug(f"static-{number}"), "static")
    if not device.profile.entry.e911 or net is None:
        return static
    if net.lldp is not None:
        return _slug(f"port-{net.lldp.chassis}-{net.lldp.port}"), "port"
    if lldp_only or not net.subnet:
        return static
    return _slug(f"subnet-{net.subnet}"), "subnet"


@pytest.fixture
def lis(lab):
    """The inventory's LIS, put in place through the control API (the same document every time)."""
    doc = lis_document(lab)
    lab.control.voiceapps.set_lis(doc)
    return {a["id"]: a for a in doc["addresses"]}


@pytest.fixture
def psap(lab, sipgw_settings, sipgw_reset):
    """The emulated PSAP that answers the test number 933 (a PSTN party of the media node)."""
    party = MediaParty(lab.control.media, "pstn", "+933", PSAP_TONE_HZ, number="+933", settings=sipgw_settings)
    party.configure("auto")
    return party


def psap_party(lab, number: str, sipgw_settings) -> MediaParty:
    party = MediaParty(lab.control.media, "pstn", "+" + number, PSAP_TONE_HZ, number="+" + number,
                       settings=sipgw_settings)
    party.configure("auto")
    return party


def _emergency_call(device, party: MediaParty, number: str, t: float, evidence):
    calls = device[CallControl]
    out = calls.dial(number, line=line_for(device))
    far = party.wait_incoming(state="confirmed", timeout=t)
    out = calls.wait_for_state(out.id, CONFIRMED, timeout=t)
    evidence.add_call(out)
    evidence.add_call(far)
    return out, far


def location_at_psap(control, psap_call: dict, t: float) -> tuple[dict, str]:
    """The civic address in the INVITE the PSAP received (from the gateway's trace), and that INVITE."""
    rec = gateway_call(control, psap_call["sip_call_id"], t)
    invites = [e for e in control.trace(call=rec["id"])
               if e["first_line"].startswith("INVITE ") and psap_call["sip_call_id"] in e["message"]]
    assert invites, f"the gateway's trace holds no INVITE of the PSAP's leg {psap_call['sip_call_id']}"
    msg = invites[0]["message"]
    geo = header(msg, "Geolocation")
    assert geo, f"the INVITE towards the PSAP has no Geolocation header (RFC 6442):\n{msg[:800]}"
    ctype = header(msg, "Content-Type") or ""
    assert ctype.lower().startswith("multipart/"), f"the INVITE towards the PSAP has a {ctype!r} body, not multipart"
    body = msg.split("\r\n\r\n", 1)[1].encode()
    part = part_by_content_id(parse_multipart(body, ctype), geo.strip("<>"))
    assert part is not None and part.media_type == "application/pidf+xml", (
        f"Geolocation {geo} names no application/pidf+xml part of the body")
    assert "application/sdp" in ctype or any(p.media_type == "application/sdp"
                                             for p in parse_multipart(body, ctype)), "the SDP part is missing"
    return civic_from_pidf(part.body), msg


def _check_location(lab, device, out, psap_call, t, lis, evidence) -> dict:
    control = lab.control
    number = device.lines[line_for(device)].number
    want_id, want_method = expected_location(device, number)
    civic, _msg = location_at_psap(control, psap_call, t)
    want = {k: v for k, v in lis[want_id].items() if k != "id" and v}
    evidence.add_bytes("pidf-civic", "pidf-civic.txt", repr(civic).encode())
    assert civic == want, (f"{device.id}: the PSAP received {civic}, expected {want_id} ({want_method}) "
                           f"for network {device.spec.entry.network}")
    seen = control.voiceapps.wait_e911_call(out.sip_call_id, timeout=t) if out.sip_call_id else \
        control.voiceapps.e911_calls()[-1]
    assert seen["method"] == want_method, f"the gateway resolved by {seen}, expected {want_method}"
    return seen


@pytest.mark.feature("dynamic_e911")
def test_emergency_call_carries_dynamic_location(device, lab, lis, psap, two_way_audio, evidence, sipgw_settings):
    """933 from a dynamic-E911 model: the PSAP gets PIDF-LO with the address of the device's switch port or
    subnet (LLDP only for Cisco: none gives the static address); audio both ways; the device hangs up."""
    t = sipgw_settings.deadline(5)
    out, far = _emergency_call(device, psap, "933", t, evidence)
    _check_location(lab, device, out, far, t, lis, evidence)
    audio = two_way_audio.with_party(device, out.id, psap, far)
    assert audio.passed, audio.reason
    device[CallControl].hangup(out.id)
    psap.wait_state(far, "disconnected", timeout=t)


@pytest.mark.feature("make_calls")
def test_emergency_call_static_address_fallback(device, lab, lis, psap, evidence, sipgw_settings):
    """933 from any device reaches the PSAP with the address the documented rules give: a model without dynamic
    E911 (or without network data, or a Cisco phone without LLDP) sends its number's static address."""
    t = sipgw_settings.deadline(5)
    out, far = _emergency_call(device, psap, "933", t, evidence)
    record = _check_location(lab, device, out, far, t, lis, evidence)
    if not device.profile.entry.e911:
        assert record["dynamic"] is False and "footnote 1" in record["reason"], record
    device[CallControl].hangup(out.id)
    psap.wait_state(far, "disconnected", timeout=t)


@pytest.mark.feature("dynamic_e911")
def test_911_from_signed_out_device_and_psap_callback(device, lab, lis, evidence, sipgw_settings):
    """A signed-out device still reaches the PSAP at 911 with its location; the PSAP's callback to the user's
    number rings the device, which answers (signed in again)."""
    t = sipgw_settings.deadline(5)
    control = lab.control
    psap911 = psap_party(lab, "911", sipgw_settings)
    usernames = {acc.username for acc in device.lines}
    mine = [d for d in control.devices() if d.get("username") in usernames]
    record = mine[0] if mine else None
    if record is not None:
        control.update_device(record["key"], pair_state="unpaired")
    try:
        out, far = _emergency_call(device, psap911, "911", t, evidence)
        _check_location(lab, device, out, far, t, lis, evidence)
        psap911.hangup(far)
        device[CallControl].wait_for_state(out.id, ENDED, timeout=t)
    finally:
        if record is not None:
            control.update_device(record["key"], pair_state=record["pair_state"])
    if line_for(device) != 0:
        hang_up_all(device)
        return
    incoming, back = receive_from_party(device, psap911, t, evidence=evidence)
    device[CallControl].hangup(incoming.id)
    psap911.wait_state(back, "disconnected", timeout=t)

