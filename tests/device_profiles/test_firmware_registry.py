"""The public API: scheme lookup, vendor mapping, error contracts, and every version of the seed table."""

from __future__ import annotations

import doctest
import pickle

import pytest

import device_profiles.firmware
from device_profiles.firmware import (
    SCHEMES,
    VENDOR_SCHEMES,
    FirmwareVersion,
    IncomparableFirmware,
    UnknownScheme,
    UnknownVendor,
    UnparseableFirmware,
    compare_to_requirement,
    get_scheme,
    parse_firmware,
    scheme_for_vendor,
    try_parse_firmware,
)

# Every (vendor, model, minimum, approved) row of the vendor table in the seed document
# (plan-for-sip-gateway.txt), with the version strings exactly as printed. Rows without versions
# (Poly Trio, Rove, Edge, OBi; Alcatel-Lucent Enterprise) are left out.
SEED_ROWS: list[tuple[str, str, str, str | None]] = [
    ("Cisco", "8832", "11.3.5MPP", "12-0-1MPP"),
    *[
        ("Cisco", model, "11.1.1MPP", "12-0-1MPP")
        for model in (
            "6821", "6841", "6851", "6861", "6871", "7811", "7821", "7841", "7861",
            "8811", "8841", "8845", "8851", "8861", "8865",
        )
    ],
    ("Cisco", "ATA191-MPP", "11.2.2MPP", "11-2-2MPP0101-013"),
    ("Cisco", "ATA192-MPP", "11.2.2MPP", "11-2-2MPP0101-013"),
    *[
        ("Poly", model, "5.9.5", None)
        for model in (
            "VVX150", "VVX201", "VVX250", "VVX300", "VVX301", "VVX310", "VVX311", "VVX350", "VVX400",
            "VVX401", "VVX410", "VVX411", "VVX450", "VVX500", "VVX501", "VVX600", "VVX601",
        )
    ],
    *[
        ("Yealink", model, "83", None)
        for model in (
            "T21P", "T21P_E2", "T23G", "T27G", "T29G", "T30", "T30P", "T31G", "T31P", "T33G", "T40G",
            "T40P", "T41P", "T41S", "T42G", "T42S", "T42U", "T43U", "T46G", "T46S", "T46U", "T48G",
            "T48S", "T48U", "T53", "T53W", "T54W", "T57W",
        )
    ],
    ("AudioCodes", "405", "2.2.8", None),
    *[
        ("AudioCodes", model, "3.2.1", None)
        for model in (
            "405HD", "405HDG", "420HD", "420HDG", "430HD", "430HDG", "440HD", "445HD", "445HDG", "450HD",
            "C450HD", "RX50",
        )
    ],
    *[
        ("AudioCodes", model, "6.60A.367.001", "6.60A.367.001")
        for model in ("MP112", "MP114-FXS", "MP114-FXS-FXO", "MP118-FXS", "MP118-FXS-FXO", "MP124-FXS")
    ],
    ("AudioCodes", "MP1288-FXS", "7.40A.400.063", "7.40A.400.063"),
    *[("AudioCodes", model, "7.26A.356.075", "7.26A.356.075") for model in ("MP502", "MP504", "MP508")],
    *[
        ("Spectralink", model, "PCS22B", "PCS22B")
        for model in ("7202", "7212", "7502", "7522", "7532", "7622", "7642", "7722", "7742")
    ],
    *[("Spectralink", model, "PCS23Ca", "PCS23Ca") for model in ("S33", "S35", "S37")],
    *[
        ("Spectralink", model, "PCS22Ab", "PCS22Ab")
        for model in (
            "IP-DECT Server 200", "IP-DECT Server 400", "IP-DECT Server 6500", "Virtual IP-DECT Server One",
            "IP-DECT Base Station",
        )
    ],
    ("Ascom", "d43", "2.11.4", "3.0.8"),
    ("Ascom", "d63", "2.11.4", "3.0.8"),
    ("Ascom", "d81", "4.13.1", "4.17.3"),
    ("Ascom", "d83", "1.3.2", "1.5.5"),
    ("Ascom", "i63", "5.0.1", "5.0.1"),
    ("Ascom", "Myco 3 DECT", "3.4.1", "3.4.1"),
    ("Ascom", "IP-DECT Access Point IPBSx", "11.8.8", "11.9.11"),
    ("Ascom", "IP-DECT Gateway IPBL", "11.8.8", "11.9.11"),
    ("Ascom", "TDM Base Station", "R3N", "R4B"),
    ("Ascom", "IP-DECT Virtual Appliance IPVM", "11.8.8", "11.9.11"),
    *[
        ("Gigaset", model, "2.52.0", "2.52.0")
        for model in ("N610 IP PRO", "N670 IP PRO", "N870 IP PRO", "N870E IP PRO", "N870 VI PRO")
    ],
    *[
        ("Algo", model, "5.3", "5.3")
        for model in (
            "8180g2", "8186", "8188", "8189", "8190", "8190s", "8196", "8198", "8028g2", "8063", "8201",
            "8128g2", "8138", "8301", "8373", "8410", "8420",
        )
    ],
]  # fmt: skip


