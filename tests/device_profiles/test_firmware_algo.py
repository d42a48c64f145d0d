"""Algo firmware: dotted numbers, missing fields are zero."""

from __future__ import annotations

import pytest

from device_profiles.firmware import UnparseableFirmware, compare_to_requirement, parse_firmware


def algo(text: str):
    return parse_firmware("algo", text)


def test_missing_fields_are_zero() -> None:
    assert algo("5.3") == algo("5.3.0") == algo("5.3.0.0")
    assert hash(algo("5.3")) == hash(algo("5.3.0"))
    assert str(algo("5.3")) == "5.3"
    assert str(algo("v5.3.4")) == "5.3.4"


def test_order() -> None:
    assert algo("3.3.3") < algo("5.3") < algo("5.3.4") < algo("5.4") < algo("5.10")


@pytest.mark.parametrize(
    ("found", "expected"),
    [("5.3", 0), ("5.3.0", 0), ("5.3.4", 1), ("5.2.9", -1), ("3.3.3", -1), ("6", 1)],
)
def test_compare_to_requirement(found: str, expected: int) -> None:
    assert compare_to_requirement(algo(found), algo("5.3")) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [("5.3.x", "wildcards"), ("1.2.3.4.5", "at most four fields"), ("5.3-beta", ""), ("five", "")],
)
def test_rejections(text: str, needle: str) -> None:
    with pytest.raises(UnparseableFirmware) as info:
        algo(text)
    assert needle in info.value.reason
    assert info.value.reason.startswith(f"{text!r} is not an Algo version")
