"""The gateway's settable wall clock: read it, set it, move it forward.

Offboarding of stale devices (30 days paired and not connected, 14 days unpaired), pairing-code expiry and the
like read this clock, so tests move it rather than wait. SIP timers run on the event loop's monotonic clock and
do not move with it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import Field, field_validator, model_validator

from gateway.control_api.base import PREFIX, ApiError, Closed, check_query, json_response, op, read_body, ref

#: How far the clock may be moved from the host's time, either way (about 100 years).
MAX_OFFSET = 100 * 366 * 86400.0


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


class ClockSet(Closed):
    now: Any = Field(default=None, description="seconds since the epoch, or an ISO 8601 time with a zone",
                     json_schema_extra={"type": ["number", "string"]})
    offset: float = Field(default=None,  # type: ignore[assignment]
                          description="seconds ahead of (or, negative, behind) the host's clock")

    @field_validator("now")
    @classmethod
    def _now(cls, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("must be seconds since the epoch (a number) or an ISO 8601 time (a string)")
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"{value!r} is not an ISO 8601 time (e.g. 2026-01-31T09:00:00Z)") from None
            if parsed.tzinfo is None:
                raise ValueError(f"{value!r} has no time zone; add Z or +hh:mm")
            return parsed.timestamp()
        return _finite(float(value))

    @field_validator("offset")
    @classmethod
    def _offset(cls, value: float) -> float:
        return _finite(value)

    @model_validator(mode="after")
    def _one(self) -> ClockSet:
        given = self.model_fields_set & {"now", "offset"}
        if len(given) != 1:
            raise ValueError("give exactly one of now or offset")
        return self


class ClockAdvance(Closed):
    seconds: float = Field(description="how far to move the clock; negative moves it back")

    @field_validator("seconds")
    @classmethod
    def _seconds(cls, value: float) -> float:
        return _finite(value)


MODELS = (ClockSet, ClockAdvance)


def clock_view(gw) -> dict[str, Any]:
    now = gw.clock.now()
    return {"now": now, "iso": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
            "offset": gw.clock.offset}


def _check_offset(offset: float, where: str) -> None:
    if abs(offset) > MAX_OFFSET:
        raise ApiError(400, "invalid_request",
                       f"that would put the clock {offset / 86400:.0f} days from the host's time; "
                       f"at most {MAX_OFFSET / 86400:.0f} days", where)


def routes(gw) -> list[web.RouteDef]:
    async def get_clock(request: web.Request) -> web.Response:
        check_query(request, ())
        return json_response(clock_view(gw))

    async def put_clock(request: web.Request) -> web.Response:
        check_query(request, ())
        body = await read_body(request, ClockSet)
        if "now" in body.model_fields_set:
            _check_offset(float(body.now) - (gw.clock.now() - gw.clock.offset), "body.now")
            gw.clock.set(float(body.now))
        else:
            _check_offset(body.offset, "body.offset")
            gw.clock.set(gw.clock.now() - gw.clock.offset + body.offset)
        return json_response(clock_view(gw))

    async def advance(request: web.Request) -> web.Response:
        check_query(request, ())
        body = await read_body(request, ClockAdvance)
        _check_offset(gw.clock.offset + body.seconds, "body.seconds")
        gw.clock.advance(body.seconds)
        return json_response(clock_view(gw))

    return [
        web.get(f"{PREFIX}/clock", get_clock),
        web.put(f"{PREFIX}/clock", put_clock),
        web.post(f"{PREFIX}/clock/advance", advance),
    ]


OPENAPI_PATHS: dict[str, Any] = {
    f"{PREFIX}/clock": {
        "get": op("the gateway's wall clock", schema=ref("Clock")),
        "put": op("set the clock (now or offset)", schema=ref("Clock"), body=ClockSet),
    },
    f"{PREFIX}/clock/advance": {
        "post": op("move the clock forward (or back)", schema=ref("Clock"), body=ClockAdvance),
    },
}

SCHEMAS: dict[str, Any] = {
    "Clock": {"type": "object", "properties": {
        "now": {"type": "number"}, "iso": {"type": "string"}, "offset": {"type": "number"}}},
}
