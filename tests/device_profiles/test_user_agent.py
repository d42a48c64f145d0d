"""User-Agent rule table: real vendor formats, table invariants, and robustness against hostile input."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device_profiles import user_agent as ua_module
from device_profiles.ua_rules import CONFIDENCES, SOURCES, VENDORS, UARule
from device_profiles.user_agent import (
    MAX_INPUT_CHARS,
    RULES,
    RuleRow,
    UAMatch,
    clean_user_agent,
    describe_rules,
    match_all,
    normalise_mac,
    parse_user_agent,
)

# (header value, source, vendor, model, firmware, family, mac)
# fmt: off
REALISTIC = [
    # Cisco MPP phones: SIP and HTTP carry the same string; the MAC follows in parentheses or after "_".
    ("Cisco-CP-7832-3PCC/11.0.1 (00562b043615)", "sip", "Cisco", "7832", "11.0.1", "cisco-mpp", "00562b043615"),
    (
        "Cisco-CP-8865-3PCC/12.0.3_dcf719f39350_d4e6994b-60bc-4fba-a490-fe5f8e74ceea_dcf719f3-9350-4fba-a490-"
        "fe5f8e74ceea",
        "sip", "Cisco", "8865", "12.0.3", "cisco-mpp", "dcf719f39350",
    ),
    ("Cisco-CP-6821-3PCC/12.0.1 (5c5ac7aa0f21)", "http", "Cisco", "6821", "12.0.1", "cisco-mpp", "5c5ac7aa0f21"),
    ("Cisco-CP-7841-3PCC/11.3.7_MPP_0001", "sip", "Cisco", "7841", "11.3.7", "cisco-mpp", None),
    ("Cisco-CP-8832-3PCC/11.3.5 (00562b0a13f1)", "sip", "Cisco", "8832", "11.3.5", "cisco-mpp", "00562b0a13f1"),
    # Cisco phones still on enterprise (CUCM) firmware: no "-3PCC".
    ("Cisco-CP8851/12.1.1", "sip", "Cisco", "8851", "12.1.1", "cisco-enterprise", None),
    ("Cisco-CP8865/14.2.1", "http", "Cisco", "8865", "14.2.1", "cisco-enterprise", None),
    # Cisco ATAs: the SIP form and the provisioning form differ; the HTTP one carries a serial, not a MAC.
    ("Cisco-ATA191-MPP/11-1-0MSR3-9", "sip", "Cisco", "ATA191-MPP", "11-1-0MSR3-9", "cisco-mpp", None),
    ("Cisco-ATA192-MPP/11-2-2MPP0101-013", "sip", "Cisco", "ATA192-MPP", "11-2-2MPP0101-013", "cisco-mpp", None),
    ("Cisco/ATA191-MPP-11-1-0-MSR4 (FCH2443D9R4)", "http", "Cisco", "ATA191-MPP", "11-1-0-MSR4", "cisco-mpp", None),
    # Poly UC Software: VVX, Trio, Edge E.
    ("PolycomVVX-VVX_400-UA/5.9.5.0614_0004f28e5a79", "sip", "Poly", "VVX 400", "5.9.5.0614", "poly-ucs",
     "0004f28e5a79"),
    ("Polycom/5.5.0.20556 PolycomVVX-VVX_410-UA/5.5.0.20556", "sip", "Poly", "VVX 410", "5.5.0.20556", "poly-ucs",
     None),
    ("PolycomVVX-VVX_150-UA/6.4.1.2280_482567164887", "sip", "Poly", "VVX 150", "6.4.1.2280", "poly-ucs",
     "482567164887"),
    ("FileTransport PolycomVVX-VVX_500-UA/5.9.6.2327 Type/Application", "http", "Poly", "VVX 500", "5.9.6.2327",
     "poly-ucs", None),
    ("PolycomRealPresenceTrio-Trio_8500-UA/5.9.2.7727", "sip", "Poly", "Trio 8500", "5.9.2.7727", "poly-ucs", None),
    ("FileTransport PolycomRealPresenceTrio-Trio_8800-UA/7.2.2.1094 (SN:64167f3a2b1c) Type/Application", "http",
     "Poly", "Trio 8800", "7.2.2.1094", "poly-ucs", "64167f3a2b1c"),
    ("PolyEdge-Edge_E100-UA/8.0.0.13670_48256712b942", "sip", "Poly", "Edge E100", "8.0.0.13670", "poly-ucs",
     "48256712b942"),
    ("FileTransport PolyEdge-Edge_E450-UA/8.0.0.15602 Type/Application", "http", "Poly", "Edge E450",
     "8.0.0.15602", "poly-ucs", None),
    # Poly updater stage: the version is the updater's, so no firmware is claimed.
    ("FileTransport PolycomVVX-VVX_400-UA/5.0.3.1667 Type/Updater", "http", "Poly", "VVX 400", None, "poly-ucs",
     None),
    # Poly Rove (inferred) and OBi.
    ("Poly Rove B4 8.0.5.0002", "sip", "Poly", "Rove B4", "8.0.5.0002", "poly-rove", None),
    ("PolyRove-Rove_30-UA/8.0.5.0002", "http", "Poly", "Rove 30", "8.0.5.0002", "poly-rove", None),
    ("OBIHAI/OBi300-3.2.2.5921", "sip", "Poly", "OBi 300", "3.2.2.5921", "obi", None),
    ("OBIHAI/OBi302-3.2.2.5921", "http", "Poly", "OBi 302", "3.2.2.5921", "obi", None),
    # Yealink desk phones and DECT bases; the provisioning request adds the MAC.
    ("Yealink SIP-T46S 66.86.0.15", "sip", "Yealink", "T46S", "66.86.0.15", "yealink", None),
    ("Yealink SIP-T57W 96.86.5.1 80:5e:c0:12:dc:69", "sip", "Yealink", "T57W", "96.86.5.1", "yealink",
     "805ec012dc69"),
    ("Yealink SIP-T46S 66.86.0.15 00:15:65:4c:3b:b0", "http", "Yealink", "T46S", "66.86.0.15", "yealink",
     "0015654c3bb0"),
    ("Yealink SIP-T21P_E2 52.83.0.35", "sip", "Yealink", "T21P_E2", "52.83.0.35", "yealink", None),
    ("Yealink SIP-T30P 124.86.0.40 24:9a:d8:41:6c:5c", "http", "Yealink", "T30P", "124.86.0.40", "yealink",
     "249ad8416c5c"),
    ("Yealink SIP-T53 96.86.5.1", "sip", "Yealink", "T53", "96.86.5.1", "yealink", None),
    ("Yealink W75DM 108.83.0.40", "sip", "Yealink", "W75DM", "108.83.0.40", "yealink-dect", None),
    # AudioCodes: 2.x SIP line, 3.x Skype for Business line, MediaPack gateways.
    ("AUDC-IPPhone/2.2.8.61 (440HDG-Rev0; 00908F602AAC)", "http", "AudioCodes", "440HDG", "2.2.8.61",
     "audiocodes-sip", "00908f602aac"),
    ("AUDC-IPPhone/2.2.16.681 (445HDG-Rev1; 00908F9D8992)", "sip", "AudioCodes", "445HDG", "2.2.16.681",
     "audiocodes-sip", "00908f9d8992"),
    ("AUDC-IPPhone/2.2.8.61 (405-Rev0; 00908F11A2B3)", "sip", "AudioCodes", "405", "2.2.8.61", "audiocodes-sip",
     "00908f11a2b3"),
    ("AUDC/3.4.6.604 AUDC-IPPhone-C450HD_UC_3.4.6.604/1", "http", "AudioCodes", "C450HD", "3.4.6.604",
     "audiocodes-sfb", None),
    ("AUDC-IPPhone-RX50_UC_3.4.8.808/1.0.0000.0", "sip", "AudioCodes", "RX50", "3.4.8.808", "audiocodes-sfb", None),
    ("Audiocodes-Sip-Gateway-MP-112 FXS/v.6.60A.367.001", "sip", "AudioCodes", "MP112", "6.60A.367.001",
     "audiocodes-mediapack", None),
    ("Audiocodes-Sip-Gateway-MP-114 FXS/v.6.60A.367.001", "sip", "AudioCodes", "MP114-FXS", "6.60A.367.001",
     "audiocodes-mediapack", None),
    ("Audiocodes-Sip-Gateway-MP-124/v.6.60A.367.001", "sip", "AudioCodes", "MP124-FXS", "6.60A.367.001",
     "audiocodes-mediapack", None),
    ("Audiocodes-Sip-Gateway-MP-1288/v.7.40A.400.063", "sip", "AudioCodes", "MP1288-FXS", "7.40A.400.063",
     "audiocodes-mediapack", None),
    ("Audiocodes-Sip-Gateway-MP-504/v.7.26A.356.075", "sip", "AudioCodes", "MP504", "7.26A.356.075",
     "audiocodes-mediapack", None),
    # Spectralink IP-DECT (inferred).
    ("Spectralink IP-DECT Server 400 PCS22Ab", "sip", "Spectralink", "IP-DECT Server 400", "PCS22Ab",
     "spectralink-ipdect", None),
    ("Spectralink IP-DECT Server 6500/PCS22Ab", "http", "Spectralink", "IP-DECT Server 6500", "PCS22Ab",
     "spectralink-ipdect", None),
    ("Spectralink Virtual IP-DECT Server One PCS22Ab", "sip", "Spectralink", "Virtual IP-DECT Server One",
     "PCS22Ab", "spectralink-ipdect", None),
    ("Spectralink IP-DECT Base Station PCS22Ab", "http", "Spectralink", "IP-DECT Base Station", "PCS22Ab",
     "spectralink-ipdect", None),
    ("Spectralink 7742 PCS22B", "sip", "Spectralink", "7742", "PCS22B", "spectralink-ipdect", None),
    ("Spectralink S35 PCS23Ca", "sip", "Spectralink", "S35", "PCS23Ca", "spectralink-ipdect", None),
    # Ascom (inferred).
    ("Ascom d63/3.0.8", "sip", "Ascom", "d63", "3.0.8", "ascom-ipdect", None),
    ("Ascom d81 4.17.3", "sip", "Ascom", "d81", "4.17.3", "ascom-ipdect", None),
    ("Ascom i63/5.0.1", "sip", "Ascom", "i63", "5.0.1", "ascom-vowifi", None),
    ("Ascom Myco 3 DECT/3.4.1", "sip", "Ascom", "Myco 3 DECT", "3.4.1", "ascom-myco", None),
    ("Ascom IPBS2/11.8.8", "http", "Ascom", "IPBS", "11.8.8", "ascom-ipdect", None),
    ("Ascom IPBL/11.9.11", "sip", "Ascom", "IPBL", "11.9.11", "ascom-ipdect", None),
    ("Ascom IPVM 11.8.8", "sip", "Ascom", "IPVM", "11.8.8", "ascom-ipdect", None),
    # Gigaset N-series IP PRO.
    ("Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605", "http", "Gigaset", "N870 IP PRO",
     "83.V2.11.0+build.a546b91", "gigaset-pro", "7c2f80e0d605"),
    ("Gigaset N870E IP PRO/83.V2.52.0+build.1f0c3d2;7C2F80E1A2B3", "sip", "Gigaset", "N870E IP PRO",
     "83.V2.52.0+build.1f0c3d2", "gigaset-pro", "7c2f80e1a2b3"),
    ("Gigaset N610 IP PRO/83.V2.52.0+build.1f0c3d2", "sip", "Gigaset", "N610 IP PRO", "83.V2.52.0+build.1f0c3d2",
     "gigaset-pro", None),
    ("Gigaset N670 IP PRO/83.V2.52.0+build.1f0c3d2;7C2F80112233", "http", "Gigaset", "N670 IP PRO",
     "83.V2.52.0+build.1f0c3d2", "gigaset-pro", "7c2f80112233"),
    ("Gigaset N870 VI PRO/83.V2.52.0+build.1f0c3d2;7C2F80445566", "sip", "Gigaset", "N870 VI PRO",
     "83.V2.52.0+build.1f0c3d2", "gigaset-pro", "7c2f80445566"),
    # Algo speakers, intercoms, paging adapters, display speakers.
    ("Algo-8201/5.2", "sip", "Algo", "8201", "5.2", "algo", None),
    ("Algo-8180G2/5.3", "sip", "Algo", "8180g2", "5.3", "algo", None),
    ("Algo-8301/5.3", "http", "Algo", "8301", "5.3", "algo", None),
    ("Algo-8410/5.3", "sip", "Algo", "8410", "5.3", "algo", None),
    # Alcatel-Lucent Enterprise.
    ("ALE 8028s-GE 1.51.52.2204 487a55023075", "http", "Alcatel-Lucent Enterprise", "8028s-GE", "1.51.52.2204",
     "ale", "487a55023075"),
    ("ALE M7 2.14.03.000.2345", "sip", "Alcatel-Lucent Enterprise", "M7", "2.14.03.000.2345", "ale", None),
    # Tango Extend eSIM endpoint (inferred).
    ("Tango Extend eSIM/2.1.0", "sip", "Tango Extend", "eSIM", "2.1.0", "tango-esim", None),
    ("TangoExtend-eSIM 1.4.2", "sip", "Tango Extend", "eSIM", "1.4.2", "tango-esim", None),
]
# fmt: on


@pytest.mark.parametrize(("text", "source", "vendor", "model", "firmware", "family", "mac"), REALISTIC)
def test_realistic_user_agents(text, source, vendor, model, firmware, family, mac):
    m = parse_user_agent(text, source=source)
    assert m is not None, f"no rule recognised {text!r}"
    assert (m.vendor, m.model, m.firmware, m.family, m.mac) == (vendor, model, firmware, family, mac)


def test_every_vendor_has_at_least_two_realistic_strings():
    per_vendor = {v: 0 for v in VENDORS}
    for row in REALISTIC:
        per_vendor[row[2]] += 1
    assert all(n >= 2 for n in per_vendor.values()), per_vendor


def test_every_vendor_has_a_rule():
    assert {r.vendor for r in RULES} == set(VENDORS)


# ------------------------------------------------------------------------------------ Cisco families


def test_enterprise_and_mpp_firmware_of_one_model_are_told_apart():
    enterprise = parse_user_agent("Cisco-CP8851/12.1.1")
    mpp = parse_user_agent("Cisco-CP-8851-3PCC/12.0.1 (00562b043615)")
    assert enterprise is not None and mpp is not None
    assert enterprise.model == mpp.model == "8851"
    assert (enterprise.family, enterprise.rule) == ("cisco-enterprise", "cisco-enterprise-phone")
    assert (mpp.family, mpp.rule) == ("cisco-mpp", "cisco-mpp-phone")


def test_mpp_string_never_reads_as_enterprise():
    hits = match_all("Cisco-CP-7832-3PCC/11.0.1 (00562b043615)", source="any")
    assert [h.family for h in hits] == ["cisco-mpp"]


# ------------------------------------------------------------------------------------------- sources


def test_http_only_form_is_not_used_for_sip_headers():
    text = "Cisco/ATA191-MPP-11-1-0-MSR4 (FCH2443D9R4)"
    assert parse_user_agent(text, source="sip") is None
    http = parse_user_agent(text, source="http")
    assert http is not None and http.rule == "cisco-ata-mpp-http" and http.source == "http"
    assert parse_user_agent(text, source="any") == http


def test_poly_updater_fetch_claims_no_application_firmware():
    text = "FileTransport PolycomVVX-VVX_410-UA/5.0.3.1667 Type/Updater"
    hits = match_all(text, source="http")
    assert [h.rule for h in hits] == ["poly-ucs-updater"]
    assert hits[0].firmware is None
    # An updater fetch never reaches a SIP header; no application rule may read it as firmware 5.0.3.
    assert parse_user_agent(text, source="sip") is None


def test_source_is_case_and_space_tolerant_but_must_be_known():
    assert parse_user_agent("Algo-8201/5.2", source=" SIP ") is not None
    with pytest.raises(ValueError, match=r"source must be 'sip'.*not 'rtp'"):
        parse_user_agent("Algo-8201/5.2", source="rtp")
    with pytest.raises(ValueError, match="source must be"):
        match_all("Algo-8201/5.2", source=None)  # type: ignore[arg-type]


def test_observed_and_inferred_twins_keep_their_confidence():
    sip = parse_user_agent("Algo-8201/5.2", source="sip")
    http = parse_user_agent("Algo-8201/5.2", source="http")
    assert sip is not None and http is not None
    assert (sip.rule, sip.confidence) == ("algo-sip", "observed")
    assert (http.rule, http.confidence) == ("algo-http", "inferred")


# ----------------------------------------------------------------------------------- match_all order


def test_match_all_lists_every_candidate_best_first():
    hits = match_all("PolycomVVX-VVX_400-UA/5.9.5.0614_0004f28e5a79")
    assert [h.rule for h in hits] == ["poly-vvx", "poly-ucs-other"]
    assert hits[0].priority > hits[1].priority
    assert parse_user_agent("PolycomVVX-VVX_400-UA/5.9.5.0614_0004f28e5a79") == hits[0]


def test_specific_mediapack_rule_beats_the_generic_gateway_rule():
    hits = match_all("Audiocodes-Sip-Gateway-MP-118 FXS_FXO/v.6.60A.367.001")
    assert [(h.rule, h.model) for h in hits] == [
        ("audiocodes-mediapack", "MP118-FXS-FXO"),
        ("audiocodes-gateway", "MP-118 FXS_FXO"),
    ]


def test_models_outside_the_catalogue_keep_their_vendor():
    mediant = parse_user_agent("Audiocodes-Sip-Gateway-Mediant 1000B/v.7.20A.258")
    assert mediant is not None and (mediant.vendor, mediant.model) == ("AudioCodes", "Mediant 1000B")
    ccx = parse_user_agent("PolycomCCX-CCX_600-UA/8.0.2.3267_482567b5313f")
    assert ccx is not None and (ccx.vendor, ccx.model, ccx.mac) == ("Poly", "CCX 600", "482567b5313f")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "Mozilla/5.0 (X11; Linux x86_64)",
        "friendly-scanner",
        "Asterisk PBX 18.6.0",
        "snomD785/10.1.141.13",
        "Grandstream GXP2170 1.0.11.62",
        "Yealink",  # a vendor word alone is no device
        "PolycomVVX-",
        "Cisco-CP-",
        "SALE 12 1.2.3",  # "ALE" inside another word
    ],
)
def test_unknown_strings_give_none(text):
    assert parse_user_agent(text, source="any") is None
    assert match_all(text, source="any") == []


# -------------------------------------------------------------------------------------------- cleaning


def test_header_name_and_folding_are_removed():
    assert clean_user_agent("User-Agent: Yealink SIP-T46S\r\n 66.86.0.15\r\n") == "Yealink SIP-T46S 66.86.0.15"
    assert clean_user_agent("server:\tCisco-ATA191-MPP/11-1-0MSR3-9") == "Cisco-ATA191-MPP/11-1-0MSR3-9"
    m = parse_user_agent("User-Agent:   Yealink  SIP-T38G\t 38.70.0.125")
    assert m is not None and (m.model, m.firmware) == ("T38G", "38.70.0.125")


def test_bytes_and_non_text_values():
    m = parse_user_agent(b"Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605", source="http")
    assert m is not None and m.model == "N870 IP PRO"
    assert parse_user_agent(b"\xff\xfe\x00garbage") is None
    for value in (None, 42, 3.5, ["Algo-8201/5.2"], object()):
        assert parse_user_agent(value) is None  # type: ignore[arg-type]


def test_input_is_cut_before_matching():
    assert len(clean_user_agent("x" * 10 * MAX_INPUT_CHARS)) == MAX_INPUT_CHARS
    # A recognisable prefix survives the cut; what lies beyond the limit is never looked at.
    m = parse_user_agent("Algo-8201/5.2 " + "padding " * 10_000)
    assert m is not None and m.model == "8201"
    assert parse_user_agent(" " * (MAX_INPUT_CHARS + 5) + "Algo-8201/5.2") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("80:5e:c0:12:dc:69", "805ec012dc69"),
        ("80-5E-C0-12-DC-69", "805ec012dc69"),
        ("00908F602AAC", "00908f602aac"),
        ("FCH2443D9R4", None),
        ("12345", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_mac(text, expected):
    assert normalise_mac(text) == expected


# ------------------------------------------------------------------------------------- the table itself


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_each_rule_reads_its_own_examples(rule: UARule):
    for example in rule.examples:
        m = parse_user_agent(example, source=rule.source)
        assert m is not None, f"{rule.name}: example {example!r} is not recognised"
        assert m.rule == rule.name, f"{rule.name}: example {example!r} is read by {m.rule}"
        assert (m.vendor, m.priority, m.confidence, m.source) == (
            rule.vendor,
            rule.priority,
            rule.confidence,
            rule.source,
        )


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_rule_fields_are_well_formed(rule: UARule):
    assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", rule.name)
    assert rule.vendor in VENDORS
    assert 0 <= rule.priority <= 99
    assert rule.source in SOURCES
    assert rule.confidence in CONFIDENCES
    assert rule.evidence.strip(), "every rule says where its format comes from, or that nothing public shows it"


def test_rule_names_are_unique():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))


def test_describe_rules_rows():
    rows = describe_rules()
    assert len(rows) == len(RULES)
    assert all(isinstance(row, RuleRow) for row in rows)
    first = rows[0]
    name, vendor, priority, confidence, example = first
    assert (name, vendor, priority, confidence, example) == (
        RULES[0].name,
        RULES[0].vendor,
        RULES[0].priority,
        RULES[0].confidence,
        RULES[0].examples[0],
    )


def _rule(**changes) -> UARule:
    base = dict(
        name="test-rule",
        vendor="Algo",
        pattern=r"X-(?P<model>\d+)",
        priority=50,
        family=None,
        normaliser="strip",
        source="sip",
        confidence="observed",
        examples=("X-1",),
        evidence="test",
    )
    base.update(changes)
    return UARule(**base)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(vendor="Nokia"), "vendor 'Nokia' is not one of"),
        (dict(priority=100), "priority 100 is outside 0-99"),
        (dict(source="rtp"), "source 'rtp'"),
        (dict(confidence="guessed"), "confidence 'guessed'"),
        (dict(normaliser="nope"), "normaliser 'nope' does not exist"),
        (dict(pattern=r"X-(\d+"), "does not compile"),
        (dict(pattern=r"X-\d+"), "no 'model' group"),
        (dict(examples=()), "no example"),
    ],
)
def test_a_broken_table_row_is_rejected_with_its_name(changes, message):
    with pytest.raises(ValueError, match=re.escape("User-Agent rule 'test-rule'") + ".*" + re.escape(message)):
        ua_module._compile([_rule(**changes)])


def test_duplicate_rule_names_are_rejected():
    with pytest.raises(ValueError, match="used twice"):
        ua_module._compile([_rule(), _rule()])


# ----------------------------------------------------------------------------------- property tests

_VALID_VENDORS = set(VENDORS)


def _check_match(m: UAMatch) -> None:
    assert m.vendor in _VALID_VENDORS
    assert m.model and m.model == m.model.strip()
    assert m.firmware is None or (m.firmware and m.firmware == m.firmware.strip())
    assert m.mac is None or re.fullmatch(r"[0-9a-f]{12}", m.mac)
    assert m.confidence in CONFIDENCES and m.source in SOURCES


@settings(max_examples=300)
@given(text=st.text(max_size=400), source=st.sampled_from(SOURCES))
def test_random_text_never_raises(text, source):
    hits = match_all(text, source=source)
    for m in hits:
        _check_match(m)
    assert parse_user_agent(text, source=source) == (hits[0] if hits else None)


@settings(max_examples=200)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data):
    for m in match_all(data, source="any"):
        _check_match(m)


@settings(max_examples=200)
@given(
    prefix=st.sampled_from([r.examples[0] for r in RULES]),
    junk=st.text(alphabet=st.sampled_from(list("aZ09 ._-/;:()_xX")), max_size=200),
)
def test_real_prefixes_with_junk_appended_never_raise(prefix, junk):
    for m in match_all(prefix + junk, source="any"):
        _check_match(m)


_hex12 = st.text(alphabet="0123456789abcdef", min_size=12, max_size=12)
_version = st.lists(st.integers(0, 999), min_size=3, max_size=4).map(lambda parts: ".".join(map(str, parts)))


@given(
    model=st.sampled_from(["6821", "7811", "7841", "8832", "8845", "8865"]),
    version=_version,
    mac=_hex12,
    with_paren=st.booleans(),
)
def test_cisco_mpp_round_trip(model, version, mac, with_paren):
    text = f"Cisco-CP-{model}-3PCC/{version} ({mac})" if with_paren else f"Cisco-CP-{model}-3PCC/{version}_{mac}"
    m = parse_user_agent(text)
    assert m is not None and (m.model, m.firmware, m.mac, m.family) == (model, version, mac, "cisco-mpp")


@given(
    model=st.sampled_from(["T21P_E2", "T27G", "T31G", "T42U", "T46S", "T48U", "T53W", "T54W", "T57W"]),
    version=_version,
    mac=st.one_of(st.none(), _hex12),
    colons=st.booleans(),
)
def test_yealink_round_trip(model, version, mac, colons):
    text = f"Yealink SIP-{model} {version}"
    if mac:
        text += " " + (":".join(mac[i : i + 2] for i in range(0, 12, 2)) if colons else mac)
    m = parse_user_agent(text, source="http")
    assert m is not None and (m.vendor, m.model, m.firmware, m.mac) == ("Yealink", model, version, mac)


@given(
    number=st.sampled_from(["150", "250", "350", "401", "411", "450", "501", "601"]),
    version=_version,
    mac=st.one_of(st.none(), _hex12),
)
def test_poly_vvx_round_trip(number, version, mac):
    text = f"PolycomVVX-VVX_{number}-UA/{version}" + (f"_{mac}" if mac else "")
    m = parse_user_agent(text)
    assert m is not None and (m.model, m.firmware, m.mac) == (f"VVX {number}", version, mac)


@given(
    model=st.sampled_from(["405", "420HD", "430HDG", "440HD", "445HDG", "450HD", "C450HD"]),
    rev=st.integers(0, 3),
    version=_version,
    mac=_hex12,
)
def test_audiocodes_sip_line_round_trip(model, rev, version, mac):
    text = f"AUDC-IPPhone/{version} ({model}-Rev{rev}; {mac.upper()})"
    m = parse_user_agent(text, source="http")
    assert m is not None and (m.model, m.firmware, m.mac, m.family) == (model, version, mac, "audiocodes-sip")


# ------------------------------------------------------------------------------ catastrophic backtracking


def _adversarial_inputs() -> list[str]:
    inputs = []
    for rule in RULES:
        for example in rule.examples:
            # Every prefix of a real string, repeated to the length limit: the shapes that make a
            # backtracking pattern retry the longest.
            for k in range(1, len(example)):
                inputs.append(example[:k] * (MAX_INPUT_CHARS // k + 1))
            inputs.append(example[:-1] + " " * (2 * MAX_INPUT_CHARS))
    inputs += [
        "a" * 1_000_000,
        "1." * 600_000,
        "PolycomVVX-VVX_400-UA/" + "1." * 2000,
        "AUDC-IPPhone/" + "1" * 5000,
        "Spectralink " * 5000,
        "Gigaset N870 IP PRO/" + "9" * 5000,
    ]
    return inputs


def test_hostile_inputs_are_handled_quickly():
    inputs = _adversarial_inputs()
    start = time.perf_counter()
    worst = 0.0
    for text in inputs:
        t0 = time.perf_counter()
        match_all(text, source="any")
        worst = max(worst, time.perf_counter() - t0)
    total = time.perf_counter() - start
    # Linear patterns over at most MAX_INPUT_CHARS characters take well under a millisecond each; the bounds
    # are loose so that a loaded CI machine does not fail the test, yet far below what backtracking costs.
    assert worst < 0.25, f"slowest input took {worst:.3f}s"
    assert total < 10, f"{len(inputs)} hostile inputs took {total:.1f}s"
