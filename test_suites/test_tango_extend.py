"""Tango Extend eSIM endpoints: the seed's supported features and each documented limitation.

Seed (notes below the vendor table): supported are sign-in/out using the Tango Extend Teams app with Teams policy
sync, make/receive calls with hold/resume and DTMF, dial-in to meeting, Request to Join, voicemail and MWI, Teams
DND and call forwarding (the other suites run those on the eSIM like on any device). Not supported: redundant
signed-out entries after sign-out/sign-in, no remote sign-in from the admin centre, inbound calls prefer the Teams
mobile client, no transfer from the mobile dialler menu; emergency calls use the mobile network and the Teams
number, Teams is not notified, returned calls to the Teams number reach the eSIM.

Each limitation has a test here, run on the inventory's eSIM endpoints (any other device: not applicable, this
models an eSIM limitation). Where the seed says a feature is not supported, the matrix cell is not applicable with
the seed's words (``device_profiles/capabilities.yaml``); the other limitations are observed: the admin list read
back, who answered in the gateway's call record, the gateway's trace holding no emergency INVITE, the callback
ringing the eSIM.
"""

from __future__ import annotations

import pytest

from device_profiles.capabilities import applicability
from device_profiles.catalogue import default_catalogue
from harness.emulated.tango import TangoEsim, is_tango, limitations, supported_features
from harness.protocols import CallControl, NotApplicable
from harness.pytest_plugin.fixtures import MediaParty
from test_suites._feature_helpers import CONFIRMED, ENDED, gateway_call, receive_from_party, wait_until

#: Seed feature ids the seed's supported list covers ("Make/receive calls with hold/resume and DTMF", ...).
SEED_SUPPORTED = {"make_calls", "receive_calls", "hold_resume", "dtmf", "sign_in_out", "teams_meetings",
                  "voicemail", "message_waiting", "dnd", "local_call_forwarding", "offboard_stale_devices"}


def _tango(device, lab) -> TangoEsim:
    if not is_tango(device):
        raise NotApplicable(f"models a Tango Extend eSIM limitation; {device.id} is not a Tango Extend eSIM",
                            device_id=device.id)
    return TangoEsim(device, lab.control)


@pytest.mark.sipgw_infrastructure
def test_matrix_row_follows_the_seed():
    """The eSIM's applicable features are exactly the seed's supported list; every other one is not applicable
    with the seed's own words."""
    cat = default_catalogue()
    profile = cat.find("eSIM", "Tango Extend")
    assert supported_features()[0].startswith("Sign-in/out using Tango Extend Teams App")
    applicable = {f for f in cat.feature_ids() if applicability(profile, f)}
    assert applicable == SEED_SUPPORTED, sorted(applicable ^ SEED_SUPPORTED)
    assert not applicability(profile, "teams_meetings.dial_out")
    assert not applicability(profile, "sign_in_out.remote")
    seed_text = " ".join(limitations())
    transfer = applicability(profile, "call_transfer").reason
    assert "mobile dialler menu" in transfer and "mobile dialler menu" in seed_text
    assert "Remote Sign-in from TAC" in applicability(profile, "sign_in_out.remote").reason


@pytest.mark.feature("sign_in_out")
def test_app_sign_out_sign_in_leaves_a_redundant_signed_out_entry(device, lab, evidence, sipgw_settings):
    """Sign-out and sign-in through the Tango Extend Teams app: the admin list keeps the old entry, signed out, next
    to the new signed-in one; calls still reach the eSIM."""
    esim = _tango(device, lab)
    user = device.lines[0].username
    before = lab.control.devices(username=user)
    old, new = esim.app_sign_out_sign_in()
    listed = {d["key"]: d for d in lab.control.devices()}
    try:
        assert listed[old["key"]]["pair_state"] == "unpaired", f"the old entry reads {listed[old['key']]}"
        assert listed[new["key"]]["pair_state"] == "paired" and listed[new["key"]]["username"] == user
        mine = [d for d in listed.values() if d.get("model") == "eSIM" or d["key"] in (old["key"], new["key"])]
        assert len(mine) >= len(before) + 1, f"no redundant entry in the admin list: {mine}"
        evidence.add_bytes("admin-list", "admin-list.txt", repr(mine).encode())
    finally:
        lab.control.update_device(old["key"], pair_state="paired",
                                  username=user)
        lab.control.delete_device(new["key"])


