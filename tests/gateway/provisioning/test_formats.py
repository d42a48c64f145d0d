"""Per-vendor configuration formats: every format renders to a well-formed file using only its vendor's keys,
lab mode adds the control-path settings, and broken or unknown-key files are refused with the problem named."""

from __future__ import annotations

import pytest

from gateway.provisioning import formats as f

VALUES = dict(sip_host="127.0.0.1", sip_port=5061, transport="tls", sip_user="onb-805ec012dc69",
              sip_password="s3cret&<x>", display_name="Avery Chen", number="+14255550101",
              state_url="http://127.0.0.1:8081/s/tok/805ec012dc69.cfg", lang="de",
              signin_url="http://127.0.0.1:8081/signin", state="onboarding")


@pytest.mark.parametrize("fmt", f.FORMATS, ids=lambda x: x.name)
def test_every_format_renders_valid_and_carries_the_account(fmt):
    seen = {}
    for lab in (False, True):
        text = f.render(fmt, lab_mode=lab, **VALUES)
        parsed = f.validate(fmt, text)
        assert "s3cret&<x>" in parsed.values()  # escaped where the syntax needs it, read back intact
        flat = " ".join(parsed.values())
        assert "onb-805ec012dc69" in flat and "/s/tok/" in flat and "de" in parsed.values()
        seen[lab] = set(parsed)
    assert seen[True] == fmt.keys and seen[False] < seen[True]  # lab mode adds the control-path settings


@pytest.mark.parametrize("vendor,kind,name", [
    ("Cisco", "desk_phone", "cisco-mpp"), ("Cisco", "ata", "cisco-ata"), ("Poly", "ata", "poly"),
    ("AudioCodes", "ata", "audiocodes-ata"), ("AudioCodes", "desk_phone", "audiocodes"),
    ("Yealink", "dect_base", "yealink"), ("Algo", "speaker", "algo"), ("Tango Extend", "vowifi_handset", None),
])
def test_format_for_vendor_and_kind(vendor, kind, name):
    fmt = f.format_for(vendor, kind)
    assert (fmt.name if fmt else None) == name


def test_file_names_per_vendor():
    mac = "805ec012dc69"
    assert f.format_for("Cisco", "desk_phone").match_file("CP-8832-3PCC.xml")
    assert f.format_for("Cisco", "ata").match_file("ATA191.xml") and f.format_for("Cisco", "ata").match_file(
        f"{mac}.cfg")
    assert f.format_for("AudioCodes", "ata").match_file(f"{mac}.ini").group("mac") == mac
    assert f.format_for("Algo", "speaker").match_file(f"algop{mac}.conf")
    assert not f.format_for("Yealink", "desk_phone").match_file(f"{mac}.ini")
    assert f.expected_files(f.format_for("AudioCodes", "ata"), mac) == [f"{mac}.ini"]


def test_malformed_and_unknown_keys_are_named():
    yealink = f.format_for("Yealink", "desk_phone")
    with pytest.raises(f.ConfigInvalid, match=r"account\.1\.bogus"):
        f.validate(yealink, "account.1.user_name = x\naccount.1.bogus = 1\n")
    with pytest.raises(f.ConfigInvalid, match="line 2"):
        f.validate(yealink, "account.1.user_name = x\nno equals sign here\n")
    with pytest.raises(f.ConfigInvalid, match="appears twice"):
        f.validate(yealink, "account.1.user_name = x\naccount.1.user_name = y\n")
    with pytest.raises(f.ConfigInvalid, match="not well-formed XML at line 1"):
        f.validate(f.format_for("Poly", "desk_phone"), "<polycomConfig><reg></polycomConfig>")
    with pytest.raises(f.ConfigInvalid, match="no closing"):
        f.validate(f.format_for("AudioCodes", "ata"), "[SIP Params\nProxyIP = 'x'\n")
