"""The generic dotted-numeric scheme with an optional suffix."""

from __future__ import annotations

import itertools

import pytest

from device_profiles.firmware import UnparseableFirmware, compare_to_requirement, parse_firmware


def generic(text: str):
    return parse_firmware("generic", text)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2.14.03.000.2345", "2.14.03.000.2345"),
        ("10.1.141.13", "10.1.141.13"),
        ("v1.2", "1.2"),
        ("1.2.3-rc1", "1.2.3-rc1"),
        ("2.0.1b", "2.0.1b"),
        ("7", "7"),
    ],
)
def test_forms(text: str, canonical: str) -> None:
    v = generic(text)
    assert str(v) == canonical
    assert generic(canonical) == v


def test_order() -> None:
    chain = ["1", "1.0.1", "1.2", "1.2.3", "1.2.3b", "1.2.3-rc1", "1.2.3-rc2", "1.2.3-rc10", "1.10"]
    versions = [generic(t) for t in chain]
    assert all(a < b for a, b in itertools.pairwise(versions))
    assert generic("1.2") == generic("1.2.0") == generic("v1.2.0.0")
    assert generic("2.14.03.000.2345") == generic("2.14.3.0.2345")
    assert generic("1.0-RC1") == generic("1.0-rc1")


def test_compare_to_requirement() -> None:
    assert compare_to_requirement(generic("2.14.05.000.2352"), generic("2.14.03.000.2345")) == 1
    assert compare_to_requirement(generic("2.14.03.000.2345"), generic("2.14.03.000.2345")) == 0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("R120.1.02", "does not start with a number"),
        ("1.2 beta", "contains spaces"),
        ("1.2.34-", ""),
        ("1..2", ""),
    ],
)
def test_rejections(text: str, needle: str) -> None:
    with pytest.raises(UnparseableFirmware) as info:
        generic(text)
    assert needle in info.value.reason
    assert info.value.reason.startswith(f"{text!r} is not a dotted numeric version")
