"""Registrations (RFC 3261 §10.3 bindings) as the registrar holds them: contacts, flows, expiry, User-Agent, verdict.

Read-only: a binding exists because a device sent a REGISTER the registrar accepted, never because the API
said so. ``expires_in`` counts down on the event loop's monotonic clock, like the registrar's own expiry.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.control_api.base import PREFIX, check_query, json_response, not_found, op, path_param, ref


def _binding_view(gw, b, now: float) -> dict[str, Any]:
    device = gw.devices.get(b.device_key)
    return {
        "contact": b.uri,
        "expires_in": b.expires_in(now),
        "flow": {"transport": b.flow.transport, "host": b.flow.host, "port": b.flow.port, "text": str(b.flow)},
        "user_agent": b.user_agent,
        "device_key": b.device_key,
        "firmware_verdict": device.verdict if device is not None else None,
        "verdict_reason": device.verdict_reason if device is not None else None,
        "registered_at": b.registered_at,
        "call_id": b.call_id,
        "cseq": b.cseq,
        "instance": b.instance,
        "q": b.q,
    }


def registration_view(gw, username: str, bindings, now: float) -> dict[str, Any]:
    user = gw.directory.user(username)
    return {
        "username": username,
        "number": user.number if user is not None else None,
        "contacts": [_binding_view(gw, b, now) for b in bindings],
    }


def routes(gw) -> list[web.RouteDef]:
    async def list_registrations(request: web.Request) -> web.Response:
        check_query(request, ())
        now = gw.core.now()
        regs = [registration_view(gw, u, bs, now)
                for u, bs in sorted(gw.registrar.all_bindings(now).items()) if bs]
        return json_response({"registrations": regs})

    async def get_registration(request: web.Request) -> web.Response:
        check_query(request, ())
        username = request.match_info["username"]
        if gw.directory.user(username) is None:
            raise not_found("user", username, "path.username")
        now = gw.core.now()
        return json_response(registration_view(gw, username, gw.registrar.bindings(username, now), now))

    return [
        web.get(f"{PREFIX}/registrations", list_registrations),
        web.get(f"{PREFIX}/registrations/{{username}}", get_registration),
    ]


OPENAPI_PATHS: dict[str, Any] = {
    f"{PREFIX}/registrations": {
        "get": op("every user with live bindings", schema={"type": "object", "properties": {
            "registrations": {"type": "array", "items": ref("Registration")}}}),
    },
    f"{PREFIX}/registrations/{{username}}": {
        "get": op("one user's live bindings (an empty list when none)", schema=ref("Registration"),
                  params=[path_param("username", "the user's SIP user name")], errors=(400, 404)),
    },
}

SCHEMAS: dict[str, Any] = {
    "Registration": {
        "type": "object",
        "properties": {
            "username": {"type": "string"}, "number": {"type": ["string", "null"]},
            "contacts": {"type": "array", "items": {"type": "object", "properties": {
                "contact": {"type": "string"}, "expires_in": {"type": "integer"},
                "flow": {"type": "object"}, "user_agent": {"type": ["string", "null"]},
                "device_key": {"type": "string"}, "firmware_verdict": {"type": ["string", "null"]},
                "verdict_reason": {"type": ["string", "null"]}, "registered_at": {"type": "number"},
                "call_id": {"type": "string"}, "cseq": {"type": "integer"},
                "instance": {"type": ["string", "null"]}, "q": {"type": "number"},
            }}},
        },
    },
}
