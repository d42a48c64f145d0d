"""AudioCodes IP phone (SIP and Skype for Business lines) and MediaPack firmware."""

from __future__ import annotations

import pytest

from device_profiles.firmware import (
    IncomparableFirmware,
    UnparseableFirmware,
    compare_to_requirement,
    parse_firmware,
)


def ac(text: str, family: str | None = None):
    return parse_firmware("audiocodes", text, family=family)


@pytest.mark.parametrize(
    ("text", "family", "canonical", "expected_family"),
    [
        ("2.2.8", None, "2.2.8", "sip"),
        ("2.2.8.61", None, "2.2.8.61", "sip"),
        ("2.2.16.681", None, "2.2.16.681", "sip"),
        ("3.2.1", None, "3.2.1", "sfb"),
        ("3.4.6.604", None, "3.4.6.604", "sfb"),
        ("UC_3.4.6.604", None, "3.4.6.604", "sfb"),
        ("C450HD_UC_3.4.6.604", None, "3.4.6.604", "sfb"),
        ("420HD_SIP_2.2.16.704", None, "2.2.16.704", "sip"),
        ("3.4.8.808", "sip", "3.4.8.808", "sip"),
        ("3.2.1", "sfb", "3.2.1", "sfb"),
        ("1.4.0", None, "1.4.0", None),
        ("6.60A.367.001", None, "6.60A.367.001", "mediapack-6.60A"),
        ("7.40A.400.063", None, "7.40A.400.063", "mediapack-7.x"),
        ("7.26A.356.075", None, "7.26A.356.075", "mediapack-7.x"),
        ("7.20A.258.459", None, "7.20A.258.459", "mediapack-7.x"),
        ("v.6.60A.367.001", None, "6.60A.367.001", "mediapack-6.60A"),
        ("MP11x_SIP_F6.60A.367.001.cmp", None, "6.60A.367.001", "mediapack-6.60A"),
        ("F7.20A.258.459", "mediapack", "7.20A.258.459", "mediapack-7.x"),
        ("6.40A.025.004", None, "6.40A.025.004", "mediapack-6.40A"),
        ("7.40A", None, "7.40A", "mediapack-7.x"),
    ],
)
def test_forms(text: str, family: str | None, canonical: str, expected_family: str | None) -> None:
    v = ac(text, family)
    assert str(v) == canonical
    assert v.family == expected_family
    assert ac(canonical, expected_family if expected_family in ("sip", "sfb") else None) == v


def test_phone_order() -> None:
    assert ac("2.2.8") < ac("2.2.8.61") < ac("2.2.16") < ac("2.2.16.681") < ac("3.2.1") < ac("3.4.6.604")


def test_same_number_on_two_lines_is_two_versions() -> None:
    sfb, sip = ac("3.4.8.808"), ac("3.4.8.808", family="sip")
    assert sfb != sip and sip < sfb
    assert ac("UC_3.4.6.604") == ac("3.4.6.604")


def test_mediapack_order() -> None:
    texts = ["7.40A.400.063", "6.60A.367.001", "7.26A.356.075", "7.20A.258.459", "6.60A.367.005", "7.26A"]
    assert [str(v) for v in sorted(ac(t) for t in texts)] == [
        "6.60A.367.001",
        "6.60A.367.005",
        "7.20A.258.459",
        "7.26A",
        "7.26A.356.075",
        "7.40A.400.063",
    ]
    assert ac("3.4.8.808") < ac("6.60A.367.001")  # every phone load sorts before every MediaPack load


@pytest.mark.parametrize(
    ("found", "required", "expected"),
    [
        (("2.2.16.681", None), ("2.2.8", None), 1),
        (("2.2.8.61", None), ("2.2.8", None), 0),
        (("2.2.6.10", None), ("2.2.8", None), -1),
        (("UC_3.4.6.604", None), ("3.2.1", None), 1),
        (("3.2.1.55", None), ("3.2.1", "sfb"), 0),
        (("3.4.8.808", "sip"), ("3.4.8.808", "sip"), 0),
        (("6.60A.367.001", None), ("6.60A.367.001", None), 0),
        (("6.60A.367.005", None), ("6.60A.367.001", None), 1),
        (("7.26A.356.075", None), ("7.40A.400.063", None), -1),
        (("7.40A.600.014", None), ("7.40A", None), 0),
    ],
)
def test_compare_to_requirement(
    found: tuple[str, str | None], required: tuple[str, str | None], expected: int
) -> None:
    assert compare_to_requirement(ac(*found), ac(*required)) == expected


def test_sip_line_does_not_compare_with_sfb_minimum() -> None:
    # Seed table note: 405HD..440HD list the SfB minimum 3.2.1 while SIP Gateway installs the 2.x SIP line.
    with pytest.raises(IncomparableFirmware) as info:
        compare_to_requirement(ac("2.2.16.681"), ac("3.2.1"))
    assert "generic SIP (2.x) line" in info.value.reason
    assert "Skype for Business" in info.value.reason


def test_phone_does_not_compare_with_mediapack() -> None:
    with pytest.raises(IncomparableFirmware, match="MediaPack gateway"):
        compare_to_requirement(ac("3.2.1"), ac("6.60A.367.001"))


@pytest.mark.parametrize(
    ("text", "family", "needle"),
    [
        ("UC_3.4.6.604", "sip", "UC (Skype for Business) marker"),
        ("420HD_SIP_2.2.16.704", "sfb", "SIP firmware marker"),
        ("6.60A.367.001", "sip", "MediaPack version"),
        ("6.60A.367.001", "mediapack-7.x", "'mediapack-6.60A' line"),
        ("3.2.1", "mediapack", "IP phone version number"),
        ("3.2.1", "teams-android", "unknown family hint"),
    ],
)
def test_hint_conflicts(text: str, family: str, needle: str) -> None:
    with pytest.raises(UnparseableFirmware) as info:
        ac(text, family)
    assert needle in info.value.reason


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("6.60A.367", "needs both the build and the patch"),
        ("3.2.x", "wildcards"),
        ("AUDC-IPPhone/2.2.8.61 (440HDG-Rev0; 00908F602AAC)", "strip the product name"),
        ("3.2", ""),
    ],
)
def test_rejections(text: str, needle: str) -> None:
    with pytest.raises(UnparseableFirmware) as info:
        ac(text)
    assert needle in info.value.reason
    assert info.value.reason.startswith(f"{text!r} is not an AudioCodes version")