@pytest.mark.parametrize(("vendor", "model", "minimum", "approved"), SEED_ROWS)
def test_every_seed_table_version_parses(vendor: str, model: str, minimum: str, approved: str | None) -> None:
    scheme = scheme_for_vendor(vendor)
    required = parse_firmware(scheme, minimum)
    assert required.raw == minimum
    assert parse_firmware(scheme, str(required), family=required.family) == required
    if approved is not None:
        approved_version = parse_firmware(scheme, approved)
        assert approved_version.raw == approved
        # Every approved version of this table is at or above its minimum (the AudioCodes rows where the
        # minimum exceeds the approved version are in Microsoft's newer table, not in the seed).
        assert compare_to_requirement(approved_version, required) >= 0


def test_seed_rows_cover_every_versioned_vendor() -> None:
    versioned = {vendor for vendor, *_ in SEED_ROWS}
    assert versioned == set(VENDOR_SCHEMES) - {"Alcatel-Lucent Enterprise", "Tango Extend"}
    assert len(SEED_ROWS) == 18 + 17 + 28 + 13 + 10 + 17 + 10 + 5 + 17


def test_seed_minimums_where_the_table_has_a_rule() -> None:
    # Cisco: the listed approved 12-0-1MPP is later than every minimum, and dash == dot.
    assert parse_firmware("cisco", "12-0-1MPP") == parse_firmware("cisco", "12.0.1MPP")
    # Yealink: 83 means series 83 or later.
    assert (
        compare_to_requirement(parse_firmware("yealink", "66.86.0.15"), parse_firmware("yealink", "83")) == 1
    )
    assert (
        compare_to_requirement(parse_firmware("yealink", "66.82.0.20"), parse_firmware("yealink", "83")) == -1
    )
    # Ascom TDM base: R3N minimum, R4B approved.
    assert parse_firmware("ascom", "R3N") < parse_firmware("ascom", "R4A") < parse_firmware("ascom", "R4B")


@pytest.mark.parametrize(
    ("vendor", "scheme"),
    [
        ("Cisco", "cisco"),
        ("Poly", "poly"),
        ("Polycom", "poly"),
        ("Yealink", "yealink"),
        ("AudioCodes", "audiocodes"),
        ("audiocodes", "audiocodes"),
        ("Spectralink", "spectralink"),
        ("Ascom", "ascom"),
        ("Gigaset", "gigaset"),
        ("Algo", "algo"),
        ("Alcatel-Lucent Enterprise", "generic"),
        ("alcatel lucent enterprise", "generic"),
        ("Tango Extend", "generic"),
        ("TangoExtend", "generic"),
    ],
)
def test_scheme_for_vendor(vendor: str, scheme: str) -> None:
    assert scheme_for_vendor(vendor) == scheme
    assert scheme in SCHEMES


def test_every_catalogue_vendor_has_a_registered_scheme() -> None:
    assert set(VENDOR_SCHEMES.values()) <= set(SCHEMES)
    for vendor, scheme in VENDOR_SCHEMES.items():
        assert scheme_for_vendor(vendor) == scheme
    assert set(SCHEMES) == {
        "cisco", "poly", "yealink", "audiocodes", "spectralink", "ascom", "gigaset", "algo", "generic",
    }  # fmt: skip


