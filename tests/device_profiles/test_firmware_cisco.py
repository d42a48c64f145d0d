"""Cisco MPP and enterprise firmware: forms, families, order and requirement semantics."""

from __future__ import annotations

import pytest

from device_profiles.firmware import (
    IncomparableFirmware,
    UnparseableFirmware,
    compare_to_requirement,
    parse_firmware,
)


def cisco(text: str, family: str | None = None):
    return parse_firmware("cisco", text, family=family)


@pytest.mark.parametrize(
    ("text", "family", "canonical", "expected_family"),
    [
        ("11.3.5MPP", None, "11.3.5MPP", "mpp"),
        ("12-0-1MPP", None, "12.0.1MPP", "mpp"),
        ("11-2-2MPP0101-013", None, "11.2.2MPP0101-013", "mpp"),
        ("11.3.7MPP0001-609", None, "11.3.7MPP0001-609", "mpp"),
        ("sip88xx.12-0-1MPP-3", None, "12.0.1MPP-3", "mpp"),
        ("sipyyyy.11-2-1MPP-312.loads", None, "11.2.1MPP-312", "mpp"),
        ("cmterm-68xx.12-0-4MPP0001-195_REL.zip", None, "12.0.4MPP0001-195", "mpp"),
        ("ATA19x.11-2-1MPP0001-006.zip", None, "11.2.1MPP0001-006", "mpp"),
        ("11-1-0MSR3-9", None, "11.1.0MSR3-9", "mpp"),
        ("sip88xx.11-2-3MSR1-1.loads", None, "11.2.3MSR1-1", "mpp"),
        ("12.0.3", "mpp", "12.0.3MPP", "mpp"),
        ("12.0.3", "3PCC", "12.0.3MPP", "mpp"),
        ("11.0", "mpp", "11.0.0MPP", "mpp"),
        ("12.0(1)", "mpp", "12.0.1MPP", "mpp"),
        ("11.1(0)SR1", "mpp", "11.1.0MSR1", "mpp"),
        ("sip88xx.12-8-1-0001-455", None, "12.8.1-0001-455", "enterprise"),
        ("sip8845_65.14-3-1-0201-246", None, "14.3.1-0201-246", "enterprise"),
        ("sip88xx.12-1-1SR1-4", None, "12.1.1SR1-4", "enterprise"),
        ("sip88xx.10-3-1-20.loads", None, "10.3.1-20", "enterprise"),
        ("12.1.1", "enterprise", "12.1.1", "enterprise"),
        ("  12-0-1mpp  ", None, "12.0.1MPP", "mpp"),
    ],
)
def test_forms(text: str, family: str | None, canonical: str, expected_family: str) -> None:
    v = cisco(text, family)
    assert str(v) == canonical
    assert v.family == expected_family
    assert v.raw == text
    assert v.scheme == "cisco"
    assert cisco(canonical, expected_family) == v


def test_dash_and_dot_are_the_same_release() -> None:
    assert cisco("12-0-1MPP") == cisco("12.0.1MPP")
    assert hash(cisco("12-0-1MPP")) == hash(cisco("12.0.1MPP"))
    assert cisco("11-2-2MPP0101-013") == cisco("11.2.2MPP0101-13")


def test_build_suffix_orders_after_plain_release() -> None:
    assert cisco("11-2-2MPP") < cisco("11-2-2MPP0101-013") < cisco("11.2.3MPP")
    assert cisco("11.3.7MPP0001-609") < cisco("11.3.7MPP0002-001")
    assert cisco("11.1.0MPP") < cisco("11-1-0MSR1-1") < cisco("11-1-0MSR3-9") < cisco("11.1.1MPP")


def test_release_order() -> None:
    versions = [cisco(t) for t in ("12-0-1MPP", "11.1.1MPP", "11.3.5MPP", "11.2.2MPP", "11-2-2MPP0101-013")]
    assert [str(v) for v in sorted(versions)] == [
        "11.1.1MPP",
        "11.2.2MPP",
        "11.2.2MPP0101-013",
        "11.3.5MPP",
        "12.0.1MPP",
    ]


