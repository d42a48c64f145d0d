"""Health of the running gateway and the cheap per-test reset.

``POST /api/v1/reset`` ends every call in the B2BUA (BYE or CANCEL, as a hang-up from the gateway), forgets the
ended calls, clears the SIP trace, puts the clock back on the host's time, restores every user's baseline
policy and presence, and resets the media node when it has a ``reset()``. Users, devices and registrations stay,
so the next test starts at once with registered devices.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from gateway.control_api.base import PREFIX, ApiError, check_query, json_response, op, ref
from gateway.control_api.routes_users import restore_baselines


def _hostport(addr: tuple[str, int] | None) -> str | None:
    if addr is None:
        return None
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def health_view(gw) -> dict[str, Any]:
    from gateway.server import BUILD  # the composition root; imported late to avoid a cycle

    eps = gw.endpoints
    now = gw.core.now()
    endpoints: dict[str, Any] = {}
    if eps is not None:
        endpoints = {"udp": _hostport(eps.udp), "tcp": _hostport(eps.tcp), "tls": _hostport(eps.tls),
                     "udp6": _hostport(eps.udp6), "tcp6": _hostport(eps.tcp6), "tls6": _hostport(eps.tls6),
                     "control": eps.control_url}
    started = gw.started_at
    return {
        "status": "ok",
        "build": BUILD,
        "domain": gw.config.domain,
        "uptime_s": round(time.time() - started, 3) if started else 0.0,
        "endpoints": endpoints,
        "counts": {
            "users": len(gw.directory.users()),
            "devices": len(gw.devices.all()),
            "registered_users": sum(1 for bs in gw.registrar.all_bindings(now).values() if bs),
            "calls": len(gw.core.b2bua.calls),
            "trace_entries": len(gw.trace),
        },
        "media": type(gw.media).__name__,
        # Registrar workers (gateway/shards) when registrar_processes > 1: pids, liveness, REGISTERs handed over.
        "registrar_workers": gw.shards.status() if gw.shards is not None else None,
    }


async def reset(gw) -> dict[str, Any]:
    b2bua = gw.core.b2bua
    ended = []
    for call_id in list(b2bua.calls):
        if b2bua.hangup(call_id):
            ended.append(call_id)
    b2bua.history.clear()
    media_reset = getattr(gw.media, "reset", None)
    if callable(media_reset):  # the media node may talk to worker processes: keep the loop free meanwhile
        await asyncio.get_running_loop().run_in_executor(None, media_reset)
    cleared = len(gw.trace)
    gw.trace.clear()
    offset = gw.clock.offset
    gw.clock.reset()
    restored = restore_baselines(gw)
    return {"calls_ended": ended, "trace_entries_cleared": cleared, "clock_offset_was": offset,
            "policies_restored": restored}


def routes(gw) -> list[web.RouteDef]:
    async def health(request: web.Request) -> web.Response:
        check_query(request, ())
        return json_response(health_view(gw))

    async def do_reset(request: web.Request) -> web.Response:
        check_query(request, ())
        if request.can_read_body and (await request.read()).strip() not in (b"", b"{}"):
            raise ApiError(400, "invalid_request", "reset takes no body (or {})", "body")
        return json_response(await reset(gw))

    return [
        web.get(f"{PREFIX}/health", health),
        web.post(f"{PREFIX}/reset", do_reset),
    ]


OPENAPI_PATHS: dict[str, Any] = {
    f"{PREFIX}/health": {
        "get": op("build, uptime, listening endpoints and counts", schema=ref("Health")),
    },
    f"{PREFIX}/reset": {
        "post": op("per-test reset: end calls, clear the trace, reset the clock, restore baseline policies "
                   "(users, devices and registrations stay)", schema=ref("Reset")),
    },
}

SCHEMAS: dict[str, Any] = {
    "Health": {"type": "object", "properties": {
        "status": {"type": "string"}, "build": {"type": "string"}, "domain": {"type": "string"},
        "uptime_s": {"type": "number"}, "endpoints": {"type": "object"}, "counts": {"type": "object"},
        "media": {"type": "string"}}},
    "Reset": {"type": "object", "properties": {
        "calls_ended": {"type": "array", "items": {"type": "string"}},
        "trace_entries_cleared": {"type": "integer"}, "clock_offset_was": {"type": "number"},
        "policies_restored": {"type": "array", "items": {"type": "string"}}}},
}
