"""Properties every scheme's order must have, checked on generated versions in all their spellings.

For each scheme: the order is total, antisymmetric and transitive, agrees with ``==`` and ``hash``,
the canonical form parses back to an equal version, spelling variants of one version are equal, and
``compare_to_requirement`` agrees with the order. Arbitrary text never makes a parser raise anything but
``UnparseableFirmware``.
"""

from __future__ import annotations

import operator
import string
from collections.abc import Callable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from device_profiles.firmware import (
    SCHEMES,
    FirmwareVersion,
    IncomparableFirmware,
    UnparseableFirmware,
    compare_to_requirement,
    parse_firmware,
    try_parse_firmware,
)

Spelling = tuple[str, str | None]  # (text, family hint)
# Per-test settings (not a loaded profile, which would change other modules' tests too). Parsing is
# fast, so the deadline only adds flakiness on a loaded CI machine.
thorough = settings(max_examples=150, deadline=None)

small = st.integers(min_value=0, max_value=40)


def _dashed(build: tuple[int, ...]) -> str:
    return "".join(f"-{b}" for b in build)


@st.composite
def cisco_spellings(draw: st.DrawFn) -> Spelling:
    release = draw(st.tuples(st.integers(1, 20), small, small))
    family = draw(st.sampled_from(["mpp", "enterprise"]))
    sr = draw(st.integers(0, 4))
    build = draw(
        st.one_of(st.just(()), st.tuples(st.integers(0, 9999)), st.tuples(st.integers(0, 9999), small))
    )
    sep = draw(st.sampled_from([".", "-"]))
    text = sep.join(str(n) for n in release)
    prefix = draw(st.sampled_from(["", "sip88xx.", "sip8845_65.", "cmterm-78xx.", "ATA19x."]))
    suffix = draw(st.sampled_from(["", ".loads"])) if prefix else ""
    marked = True
    if family == "mpp":
        if sr:
            body = f"{text}MSR{sr}{_dashed(build)}"
        elif len(build) == 2 and draw(st.booleans()):
            body = f"{text}MPP{build[0]:04d}-{build[1]:03d}"
        elif not build and not prefix and draw(st.booleans()):
            body, marked = text, False  # the bare release of a User-Agent
        else:
            body = f"{text}{draw(st.sampled_from(['MPP', 'mpp']))}{_dashed(build)}"
    else:
        body = f"{text}{f'SR{sr}' if sr else ''}{_dashed(build)}"
        marked = bool(sr or build or prefix)
    hint = family if not marked or draw(st.booleans()) else None
    return f"{prefix}{body}{suffix}", hint


@st.composite
def poly_spellings(draw: st.DrawFn) -> Spelling:
    a, b, c = draw(st.integers(1, 9)), draw(small), draw(small)
    build = draw(st.one_of(st.none(), st.integers(0, 99999)))
    family = draw(st.sampled_from([None, "ucs", "rove", "obi", "ata"]))
    release = f"{a}.{b}" if c == 0 and build is None and draw(st.booleans()) else f"{a}.{b}.{c}"
    width = draw(st.integers(1, 5))
    text = release + (f".{build:0{width}d}" if build is not None else "")
    if family == "obi" and draw(st.booleans()):
        return f"OBi{draw(st.sampled_from(['202', '302', '300']))}-{text}", draw(
            st.sampled_from([None, "obi"])
        )
    prefix = draw(st.sampled_from(["", "", "UCS "])) if family in (None, "ucs") else ""
    return prefix + text, family


@st.composite
def yealink_spellings(draw: st.DrawFn) -> Spelling:
    series = draw(st.integers(70, 90))
    hint = str(series) if draw(st.booleans()) else None
    if draw(st.integers(0, 4)) == 0:
        return draw(st.sampled_from([str(series), f"x.{series}.y.z"])), hint
    hw = draw(st.sampled_from([28, 29, 66, 96, 108, 124]))
    return f"{hw}.{series}.{draw(st.integers(0, 5))}.{draw(st.integers(0, 200))}", hint


@st.composite
def audiocodes_spellings(draw: st.DrawFn) -> Spelling:
    if draw(st.booleans()):
        a, b, c = draw(st.integers(1, 4)), draw(st.integers(0, 9)), draw(small)
        build = draw(st.one_of(st.none(), st.integers(0, 999)))
        text = f"{a}.{b}.{c}" + (f".{build}" if build is not None else "")
        marker = draw(st.sampled_from(["", "", "UC_", "C450HD_UC_", "420HD_SIP_"]))
        if "UC_" in marker:
            return marker + text, draw(st.sampled_from([None, "sfb"]))
        if "SIP_" in marker:
            return marker + text, draw(st.sampled_from([None, "sip"]))
        return text, draw(st.sampled_from([None, "sip", "sfb"]))
    major, minor = draw(st.integers(5, 7)), draw(st.integers(0, 99))
    letter = draw(st.sampled_from("ABC"))
    build = draw(st.one_of(st.none(), st.tuples(st.integers(0, 999), st.integers(0, 999))))
    text = f"{major}.{minor:02d}{letter}" + (f".{build[0]:03d}.{build[1]:03d}" if build else "")
    prefix = draw(st.sampled_from(["", "v.", "F", "MP11x_SIP_F"]))
    suffix = ".cmp" if prefix.startswith("MP") and draw(st.booleans()) else ""
    return prefix + text + suffix, draw(st.sampled_from([None, "mediapack"]))


