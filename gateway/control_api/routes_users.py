"""Users of the tenant: create, list, read, change, delete; calling policy, Teams client, presence.

A user is what SIP Gateway pairs a device with: a phone number, a display name, SIP digest credentials (kept
only as HA1 digests), the two calling-policy switches SIP Gateway depends on (``AllowSIPDevicesCalling``,
``AllowCallRedirect``) and whether the user also has a Teams client. The policy and presence a user is created
with are its *baseline*: ``POST /api/v1/reset`` puts them back after a test changed them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, model_validator

from gateway.control_api.base import (
    PREFIX,
    ApiError,
    Closed,
    check_query,
    json_response,
    not_found,
    op,
    path_param,
    read_body,
    ref,
)
from gateway.services.model import CallingPolicy, PairState, Presence, User

USERNAME = r"^[A-Za-z0-9._+-]{1,64}$"
NUMBER = r"^\+?[0-9]{3,15}$"
PresenceName = Literal["available", "busy", "dnd", "away", "offline"]
_BASELINE = "baseline/"


class Policy(Closed):
    allow_sip_devices_calling: bool = True
    allow_call_redirect: bool = True


class PolicyPatch(Closed):
    allow_sip_devices_calling: bool = Field(default=None)  # type: ignore[assignment]
    allow_call_redirect: bool = Field(default=None)  # type: ignore[assignment]


class UserCreate(Closed):
    username: str = Field(pattern=USERNAME, description="SIP digest user name")
    name: str = Field(min_length=1, max_length=200)
    password: str | None = Field(default=None, min_length=1, max_length=200,
                                 description="SIP password (stored only as digests); omit for no SIP access")
    number: str | None = Field(default=None, pattern=NUMBER, description="E.164 phone number")
    policy: Policy = Field(default_factory=Policy)
    teams_client: bool = False
    voicemail: bool = True
    common_area: bool = False
    presence: PresenceName = "available"


class UserPatch(Closed):
    name: str = Field(default=None, min_length=1, max_length=200)  # type: ignore[assignment]
    password: str = Field(default=None, min_length=1, max_length=200)  # type: ignore[assignment]
    number: str | None = Field(default=None, pattern=NUMBER, description="null removes the number")
    policy: PolicyPatch = Field(default=None)  # type: ignore[assignment]
    teams_client: bool = Field(default=None)  # type: ignore[assignment]
    voicemail: bool = Field(default=None)  # type: ignore[assignment]
    common_area: bool = Field(default=None)  # type: ignore[assignment]
    presence: PresenceName = Field(default=None)  # type: ignore[assignment]

    @model_validator(mode="after")
    def _not_empty(self) -> UserPatch:
        if not self.model_fields_set:
            raise ValueError("nothing to change: give at least one field")
        return self


MODELS = (Policy, PolicyPatch, UserCreate, UserPatch)


# --- views and baseline -------------------------------------------------------------------------------------------

def user_view(gw, user: User) -> dict[str, Any]:
    now = gw.core.now()
    return {
        "username": user.username,
        "name": user.name,
        "number": user.number,
        "policy": {"allow_sip_devices_calling": user.policy.allow_sip_devices_calling,
                   "allow_call_redirect": user.policy.allow_call_redirect},
        "teams_client": user.teams_client,
        "voicemail": user.voicemail,
        "common_area": user.common_area,
        "presence": user.presence.value,
        "has_password": bool(user.ha1),
        "devices": [d.key for d in gw.devices.all() if d.username == user.username],
        "registered_contacts": len(gw.registrar.bindings(user.username, now)),
    }


def record_baseline(gw, user: User) -> None:
    gw.store.set_setting(_BASELINE + user.username, json.dumps({
        "allow_sip_devices_calling": user.policy.allow_sip_devices_calling,
        "allow_call_redirect": user.policy.allow_call_redirect,
        "presence": user.presence.value,
    }))


def ensure_baselines(gw) -> None:
    """Users that came from a tenant file get their current policy as baseline (once)."""
    for user in gw.directory.users():
        if not gw.store.setting(_BASELINE + user.username):
            record_baseline(gw, user)


def restore_baselines(gw) -> list[str]:
    """Put every user's policy and presence back to its baseline; returns the users that changed.

    A user added without the API (by the harness straight into the directory) has no baseline yet: its state
    at this reset becomes its baseline, so the reset before the first test records what the lab set up.
    """
    changed = []
    for user in gw.directory.users():
        raw = gw.store.setting(_BASELINE + user.username)
        if not raw:
            record_baseline(gw, user)
            continue
        base = json.loads(raw)
        policy = CallingPolicy(bool(base["allow_sip_devices_calling"]), bool(base["allow_call_redirect"]))
        presence = Presence(base["presence"])
        if user.policy != policy or user.presence is not presence:
            gw.directory.put_user(replace(user, policy=policy, presence=presence))
            changed.append(user.username)
    return changed


def _require(gw, username: str) -> User:
    user = gw.directory.user(username)
    if user is None:
        raise not_found("user", username, "path.username")
    return user


def _check_number_free(gw, number: str | None, username: str) -> None:
    if number is None:
        return
    other = gw.directory.by_number(number)
    if other is not None and other.username != username:
        raise ApiError(409, "conflict", f"number {number} is already assigned to user {other.username!r}",
                       "body.number")


# --- handlers -------------------------------------------------------------------------------------------------

def routes(gw) -> list[web.RouteDef]:
    async def list_users(request: web.Request) -> web.Response:
        check_query(request, ())
        return json_response({"users": [user_view(gw, u) for u in gw.directory.users()]})

    async def create_user(request: web.Request) -> web.Response:
        check_query(request, ())
        body = await read_body(request, UserCreate)
        if gw.directory.user(body.username) is not None:
            raise ApiError(409, "conflict", f"user {body.username!r} already exists; PATCH it to change it",
                           "body.username")
        _check_number_free(gw, body.number, body.username)
        user = User(username=body.username, name=body.name, number=body.number,
                    policy=CallingPolicy(body.policy.allow_sip_devices_calling, body.policy.allow_call_redirect),
                    teams_client=body.teams_client, voicemail=body.voicemail, common_area=body.common_area,
                    presence=Presence(body.presence))
        saved = gw.directory.put_user(user, password=body.password)
        record_baseline(gw, saved)
        return json_response(user_view(gw, saved), status=201)

    async def get_user(request: web.Request) -> web.Response:
        check_query(request, ())
        return json_response(user_view(gw, _require(gw, request.match_info["username"])))

    async def patch_user(request: web.Request) -> web.Response:
        check_query(request, ())
        user = _require(gw, request.match_info["username"])
        body = await read_body(request, UserPatch)
        if not gw.store.setting(_BASELINE + user.username):
            record_baseline(gw, user)  # the state before the first change through the API
        fields = body.model_fields_set
        changes: dict[str, Any] = {}
        if "number" in fields:
            _check_number_free(gw, body.number, user.username)
            changes["number"] = body.number
        for name in ("name", "teams_client", "voicemail", "common_area"):
            if name in fields:
                changes[name] = getattr(body, name)
        if "presence" in fields:
            changes["presence"] = Presence(body.presence)
        if "policy" in fields:
            p = body.policy
            changes["policy"] = CallingPolicy(
                p.allow_sip_devices_calling if "allow_sip_devices_calling" in p.model_fields_set
                else user.policy.allow_sip_devices_calling,
                p.allow_call_redirect if "allow_call_redirect" in p.model_fields_set
                else user.policy.allow_call_redirect,
            )
        password = body.password if "password" in fields else None
        saved = gw.directory.put_user(replace(user, **changes), password=password)
        return json_response(user_view(gw, saved))

    async def delete_user(request: web.Request) -> web.Response:
        check_query(request, ())
        user = _require(gw, request.match_info["username"])
        # Its devices are signed out (unpaired); they stay known to the tenant.
        for device in gw.devices.all():
            if device.username == user.username:
                gw.devices.put(replace(device, username=None, pair_state=PairState.UNPAIRED))
        gw.directory.delete_user(user.username)
        gw.store.set_setting(_BASELINE + user.username, "")  # a user of that name added later starts afresh
        gw.registrar.remove_user(user.username, gw.core.now())
        return json_response({"deleted": user.username})

    return [
        web.get(f"{PREFIX}/users", list_users),
        web.post(f"{PREFIX}/users", create_user),
        web.get(f"{PREFIX}/users/{{username}}", get_user),
        web.patch(f"{PREFIX}/users/{{username}}", patch_user),
        web.delete(f"{PREFIX}/users/{{username}}", delete_user),
    ]


_USERNAME = path_param("username", "the user's SIP user name")

OPENAPI_PATHS: dict[str, Any] = {
    f"{PREFIX}/users": {
        "get": op("list the tenant's users", schema={"type": "object", "properties": {
            "users": {"type": "array", "items": ref("User")}}}),
        "post": op("create a user", ok=201, schema=ref("User"), body=UserCreate, errors=(400, 409)),
    },
    f"{PREFIX}/users/{{username}}": {
        "get": op("one user", schema=ref("User"), params=[_USERNAME], errors=(400, 404)),
        "patch": op("change a user (only the fields given)", schema=ref("User"), body=UserPatch,
                    params=[_USERNAME], errors=(400, 404, 409)),
        "delete": op("delete a user; its devices are signed out and its registrations dropped", params=[_USERNAME],
                     errors=(400, 404)),
    },
}

SCHEMAS: dict[str, Any] = {
    "User": {
        "type": "object",
        "properties": {
            "username": {"type": "string"}, "name": {"type": "string"},
            "number": {"type": ["string", "null"]},
            "policy": ref("Policy"),
            "teams_client": {"type": "boolean"}, "voicemail": {"type": "boolean"},
            "common_area": {"type": "boolean"},
            "presence": {"type": "string", "enum": ["available", "busy", "dnd", "away", "offline"]},
            "has_password": {"type": "boolean"},
            "devices": {"type": "array", "items": {"type": "string"}},
            "registered_contacts": {"type": "integer"},
        },
    },
}
