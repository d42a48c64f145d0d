"""Voicemail boxes and message-waiting state of the tenant's users.

``GET /users/{username}/voicemail`` lists the messages (oldest first) with the new/old counts MWI reports and
the box's settings; each message's audio is ``GET …/voicemail/{id}.wav``. ``PATCH …/voicemail/{id}``
``{"heard": true|false}`` marks it, ``DELETE`` removes it (or every message, on the box). ``PUT
…/voicemail/settings`` ``{"no_answer_s": 20}`` sets how long an unanswered call rings first. ``GET
/users/{username}/mwi`` is the message-waiting state, the live ``message-summary`` subscriptions and the last
NOTIFY bodies sent for the user. Every change notifies the user's devices (RFC 3842).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from gateway.control_api.base import PREFIX, ApiError, Closed, check_query, json_response, op, path_param, read_body
from gateway.services.voicemail import VoicemailError


class VoicemailSettings(Closed):
    no_answer_s: float = Field(description="seconds an unanswered call rings before it goes to voicemail (1-120)")


class MessagePatch(Closed):
    heard: bool


def _user(gw, request: web.Request):
    username = request.match_info["username"]
    user = gw.directory.user(username)
    if user is None:
        raise ApiError(404, "not_found", f"no user {username!r}", "path.username")
    return user


def _boxes(gw):
    boxes = getattr(gw, "voicemail", None)
    if boxes is None:
        raise ApiError(409, "not_started", "the voicemail service is not running (the gateway is not started)")
    return boxes


def box_view(gw, username: str) -> dict[str, Any]:
    boxes = _boxes(gw)
    ms = boxes.messages(username)
    new, old = boxes.counts(username)
    return {"username": username, "messages": [{**m.to_json(), "audio": f"{PREFIX}/users/{username}/voicemail/"
                                                                        f"{m.id}.wav"} for m in ms],
            "new": new, "old": old, "waiting": new > 0, "no_answer_s": boxes.no_answer_s(username)}


def routes(gw) -> list[web.RouteDef]:
    async def get_box(request: web.Request) -> web.Response:
        check_query(request, ())
        user = _user(gw, request)
        return json_response(box_view(gw, user.username))

    async def clear_box(request: web.Request) -> web.Response:
        check_query(request, ())
        user = _user(gw, request)
        n = _boxes(gw).clear(user.username)
        return json_response({**box_view(gw, user.username), "deleted": n})

    async def put_settings(request: web.Request) -> web.Response:
        check_query(request, ())
        user = _user(gw, request)
        body = await read_body(request, VoicemailSettings)
        try:
            _boxes(gw).set_no_answer_s(user.username, body.no_answer_s)
        except VoicemailError as exc:
            raise ApiError(400, "invalid_request", str(exc), exc.where) from None
        return json_response(box_view(gw, user.username))

    def _message(request: web.Request):
        user = _user(gw, request)
        mid = request.match_info["id"]
        try:
            return user, _boxes(gw).message(user.username, mid)
        except KeyError:
            raise ApiError(404, "not_found", f"{user.username} has no voicemail message {mid!r}", "path.id") from None

    async def get_audio(request: web.Request) -> web.Response:
        check_query(request, ())
        _, m = _message(request)
        return web.Response(body=_boxes(gw).path(m).read_bytes(), content_type="audio/wav")

    async def patch_message(request: web.Request) -> web.Response:
        check_query(request, ())
        user, m = _message(request)
        body = await read_body(request, MessagePatch)
        return json_response(_boxes(gw).mark_heard(user.username, m.id, body.heard).to_json())

    async def delete_message(request: web.Request) -> web.Response:
        check_query(request, ())
        user, m = _message(request)
        _boxes(gw).delete(user.username, m.id)
        return json_response({"deleted": m.id})

    async def get_mwi(request: web.Request) -> web.Response:
        check_query(request, ())
        user = _user(gw, request)
        mwi = getattr(gw, "mwi", None)
        if mwi is None:
            raise ApiError(409, "not_started", "the MWI service is not running (the gateway is not started)")
        sent = [{"target": t, "body": b} for u, t, b in mwi.sent if u == user.username][-20:]
        return json_response({**mwi.state(user.username), "notifies": sent})

    base = f"{PREFIX}/users/{{username}}"
    return [
        web.get(f"{base}/voicemail", get_box),
        web.delete(f"{base}/voicemail", clear_box),
        web.put(f"{base}/voicemail/settings", put_settings),
        web.get(f"{base}/voicemail/{{id}}.wav", get_audio),
        web.patch(f"{base}/voicemail/{{id}}", patch_message),
        web.delete(f"{base}/voicemail/{{id}}", delete_message),
        web.get(f"{base}/mwi", get_mwi),
    ]


_U = path_param("username", "the user's SIP user name")
_ID = path_param("id", "a voicemail message id")

OPENAPI_PATHS: dict[str, Any] = {
    f"{PREFIX}/users/{{username}}/voicemail": {
        "get": op("a user's voicemail box: messages, new/old counts, settings", schema={"type": "object"},
                  params=[_U], errors=(400, 404)),
        "delete": op("delete every message of a user's box (MWI follows)", schema={"type": "object"},
                     params=[_U], errors=(400, 404)),
    },
    f"{PREFIX}/users/{{username}}/voicemail/settings": {
        "put": op("set the box's no-answer time", schema={"type": "object"}, body=VoicemailSettings,
                  params=[_U], errors=(400, 404)),
    },
    f"{PREFIX}/users/{{username}}/voicemail/{{id}}.wav": {
        "get": op("a message's audio", content_type="audio/wav", params=[_U, _ID], errors=(400, 404)),
    },
    f"{PREFIX}/users/{{username}}/voicemail/{{id}}": {
        "patch": op("mark a message heard or new", schema={"type": "object"}, body=MessagePatch,
                    params=[_U, _ID], errors=(400, 404)),
        "delete": op("delete a message", schema={"type": "object"}, params=[_U, _ID], errors=(400, 404)),
    },
    f"{PREFIX}/users/{{username}}/mwi": {
        "get": op("message-waiting state, subscriptions and recent NOTIFY bodies", schema={"type": "object"},
                  params=[_U], errors=(400, 404, 409)),
    },
}

MODELS = (VoicemailSettings, MessagePatch)
