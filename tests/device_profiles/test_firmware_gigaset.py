"""Gigaset PRO base station firmware, including the User-Agent form with build metadata."""

from __future__ import annotations

import pytest

from device_profiles.firmware import UnparseableFirmware, compare_to_requirement, parse_firmware


def gigaset(text: str, family: str | None = None):
    return parse_firmware("gigaset", text, family=family)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2.52.0", "2.52.0"),
        ("V2.52.0", "2.52.0"),
        ("83.V2.11.0+build.a546b91", "2.11.0+build.a546b91"),
        ("83.V2.62.1", "2.62.1"),
        ("2.53.1+build.1-rc", "2.53.1+build.1-rc"),
    ],
)
def test_forms(text: str, canonical: str) -> None:
    v = gigaset(text)
    assert str(v) == canonical
    assert v.raw == text
    assert v.family is None
    assert gigaset(canonical) == v


def test_build_metadata_is_ignored_for_order_and_equality() -> None:
    assert gigaset("83.V2.52.0+build.0000001") == gigaset("2.52.0")
    assert hash(gigaset("83.V2.52.0+build.ffff")) == hash(gigaset("2.52.0"))


def test_ua_release_is_on_the_table_line() -> None:
    # V2.11.0 from a User-Agent is the older 2.11.0 release of the line the table's 2.52.0 belongs to.
    assert gigaset("83.V2.11.0+build.a546b91") < gigaset("2.52.0") < gigaset("83.V2.62.1")
    assert compare_to_requirement(gigaset("83.V2.11.0+build.a546b91"), gigaset("2.52.0")) == -1
    assert compare_to_requirement(gigaset("83.V2.52.0+build.77"), gigaset("2.52.0")) == 0
    assert compare_to_requirement(gigaset("83.V2.53.1"), gigaset("2.52.0")) == 1


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("83.2.11.0", ""),
        ("2.52", "three fields"),
        ("Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605", "strip the product name"),
        ("2.52.0+", "build metadata"),
        ("2.52.0+build..1", "build metadata"),
    ],
)
def test_rejections(text: str, needle: str) -> None:
    with pytest.raises(UnparseableFirmware) as info:
        gigaset(text)
    assert needle in info.value.reason
    assert "expected forms like 2.52.0" in info.value.reason


def test_family_hint_is_refused() -> None:
    with pytest.raises(UnparseableFirmware, match="no firmware families"):
        gigaset("2.52.0", family="n870")