@st.composite
def spectralink_spellings(draw: st.DrawFn) -> Spelling:
    number = draw(st.integers(10, 30))
    letter = draw(st.sampled_from(["", "A", "B", "C", "E"]))
    sub = draw(st.sampled_from(["", "a", "b"])) if letter else ""
    build = draw(st.one_of(st.none(), st.integers(0, 99999)))
    tail = f"_{build}" if build is not None else draw(st.sampled_from(["", "_"]))
    return f"{draw(st.sampled_from(['PCS', 'pcs']))}{number}{letter}{sub}{tail}", draw(
        st.sampled_from([None, "pcs"])
    )


@st.composite
def ascom_spellings(draw: st.DrawFn) -> Spelling:
    if draw(st.integers(0, 3)) == 0:
        rev = f"R{draw(st.integers(1, 9))}{draw(st.sampled_from('ABMNZ'))}"
        return draw(st.sampled_from([rev, rev.lower()])), draw(st.sampled_from([None, "tdm"]))
    a, b = draw(st.integers(1, 12)), draw(small)
    c = draw(st.one_of(st.none(), small))
    build = draw(st.one_of(st.none(), st.integers(0, 999)))
    text = f"{a}.{b}" + (f".{c}" if c is not None else "")
    product = draw(st.sampled_from(["", "", "IPBS", "IPBL", "IPVM"]))
    if product:
        text = draw(st.sampled_from([f"{product}[{text}]", f"{product} {text}"]))
        hint = draw(st.sampled_from([None, "ip-dect"]))
    else:
        hint = draw(st.sampled_from([None, "handset", "ip-dect"]))
    if build is not None:
        text += draw(st.sampled_from([f" build {build}", f"-{build}"]))
    return text, hint


@st.composite
def gigaset_spellings(draw: st.DrawFn) -> Spelling:
    release = f"{draw(st.integers(1, 3))}.{draw(st.integers(0, 70))}.{draw(st.integers(0, 9))}"
    prefix = draw(st.sampled_from(["", "V", "83.V"]))
    meta = draw(st.one_of(st.none(), st.from_regex(r"\A[0-9a-z-]{1,8}(\.[0-9A-Za-z-]{1,8}){0,2}\Z")))
    return prefix + release + (f"+{meta}" if meta else ""), None


@st.composite
def algo_spellings(draw: st.DrawFn) -> Spelling:
    fields = draw(st.lists(st.integers(0, 12), min_size=1, max_size=4))
    return draw(st.sampled_from(["", "v"])) + ".".join(str(f) for f in fields), None


@st.composite
def generic_spellings(draw: st.DrawFn) -> Spelling:
    fields = draw(st.lists(st.from_regex(r"\A[0-9]{1,4}\Z"), min_size=1, max_size=6))
    suffix = draw(
        st.one_of(st.just(""), st.from_regex(r"\A(?:[-_+~.]?[a-zA-Z]{1,3}|[-_+~][0-9])[0-9a-z]{0,3}\Z"))
    )
    return draw(st.sampled_from(["", "v"])) + ".".join(fields) + suffix, None


SPELLINGS: dict[str, Callable[[], st.SearchStrategy[Spelling]]] = {
    "cisco": cisco_spellings,
    "poly": poly_spellings,
    "yealink": yealink_spellings,
    "audiocodes": audiocodes_spellings,
    "spectralink": spectralink_spellings,
    "ascom": ascom_spellings,
    "gigaset": gigaset_spellings,
    "algo": algo_spellings,
    "generic": generic_spellings,
}


def versions(scheme: str) -> st.SearchStrategy[FirmwareVersion]:
    return SPELLINGS[scheme]().map(lambda spelling: parse_firmware(scheme, spelling[0], family=spelling[1]))


def test_every_scheme_has_a_strategy() -> None:
    assert set(SPELLINGS) == set(SCHEMES)


schemes = pytest.mark.parametrize("scheme", sorted(SPELLINGS))


@schemes
@given(data=st.data())
@thorough
def test_order_is_total_and_agrees_with_equality_and_hash(scheme: str, data: st.DataObject) -> None:
    a = data.draw(versions(scheme), label="a")
    b = data.draw(st.one_of(versions(scheme), st.just(a)), label="b")
    assert [a < b, a == b, a > b].count(True) == 1
    assert (a <= b) == (a < b or a == b)
    assert (a >= b) == (a > b or a == b)
    assert (a < b) == (b > a)
    assert operator.ne(a, b) is operator.not_(operator.eq(a, b))
    if a == b:
        assert hash(a) == hash(b)
        assert a.key == b.key


