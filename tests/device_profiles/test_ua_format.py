"""format_user_agent round trip: every catalogue model's User-Agent is read back as that model, firmware, MAC."""

from __future__ import annotations

import pytest

from device_profiles.catalogue import default_catalogue
from device_profiles.ua_format import (
    NoUserAgent,
    UserAgentFormatError,
    default_mac,
    format_user_agent,
)
from device_profiles.user_agent import parse_user_agent
from device_profiles.verdict import Verdict, check_user_agent, verdict_for_profile

CAT = default_catalogue()
MODELS = list(CAT)
NO_SIP_STACK = {("Ascom", "TDM Base Station")}

#: A firmware string in each scheme's form for models whose table row lists none.
FALLBACK_FIRMWARE = {"poly": "8.0.2.0020", "generic": "2.1.0"}


def firmware_for(p) -> str:
    fw = p.entry.min_firmware or p.entry.approved_firmware or FALLBACK_FIRMWARE.get(p.firmware_scheme)
    assert fw, f"no firmware to try for {p.vendor} {p.model} (scheme {p.firmware_scheme})"
    if p.vendor == "Yealink":
        return f"66.{fw}.0.15"  # the table's "83" is the series: x.83.y.z
    if p.vendor == "AudioCodes" and fw.startswith("3."):
        return "2.2.8.61"  # SIP Gateway runs the 2.x SIP line
    return fw


def test_every_catalogue_model_is_covered():
    assert len(MODELS) > 100


@pytest.mark.parametrize("profile", MODELS, ids=[f"{p.vendor}-{p.model}" for p in MODELS])
def test_round_trip(profile):
    fw = firmware_for(profile)
    mac = default_mac(profile.vendor, profile.model)
    if (profile.vendor, profile.model) in NO_SIP_STACK:
        with pytest.raises(NoUserAgent, match="no IP stack"):
            format_user_agent(profile, fw, mac)
        return
    ua = format_user_agent(profile, fw, mac)
    got = parse_user_agent(ua, source="sip")
    assert got is not None, f"{ua!r} is not recognised"
    assert (got.vendor, got.model) == (profile.vendor, profile.model), ua
    assert got.firmware == fw, ua
    if got.mac is not None:
        assert got.mac == mac, ua
    # The gateway's gating sees the same verdict as the declared firmware gets.
    assert check_user_agent(ua).verdict == verdict_for_profile(profile, fw).verdict, ua


@pytest.mark.parametrize("vendor,model", [("Cisco", "8865"), ("Poly", "VVX 450"), ("Yealink", "T46S"),
                                          ("AudioCodes", "445HD"), ("Gigaset", "N870 IP PRO")])
def test_mac_is_carried_where_the_vendor_sends_one(vendor, model):
    p = CAT.find(model, vendor)
    mac = "00:04:F2:8E:5A:79"
    ua = format_user_agent(p, firmware_for(p), mac)
    assert parse_user_agent(ua).mac == "0004f28e5a79"


def test_real_formats():
    assert format_user_agent("VVX 450", "5.9.5.0614", "0004f28e5a79") == "PolycomVVX-VVX_450-UA/5.9.5.0614_0004f28e5a79"
    assert format_user_agent("T57W", "96.86.5.1", "805ec012dc69") == "Yealink SIP-T57W 96.86.5.1 80:5e:c0:12:dc:69"
    assert format_user_agent("445HD", "2.2.8.61", "00908F602AAC") == "AUDC-IPPhone/2.2.8.61 (445HD-Rev0; 00908F602AAC)"
    assert format_user_agent("445HD", "3.4.6.604") == "AUDC/3.4.6.604 AUDC-IPPhone-445HD_UC_3.4.6.604/1"
    assert format_user_agent("8832", "12.0.1MPP", "00562b043615") == "Cisco-CP-8832-3PCC/12.0.1MPP (00562b043615)"


def test_below_minimum_is_seen_by_the_gateway():
    ua = format_user_agent("7841", "11.0.1MPP", vendor="Cisco")
    assert check_user_agent(ua).verdict is Verdict.BELOW_MINIMUM


@pytest.mark.parametrize("args,match", [
    (("VVX 9999", "5.9.5"), "not in the catalogue"),
    (("VVX 450", None), "firmware version is needed"),
    (("VVX 450", "5.9 .5"), "one token"),
    (("VVX 450", "5.9.5", "00:04:f2"), "not 12 hex digits"),
])
def test_bad_input_says_what_is_wrong(args, match):
    with pytest.raises(UserAgentFormatError, match=match):
        format_user_agent(*args)


def test_default_mac_is_stable_and_uses_the_vendor_oui():
    assert default_mac("Poly", "x") == default_mac("Poly", "x")
    assert default_mac("Poly", "x").startswith("0004f2")
    assert default_mac("Poly", "x") != default_mac("Poly", "y")