@pytest.mark.feature("sign_in_out")
def test_remote_sign_in_from_the_admin_centre_is_not_supported(device, lab):
    """Remote sign-in from the admin centre: not applicable to the eSIM, with the seed's words."""
    _tango(device, lab)
    device.require("sign_in_out.remote")
    raise AssertionError("the catalogue marks remote sign-in as supported by Tango Extend; the seed says it is not")


@pytest.mark.feature("call_transfer")
def test_no_transfer_from_the_mobile_dialler_menu(device, lab):
    """Transfer from the mobile dialler menu: not applicable to the eSIM, with the seed's words."""
    _tango(device, lab)
    device.require("call_transfer")
    raise AssertionError("the catalogue marks dialler-menu transfer as supported by Tango Extend; the seed says not")


@pytest.mark.feature("receive_calls")
def test_inbound_calls_prefer_the_teams_mobile_client(device, lab, pstn, evidence, sipgw_settings):
    """The user has both the eSIM and the Teams mobile client: an inbound call rings both (forked by the gateway)
    and the Teams mobile client takes it; the eSIM's call ends without being answered."""
    _tango(device, lab)
    t = sipgw_settings.deadline(5)
    control = lab.control
    user = device.lines[0].username
    control.update_user(user, teams_client=True)
    try:
        mobile = MediaParty(control.media, "teams", user, 2300.0, settings=sipgw_settings)
        mobile.configure("auto", answer_delay_ms=300)  # it rings, then answers: the eSIM rang meanwhile
        origin = pstn.call(device.number)
        rang = device[CallControl].wait_for_incoming(timeout=t)
        origin = pstn.wait_state(origin, "confirmed", timeout=t)
        evidence.add_call(origin)
        rec = gateway_call(control, origin["sip_call_id"], t)
        assert "Teams client" in (rec.get("answered_by") or ""), f"answered by {rec.get('answered_by')}"
        ended = device[CallControl].wait_for_state(rang.id, ENDED, timeout=t)
        assert ended.state == ENDED, f"the eSIM still sees the call as {ended.state}"
        pstn.hangup(origin)
    finally:
        control.update_user(user, teams_client=False)


@pytest.mark.feature("make_calls")
def test_emergency_call_uses_the_mobile_network_and_callback_reaches_the_esim(device, lab, evidence,
                                                                              sipgw_settings):
    """911 from the eSIM goes over the mobile network with the Teams number: the gateway's trace holds no INVITE
    for it; the PSAP's call back to the Teams number rings the eSIM, which answers."""
    esim = _tango(device, lab)
    t = sipgw_settings.deadline(5)
    control = lab.control
    mark = control.trace(limit=1)
    after = mark[-1]["seq"] if mark else 0
    call = esim.dial_emergency("911")
    assert call.caller_id == device.number and call.network == "mobile"
    seen = [e for e in control.trace(after_seq=after) if e["first_line"].startswith("INVITE sip:911")
            or e["first_line"].startswith("INVITE sip:+911")]
    assert not seen, f"the gateway saw the eSIM's emergency call: {[e['first_line'] for e in seen]}"
    assert not [c for c in control.voiceapps.e911_calls() if c["t"] >= call.t]
    psap = MediaParty(control.media, "pstn", "+911", 630.0, number="+911", settings=sipgw_settings)
    psap.configure("auto")
    incoming, back = receive_from_party(device, psap, t, evidence=evidence)
    assert incoming.state == CONFIRMED
    device[CallControl].hangup(incoming.id)
    wait_until(lambda: psap.refresh(back)["state"] == "disconnected", timeout=t, what="the PSAP's call ending")
