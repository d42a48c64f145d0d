"""The catalogue holds every model of the seed's vendor table, once, with its meaning rather than its glyphs."""

from __future__ import annotations

import collections
import re
from pathlib import Path

import pytest

from device_profiles.catalogue import PACKAGE_DIR, default_catalogue, load_catalogue
from device_profiles.firmware import UnparseableFirmware, try_parse_firmware
from device_profiles.schema import normalise_model_name
from device_profiles.yamlio import DataFileError

SEED = PACKAGE_DIR / "seed" / "plan-for-sip-gateway.txt"
SHARED_SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "plan-for-sip-gateway.txt"
VENDORS = ["Cisco", "Poly", "Yealink", "AudioCodes", "Spectralink", "Ascom", "Gigaset", "Algo",
           "Alcatel-Lucent Enterprise"]


def seed_sections() -> dict[str, list[str]]:
    """The vendor table of the seed, read independently of the catalogue: vendor → row lines."""
    lines = SEED.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Vendor Model Minimum firmware"))
    sections: dict[str, list[str]] = {}
    current = None
    for line in lines[start + 1:]:
        header = next((v for v in VENDORS if line.startswith(v) and not re.search(r"\d", line)), None)
        if header:
            current = header
            sections[current] = []
            if header == "Alcatel-Lucent Enterprise":
                break
            continue
        if current and line.strip():
            sections[current].append(line.strip())
    return sections


def test_repository_copy_of_the_seed_is_current():
    if not SHARED_SEED.exists():
        pytest.skip("shared/seeds is not beside this checkout")
    assert SEED.read_text(encoding="utf-8") == SHARED_SEED.read_text(encoding="utf-8")


def test_seed_table_is_read_as_expected():
    sections = seed_sections()
    assert list(sections) == VENDORS
    # Row counts as printed in the seed, duplicates included.
    assert {v: len(rows) for v, rows in sections.items()} == {
        "Cisco": 18, "Poly": 36, "Yealink": 28, "AudioCodes": 24, "Spectralink": 17, "Ascom": 10,
        "Gigaset": 5, "Algo": 17, "Alcatel-Lucent Enterprise": 0,
    }


@pytest.mark.parametrize("vendor", VENDORS)
def test_model_count_per_vendor_matches_the_seed(vendor):
    rows = seed_sections()[vendor]
    cat = default_catalogue()
    models = cat.models(vendor)
    assert len(models) == len(set(rows)), f"{vendor}: {len(models)} catalogue models, {len(set(rows))} unique rows"
    by_row = {m.entry.source_row: m for m in models}
    counts = collections.Counter(rows)
    for row, count in counts.items():
        assert row in by_row, f"{vendor}: seed row {row!r} has no catalogue model"
        assert by_row[row].entry.table_occurrences == count
    assert set(by_row) == set(counts)


def test_each_model_once_and_the_duplicate_row_is_one_model():
    cat = default_catalogue()
    names = [(m.vendor, m.model) for m in cat]
    assert len(names) == len(set(names))
    hd445 = cat.find("445HD", "AudioCodes")
    assert hd445 is not None and hd445.entry.table_occurrences == 2


def _footnote_in_row(model, row: str) -> bool:
    """Whether the seed row glues the footnote glyph "1" to this model's name."""
    keys = {normalise_model_name(n) for n in (model.model, *model.entry.aliases)}
    tokens = row.split()
    for k in range(1, len(tokens) + 1):
        cand = normalise_model_name(" ".join(tokens[:k]))
        if cand in keys:
            return False
        if any(cand == key + "1" for key in keys):
            return True
    raise AssertionError(f"{model.model}: the name is not found in its seed row {row!r}")


def test_footnote_markers_are_flags_not_part_of_the_name():
    cat = default_catalogue()
    for m in cat:
        if m.entry.source_row is not None:
            assert _footnote_in_row(m, m.entry.source_row) == m.entry.e911, (m.model, m.entry.source_row)
    assert cat.find("VVX 150").entry.e911 and cat.find("VVX 300").entry.e911 is False
    assert cat.find("T30P").model == "T30P" and cat.find("T30").model == "T30"
    assert cat.find("8832").entry.e911 and not cat.find("ATA191-MPP").entry.e911
    assert cat.find("Edge E100").entry.e911
    assert cat.find("RX50").entry.e911 and cat.find("405").entry.e911


def test_every_version_parses_under_its_vendor_scheme():
    for m in default_catalogue():
        for text, family in ((m.entry.min_firmware, m.entry.min_firmware_family), (m.entry.approved_firmware, None)):
            if text is not None:
                parsed = try_parse_firmware(m.firmware_scheme, text, family=family)
                assert not isinstance(parsed, UnparseableFirmware), (m.model, text, parsed)


