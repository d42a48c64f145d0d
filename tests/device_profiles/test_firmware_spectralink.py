"""Spectralink PCS release names."""

from __future__ import annotations

import itertools

import pytest

from device_profiles.firmware import UnparseableFirmware, compare_to_requirement, parse_firmware


def pcs(text: str):
    return parse_firmware("spectralink", text)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("PCS22B", "PCS22B"),
        ("PCS23Ca", "PCS23Ca"),
        ("PCS22Ab", "PCS22Ab"),
        ("PCS21Ea", "PCS21Ea"),
        ("PCS24A", "PCS24A"),
        ("PCS24", "PCS24"),
        ("PCS16E_", "PCS16E"),
        ("PCS22Ab_1234", "PCS22Ab_1234"),
        ("pcs22B", "PCS22B"),
    ],
)
def test_forms(text: str, canonical: str) -> None:
    v = pcs(text)
    assert str(v) == canonical
    assert v.family == "pcs"
    assert pcs(canonical) == v


def test_order_from_the_brief() -> None:
    chain = ["PCS22A", "PCS22Aa", "PCS22Ab", "PCS22B", "PCS23Ca", "PCS24", "PCS24A", "PCS24B", "PCS24G"]
    versions = [pcs(t) for t in chain]
    assert all(a < b for a, b in itertools.pairwise(versions))
    assert sorted(reversed(versions)) == versions


def test_trailing_underscore_and_builds() -> None:
    assert pcs("PCS16E_") == pcs("PCS16E")
    assert pcs("PCS22Ab") < pcs("PCS22Ab_1234") < pcs("PCS22Ab_1235") < pcs("PCS22B")


@pytest.mark.parametrize(
    ("found", "required", "expected"),
    [
        ("PCS22B", "PCS22B", 0),
        ("PCS22D", "PCS22B", 1),
        ("PCS22Ab", "PCS22B", -1),
        ("PCS22Ab_4711", "PCS22Ab", 0),
        ("PCS24B", "PCS22Ab", 1),
        ("PCS23Ca", "PCS23Ca", 0),
        ("PCS23C", "PCS23Ca", -1),
    ],
)
def test_compare_to_requirement(found: str, required: str, expected: int) -> None:
    assert compare_to_requirement(pcs(found), pcs(required)) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("22.2.3", "not dotted numbers"),
        ("22B", "starts with 'PCS'"),
        ("PCS22AB", "maintenance letter lower case"),
        ("PCS22b", "revision letter after the release number is upper case"),
        ("PCS22Ab_x1", ""),
        ("PCS", ""),
    ],
)
def test_rejections(text: str, needle: str) -> None:
    with pytest.raises(UnparseableFirmware) as info:
        pcs(text)
    assert needle in info.value.reason
    assert "expected forms like PCS22B, PCS23Ca" in info.value.reason
