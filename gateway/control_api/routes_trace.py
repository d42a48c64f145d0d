"""The SIP message trace: JSON entries, a pcap file and a plain-text ladder, filtered by call and time window.

Filters (all optional, combined with AND): ``call_id`` (a SIP Call-ID; repeat it for several), ``call`` (a B2BUA
call id such as ``c12``: all Call-IDs of its legs), ``since``/``until`` (seconds since the epoch, inclusive),
``after_seq`` (entries recorded after that sequence number, for incremental reads) and ``limit`` (the newest
``limit`` entries). Times are the host's wall clock when the message crossed the gateway's socket.
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
    op,
    query_float,
    query_int,
    query_param,
)
from gateway.control_api.routes_calls import find_record
from gateway.trace import TraceEntry, to_pcap

_FILTERS = ("call_id", "call", "since", "until", "after_seq", "limit")
PCAP_TYPE = "application/vnd.tcpdump.pcap"


def select_notes(gw, request: web.Request) -> list[dict[str, Any]]:
    """The trace's notes (service decisions) for the same Call-IDs and time window as :func:`select`."""
    notes = getattr(gw.trace, "notes", None)
    if notes is None:
        return []
    wanted = [v for v in request.query.getall("call_id", []) if v]
    call = request.query.get("call")
    if call:
        rec = find_record(gw, call)
        wanted += [i for i in (rec.a_call_id, *rec.b_call_ids) if i] if rec is not None else []
    return notes(call_ids=wanted or None, since=query_float(request, "since"), until=query_float(request, "until"))


def select(gw, request: web.Request) -> list[TraceEntry]:
    check_query(request, _FILTERS)
    call_ids: set[str] | None = None
    wanted = [v for v in request.query.getall("call_id", []) if v]
    if wanted:
        call_ids = set(wanted)
    call = request.query.get("call")
    if call:
        rec = find_record(gw, call)
        if rec is None:
            raise ApiError(404, "not_found", f"no call {call!r} (live or ended) in the B2BUA", "query.call")
        ids = {i for i in (rec.a_call_id, *rec.b_call_ids) if i}
        call_ids = ids if call_ids is None else call_ids | ids
    since = query_float(request, "since")
    until = query_float(request, "until")
    if since is not None and until is not None and until < since:
        raise ApiError(400, "invalid_request", f"until={until} is before since={since}", "query.until")
    after_seq = query_int(request, "after_seq")
    limit = query_int(request, "limit", minimum=1)
    entries = gw.trace.entries(call_ids=call_ids, since=since, until=until, after_seq=after_seq)
    if limit is not None:
        entries = entries[-limit:]
    return entries


def ladder(entries: list[TraceEntry], width: int = 28) -> str:
    """A plain-text ladder diagram: one column per address, one arrow per message, transport on the right."""
    if not entries:
        return "(no SIP messages)\n"
    columns: list[str] = []

    def col(addr: tuple[str, int]) -> int:
        text = f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"
        if text not in columns:
            columns.append(text)
        return columns.index(text)

    rows = [(e, col(e.source), col(e.destination)) for e in entries]
    stamp = 14  # "HH:MM:SS.mmm  "
    total = stamp + width * len(columns)
    xs = [stamp + i * width + width // 2 for i in range(len(columns))]

    def blank() -> list[str]:
        line = [" "] * total
        for x in xs:
            line[x] = "|"
        return line

    head = [" "] * total
    for x, name in zip(xs, columns, strict=True):
        left = max(0, x - len(name) // 2)
        head[left:left + len(name)] = name
    lines = ["".join(head).rstrip(), "".join(blank()).rstrip()]
    for e, a, b in rows:
        line = blank()
        t = time.strftime("%H:%M:%S", time.gmtime(e.time)) + f".{int(e.time * 1000) % 1000:03d}"
        line[: len(t)] = t
        label = e.first_line.removeprefix("SIP/2.0 ")
        if label.endswith(" SIP/2.0"):
            label = label.split(" ", 1)[0]  # a request: the method alone keeps the arrow short
        lo, hi = sorted((xs[a], xs[b]))
        if a == b:  # a message to itself: a short loop to the right
            text = f"<-- {label}"
            line[xs[a] + 1:xs[a] + 1 + len(text)] = text
        else:
            inner = hi - lo - 1
            room = inner - 4
            if len(label) > room:
                label = label[: max(room - 1, 1)] + "~"
            body = f" {label} ".center(inner, "-")
            body = (body[:-1] + ">") if a < b else ("<" + body[1:])
            line[lo + 1:hi] = body
        lines.append("".join(line).rstrip() + f"  {e.transport}")
    lines.append("")
    return "\n".join(lines)


def routes(gw) -> list[web.RouteDef]:
    async def trace_json(request: web.Request) -> web.Response:
        entries = select(gw, request)
        return json_response({"entries": [e.as_dict() for e in entries], "count": len(entries),
                              "last_seq": gw.trace.last_seq, "dropped": gw.trace.dropped,
                              "notes": select_notes(gw, request)})

    async def trace_pcap(request: web.Request) -> web.Response:
        entries = select(gw, request)
        return web.Response(body=to_pcap(entries), content_type=PCAP_TYPE,
                            headers={"Content-Disposition": 'attachment; filename="sipgw-trace.pcap"'})

    async def trace_text(request: web.Request) -> web.Response:
        entries = select(gw, request)
        text = ladder(entries)
        for n in select_notes(gw, request):
            stamp = time.strftime("%H:%M:%S", time.gmtime(n["time"])) + f".{int(n['time'] * 1000) % 1000:03d}"
            text += f"{stamp}  note: {n['text']}\n"
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    return [
        web.get(f"{PREFIX}/trace", trace_json),
        web.get(f"{PREFIX}/trace.pcap", trace_pcap),
        web.get(f"{PREFIX}/trace.txt", trace_text),
    ]


_PARAMS = [
    query_param("call_id", "a SIP Call-ID (repeatable)"),
    query_param("call", "a B2BUA call id: every Call-ID of its legs"),
    query_param("since", "seconds since the epoch (inclusive)", "number"),
    query_param("until", "seconds since the epoch (inclusive)", "number"),
    query_param("after_seq", "only entries with a higher sequence number", "integer"),
    query_param("limit", "only the newest N entries", "integer"),
]

OPENAPI_PATHS: dict[str, Any] = {
    f"{PREFIX}/trace": {
        "get": op("SIP messages in and out of the gateway as JSON", params=_PARAMS, errors=(400, 404), schema={
            "type": "object", "properties": {
                "entries": {"type": "array", "items": {"type": "object", "properties": {
                    "seq": {"type": "integer"}, "time": {"type": "number"},
                    "direction": {"type": "string", "enum": ["in", "out"]}, "transport": {"type": "string"},
                    "source": {"type": "string"}, "destination": {"type": "string"},
                    "call_id": {"type": ["string", "null"]}, "first_line": {"type": "string"},
                    "message": {"type": "string"}}}},
                "count": {"type": "integer"}, "last_seq": {"type": "integer"}, "dropped": {"type": "integer"}}}),
    },
    f"{PREFIX}/trace.pcap": {
        "get": op("the same messages as a pcap file (LINKTYPE_RAW, one UDP datagram per message)",
                  params=_PARAMS, content_type=PCAP_TYPE, schema={"type": "string", "format": "binary"},
                  errors=(400, 404)),
    },
    f"{PREFIX}/trace.txt": {
        "get": op("the same messages as a plain-text ladder diagram", params=_PARAMS, content_type="text/plain",
                  errors=(400, 404)),
    },
}
