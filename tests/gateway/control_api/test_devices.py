"""Devices through the control API: enrolment by MAC with a catalogue verdict, pair state, bad input."""

from __future__ import annotations

import pytest

from tests.gateway.control_api.conftest import assert_error


@pytest.fixture
def avery(api):
    return api.create_user("avery", "Avery Chen", password="pw", number="+14255550101")


def test_enrol_by_mac_gets_a_catalogue_verdict(api, gateway, avery):
    dev = api.create_device("00-04-F2-8E-5A-79", model="vvx450", firmware="5.9.4.3247", username="avery")
    assert dev["key"] == dev["mac"] == "0004f28e5a79"
    assert dev["vendor"] == "Poly" and dev["firmware_verdict"] == "below_minimum"
    assert "5.9.5" in dev["verdict_reason"]
    assert dev["pair_state"] == "paired" and dev["registered"] is False
    assert gateway.store.device("0004f28e5a79").verdict == "below_minimum"
    assert api.user("avery")["devices"] == ["0004f28e5a79"]
    assert api.devices(username="avery") == [dev]
    assert api.devices(pair_state="unpaired") == []


def test_patch_pair_state_model_and_delete(api, gateway, avery):
    api.create_device("0004f28e5a79")
    assert api.device("0004f28e5a79")["pair_state"] == "unpaired"
    dev = api.update_device("0004f28e5a79", username="avery")
    assert dev["pair_state"] == "paired" and dev["username"] == "avery"
    dev = api.update_device("0004f28e5a79", model="VVX 450", firmware="5.9.5.0614")
    assert dev["firmware_verdict"] == "supported"
    dev = api.update_device("0004f28e5a79", pair_state="offboarded")
    assert gateway.store.device("0004f28e5a79").pair_state.value == "offboarded"
    dev = api.update_device("0004f28e5a79", username=None)
    assert dev["pair_state"] == "unpaired" and dev["username"] is None
    assert api.delete_device("0004f28e5a79") == {"deleted": "0004f28e5a79"}
    assert api.devices() == [] and gateway.store.device("0004f28e5a79") is None


@pytest.mark.parametrize(("body", "status", "where"), [
    ({"mac": "not-a-mac"}, 400, "body.mac"),
    ({"mac": 1234}, 400, "body.mac"),
    ({"mac": "0004f28e5a7a", "username": "nobody"}, 400, "body.username"),
    ({"mac": "0004f28e5a7a", "firmware": "5.9.5"}, 400, "body"),
    ({"mac": "0004f28e5a7a", "pair_state": "paired"}, 400, "body.pair_state"),
    ({"mac": "0004f28e5a7a", "pair_state": "lost"}, 400, "body.pair_state"),
    ({"mac": "0004f28e5a7a", "serial": "x"}, 400, "body.serial"),
    ({"mac": "00:04:f2:8e:5a:79"}, 409, "body.mac"),
])
def test_bad_enrolments_change_nothing(api, raw, avery, body, status, where):
    api.create_device("0004f28e5a79", model="VVX 450", firmware="5.9.5.0614")
    before = api.devices()
    assert_error(raw.post("/devices", json=body), status, where)
    assert api.devices() == before


def test_bad_patches_and_unknown_keys(api, raw, avery):
    api.create_device("0004f28e5a79")
    before = api.device("0004f28e5a79")
    assert_error(raw.patch("/devices/0004f28e5a79", json={"username": "nobody"}), 400, "body.username")
    assert_error(raw.patch("/devices/0004f28e5a79", json={"pair_state": "paired"}), 400, "body.pair_state")
    assert_error(raw.patch("/devices/0004f28e5a79", json={"firmware": "5.9.5"}), 400, "body.firmware")
    assert_error(raw.patch("/devices/0004f28e5a79", json={"pair_state": 3}), 400, "body.pair_state")
    assert_error(raw.patch("/devices/0004f28e5a79", content=b"{"), 400, "body", "malformed_json")
    assert api.device("0004f28e5a79") == before
    assert_error(raw.get("/devices/ffffffffffff"), 404, "path.key", "not_found")
    assert_error(raw.patch("/devices/ffffffffffff", json={"username": "avery"}), 404, "path.key")
    assert_error(raw.delete("/devices/ffffffffffff"), 404, "path.key")
    assert_error(raw.get("/devices", params={"pair_state": "lost"}), 400, "query.pair_state")
