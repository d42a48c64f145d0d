"""Teams meetings: definitions, roster, and what a participant does in the Teams client.

``GET /meetings``; ``PUT /meetings/{id}`` (``conference_id``, ``organiser``, ``participants``, ``subject``);
``GET /meetings/{id}`` the meeting with its roster (every leg: kind, state, joined, left); ``DELETE`` ends it.
Actions (each answers 201 with the new leg, ringing; its state is read back from the roster):
``POST /meetings/{id}/join {"user"}`` (the user's Teams client joins), ``/dial-out {"by", "number"}``,
``/request-to-join {"by", "user"}``, ``/guests {"by", "number"}``. ``GET /meetings/access`` names the access
number and the conference ids entered at its IVR.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from gateway.control_api.base import PREFIX, ApiError, check_query, json_response, op, path_param, read_json
from gateway.services.meetings import ACCESS_NUMBER, MeetingError


def _svc(gw):
    svc = getattr(gw, "meetings", None)
    if svc is None:
        raise ApiError(409, "not_started", "the meetings service is not running (the gateway is not started)")
    return svc


def _err(exc: MeetingError) -> ApiError:
    return ApiError(exc.status, exc.code, str(exc), exc.where)


async def _body(request: web.Request, fields: set[str]) -> dict[str, Any]:
    doc = await read_json(request)
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object", "body")
    for key in doc:
        if key not in fields:
            raise ApiError(400, "invalid_request", f"unknown field {key!r} (known: {', '.join(sorted(fields))})",
                           f"body.{key}")
    for key in fields:
        if key not in doc:
            raise ApiError(400, "invalid_request", f"{key} is required", f"body.{key}")
    return doc


def routes(gw) -> list[web.RouteDef]:
    async def list_meetings(request: web.Request) -> web.Response:
        check_query(request, ())
        return json_response({"meetings": [m.to_json() for m in _svc(gw).meetings.values()]})

    async def access(request: web.Request) -> web.Response:
        check_query(request, ())
        return json_response({"access_number": ACCESS_NUMBER, "attempts": list(_svc(gw).attempts)})

    async def put_meeting(request: web.Request) -> web.Response:
        check_query(request, ())
        doc = await read_json(request)
        mid = request.match_info["id"]
        if isinstance(doc, dict):
            if "id" in doc and doc["id"] != mid:
                raise ApiError(400, "invalid_request", f"body id {doc['id']!r} differs from the path's {mid!r}",
                               "body.id")
            doc = {**doc, "id": mid}
        try:
            _svc(gw).put(doc)
            ready = _svc(gw).ensure_mixer()
            if ready is not None:  # the access number can be dialled as soon as the answer arrives
                await asyncio.wrap_future(ready)
            return json_response(_svc(gw).view(mid))
        except MeetingError as exc:
            raise _err(exc) from None

    async def get_meeting(request: web.Request) -> web.Response:
        check_query(request, ())
        try:
            return json_response(_svc(gw).view(request.match_info["id"]))
        except MeetingError as exc:
            raise _err(exc) from None

    async def delete_meeting(request: web.Request) -> web.Response:
        check_query(request, ())
        try:
            _svc(gw).delete(request.match_info["id"])
        except MeetingError as exc:
            raise _err(exc) from None
        return json_response({"deleted": request.match_info["id"]})

    def action(fields: set[str], start):
        async def handler(request: web.Request) -> web.Response:
            check_query(request, ())
            doc = await _body(request, fields)
            try:
                fut = start(request.match_info["id"], doc)
                leg = await asyncio.wrap_future(fut)
            except MeetingError as exc:
                raise _err(exc) from None
            except RuntimeError as exc:
                raise ApiError(409, "no_capacity", str(exc), "path.id") from None
            return json_response(leg.to_json(), status=201)
        return handler

    svc = lambda: _svc(gw)  # noqa: E731 - resolved per request
    return [
        web.get(f"{PREFIX}/meetings", list_meetings),
        web.get(f"{PREFIX}/meetings/access", access),
        web.put(f"{PREFIX}/meetings/{{id}}", put_meeting),
        web.get(f"{PREFIX}/meetings/{{id}}", get_meeting),
        web.delete(f"{PREFIX}/meetings/{{id}}", delete_meeting),
        web.post(f"{PREFIX}/meetings/{{id}}/join", action({"user"}, lambda mid, d: svc().join_teams(mid, d["user"]))),
        web.post(f"{PREFIX}/meetings/{{id}}/dial-out",
                 action({"by", "number"}, lambda mid, d: svc().dial_out(mid, d["by"], d["number"]))),
        web.post(f"{PREFIX}/meetings/{{id}}/request-to-join",
                 action({"by", "user"}, lambda mid, d: svc().request_to_join(mid, d["by"], d["user"]))),
        web.post(f"{PREFIX}/meetings/{{id}}/guests",
                 action({"by", "number"}, lambda mid, d: svc().dial_out(mid, d["by"], d["number"], guest=True))),
    ]


_OBJ = {"type": "object"}
_ID = path_param("id", "the meeting's id")
OPENAPI_PATHS: dict[str, Any] = {
    f"{PREFIX}/meetings": {"get": op("meetings of the tenant", schema=_OBJ)},
    f"{PREFIX}/meetings/access": {"get": op("the access number and the conference ids entered", schema=_OBJ)},
    f"{PREFIX}/meetings/{{id}}": {
        "put": op("create or replace a meeting", schema=_OBJ, params=[_ID], errors=(400, 404, 409)),
        "get": op("a meeting with its roster", schema=_OBJ, params=[_ID], errors=(404,)),
        "delete": op("end and delete a meeting", schema=_OBJ, params=[_ID], errors=(404,)),
    },
    f"{PREFIX}/meetings/{{id}}/join": {"post": op("a user's Teams client joins", ok=201, schema=_OBJ, params=[_ID],
                                                  errors=(400, 403, 404, 409))},
    f"{PREFIX}/meetings/{{id}}/dial-out": {"post": op("a participant dials out to a number", ok=201, schema=_OBJ,
                                                      params=[_ID], errors=(400, 403, 404, 409))},
    f"{PREFIX}/meetings/{{id}}/request-to-join": {"post": op("Request to Join a user (every endpoint rings)", ok=201,
                                                             schema=_OBJ, params=[_ID], errors=(400, 403, 404, 409))},
    f"{PREFIX}/meetings/{{id}}/guests": {"post": op("dial out to a guest outside the tenant", ok=201, schema=_OBJ,
                                                    params=[_ID], errors=(400, 403, 404, 409))},
}
