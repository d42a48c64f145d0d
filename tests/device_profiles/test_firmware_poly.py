"""Poly UC Software, Rove and OBi firmware."""

from __future__ import annotations

import pytest

from device_profiles.firmware import (
    IncomparableFirmware,
    UnparseableFirmware,
    compare_to_requirement,
    parse_firmware,
)


def poly(text: str, family: str | None = None):
    return parse_firmware("poly", text, family=family)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("5.9.5", "5.9.5"),
        ("5.9.5.0614", "5.9.5.0614"),
        ("5.9.5.614", "5.9.5.0614"),
        ("5.9.6.2327", "5.9.6.2327"),
        ("6.4.3.1234", "6.4.3.1234"),
        ("7.2", "7.2.0"),
        ("7.2.2.1094", "7.2.2.1094"),
        ("8.0.2.0020", "8.0.2.0020"),
        ("8.1.0.12774", "8.1.0.12774"),
        ("3.2.2.5921", "3.2.2.5921"),
        ("UCS 5.9.5", "5.9.5"),
    ],
)
def test_forms(text: str, canonical: str) -> None:
    v = poly(text)
    assert str(v) == canonical
    assert poly(canonical) == v


def test_obi_model_prefix_sets_the_family() -> None:
    v = poly("OBi302-3.2.2.5921")
    assert v.family == "obi"
    assert v == poly("3.2.2.5921")
    with pytest.raises(UnparseableFirmware, match="OBi model prefix"):
        poly("OBi202-3.2.2.5921", family="rove")


def test_ucs_tag_sets_the_family() -> None:
    assert poly("UCS 5.9.5").family == "ucs"
    assert poly("UC Software 5.9.5") == poly("5.9.5")
    with pytest.raises(UnparseableFirmware, match="UC Software tag"):
        poly("UCS 5.9.5", family="obi")


def test_build_orders_after_release() -> None:
    assert poly("5.9.5") < poly("5.9.5.0614") < poly("5.9.5.1000") < poly("5.9.6") < poly("5.9.6.2327")
    assert poly("5.9.7.3480") < poly("6.4.3.5814")
    assert poly("7.2") == poly("7.2.0")


@pytest.mark.parametrize(
    ("found", "required", "expected"),
    [
        ("5.9.5.0614", "5.9.5", 0),  # the seed table's 5.9.5 is met by any 5.9.5.x build
        ("5.9.5", "5.9.5", 0),
        ("5.9.4.9999", "5.9.5", -1),
        ("5.9.6.2327", "5.9.5", 1),
        ("8.0.5.0001", "8.0.5.0002", -1),
        ("8.0.5.0003", "8.0.5.0002", 1),
        ("8.0.5", "8.0.5.0002", -1),
    ],
)
def test_compare_to_requirement(found: str, required: str, expected: int) -> None:
    assert compare_to_requirement(poly(found), poly(required)) == expected


def test_different_known_families_do_not_compare() -> None:
    with pytest.raises(IncomparableFirmware, match="'obi'"):
        compare_to_requirement(poly("OBi302-3.2.4.8441"), poly("8.0.5.0002", family="rove"))
    # An unknown family on either side compares numerically.
    assert compare_to_requirement(poly("5.9.5.0614", family="vvx"), poly("5.9.5")) == 0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("7.2.x", "wildcards"),
        ("5.9.5.0614.1.2", "more than four fields"),
        ("5.9.5.0614_0004f28e5a79", "strip the MAC address"),
        ("5", ""),
        ("five", ""),
    ],
)
def test_rejections(text: str, needle: str) -> None:
    with pytest.raises(UnparseableFirmware) as info:
        poly(text)
    assert needle in info.value.reason
    assert "expected forms like 5.9.5" in info.value.reason
