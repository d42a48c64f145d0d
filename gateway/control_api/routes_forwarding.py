"""Call-forwarding rules of the tenant's users (what ``*32*``–``*35*`` set from a device).

``GET /users/{username}/forwarding`` → ``{"rules": [{"kind", "target", "seconds"?}], "allow_call_redirect"}``;
``PUT`` with one rule (``{"kind": "always"|"no_answer"|"simultaneous", "target": "+1425…", "seconds": 15}``;
``seconds`` only for ``no_answer``, 5–120) adds or replaces the rule of that kind (``always`` and ``no_answer``
exclude each other); ``DELETE`` clears every rule, or one with ``?kind=``. Rules are stored whatever the
policy; they take effect only while the user's calling policy allows call redirect (README).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from gateway.control_api.base import (
    PREFIX,
    ApiError,
    Closed,
    check_query,
    json_response,
    op,
    path_param,
    query_param,
    read_body,
)
from gateway.services.forwarding import KINDS, ForwardingError, check_rule


class ForwardingRuleBody(Closed):
    kind: str = Field(description="always | no_answer | simultaneous")
    target: str = Field(description="the number calls go to (tenant or PSTN)")
    seconds: int | None = Field(default=None, description="no_answer only: seconds of ringing first (5-120)")


def _svc(gw):
    svc = getattr(gw, "forwarding", None)
    if svc is None:
        raise ApiError(409, "not_started", "the forwarding service is not running (the gateway is not started)")
    return svc


def _user(gw, request: web.Request):
    username = request.match_info["username"]
    user = gw.directory.user(username)
    if user is None:
        raise ApiError(404, "not_found", f"no user {username!r}", "path.username")
    return user


def view(gw, user) -> dict[str, Any]:
    return {"username": user.username, "rules": [r.to_json() for r in _svc(gw).rules(user.username)],
            "allow_call_redirect": user.policy.allow_call_redirect}


def routes(gw) -> list[web.RouteDef]:
    async def get_rules(request: web.Request) -> web.Response:
        check_query(request, ())
        return json_response(view(gw, _user(gw, request)))

    async def put_rule(request: web.Request) -> web.Response:
        check_query(request, ())
        user = _user(gw, request)
        body = await read_body(request, ForwardingRuleBody)
        try:
            rule = check_rule(body.kind, body.target, body.seconds)
        except ForwardingError as exc:
            raise ApiError(400, "invalid_request", str(exc), exc.where) from None
        target_user = gw.directory.by_number(rule.target)
        if target_user is None and not gw.directory.is_pstn(rule.target):
            raise ApiError(400, "invalid_request", f"{rule.target} is neither a tenant number nor a PSTN route",
                           "body.target")
        if target_user is not None and target_user.username == user.username:
            raise ApiError(400, "invalid_request", f"{rule.target} is {user.username}'s own number", "body.target")
        _svc(gw).set_rule(user.username, rule)
        return json_response(view(gw, user))

    async def delete_rules(request: web.Request) -> web.Response:
        check_query(request, ("kind",))
        user = _user(gw, request)
        kind = request.query.get("kind")
        if kind is not None and kind not in KINDS:
            raise ApiError(400, "invalid_request", f"kind {kind!r} is not one of {list(KINDS)}", "query.kind")
        _svc(gw).clear(user.username, kind)
        return json_response(view(gw, user))

    path = f"{PREFIX}/users/{{username}}/forwarding"
    return [web.get(path, get_rules), web.put(path, put_rule), web.delete(path, delete_rules)]


_U = path_param("username", "the user's SIP user name")

OPENAPI_PATHS: dict[str, Any] = {
    f"{PREFIX}/users/{{username}}/forwarding": {
        "get": op("a user's forwarding rules", schema={"type": "object"}, params=[_U], errors=(400, 404)),
        "put": op("add or replace one forwarding rule", schema={"type": "object"}, body=ForwardingRuleBody,
                  params=[_U], errors=(400, 404)),
        "delete": op("clear forwarding rules (all, or ?kind=)", schema={"type": "object"},
                     params=[_U, query_param("kind", "only this kind of rule")], errors=(400, 404)),
    },
}

MODELS = (ForwardingRuleBody,)