def test_unknown_vendor_lists_the_known_ones() -> None:
    with pytest.raises(UnknownVendor) as info:
        scheme_for_vendor("Grandstream")
    assert "Grandstream" in str(info.value)
    assert "Alcatel-Lucent Enterprise" in info.value.reason
    with pytest.raises(UnknownVendor):
        scheme_for_vendor(None)  # type: ignore[arg-type]


def test_unknown_scheme() -> None:
    with pytest.raises(UnknownScheme, match="the schemes are cisco"):
        get_scheme("snom")
    with pytest.raises(UnparseableFirmware, match="unknown firmware scheme 'snom'"):
        parse_firmware("snom", "10.1.141.13")
    result = try_parse_firmware("snom", "10.1.141.13")
    assert isinstance(result, UnparseableFirmware)


@pytest.mark.parametrize("scheme", ["cisco", "poly", "yealink", "audiocodes", "gigaset", "generic"])
@pytest.mark.parametrize("bad", [None, 5.3, 83, b"5.3", ["5.3"]])
def test_non_text_is_unparseable_not_a_crash(scheme: str, bad: object) -> None:
    result = try_parse_firmware(scheme, bad)  # type: ignore[arg-type]
    assert isinstance(result, UnparseableFirmware)
    assert "must be text" in result.reason
    assert result.scheme == scheme


def test_try_parse_returns_the_version_or_the_reason() -> None:
    ok = try_parse_firmware("poly", "5.9.5.0614")
    assert isinstance(ok, FirmwareVersion)
    bad = try_parse_firmware("poly", "5.9.x")
    assert isinstance(bad, UnparseableFirmware)
    assert isinstance(bad, ValueError)
    assert bad.text == "5.9.x"
    assert str(bad) == bad.reason


def test_overlong_text_is_rejected_with_a_short_reason() -> None:
    text = "1." * 500 + "1"
    result = try_parse_firmware("generic", text)
    assert isinstance(result, UnparseableFirmware)
    assert "not plausible" in result.reason
    assert len(result.reason) < 200


def test_control_characters_are_rejected() -> None:
    result = try_parse_firmware("algo", "5.3\x00")
    assert isinstance(result, UnparseableFirmware)
    assert "control characters" in result.reason


def test_non_ascii_digits_are_rejected() -> None:
    result = try_parse_firmware("algo", "５.３")
    assert isinstance(result, UnparseableFirmware)
    assert "non-ASCII" in result.reason


def test_version_survives_pickling() -> None:
    v = parse_firmware("cisco", "11-2-2MPP0101-013")
    clone = pickle.loads(pickle.dumps(v))
    assert clone == v and clone.raw == v.raw and clone.family == v.family and str(clone) == str(v)


def test_unparseable_survives_pickling() -> None:
    exc = try_parse_firmware("cisco", "12.0.x")
    assert isinstance(exc, UnparseableFirmware)
    clone = pickle.loads(pickle.dumps(exc))
    assert (clone.reason, clone.scheme, clone.text) == (exc.reason, exc.scheme, exc.text)


def test_versions_of_different_schemes() -> None:
    algo, generic = parse_firmware("algo", "5.3"), parse_firmware("generic", "5.3")
    assert algo != generic
    with pytest.raises(TypeError, match="different schemes"):
        _ = algo < generic
    with pytest.raises(IncomparableFirmware, match="different version schemes"):
        compare_to_requirement(algo, generic)


def test_comparisons_with_other_types() -> None:
    v = parse_firmware("algo", "5.3")
    assert v != "5.3"
    with pytest.raises(TypeError):
        _ = v < "5.4"  # type: ignore[operator]
    with pytest.raises(TypeError, match="must be a FirmwareVersion"):
        compare_to_requirement("5.3", v)  # type: ignore[arg-type]


def test_version_is_immutable_and_usable_as_a_key() -> None:
    v = parse_firmware("poly", "5.9.5")
    with pytest.raises(AttributeError):
        v.raw = "6"  # type: ignore[misc]
    table = {parse_firmware("cisco", "12-0-1MPP"): "approved"}
    assert table[parse_firmware("cisco", "12.0.1MPP")] == "approved"
    assert repr(parse_firmware("cisco", "12-0-1MPP")) == "FirmwareVersion('cisco', '12-0-1MPP', family='mpp')"


def test_package_docstring_examples_hold() -> None:
    result = doctest.testmod(device_profiles.firmware, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4
    assert result.failed == 0
