"""Ascom handset, IP-DECT and TDM base station firmware."""

from __future__ import annotations

import pytest

from device_profiles.firmware import (
    IncomparableFirmware,
    UnparseableFirmware,
    compare_to_requirement,
    parse_firmware,
)


def ascom(text: str, family: str | None = None):
    return parse_firmware("ascom", text, family=family)


@pytest.mark.parametrize(
    ("text", "family", "canonical", "expected_family"),
    [
        ("2.11.4", None, "2.11.4", None),
        ("3.0.8", "handset", "3.0.8", "handset"),
        ("11.8.8", None, "11.8.8", None),
        ("11.9.11", "ipbs", "11.9.11", "ip-dect"),
        ("IPBS[11.8.8]", None, "11.8.8", "ip-dect"),
        ("IPBS2 [11.9.11]", None, "11.9.11", "ip-dect"),
        ("IPBL 11.9.11", None, "11.9.11", "ip-dect"),
        ("IPVM 11.8.8 build 108", None, "11.8.8 build 108", "ip-dect"),
        ("11.8.8-108", None, "11.8.8 build 108", None),
        ("R3N", None, "R3N", "tdm"),
        ("r4b", None, "R4B", "tdm"),
    ],
)
def test_forms(text: str, family: str | None, canonical: str, expected_family: str | None) -> None:
    v = ascom(text, family)
    assert str(v) == canonical
    assert v.family == expected_family
    assert ascom(canonical, expected_family) == v


def test_tdm_revision_order() -> None:
    assert ascom("R3N") < ascom("R4A") < ascom("R4B") < ascom("R10A")


def test_dotted_order_and_family_is_descriptive() -> None:
    assert ascom("2.11.4") < ascom("3.0.8") < ascom("4.13.1") < ascom("11.8.8") < ascom("11.9.11")
    assert ascom("11.8.8") < ascom("11.8.8 build 108") < ascom("11.8.9")
    assert ascom("IPBS[11.8.8]") == ascom("11.8.8")
    assert ascom("11.99.99") < ascom("R1A")  # all dotted firmware sorts before TDM revisions


@pytest.mark.parametrize(
    ("found", "required", "expected"),
    [
        ("IPBS[11.9.11]", "11.8.8", 1),
        ("11.8.8 build 108", "11.8.8", 0),
        ("11.8.7", "11.8.8", -1),
        ("R4B", "R3N", 1),
        ("R3N", "R3N", 0),
        ("R3M", "R3N", -1),
        ("4.17.3", "4.13.1", 1),
    ],
)
def test_compare_to_requirement(found: str, required: str, expected: int) -> None:
    assert compare_to_requirement(ascom(found), ascom(required)) == expected


def test_tdm_revision_does_not_compare_with_dotted_firmware() -> None:
    with pytest.raises(IncomparableFirmware, match="TDM base station revisions"):
        compare_to_requirement(ascom("R4B"), ascom("11.8.8"))


def test_ip_dect_does_not_compare_with_a_handset_line() -> None:
    with pytest.raises(IncomparableFirmware, match="'ip-dect' line"):
        compare_to_requirement(ascom("IPBS[11.8.8]"), ascom("3.0.8", family="handset"))


@pytest.mark.parametrize(
    ("text", "family", "needle"),
    [
        ("R4B", "ip-dect", "TDM base station revision"),
        ("11.8.8", "tdm", "dotted"),
        ("IPBS[11.8.8]", "handset", "IP-DECT product tag"),
    ],
)
def test_hint_conflicts(text: str, family: str, needle: str) -> None:
    with pytest.raises(UnparseableFirmware, match=needle):
        ascom(text, family)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("R4", "ends with its letter"),
        ("IPBS[11.8.8", "both brackets"),
        ("11.8.x", "wildcards"),
        ("11", ""),
    ],
)
def test_rejections(text: str, needle: str) -> None:
    with pytest.raises(UnparseableFirmware) as info:
        ascom(text)
    assert needle in info.value.reason
    assert info.value.reason.startswith(f"{text!r} is not an Ascom version")
