"""Media node routes: the gateway-side parties (Teams clients, PSTN numbers) and their calls.

Handlers run on the gateway's loop; everything that talks to a pjsua2 worker runs on the media node's
control thread and is awaited (``node.run``), so a slow worker never stalls SIP.  Reads come from the
node's state directly.
"""

from __future__ import annotations

import json
from typing import Any, Literal

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
    ref,
)

M = f"{PREFIX}/media"


class TeamsParty(Closed):
    kind: Literal["teams"]
    user: str = Field(min_length=1, max_length=128)


class PstnParty(Closed):
    kind: Literal["pstn"]
    number: str = Field(pattern=r"^\+?[0-9]{2,15}$")


class OriginateBody(Closed):
    from_: TeamsParty | PstnParty = Field(alias="from", discriminator="kind")
    to: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9+._*#-]+$")
    tone_hz: float | None = Field(default=None, ge=100, le=3400)


class DtmfBody(Closed):
    digits: str = Field(pattern=r"^[0-9*#A-Da-d]{1,64}$")
    method: Literal["rfc4733", "info"] | None = None


class ToneBody(Closed):
    hz: float = Field(ge=100, le=3400)


class PartyBody(Closed):
    answer: Literal["auto", "busy", "no_answer", "manual"] | None = None
    answer_delay_ms: int | None = Field(default=None, ge=0, le=600_000)
    tone_hz: float | None = Field(default=None, ge=100, le=3400)


MODELS = (OriginateBody, DtmfBody, ToneBody, PartyBody)


def _node(gw: Any):
    node = gw.media
    if not hasattr(node, "originate") or not hasattr(node, "calls"):
        raise ApiError(409, "media_node_disabled", "this gateway runs without a media node (start it with "
                       "media='node' or the config flag media: node)", None)
    return node


def _api_error(exc: Exception) -> ApiError:
    from gateway.media_node import MediaNodeError

    if isinstance(exc, MediaNodeError):
        return ApiError(exc.status, exc.code, exc.message, exc.where)
    if isinstance(exc, ApiError):
        return exc
    from sipua import CommandError, SipUaError

    if isinstance(exc, CommandError):
        return ApiError(409, "media_refused", str(exc), None)
    if isinstance(exc, SipUaError):
        return ApiError(503, "media_worker_failed", str(exc).splitlines()[0], None)
    raise exc


async def _run(node: Any, fn) -> Any:
    try:
        return await node.run(fn)
    except Exception as exc:
        raise _api_error(exc) from None


def _get(node: Any, call_id: str):
    try:
        return node.call(call_id)
    except Exception as exc:
        raise _api_error(exc) from None


async def _no_body(request: web.Request) -> None:
    """Actions take no parameters: an empty body or ``{}``."""
    raw = await request.content.read(4097)
    if not raw.strip():
        return
    try:
        data = json.loads(raw)
    except ValueError:
        raise ApiError(400, "malformed_json", "the body is not valid JSON (send nothing or {})", "body") from None
    if data != {}:
        raise ApiError(400, "invalid_request", "this action takes no parameters (send nothing or {})", "body")


def routes(gw: Any) -> list[web.RouteDef]:
    async def list_calls(request: web.Request) -> web.Response:
        check_query(request, ("party",))
        node = _node(gw)
        party = request.query.get("party") or None
        return json_response({"calls": [c.to_json() for c in node.calls(party)]})

    async def get_call(request: web.Request) -> web.Response:
        check_query(request, ())
        node = _node(gw)
        call_id = request.match_info["id"]
        _get(node, call_id)
        c = await _run(node, lambda: node.refresh_stats(call_id))
        return json_response(c.to_json())

    async def originate(request: web.Request) -> web.Response:
        check_query(request, ())
        node = _node(gw)
        body = await read_body(request, OriginateBody)
        src = body.from_
        kind, identity = ("teams", src.user) if isinstance(src, TeamsParty) else ("pstn", src.number)
        try:
            c = await node.originate_async(kind, identity, body.to, body.tone_hz)
        except Exception as exc:
            raise _api_error(exc) from None
        return json_response(c.to_json(), status=201)

    def simple(action: str):
        async def handler(request: web.Request) -> web.Response:
            check_query(request, ())
            node = _node(gw)
            await _no_body(request)
            call_id = request.match_info["id"]
            _get(node, call_id)
            fn = getattr(node, action)
            c = await _run(node, lambda: fn(call_id))
            return json_response(c.to_json())
        return handler

    async def dtmf(request: web.Request) -> web.Response:
        check_query(request, ())
        node = _node(gw)
        body = await read_body(request, DtmfBody)
        call_id = request.match_info["id"]
        _get(node, call_id)
        c = await _run(node, lambda: node.send_dtmf(call_id, body.digits, body.method))
        return json_response(c.to_json())

    async def tone(request: web.Request) -> web.Response:
        check_query(request, ())
        node = _node(gw)
        body = await read_body(request, ToneBody)
        call_id = request.match_info["id"]
        _get(node, call_id)
        c = await _run(node, lambda: node.set_tone(call_id, body.hz))
        return json_response(c.to_json())

    async def recording(request: web.Request) -> web.Response:
        check_query(request, ())
        node = _node(gw)
        call_id = request.match_info["id"]
        try:
            data = node.recording_bytes(call_id)
        except Exception as exc:
            raise _api_error(exc) from None
        return web.Response(body=data, content_type="audio/wav")

    async def put_party(request: web.Request) -> web.Response:
        check_query(request, ())
        node = _node(gw)
        body = await read_body(request, PartyBody)
        kind, identity = request.match_info["kind"], request.match_info["identity"]
        try:
            s = node.set_party(kind, identity, answer=body.answer, answer_delay_ms=body.answer_delay_ms,
                               tone_hz=body.tone_hz)
            kind, identity = node.check_party(kind, identity)
        except Exception as exc:
            raise _api_error(exc) from None
        return json_response({"party": {"kind": kind, "identity": identity}, **s.to_json()})

    return [
        web.get(f"{M}/calls", list_calls),
        web.post(f"{M}/calls", originate),
        web.get(f"{M}/calls/{{id}}", get_call),
        web.post(f"{M}/calls/{{id}}/hangup", simple("hangup")),
        web.post(f"{M}/calls/{{id}}/answer", simple("answer")),
        web.post(f"{M}/calls/{{id}}/hold", simple("hold")),
        web.post(f"{M}/calls/{{id}}/resume", simple("resume")),
        web.post(f"{M}/calls/{{id}}/dtmf", dtmf),
        web.post(f"{M}/calls/{{id}}/tone", tone),
        web.get(f"{M}/calls/{{id}}/recording.wav", recording),
        web.put(f"{M}/parties/{{kind}}/{{identity}}", put_party),
    ]