def test_enterprise_sorts_below_every_mpp_release() -> None:
    assert cisco("sip88xx.14-3-1-0201-246") < cisco("10.0.0MPP")
    assert cisco("12.1.1", "enterprise") != cisco("12.1.1", "mpp")


def test_ua_release_without_marker_needs_a_family_hint() -> None:
    with pytest.raises(UnparseableFirmware) as info:
        cisco("12.0.1")
    assert "family='mpp'" in info.value.reason
    assert "-3PCC" in info.value.reason


@pytest.mark.parametrize(
    ("text", "family", "needle"),
    [
        ("12.0.1MPP", "enterprise", "contradicts the family hint 'enterprise'"),
        ("sip88xx.12-8-1-0001-455", "mpp", "enterprise build suffix"),
        ("sip88xx.12-1-1SR1-4", "mpp", "enterprise SR tag"),
        ("11-1-0MSR3-9", "enterprise", "MSR"),
    ],
)
def test_hint_contradicting_a_marker_is_an_error(text: str, family: str, needle: str) -> None:
    with pytest.raises(UnparseableFirmware) as info:
        cisco(text, family)
    assert needle in info.value.reason


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("12.0.x", "wildcards"),
        ("12.0-1MPP", "mixes '.' and '-'"),
        ("MPP12.0.1", "does not start with the release number"),
        ("12.0.10001MPP", ""),
        ("12.0.1MPPX", ""),
        ("", "empty"),
        ("12.0.1 MPP", ""),
    ],
)
def test_rejections_say_why_and_what_is_expected(text: str, needle: str) -> None:
    with pytest.raises(UnparseableFirmware) as info:
        cisco(text)
    assert needle in info.value.reason
    if text.strip():
        assert info.value.reason.startswith(f"{text!r} is not a Cisco MPP version")
        assert "expected forms like 11.3.5MPP, 12-0-1MPP or 11-2-2MPP0101-013" in info.value.reason


def test_brief_example_reason() -> None:
    with pytest.raises(UnparseableFirmware) as info:
        cisco("12.0.x")
    assert info.value.reason == (
        "'12.0.x' is not a Cisco MPP version: wildcards such as 'x' name a range, not a version; "
        "expected forms like 11.3.5MPP, 12-0-1MPP or 11-2-2MPP0101-013"
    )


def test_glued_build_requires_mpp_token() -> None:
    with pytest.raises(UnparseableFirmware, match="glued to the release needs the MPP token"):
        cisco("12-0-10101-013")


@pytest.mark.parametrize(
    ("found", "required", "expected"),
    [
        (("12.0.3", "mpp"), "11.1.1MPP", 1),
        (("11.1.1", "mpp"), "11.1.1MPP", 0),
        (("11.3.7MPP0001-609", None), "11.3.7MPP", 0),  # any build of the release meets it
        (("11.0.1", "mpp"), "11.1.1MPP", -1),
        (("11-2-2MPP0101-013", None), "11-2-2MPP0101-013", 0),
        (("11-2-2MPP", None), "11-2-2MPP0101-013", -1),  # cannot show it has the build
        (("11-1-0MSR3-9", None), "11.2.2MPP", -1),
        (("11-2-2MSR1-1", None), "11.2.2MPP", 1),
    ],
)
def test_compare_to_requirement(found: tuple[str, str | None], required: str, expected: int) -> None:
    assert compare_to_requirement(cisco(*found), cisco(required)) == expected


def test_enterprise_never_meets_an_mpp_requirement() -> None:
    with pytest.raises(IncomparableFirmware) as info:
        compare_to_requirement(cisco("12.1.1", "enterprise"), cisco("11.1.1MPP"))
    assert "converted to multiplatform" in info.value.reason
    assert isinstance(info.value, TypeError)
