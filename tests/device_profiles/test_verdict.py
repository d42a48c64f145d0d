"""Firmware verdicts name the model, the version found and the version required, for every vendor."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_profiles.verdict import Verdict, check_firmware, check_user_agent


@pytest.mark.parametrize("model,version,vendor,expected", [
    # Cisco MPP: minimum 11.1.1MPP (8832: 11.3.5MPP), approved 12-0-1MPP
    ("8832", "12-0-1MPP", None, Verdict.SUPPORTED),
    ("8832", "12.0.1MPP", None, Verdict.SUPPORTED),
    ("8832", "11.3.5MPP", None, Verdict.SUPPORTED),
    ("8832", "11.3.4MPP", None, Verdict.BELOW_MINIMUM),
    ("6821", "12-0-3MPP", None, Verdict.NEWER_THAN_APPROVED),
    ("7841", "11.0.1MPP", None, Verdict.BELOW_MINIMUM),
    ("ATA191-MPP", "11-2-2MPP0101-013", None, Verdict.SUPPORTED),
    ("ATA191-MPP", "11.2.1MPP", None, Verdict.BELOW_MINIMUM),
    # Poly: 5.9.5 met by any 5.9.5.x build; no approved version
    ("VVX 450", "5.9.5.0614", "Poly", Verdict.SUPPORTED),
    ("vvx450", "5.9.5", None, Verdict.SUPPORTED),
    ("VVX 450", "5.9.4.3247", None, Verdict.BELOW_MINIMUM),
    ("VVX 450", "6.4.3.1234", None, Verdict.SUPPORTED),
    ("Trio 8800", "7.2.2.1094", None, Verdict.SUPPORTED),  # no minimum in the table
    # Yealink: series 83 or later
    ("T46S", "66.86.0.15", None, Verdict.SUPPORTED),
    ("T46S", "66.83.0.35", None, Verdict.SUPPORTED),
    ("T46S", "66.82.0.20", None, Verdict.BELOW_MINIMUM),
    # AudioCodes: 405 on the SIP line; 4xxHD minimum on the SfB line
    ("405", "2.2.8.61", "AudioCodes", Verdict.SUPPORTED),
    ("405", "2.2.6.12", "AudioCodes", Verdict.BELOW_MINIMUM),
    ("440HD", "2.2.8.61", None, Verdict.SUPPORTED),
    ("440HD", "UC_3.4.6.604", None, Verdict.WRONG_FAMILY),
    ("440HD", "UC_3.0.1.5", None, Verdict.BELOW_MINIMUM),
    ("MP114-FXS", "6.60A.367.001", None, Verdict.SUPPORTED),
    ("MP114-FXS", "6.60A.366.004", None, Verdict.BELOW_MINIMUM),
    ("MP1288-FXS", "7.40A.500.001", None, Verdict.NEWER_THAN_APPROVED),
    # Spectralink
    ("7742", "PCS22B", None, Verdict.SUPPORTED),
    ("7742", "PCS22Ab", None, Verdict.BELOW_MINIMUM),
    ("S35", "PCS24A", None, Verdict.NEWER_THAN_APPROVED),
    ("IP-DECT Server 400", "PCS22Ab", None, Verdict.SUPPORTED),
    # Ascom
    ("d63", "3.0.8", None, Verdict.SUPPORTED),
    ("d63", "2.11.3", None, Verdict.BELOW_MINIMUM),
    ("d63", "3.1.0", None, Verdict.NEWER_THAN_APPROVED),
    ("TDM Base Station", "R4A", None, Verdict.SUPPORTED),
    ("TDM Base Station", "R3M", None, Verdict.BELOW_MINIMUM),
    # Gigaset
    ("N870 IP PRO", "2.52.0", None, Verdict.SUPPORTED),
    ("N870 IP PRO", "2.51.0", None, Verdict.BELOW_MINIMUM),
    # Algo
    ("8180g2", "5.3", None, Verdict.SUPPORTED),
    ("8180g2", "5.2.9", None, Verdict.BELOW_MINIMUM),
    ("8301", "5.3.4", None, Verdict.NEWER_THAN_APPROVED),
])
def test_verdicts(model, version, vendor, expected):
    v = check_firmware(model, version, vendor=vendor)
    assert v.verdict == expected, v.reason
    assert v.model and v.model.replace(" ", "").lower() in v.reason.replace(" ", "").lower()
    assert version in v.reason


def test_below_minimum_reason_names_the_required_version():
    v = check_firmware("7841", "11.0.1MPP")
    assert v.reason.startswith("Cisco 7841 runs 11.0.1MPP, below the minimum 11.1.1MPP")
    assert not v.acceptable


def test_cisco_enterprise_firmware_is_wrong_family():
    v = check_firmware("8851", "12.1.1", family="enterprise")
    assert v.verdict == Verdict.WRONG_FAMILY
    assert "enterprise" in v.reason and "multiplatform" in v.reason and "conversion" in v.reason


def test_audiocodes_sfb_line_is_wrong_family_with_its_reason():
    v = check_firmware("C450HD", "3.4.6.604", family="sfb")
    assert v.verdict == Verdict.WRONG_FAMILY
    assert "Skype for Business" in v.reason and "2.x SIP" in v.reason


def test_unknown_model_lists_closest():
    v = check_firmware("VVX 455", "5.9.5")
    assert v.verdict == Verdict.UNKNOWN_MODEL
    assert "Poly VVX 450" in v.closest and "closest" in v.reason


def test_unknown_vendor_and_listed_without_models():
    assert "not in the vendor table" in check_firmware("X1", "1.0", vendor="Nokia").reason
    v = check_firmware("8088", "1.0", vendor="ALE")
    assert v.verdict == Verdict.UNKNOWN_MODEL and "without models" in v.reason


@pytest.mark.parametrize("version", ["banana", "", "12.0.x", "...", "5..9"])
def test_unparseable_is_a_verdict_not_an_exception(version):
    v = check_firmware("VVX 450", version)
    assert v.verdict == Verdict.UNPARSEABLE and v.reason


@given(st.text(max_size=60), st.text(max_size=40))
def test_never_raises(model, version):
    v = check_firmware(model, version)
    assert isinstance(v.verdict, Verdict) and v.reason


@given(st.text(max_size=300))
def test_user_agent_check_never_raises(text):
    v = check_user_agent(text)
    assert isinstance(v.verdict, Verdict) and v.reason
