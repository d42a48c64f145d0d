"""Call queues and auto attendants (voice apps) of the tenant.

``GET /queues``; ``PUT /queues/{id}`` creates or replaces a queue (``number``, ``agents``, ``method``:
attendant | serial | round_robin | longest_idle, ``agent_alert_s``, ``presence_based``, ``opted_out``);
``DELETE /queues/{id}``; ``PUT /queues/{id}/agents/{username}`` ``{"opted_in": false}`` opts an agent out (or in);
``GET /queues/{id}/calls`` the queue's calls: offers in order (agent, time, branches), notes (presence-based
routing not applied to SIP-device agents) and who answered. ``GET /auto-attendants``, ``PUT
/auto-attendants/{id}`` (``number``, ``menu``: digit → number), ``DELETE /auto-attendants/{id}``,
``GET /auto-attendants/calls`` (digits that transferred a caller). The path id must match the body's.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.control_api.base import PREFIX, ApiError, check_query, json_response, op, path_param, read_json
from gateway.services.call_queues import VoiceAppError


def _svc(gw):
    svc = getattr(gw, "queues", None)
    if svc is None:
        raise ApiError(409, "not_started", "the call queue service is not running (the gateway is not started)")
    return svc


def _err(exc: VoiceAppError) -> ApiError:
    return ApiError(exc.status, exc.code, str(exc), exc.where)


def _body_with_id(doc: Any, ident: str) -> Any:
    if isinstance(doc, dict):
        if "id" in doc and doc["id"] != ident:
            raise ApiError(400, "invalid_request", f"body id {doc['id']!r} differs from the path's {ident!r}",
                           "body.id")
        doc = {**doc, "id": ident}
    return doc


def routes(gw) -> list[web.RouteDef]:
    async def list_queues(request: web.Request) -> web.Response:
        check_query(request, ())
        return json_response({"queues": [q.to_json() for q in _svc(gw).queues.values()]})

    async def put_queue(request: web.Request) -> web.Response:
        check_query(request, ())
        doc = _body_with_id(await read_json(request), request.match_info["id"])
        try:
            return json_response(_svc(gw).put_queue(doc).to_json())
        except VoiceAppError as exc:
            raise _err(exc) from None

    async def delete_queue(request: web.Request) -> web.Response:
        check_query(request, ())
        try:
            _svc(gw).delete_queue(request.match_info["id"])
        except VoiceAppError as exc:
            raise _err(exc) from None
        return json_response({"deleted": request.match_info["id"]})

    async def put_agent(request: web.Request) -> web.Response:
        check_query(request, ())
        doc = await read_json(request)
        if not isinstance(doc, dict) or set(doc) != {"opted_in"} or not isinstance(doc["opted_in"], bool):
            raise ApiError(400, "invalid_request", 'the body must be {"opted_in": true|false}', "body.opted_in")
        try:
            q = _svc(gw).set_opt_in(request.match_info["id"], request.match_info["username"], doc["opted_in"])
        except VoiceAppError as exc:
            raise _err(exc) from None
        return json_response(q.to_json())

    async def queue_calls(request: web.Request) -> web.Response:
        check_query(request, ())
        svc = _svc(gw)
        qid = request.match_info["id"]
        if qid not in svc.queues:
            raise ApiError(404, "not_found", f"no call queue {qid!r}", "path.id")
        return json_response({"calls": svc.calls(qid)})

    async def list_attendants(request: web.Request) -> web.Response:
        check_query(request, ())
        return json_response({"attendants": [a.to_json() for a in _svc(gw).attendants.values()]})

    async def put_attendant(request: web.Request) -> web.Response:
        check_query(request, ())
        doc = _body_with_id(await read_json(request), request.match_info["id"])
        try:
            return json_response(_svc(gw).put_attendant(doc).to_json())
        except VoiceAppError as exc:
            raise _err(exc) from None

    async def delete_attendant(request: web.Request) -> web.Response:
        check_query(request, ())
        try:
            _svc(gw).delete_attendant(request.match_info["id"])
        except VoiceAppError as exc:
            raise _err(exc) from None
        return json_response({"deleted": request.match_info["id"]})

    async def attendant_calls(request: web.Request) -> web.Response:
        check_query(request, ())
        return json_response({"calls": [e for e in _svc(gw).log if "attendant" in e]})

    return [
        web.get(f"{PREFIX}/queues", list_queues),
        web.put(f"{PREFIX}/queues/{{id}}", put_queue),
        web.delete(f"{PREFIX}/queues/{{id}}", delete_queue),
        web.put(f"{PREFIX}/queues/{{id}}/agents/{{username}}", put_agent),
        web.get(f"{PREFIX}/queues/{{id}}/calls", queue_calls),
        web.get(f"{PREFIX}/auto-attendants", list_attendants),
        web.get(f"{PREFIX}/auto-attendants/calls", attendant_calls),
        web.put(f"{PREFIX}/auto-attendants/{{id}}", put_attendant),
        web.delete(f"{PREFIX}/auto-attendants/{{id}}", delete_attendant),
    ]


_OBJ = {"type": "object"}
_ID = path_param("id", "the queue's or attendant's id")
OPENAPI_PATHS: dict[str, Any] = {
    f"{PREFIX}/queues": {"get": op("call queues", schema=_OBJ)},
    f"{PREFIX}/queues/{{id}}": {
        "put": op("create or replace a call queue", schema=_OBJ, params=[_ID], errors=(400, 404, 409)),
        "delete": op("delete a call queue", schema=_OBJ, params=[_ID], errors=(404,)),
    },
    f"{PREFIX}/queues/{{id}}/agents/{{username}}": {
        "put": op("opt an agent in or out", schema=_OBJ, params=[_ID, path_param("username", "the agent")],
                  errors=(400, 404)),
    },
    f"{PREFIX}/queues/{{id}}/calls": {"get": op("the queue's calls: offers, notes, answer", schema=_OBJ,
                                                params=[_ID], errors=(404,))},
    f"{PREFIX}/auto-attendants": {"get": op("auto attendants", schema=_OBJ)},
    f"{PREFIX}/auto-attendants/calls": {"get": op("digits that transferred callers", schema=_OBJ)},
    f"{PREFIX}/auto-attendants/{{id}}": {
        "put": op("create or replace an auto attendant", schema=_OBJ, params=[_ID], errors=(400, 409)),
        "delete": op("delete an auto attendant", schema=_OBJ, params=[_ID], errors=(404,)),
    },
}
