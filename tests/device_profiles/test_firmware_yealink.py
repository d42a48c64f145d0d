"""Yealink firmware: hardware id, series, release; a bare series as a requirement."""

from __future__ import annotations

import pytest

from device_profiles.firmware import UnparseableFirmware, compare_to_requirement, parse_firmware


def yealink(text: str, family: str | None = None):
    return parse_firmware("yealink", text, family=family)


@pytest.mark.parametrize(
    ("text", "canonical", "series"),
    [
        ("66.83.0.35", "66.83.0.35", "83"),
        ("96.86.5.1", "96.86.5.1", "86"),
        ("108.83.0.40", "108.83.0.40", "83"),
        ("124.86.0.147", "124.86.0.147", "86"),
        ("83", "83", "83"),
        ("x.83.y.z", "83", "83"),
    ],
)
def test_forms(text: str, canonical: str, series: str) -> None:
    v = yealink(text)
    assert str(v) == canonical
    assert v.family == series
    assert yealink(canonical) == v


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ("66.86.0.15", 1),
        ("66.83.0.35", 0),
        ("96.86.5.1", 1),
        ("108.83.0.40", 0),
        ("66.82.0.20", -1),
        ("34.72.0.75", -1),
    ],
)
def test_series_requirement(found: str, expected: int) -> None:
    assert compare_to_requirement(yealink(found), yealink("83")) == expected


def test_full_requirement_ignores_hardware_id() -> None:
    assert compare_to_requirement(yealink("108.86.5.1"), yealink("66.86.5.1")) == 0
    assert compare_to_requirement(yealink("66.86.0.15"), yealink("66.86.5.1")) == -1
    assert compare_to_requirement(yealink("66.87.0.1"), yealink("66.86.5.1")) == 1


def test_order_is_series_then_release_then_hardware() -> None:
    texts = ["96.86.5.1", "66.86.0.15", "83", "66.83.0.35", "108.83.0.40", "29.83.0.130", "66.82.0.20"]
    assert [str(v) for v in sorted(yealink(t) for t in texts)] == [
        "66.82.0.20",
        "83",
        "66.83.0.35",
        "108.83.0.40",
        "29.83.0.130",
        "66.86.0.15",
        "96.86.5.1",
    ]
    # Same series and release on two hardware ids: ordered (and distinct) by hardware id only.
    assert yealink("66.86.5.1") < yealink("108.86.5.1")
    assert yealink("66.86.5.1") != yealink("108.86.5.1")


def test_family_hint_must_match_the_series() -> None:
    assert yealink("66.86.0.15", family="86").family == "86"
    with pytest.raises(UnparseableFirmware, match="firmware series 86"):
        yealink("66.86.0.15", family="83")
    with pytest.raises(UnparseableFirmware, match="series number"):
        yealink("66.86.0.15", family="t46s")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("66.86", "2 fields"),
        ("66.86.0.15.1", "5 fields"),
        ("Yealink SIP-T46S 66.86.0.15", "strip the model name"),
        ("83.x", ""),
    ],
)
def test_rejections(text: str, needle: str) -> None:
    with pytest.raises(UnparseableFirmware) as info:
        yealink(text)
    assert needle in info.value.reason
    assert "expected forms like 66.86.0.15" in info.value.reason
