"""Calls in the B2BUA: list (live, and ended ones on request), read one, hang one up from the gateway side.

Times are wall-clock seconds since the epoch on the host's clock (like the trace's), converted from the event
loop's monotonic clock the B2BUA keeps them in.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from gateway.control_api.base import (
    PREFIX,
    ApiError,
    check_query,
    json_response,
    not_found,
    op,
    path_param,
    query_bool,
    query_param,
    ref,
)

_OFFSETS: dict[int, float] = {}


def _wall(gw, t: float | None) -> float | None:
    """Loop time → host wall clock, with one offset per gateway so a time reads the same on every request."""
    if t is None:
        return None
    offset = _OFFSETS.get(id(gw))
    if offset is None:
        offset = _OFFSETS[id(gw)] = time.time() - gw.core.now()
    return round(t + offset, 6)


def call_view(gw, rec) -> dict[str, Any]:
    return {
        "id": rec.id,
        "caller": rec.caller,
        "callee": rec.callee,
        "state": rec.state,
        "sip_call_ids": [rec.a_call_id, *rec.b_call_ids],
        "a_call_id": rec.a_call_id,
        "b_call_ids": list(rec.b_call_ids),
        "answered_by": rec.answered_by,
        "end_reason": rec.end_reason,
        "created": _wall(gw, rec.created),
        "answered": _wall(gw, rec.answered),
        "ended": _wall(gw, rec.ended),
    }


def find_record(gw, call_id: str):
    """The live call's record, else the latest ended one with that id, else None."""
    b2bua = gw.core.b2bua
    call = b2bua.calls.get(call_id)
    if call is not None:
        return call.record()
    for rec in reversed(b2bua.history):
        if rec.id == call_id:
            return rec
    return None


def routes(gw) -> list[web.RouteDef]:
    async def list_calls(request: web.Request) -> web.Response:
        check_query(request, ("ended",))
        b2bua = gw.core.b2bua
        calls = [call_view(gw, c.record()) for c in list(b2bua.calls.values())]
        if query_bool(request, "ended"):
            calls = [call_view(gw, r) for r in b2bua.history] + calls
        return json_response({"calls": calls})

    async def get_call(request: web.Request) -> web.Response:
        check_query(request, ())
        rec = find_record(gw, request.match_info["id"])
        if rec is None:
            raise not_found("call", request.match_info["id"], "path.id")
        return json_response(call_view(gw, rec))

    async def hangup(request: web.Request) -> web.Response:
        check_query(request, ())
        call_id = request.match_info["id"]
        if call_id not in gw.core.b2bua.calls:
            if find_record(gw, call_id) is not None:
                raise ApiError(409, "call_ended", f"call {call_id!r} has already ended", "path.id")
            raise not_found("call", call_id, "path.id")
        gw.core.b2bua.hangup(call_id)
        rec = find_record(gw, call_id)
        return json_response(call_view(gw, rec))

    return [
        web.get(f"{PREFIX}/calls", list_calls),
        web.get(f"{PREFIX}/calls/{{id}}", get_call),
        web.post(f"{PREFIX}/calls/{{id}}/hangup", hangup),
    ]


_ID = path_param("id", "the B2BUA's call id, e.g. c12")

OPENAPI_PATHS: dict[str, Any] = {
    f"{PREFIX}/calls": {
        "get": op("calls in the B2BUA", schema={"type": "object", "properties": {
            "calls": {"type": "array", "items": ref("Call")}}},
            params=[query_param("ended", "also list ended calls (true/false)", "boolean")]),
    },
    f"{PREFIX}/calls/{{id}}": {
        "get": op("one call, live or ended", schema=ref("Call"), params=[_ID], errors=(400, 404)),
    },
    f"{PREFIX}/calls/{{id}}/hangup": {
        "post": op("hang a call up from the gateway (BYE on both legs, or CANCEL before answer)",
                   schema=ref("Call"), params=[_ID], errors=(400, 404, 409)),
    },
}

SCHEMAS: dict[str, Any] = {
    "Call": {
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "caller": {"type": "string"}, "callee": {"type": "string"},
            "state": {"type": "string", "enum": ["trying", "early", "confirmed", "ended"]},
            "sip_call_ids": {"type": "array", "items": {"type": "string"}},
            "a_call_id": {"type": "string"}, "b_call_ids": {"type": "array", "items": {"type": "string"}},
            "answered_by": {"type": ["string", "null"]}, "end_reason": {"type": ["string", "null"]},
            "created": {"type": "number"}, "answered": {"type": ["number", "null"]},
            "ended": {"type": ["number", "null"]},
        },
    },
}
