"""SIP ladder diagrams from the gateway's trace entries (``gateway.trace.TraceEntry.as_dict()``).

Two renderings of the same :class:`Ladder`:

- plain text in the manner of sngrep, to paste into a ticket or an e-mail: one column per participant, one arrow
  per message with its time, then every message in full, numbered as on the arrows;
- HTML with an inline SVG (no network, no external fonts): the first line of each message on its arrow, arrows
  coloured per Call-ID, and the full message opened by clicking the arrow.

Participants are the distinct ``host:port`` pairs. The gateway's own addresses are known from the entries (the
destination of what it received, the source of what it sent); other columns are labelled with the names the
caller gives (device ids, "Teams client", "PSTN"), else with the User-Agent or Server header they sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

GATEWAY = "gateway"
_PALETTE = ("#1f5fbf", "#b3461b", "#2f7d32", "#7b3fa0", "#a3731a", "#0f7c86", "#b0305c", "#55606e")
_HEADER = re.compile(r"^(?P<name>[A-Za-z-]+)[ \t]*:[ \t]*(?P<value>[^\r\n]*)", re.MULTILINE)
_REQUIRED = ("seq", "time", "direction", "source", "destination", "message")


class LadderError(ValueError):
    """Trace entries that cannot be drawn; the message names the entry and the field."""


@dataclass(frozen=True)
class Message:
    index: int  # 1-based, as shown on the arrows
    seq: int
    time: float
    direction: str
    transport: str
    source: str
    destination: str
    call_id: str
    first_line: str
    text: str

    @property
    def is_request(self) -> bool:
        return not self.first_line.startswith("SIP/")

    def short_label(self) -> str:
        """What sngrep writes on an arrow: the method, or the status code and reason; '(SDP)' for an offer/answer."""
        parts = self.first_line.split(" ", 2)
        label = parts[0] if self.is_request else " ".join(parts[1:3])
        if _header(self.text, "content-type", "c").lower().startswith("application/sdp"):
            label += " (SDP)"
        return label


@dataclass(frozen=True)
class Participant:
    address: str
    label: str
    detail: str = ""  # e.g. the User-Agent it sent


@dataclass(frozen=True)
class Note:
    """A row that is not a SIP message: an RTCP summary, a detected tone, a device state read back."""

    time: float
    text: str


@dataclass(frozen=True)
class Ladder:
    participants: tuple[Participant, ...]
    messages: tuple[Message, ...]
    call_ids: tuple[str, ...]
    notes: tuple[Note, ...] = ()

    def rows(self) -> list[Message | Note]:
        """Messages in trace order, each note placed after the messages that precede it in time."""
        out: list[Message | Note] = []
        notes = sorted(self.notes, key=lambda n: n.time)
        i = 0
        for m in self.messages:
            while i < len(notes) and notes[i].time < m.time:
                out.append(notes[i])
                i += 1
            out.append(m)
        return out + notes[i:]

    @property
    def start(self) -> float:
        return self.messages[0].time if self.messages else 0.0

    def column(self, address: str) -> int:
        for i, p in enumerate(self.participants):
            if p.address == address:
                return i
        raise KeyError(address)

    def call_index(self, call_id: str) -> int:
        return self.call_ids.index(call_id)


def _header(text: str, name: str, compact: str | None = None) -> str:
    head = text.split("\r\n\r\n", 1)[0].split("\n\n", 1)[0]
    for m in _HEADER.finditer(head):
        n = m.group("name").lower()
        if n == name or (compact and n == compact):
            return m.group("value").strip()
    return ""


def _as_dict(entry: Any, n: int) -> dict:
    if hasattr(entry, "as_dict"):
        entry = entry.as_dict()
    if not isinstance(entry, Mapping):
        raise LadderError(f"trace entry {n}: expected an object (TraceEntry.as_dict()), got {type(entry).__name__}")
    missing = [k for k in _REQUIRED if k not in entry]
    if missing:
        raise LadderError(f"trace entry {n}: missing {', '.join(missing)}")
    for key in ("source", "destination"):
        value = entry[key]
        if not isinstance(value, str) or not re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):\d{1,5}", value):
            raise LadderError(f"trace entry {n}: {key} {value!r} is not host:port")
    if entry["direction"] not in ("in", "out"):
        raise LadderError(f"trace entry {n}: direction {entry['direction']!r} is neither 'in' nor 'out'")
    if not isinstance(entry["time"], int | float) or isinstance(entry["time"], bool):
        raise LadderError(f"trace entry {n}: time {entry['time']!r} is not a number of seconds")
    if not isinstance(entry["message"], str):
        raise LadderError(f"trace entry {n}: message is not text")
    return dict(entry)


def _note(n: Any, i: int) -> Note:
    if isinstance(n, Note):
        return n
    if isinstance(n, Mapping):
        t, text = n.get("time"), n.get("text")
    elif isinstance(n, tuple | list) and len(n) == 2:
        t, text = n
    else:
        raise LadderError(f"note {i}: expected {{'time', 'text'}} or (time, text), got {n!r}")
    if not isinstance(t, int | float) or isinstance(t, bool) or not isinstance(text, str):
        raise LadderError(f"note {i}: time must be seconds since the epoch and text a string, got {n!r}")
    return Note(float(t), text)


def build_ladder(entries: Iterable[Any], labels: Mapping[str, str] | None = None,
                 notes: Iterable[Any] = ()) -> Ladder:
    """A ladder from trace entries (``TraceEntry`` objects or their ``as_dict()``), in trace order.

    ``labels`` maps ``host:port`` to a participant name (a device id, "Teams client", "PSTN +1425…").
    ``notes`` are extra rows placed by time: ``{"time": t, "text": "RTCP ← 224 pkts, loss 0 %, jitter 1.8 ms"}``.
    """
    labels = dict(labels or {})
    rows = [_as_dict(e, n) for n, e in enumerate(entries, 1)]
    rows.sort(key=lambda r: (r["seq"], r["time"]))
    gateway_addrs: list[str] = []
    order: list[str] = []
    user_agents: dict[str, str] = {}
    for r in rows:
        gw = r["destination"] if r["direction"] == "in" else r["source"]
        if gw not in gateway_addrs:
            gateway_addrs.append(gw)
        for a in (r["source"], r["destination"]):
            if a not in order:
                order.append(a)
        ua = _header(r["message"], "user-agent") or _header(r["message"], "server")
        if ua and r["source"] not in gateway_addrs:
            user_agents.setdefault(r["source"], ua)
    participants = []
    for addr in order:
        if addr in labels:
            label = labels[addr]
        elif addr in gateway_addrs:
            label = GATEWAY if len(gateway_addrs) == 1 else f"{GATEWAY} :{addr.rsplit(':', 1)[1]}"
        else:
            label = user_agents.get(addr, "").split(" ")[0] or addr
        participants.append(Participant(addr, label, user_agents.get(addr, "")))
    call_ids: list[str] = []
    messages = []
    for i, r in enumerate(rows, 1):
        text = r["message"]
        call_id = r.get("call_id") or _header(text, "call-id", "i") or "(no Call-ID)"
        if call_id not in call_ids:
            call_ids.append(call_id)
        first = r.get("first_line") or text.split("\n", 1)[0].rstrip("\r")
        messages.append(Message(i, int(r["seq"]), float(r["time"]), r["direction"], str(r.get("transport", "")),
                                r["source"], r["destination"], call_id, first, text))
    return Ladder(tuple(participants), tuple(messages), tuple(call_ids),
                  tuple(_note(n, i) for i, n in enumerate(notes, 1)))


# --- plain text ----------------------------------------------------------------------------------------------


def _fmt_time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def render_text(ladder: Ladder, *, title: str = "", full_messages: bool = True) -> str:
    """The ladder as plain text (fixed-width), with every message in full below it."""
    if not ladder.messages:
        return (f"{title}\n" if title else "") + "(no SIP messages were traced)\n"
    width = max(24, *(max(len(p.label), len(p.address)) + 4 for p in ladder.participants))
    left = 22  # "[nn] +sss.mmm  TLS c1 "
    ncol = len(ladder.participants)
    centre = [left + width // 2 + i * width for i in range(ncol)]
    total = left + width * ncol
    out: list[str] = []
    if title:
        out.append(title)
    out.append(f"started {_fmt_time(ladder.start)}; times are seconds from the first message")
    for i, cid in enumerate(ladder.call_ids, 1):
        out.append(f"  c{i}  Call-ID: {cid}")
    out.append("")

    def centred(texts: list[str]) -> str:
        line = [" "] * total
        for c, t in zip(centre, texts, strict=True):
            t = t[: width - 2]
            start = c - len(t) // 2
            line[start:start + len(t)] = t
        return "".join(line).rstrip()

    out.append(centred([p.label for p in ladder.participants]))
    out.append(centred([p.address for p in ladder.participants]))
    lifeline = [" "] * total
    for c in centre:
        lifeline[c] = "|"
    out.append("".join(lifeline).rstrip())
    for m in ladder.rows():
        if isinstance(m, Note):
            rel = f"+{m.time - ladder.start:.3f}"
            text = f"[--] {rel:>8} ~~  {m.text}"
            out.append(text)
            continue
        row = list(lifeline)
        a, b = centre[ladder.column(m.source)], centre[ladder.column(m.destination)]
        label = m.short_label()
        if a == b:
            text = f"<-> {label}"
            row[a + 2:a + 2 + len(text)] = text
        else:
            lo, hi = min(a, b), max(a, b)
            span = hi - lo - 1
            for x in range(lo + 1, hi):
                row[x] = "-"
            if b > a:
                row[hi - 1] = ">"
            else:
                row[lo + 1] = "<"
            text = f" {label} "[: max(span - 4, 0)]
            start = lo + 1 + (span - len(text)) // 2
            row[start:start + len(text)] = text
        rel = f"+{m.time - ladder.start:.3f}"
        prefix = f"[{m.index:>2}] {rel:>8} {m.transport:<3} c{ladder.call_index(m.call_id) + 1}"
        row[:left] = prefix.ljust(left)[:left]
        out.append("".join(row).rstrip())
    out.append("".join(lifeline).rstrip())
    if full_messages:
        for m in ladder.messages:
            src = ladder.participants[ladder.column(m.source)].label
            dst = ladder.participants[ladder.column(m.destination)].label
            out.append("")
            out.append(f"--- [{m.index}] +{m.time - ladder.start:.3f}s {_fmt_time(m.time)} {m.transport} "
                       f"{src} ({m.source}) -> {dst} ({m.destination}) ---")
            out.append(m.text.replace("\r\n", "\n").rstrip("\n"))
    return "\n".join(out) + "\n"


# --- HTML / SVG ------------------------------------------------------------------------------------------------

LADDER_CSS = """
.sipgw-ladder{font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330}
.sipgw-ladder svg{display:block;max-width:none;background:#fff;border:1px solid #d8dde6;border-radius:6px}
.sipgw-ladder .scroll{overflow-x:auto}
.sipgw-ladder text{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.sipgw-ladder .who{font-family:system-ui,sans-serif;font-weight:600;font-size:13px}
.sipgw-ladder .addr,.sipgw-ladder .time{fill:#5b6475;font-size:11px}
.sipgw-ladder a.msg:hover line,.sipgw-ladder a.msg:focus line{stroke-width:3}
.sipgw-ladder a.msg:hover text.first,.sipgw-ladder a.msg:focus text.first{font-weight:700}
.sipgw-ladder a.msg.selected rect.hit{fill:#fff4c2}
.sipgw-ladder .legend{margin:.4em 0;display:flex;flex-wrap:wrap;gap:.3em 1.2em;font-size:12px}
.sipgw-ladder .legend span.sw{display:inline-block;width:1.6em;height:.35em;vertical-align:middle;margin-right:.4em}
.sipgw-ladder details{border:1px solid #d8dde6;border-radius:4px;margin:.25em 0;background:#fafbfc}
.sipgw-ladder details[open]{background:#fff;box-shadow:0 0 0 2px #f2c94c}
.sipgw-ladder summary{cursor:pointer;padding:.2em .5em;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.sipgw-ladder pre{margin:0;padding:.5em .8em;overflow-x:auto;font-size:12px;border-top:1px solid #e4e7ee}
"""

LADDER_JS = """
(function(){
  function show(id){
    var d=document.getElementById(id); if(!d) return;
    document.querySelectorAll('.sipgw-ladder details[open]').forEach(function(o){if(o!==d) o.open=false;});
    document.querySelectorAll('.sipgw-ladder a.msg.selected').forEach(function(a){a.classList.remove('selected');});
    var a=document.querySelector('.sipgw-ladder a.msg[data-msg="'+id+'"]'); if(a) a.classList.add('selected');
    d.open=true; d.scrollIntoView({block:'nearest'});
  }
  document.addEventListener('click',function(ev){
    var a=ev.target.closest && ev.target.closest('.sipgw-ladder a.msg'); if(!a) return;
    ev.preventDefault(); show(a.getAttribute('data-msg')); history.replaceState(null,'','#'+a.getAttribute('data-msg'));
  });
  if(location.hash) show(location.hash.slice(1));
})();
"""

_COL_W = 230
_ROW_H = 30
_TOP = 64
_LEFT = 118
_CHAR_W = 7.2  # monospace 12px


def _clip(text: str, width_px: float) -> str:
    n = max(int(width_px / _CHAR_W), 4)
    return text if len(text) <= n else text[: n - 1] + "…"


def render_svg(ladder: Ladder, *, id_prefix: str = "m") -> Markup:
    """The ladder as an inline SVG; each arrow links to ``#<id_prefix>-<index>`` (the message's details)."""
    ncol = max(len(ladder.participants), 1)
    width = _LEFT + ncol * _COL_W + 20
    rows = ladder.rows()
    height = _TOP + (len(rows) + 1) * _ROW_H
    xs = [_LEFT + _COL_W // 2 + i * _COL_W for i in range(ncol)]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="SIP ladder diagram">']
    for p, x in zip(ladder.participants, xs, strict=False):
        title = escape(f"{p.label} {p.address}" + (f" — {p.detail}" if p.detail else ""))
        parts.append(f'<g class="participant"><title>{title}</title>'
                     f'<text class="who" x="{x}" y="22" text-anchor="middle">{escape(_clip(p.label, _COL_W - 10))}'
                     f'</text><text class="addr" x="{x}" y="40" text-anchor="middle">{escape(p.address)}</text>'
                     f'<line x1="{x}" y1="50" x2="{x}" y2="{height - 8}" stroke="#aab2c0" stroke-dasharray="4 3"/>'
                     f"</g>")
    for row, m in enumerate(rows):
        y = _TOP + row * _ROW_H + 18
        if isinstance(m, Note):
            rel = m.time - ladder.start
            parts.append(f'<g class="note"><rect x="{_LEFT - 6}" y="{y - 13}" width="{width - _LEFT - 8}" height="20" '
                         f'rx="4" fill="#eef1f6"/><text class="time" x="6" y="{y + 2}">+{rel:.3f}</text>'
                         f'<text class="note" x="{_LEFT + 2}" y="{y + 2}" fill="#3b4455">{escape(m.text)}</text></g>')
            continue
        colour = _PALETTE[ladder.call_index(m.call_id) % len(_PALETTE)]
        a, b = xs[ladder.column(m.source)], xs[ladder.column(m.destination)]
        mid = f"{id_prefix}-{m.index}"
        rel = m.time - ladder.start
        tip = escape(f"[{m.index}] +{rel:.3f}s {m.transport} {m.source} → {m.destination}\n{m.first_line}\n"
                     f"Call-ID: {m.call_id}")
        parts.append(f'<a class="msg" href="#{mid}" data-msg="{mid}" tabindex="0"><title>{tip}</title>'
                     f'<rect class="hit" x="0" y="{y - 19}" width="{width}" height="{_ROW_H - 2}" fill="transparent"/>'
                     f'<text class="time" x="6" y="{y + 4}">+{rel:.3f} {escape(m.transport)}</text>')
        if a == b:
            parts.append(f'<path d="M{a} {y - 6} h40 v12 h-40" fill="none" stroke="{colour}" stroke-width="1.6"/>'
                         f'<text class="first" x="{a + 46}" y="{y + 4}" fill="{colour}">'
                         f"{escape(_clip(m.first_line, _COL_W))}</text></a>")
            continue
        tip_x, d = (b - 2, -1) if b > a else (b + 2, 1)
        head = f"{tip_x},{y} {tip_x + 9 * d},{y - 5} {tip_x + 9 * d},{y + 5}"
        label = _clip(m.first_line, abs(b - a) - 16)
        parts.append(f'<line x1="{a}" y1="{y}" x2="{tip_x + 8 * d}" y2="{y}" stroke="{colour}" stroke-width="1.6"/>'
                     f'<polygon points="{head}" fill="{colour}"/>'
                     f'<text class="first" x="{(a + b) / 2}" y="{y - 5}" text-anchor="middle" fill="{colour}">'
                     f"{escape(label)}</text></a>")
    parts.append("</svg>")
    return Markup("".join(parts))


def render_fragment(ladder: Ladder, *, id_prefix: str = "m", title: str = "") -> Markup:
    """An embeddable block: legend, SVG, and every message in full (opened by clicking its arrow)."""
    out = ['<div class="sipgw-ladder">']
    if title:
        out.append(f"<h3>{escape(title)}</h3>")
    if not ladder.messages:
        out.append("<p>No SIP messages were traced.</p></div>")
        return Markup("".join(out))
    out.append(f"<p>Started {escape(_fmt_time(ladder.start))}; {len(ladder.messages)} messages. "
               "Click an arrow to see the whole message.</p>")
    out.append('<div class="legend">')
    for i, cid in enumerate(ladder.call_ids):
        out.append(f'<span><span class="sw" style="background:{_PALETTE[i % len(_PALETTE)]}"></span>'
                   f"c{i + 1} Call-ID {escape(cid)}</span>")
    out.append("</div>")
    out.append(f'<div class="scroll">{render_svg(ladder, id_prefix=id_prefix)}</div>')
    out.append('<div class="messages">')
    for m in ladder.messages:
        src = ladder.participants[ladder.column(m.source)].label
        dst = ladder.participants[ladder.column(m.destination)].label
        out.append(f'<details id="{id_prefix}-{m.index}"><summary>[{m.index}] +{m.time - ladder.start:.3f}s '
                   f"{escape(src)} → {escape(dst)} · {escape(m.first_line)}</summary>"
                   f"<pre>{escape(m.text.replace(chr(13) + chr(10), chr(10)))}</pre></details>")
    out.append("</div></div>")
    return Markup("".join(out))


def render_html(ladder: Ladder, *, title: str = "SIP ladder") -> str:
    """A standalone, self-contained HTML page with the ladder."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>body{{margin:1.2em}}{LADDER_CSS}</style></head><body>"
            f"<h1 style=\"font:600 18px system-ui,sans-serif\">{escape(title)}</h1>"
            f"{render_fragment(ladder)}<script>{LADDER_JS}</script></body></html>\n")