@schemes
@given(data=st.data())
@thorough
def test_order_is_antisymmetric_and_transitive(scheme: str, data: st.DataObject) -> None:
    a, b, c = (data.draw(versions(scheme), label=name) for name in "abc")
    if a <= b and b <= a:
        assert a == b
    if a <= b and b <= c:
        assert a <= c
    if a < b and b < c:
        assert a < c
    ordered = sorted([a, b, c])
    assert ordered[0] <= ordered[1] <= ordered[2]
    assert sorted([c, b, a]) == ordered


@schemes
@given(data=st.data())
@thorough
def test_canonical_form_round_trips(scheme: str, data: st.DataObject) -> None:
    text, family = data.draw(SPELLINGS[scheme](), label="spelling")
    v = parse_firmware(scheme, text, family=family)
    assert v.raw == text
    again = parse_firmware(scheme, str(v), family=v.family)
    assert again == v
    assert str(again) == str(v)
    assert again.family == v.family
    # Surrounding whitespace never changes the version.
    assert parse_firmware(scheme, f"  {text}\t", family=family) == v


@schemes
@given(data=st.data())
@thorough
def test_compare_to_requirement_agrees_with_the_order(scheme: str, data: st.DataObject) -> None:
    found = data.draw(versions(scheme), label="found")
    required = data.draw(versions(scheme), label="required")
    assert compare_to_requirement(found, found) == 0
    try:
        result = compare_to_requirement(found, required)
    except IncomparableFirmware as exc:
        assert exc.reason
        return
    assert result in (-1, 0, 1)
    if result < 0:
        assert found < required
    if result > 0:
        assert found > required
    if found >= required:
        assert result >= 0


@schemes
@given(data=st.data())
@thorough
def test_other_schemes_are_not_ordered(scheme: str, data: st.DataObject) -> None:
    other = data.draw(st.sampled_from([s for s in SPELLINGS if s != scheme]), label="other")
    a, b = data.draw(versions(scheme), label="a"), data.draw(versions(other), label="b")
    assert a != b
    with pytest.raises(TypeError):
        _ = a < b
    with pytest.raises(IncomparableFirmware):
        compare_to_requirement(a, b)


@given(
    release=st.tuples(st.integers(1, 20), small, small),
    build=st.one_of(st.just(""), st.builds(lambda x, y: f"{x:04d}-{y:03d}", st.integers(0, 9999), small)),
)
@thorough
def test_cisco_dash_and_dot_spell_the_same_version(release: tuple[int, int, int], build: str) -> None:
    dotted = parse_firmware("cisco", ".".join(map(str, release)) + "MPP" + build)
    dashed = parse_firmware("cisco", "-".join(map(str, release)) + "MPP" + build)
    paren = parse_firmware("cisco", f"{release[0]}.{release[1]}({release[2]})MPP" + build)
    assert dotted == dashed == paren
    assert hash(dotted) == hash(dashed)


@given(fields=st.lists(st.integers(0, 99), min_size=1, max_size=3), zeros=st.integers(1, 3))
@thorough
def test_algo_trailing_zero_fields_do_not_matter(fields: list[int], zeros: int) -> None:
    padded = fields + [0] * zeros
    assume(len(padded) <= 4)
    assert parse_firmware("algo", ".".join(map(str, fields))) == parse_firmware(
        "algo", ".".join(map(str, padded))
    )


@given(release=st.tuples(st.integers(1, 9), small, small), build=st.integers(0, 99999))
@thorough
def test_poly_build_meets_its_release(release: tuple[int, int, int], build: int) -> None:
    text = ".".join(map(str, release))
    required, found = parse_firmware("poly", text), parse_firmware("poly", f"{text}.{build:04d}")
    assert found > required
    assert compare_to_requirement(found, required) == 0


NEAR_MISS = st.text(alphabet=string.digits + ".-_+()[] xXvVABCMPSRabcucUC", max_size=24)


@pytest.mark.parametrize("scheme", [*sorted(SPELLINGS), "unknown"])
@given(text=st.one_of(st.text(max_size=40), NEAR_MISS))
@thorough
def test_arbitrary_text_only_ever_raises_unparseable(scheme: str, text: str) -> None:
    for family in (None, "mpp", "sip", "83", "tdm", "obi"):
        try:
            v = parse_firmware(scheme, text, family=family)
        except UnparseableFirmware as exc:
            assert exc.reason and isinstance(exc.reason, str)
            assert try_parse_firmware(scheme, text, family=family).reason == exc.reason
        else:
            assert isinstance(v, FirmwareVersion) and v.raw == text
            assert parse_firmware(scheme, str(v), family=v.family) == v
