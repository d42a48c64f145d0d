"""Users through the control API: CRUD, policy, presence, and bad input that changes nothing."""

from __future__ import annotations

import pytest

from tests.gateway.control_api.conftest import assert_error, error_of

AVERY = {"username": "avery", "name": "Avery Chen", "password": "pw-avery", "number": "+14255550101"}


def test_create_list_get(api, gateway):
    created = api.create_user("avery", "Avery Chen", password="pw-avery", number="+14255550101",
                              allow_call_redirect=False, teams_client=True)
    assert created["username"] == "avery"
    assert created["policy"] == {"allow_sip_devices_calling": True, "allow_call_redirect": False}
    assert created["has_password"] is True and created["teams_client"] is True
    assert [u["username"] for u in api.users()] == ["avery"]
    assert api.user("avery") == created
    # Read back from the gateway's own directory and store, not only from the API's answer.
    stored = gateway.store.user("avery")
    assert stored.number == "+14255550101" and stored.policy.allow_call_redirect is False
    assert stored.ha1 and "pw-avery" not in str(stored.ha1)


def test_patch_changes_only_given_fields(api, gateway):
    api.create_user("avery", "Avery Chen", password="pw", number="+14255550101")
    out = api.update_user("avery", allow_sip_devices_calling=False, presence="dnd")
    assert out["policy"] == {"allow_sip_devices_calling": False, "allow_call_redirect": True}
    assert out["presence"] == "dnd" and out["name"] == "Avery Chen" and out["number"] == "+14255550101"
    out = api.update_user("avery", number=None, name="Avery C.")
    assert out["number"] is None and out["name"] == "Avery C."
    assert gateway.directory.user("avery").number is None
    ha1 = gateway.store.user("avery").ha1
    api.update_user("avery", password="new-password")
    assert gateway.store.user("avery").ha1 != ha1


def test_delete_user_unpairs_its_devices(api, gateway):
    api.create_user("avery", "Avery Chen", password="pw")
    api.create_device("00:04:f2:8e:5a:79", model="VVX 450", firmware="5.9.5.0614", username="avery")
    assert api.delete_user("avery") == {"deleted": "avery"}
    assert api.users() == []
    assert gateway.store.user("avery") is None
    dev = api.device("0004f28e5a79")
    assert dev["username"] is None and dev["pair_state"] == "unpaired"
    assert error_of(lambda: api.user("avery")).status == 404


def test_reset_restores_the_baseline_policy_and_presence(api):
    api.create_user("avery", "Avery Chen", password="pw", allow_call_redirect=False)
    api.update_user("avery", allow_call_redirect=True, allow_sip_devices_calling=False, presence="dnd")
    result = api.reset()
    assert result["policies_restored"] == ["avery"]
    user = api.user("avery")
    assert user["policy"] == {"allow_sip_devices_calling": True, "allow_call_redirect": False}
    assert user["presence"] == "available"


@pytest.mark.parametrize(("body", "where"), [
    ({**AVERY, "name": 5}, "body.name"),
    ({**AVERY, "policy": {"allow_call_redirect": "yes"}}, "body.policy.allow_call_redirect"),
    ({**AVERY, "teams_client": 1}, "body.teams_client"),
    ({**AVERY, "colour": "blue"}, "body.colour"),
    ({**AVERY, "policy": {"allow_everything": True}}, "body.policy.allow_everything"),
    ({**AVERY, "number": "4255550101x"}, "body.number"),
    ({**AVERY, "username": "has space"}, "body.username"),
    ({**AVERY, "presence": "asleep"}, "body.presence"),
    ({"name": "No Username"}, "body.username"),
])
def test_create_rejects_bad_fields_and_writes_nothing(api, raw, gateway, body, where):
    api.create_user("blake", "Blake Rivera", password="pw", number="+14255550102")
    before = api.users()
    err = assert_error(raw.post("/users", json=body), 400, where, "invalid_request")
    assert where in err["message"]
    assert api.users() == before
    assert gateway.store.user("avery") is None


@pytest.mark.parametrize(("content", "where"), [
    (b'{"username": "avery", ', "body"),
    (b"", "body"),
    (b"[1, 2]", "body"),
    (b"\xff\xfe", "body"),
])
def test_malformed_bodies(api, raw, content, where):
    err = assert_error(raw.post("/users", content=content, headers={"content-type": "application/json"}), 400,
                       where)
    assert err["code"] in ("malformed_json", "invalid_request")
    assert api.users() == []


def test_malformed_json_says_where_in_the_text(raw):
    err = assert_error(raw.post("/users", content=b'{\n  "username": "a",\n  oops\n}'), 400, "body")
    assert "line 3" in err["message"]


def test_conflicts_and_unknown_users(api, raw):
    api.create_user("avery", "Avery Chen", password="pw", number="+14255550101")
    assert_error(raw.post("/users", json=AVERY), 409, "body.username", "conflict")
    api.create_user("blake", "Blake Rivera", password="pw", number="+14255550102")
    before = api.users()
    assert_error(raw.patch("/users/blake", json={"number": "14255550101"}), 409, "body.number", "conflict")
    assert_error(raw.patch("/users/blake", json={}), 400, "body", "invalid_request")
    assert_error(raw.patch("/users/blake", json={"name": None}), 400, "body.name")
    assert_error(raw.patch("/users/blake", json={"username": "x"}), 400, "body.username")
    assert_error(raw.patch("/users/nobody", json={"name": "X"}), 404, "path.username", "not_found")
    assert_error(raw.get("/users/nobody"), 404, "path.username")
    assert_error(raw.delete("/users/nobody"), 404, "path.username")
    assert_error(raw.get("/users", params={"verbose": "1"}), 400, "query.verbose")
    assert api.users() == before


def test_unknown_route_and_method(raw):
    assert_error(raw.get("/nothing-here"), 404, "path", "not_found")
    assert_error(raw.put("/users"), 405, "method", "method_not_allowed")


def test_oversized_body_is_refused(api, raw):
    big = b'{"username": "avery", "name": "' + b"x" * (300 * 1024) + b'"}'
    assert_error(raw.post("/users", content=big), 413, "body", "body_too_large")
    assert api.users() == []


def test_users_added_without_the_api_get_a_baseline(api, gateway):
    from gateway.services.model import CallingPolicy, Presence, User

    def put(user):
        gateway.call_soon(gateway.directory.put_user, user)

    put(User("drew", "Drew", "+14255550109", policy=CallingPolicy(True, False)))
    api.update_user("drew", allow_call_redirect=True)  # first change through the API: baseline taken before it
    assert api.reset()["policies_restored"] == ["drew"]
    assert api.user("drew")["policy"]["allow_call_redirect"] is False
    put(User("erin", "Erin", "+14255550110"))
    api.reset()  # erin's state now becomes her baseline
    gateway.call_soon(gateway.directory.set_presence, "erin", Presence.DND)  # e.g. the *30* feature code
    assert api.reset()["policies_restored"] == ["erin"]
    assert api.user("erin")["presence"] == "available"