_ID = path_param("id", "media call id (m1, m2, ...)")
_ERR = (400, 404, 409)

SCHEMAS = {
    "MediaCall": {
        "type": "object",
        "required": ["id", "party", "direction", "remote", "sip_call_id", "state", "tone_hz", "dtmf", "recording"],
        "properties": {
            "id": {"type": "string"},
            "party": {"type": "object", "properties": {"kind": {"enum": ["teams", "pstn"]},
                                                       "identity": {"type": "string"}}},
            "direction": {"enum": ["in", "out"]},
            "remote": {"type": "string"},
            "sip_call_id": {"type": "string", "description": "Call-ID of the media node's leg"},
            "state": {"enum": ["calling", "early", "confirmed", "disconnected"]},
            "status_code": {"type": ["integer", "null"]},
            "started": {"type": "number"}, "answered": {"type": ["number", "null"]},
            "ended": {"type": ["number", "null"]},
            "tone_hz": {"type": "number"},
            "held": {"type": "boolean"},
            "dtmf": {"type": "array", "items": {"type": "object", "properties": {
                "digit": {"type": "string"}, "method": {"enum": ["rfc4733", "info"]}, "t": {"type": "number"}}}},
            "recording": {"type": "string", "description": "URL of the WAV of what the party heard"},
            "media": {"type": "object", "description": "RTP/RTCP statistics"},
        },
    },
    "MediaCallList": {"type": "object", "properties": {"calls": {"type": "array", "items": ref("MediaCall")}}},
    "MediaParty": {"type": "object", "properties": {
        "party": {"type": "object"}, "answer": {"enum": ["auto", "busy", "no_answer", "manual"]},
        "answer_delay_ms": {"type": "integer"}, "tone_hz": {"type": "number"}}},
}

OPENAPI_PATHS: dict[str, Any] = {
    f"{M}/calls": {
        "get": op("calls of the media node's parties", schema=ref("MediaCallList"),
                  params=[query_param("party", "a PSTN number or a Teams user name")]),
        "post": op("originate a call from a Teams user or a PSTN party through the gateway", ok=201,
                   schema=ref("MediaCall"), body=OriginateBody, errors=_ERR),
    },
    f"{M}/calls/{{id}}": {"get": op("one call", schema=ref("MediaCall"), params=[_ID], errors=(404,))},
    **{f"{M}/calls/{{id}}/{action}": {"post": op(f"{action} the call", schema=ref("MediaCall"), params=[_ID],
                                                 errors=_ERR)}
       for action in ("hangup", "answer", "hold", "resume")},
    f"{M}/calls/{{id}}/dtmf": {"post": op("send DTMF digits", schema=ref("MediaCall"), params=[_ID], body=DtmfBody,
                                          errors=_ERR)},
    f"{M}/calls/{{id}}/tone": {"post": op("change the tone the party sends", schema=ref("MediaCall"), params=[_ID],
                                          body=ToneBody, errors=_ERR)},
    f"{M}/calls/{{id}}/recording.wav": {"get": op("what the party heard so far (16-bit PCM WAV)", params=[_ID],
                                                  content_type="audio/wav", errors=(404,))},
    f"{M}/parties/{{kind}}/{{identity}}": {"put": op(
        "how a party treats inbound calls", schema=ref("MediaParty"), body=PartyBody, errors=(400, 404),
        params=[path_param("kind", "teams or pstn"), path_param("identity", "user name or +number")])},
}
