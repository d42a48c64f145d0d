"""Capabilities drive "not applicable" results: each n/a has the catalogue's reason."""

from __future__ import annotations

import pytest

from device_profiles.capabilities import UnknownFeature, applicability, feature_matrix, kind_notes, line_source
from device_profiles.catalogue import default_catalogue

cat = default_catalogue()


def model(name, vendor=None):
    m = cat.find(name, vendor)
    assert m is not None, name
    return m


def test_features_follow_the_seed_order():
    assert cat.feature_ids()[:4] == ["make_calls", "receive_calls", "multiple_calls", "hold_resume"]
    assert len(cat.feature_ids()) == 16
    assert "dnd" in cat.feature_ids() and "dynamic_e911" in cat.feature_ids()


def test_desk_phone_has_every_feature_when_marked_for_e911():
    matrix = feature_matrix(model("VVX 450"))
    assert all(matrix.values()), [f for f, a in matrix.items() if not a]


def test_e911_follows_the_footnote():
    a = applicability(model("VVX 300"), "dynamic_e911")
    assert not a and "footnote 1" in a.reason and "static emergency address" in a.reason
    assert applicability(model("8832"), "dynamic_e911")
    assert "LLDP only" in " ".join(kind_notes(model("8832")))


def test_paging_adapter_does_not_transfer():
    a = applicability(model("8301", "Algo"), "call_transfer")
    assert not a and a.reason == "A paging adapter does not transfer calls."
    assert applicability(model("8301", "Algo"), "receive_calls")


def test_tango_extend_not_applicable_exactly_where_the_seed_says():
    esim = model("eSIM", "Tango Extend")
    matrix = feature_matrix(esim)
    na = {f for f, a in matrix.items() if not a}
    assert na == {"multiple_calls", "mute_unmute", "call_transfer", "call_queues", "dynamic_e911"}
    assert "mobile dialler menu" in matrix["call_transfer"].reason
    assert "mobile network" in matrix["dynamic_e911"].reason
    assert not applicability(esim, "sign_in_out.remote")
    assert applicability(esim, "sign_in_out.local")
    assert applicability(esim, "teams_meetings.dial_in")
    assert not applicability(esim, "teams_meetings.dial_out")


def test_ata_lines_and_local_sign_in():
    ata = model("MP114-FXS")
    assert line_source(ata) == "usable_ports"
    assert not applicability(ata, "sign_in_out.local")
    assert applicability(ata, "sign_in_out.remote")
    assert not applicability(ata, "mute_unmute")


def test_dect_systems_take_lines_from_handsets():
    assert line_source(model("Rove B4")) == "handsets"
    assert line_source(model("IP-DECT Server 400")) == "handsets"
    assert line_source(model("VVX 450")) is None
    ap = applicability(model("IPBS"), "make_calls")
    assert not ap and "access point" in ap.reason
    assert "over the air" in " ".join(kind_notes(model("7742")))


def test_unknown_feature():
    with pytest.raises(UnknownFeature, match="known features: make_calls"):
        applicability(model("VVX 450"), "teleport")


def test_every_kind_of_the_schema_has_capabilities():
    from device_profiles.schema import DEVICE_KINDS

    assert set(cat.capabilities.kinds) == set(DEVICE_KINDS)