def test_minimum_above_approved_has_its_reason():
    cat = default_catalogue()
    for model in ("405HD", "440HD", "445HDG", "C450HD", "RX50"):
        entry = cat.find(model, "AudioCodes").entry
        assert entry.min_firmware == "3.2.1" and entry.min_firmware_family == "sfb"
        assert "Skype for Business" in entry.min_above_approved_reason
    assert cat.find("405", "AudioCodes").entry.min_firmware_family is None


def test_ata_ports_from_the_remarks():
    cat = default_catalogue()
    expect = {"MP112": (2, 2), "MP114-FXS": (3, 4), "MP118-FXS-FXO": (6, 8), "MP124-FXS": (18, 24),
              "MP1288-FXS": (288, 288), "MP504": (4, 4), "ATA191-MPP": (2, 2), "OBi 302": (2, 2)}
    for model, (usable, total) in expect.items():
        m = cat.find(model)
        assert (m.ports_usable, m.ports_total) == (usable, total), model
    assert all(m.ports_total is None for m in cat if m.kind != "ata")


def test_vendor_notes_are_data():
    cat = default_catalogue()
    assert cat.vendors["Cisco"].e911_location_discovery == "lldp-only"
    assert cat.vendors["Cisco"].required_family == "mpp"
    assert cat.vendors["Poly"].firmware_auto_install
    assert cat.vendors["AudioCodes"].provisioning_url_required
    assert "AudioCodes OVOC" in cat.vendors["AudioCodes"].management_tools
    assert "Poly Lens" in cat.vendors["Poly"].management_tools
    for vendor in ("Spectralink", "Ascom", "Gigaset"):
        assert cat.vendors[vendor].handset_firmware_over_the_air
    assert cat.vendors["Yealink"].dect_region_specific_firmware
    assert cat.vendors["Alcatel-Lucent Enterprise"].models == []
    esim = cat.vendors["Tango Extend"].esim
    assert esim is not None and len(esim.supported_features) == 7 and len(esim.unsupported_features) == 4
    assert "Teams number" in esim.emergency_calling
    notes = " ".join(cat.find("8851").notes)
    assert "multiplatform" in notes and "LLDP" in notes


@pytest.mark.parametrize("written,expected", [
    ("VVX 450", ("Poly", "VVX 450")), ("vvx450", ("Poly", "VVX 450")), ("Poly VVX_450", ("Poly", "VVX 450")),
    ("N870 IP PRO", ("Gigaset", "N870 IP PRO")), ("n870ippro", ("Gigaset", "N870 IP PRO")),
    ("CP-8865-3PCC", ("Cisco", "8865")), ("Cisco 8832", ("Cisco", "8832")), ("ATA191", ("Cisco", "ATA191-MPP")),
    ("SIP-T46S", ("Yealink", "T46S")), ("Ascom d63", ("Ascom", "d63")), ("IPBSx", ("Ascom", "IPBS")),
    ("mp-114 fxs", ("AudioCodes", "MP114-FXS")), ("Algo 8180G2", ("Algo", "8180g2")),
    ("trio8800", ("Poly", "Trio 8800")), ("Tango Extend eSIM", ("Tango Extend", "eSIM")),
])
def test_models_are_matched_the_way_people_write_them(written, expected):
    m = default_catalogue().find(written)
    assert m is not None, written
    assert (m.vendor, m.model) == expected


def test_unknown_model_gives_closest_names():
    cat = default_catalogue()
    assert cat.find("VVX 455") is None
    assert "Poly VVX 450" in cat.closest("VVX 455")
    assert cat.find("T46S", vendor="Poly") is None
    assert cat.find("T46S", vendor="Nokia") is None


def test_bad_catalogue_file_is_located(tmp_path):
    (tmp_path / "x.yaml").write_text(
        "vendor: X\nfirmware_scheme: generic\nmodels:\n"
        "  - {model: A1, kind: toaster, e911: false, source_row: A1}\n"
        "  - {model: A2, kind: ata, e911: false, source_row: A2, ports_total: 2, ports_usable: 3}\n",
        encoding="utf-8",
    )
    with pytest.raises(DataFileError) as info:
        load_catalogue(tmp_path)
    text = str(info.value)
    assert "x.yaml:4:" in text and "toaster" in text
    assert "x.yaml:5:" in text and "ports_usable (3) exceeds ports_total (2)" in text


def test_unquoted_numeric_version_is_refused(tmp_path):
    (tmp_path / "x.yaml").write_text(
        "vendor: X\nfirmware_scheme: generic\nmodels:\n"
        "  - {model: A1, kind: speaker, e911: false, source_row: A1, min_firmware: 5.3}\n",
        encoding="utf-8",
    )
    with pytest.raises(DataFileError, match=r"x\.yaml:4:.*quoted string"):
        load_catalogue(tmp_path)
