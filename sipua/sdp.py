"""Just enough SIP and SDP reading to report what a call negotiated.

pjsua2 hands messages over as raw text (``SipRxData.wholeMsg``, ``SipTxData.wholeMsg``); these helpers
pull the body, a header value and the audio stream's direction out of such text.  They are pure
functions with no pjsua2 dependency, so they are tested on their own.
"""

from __future__ import annotations

import re

_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

# RFC 3261 §7.3.3 compact forms of the headers read here.
_COMPACT = {"content-type": "c", "call-id": "i", "from": "f", "to": "t", "contact": "m"}


def split_message(message: str) -> tuple[str, str]:
    """Split a SIP message into (start line + headers, body) at the first empty line (RFC 3261 §7)."""
    for sep in ("\r\n\r\n", "\n\n"):
        head, found, body = message.partition(sep)
        if found:
            return head, body
    return message, ""


def header_values(message: str, name: str) -> list[str]:
    """Every value of header ``name`` (or its compact form), unfolding continuation lines (§7.3.1)."""
    head, _ = split_message(message)
    lines = head.replace("\r\n", "\n").split("\n")[1:]
    unfolded: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t") and unfolded:
            unfolded[-1] += " " + line.strip()
        else:
            unfolded.append(line)
    wanted = {name.lower()}
    compact = _COMPACT.get(name.lower())
    if compact:
        wanted.add(compact)
    values = []
    for line in unfolded:
        key, colon, value = line.partition(":")
        if colon and key.strip().lower() in wanted:
            values.append(value.strip())
    return values


def header_value(message: str, name: str) -> str | None:
    values = header_values(message, name)
    return values[0] if values else None


def sdp_body(message: str) -> str | None:
    """The SDP of a message whose Content-Type is application/sdp (multipart bodies are not split)."""
    ctype = header_value(message, "Content-Type")
    if ctype is None or ctype.split(";")[0].strip().lower() != "application/sdp":
        return None
    _, body = split_message(message)
    return body or None


def audio_direction(sdp: str) -> str | None:
    """Direction of the first audio stream as the SDP's author states it (RFC 3264 §5.1, §6.1).

    A media-level attribute overrides the session-level one; no attribute means sendrecv.  A stream
    with port 0 is rejected and reported as ``inactive``; a connection address of 0.0.0.0 is the
    RFC 2543 way of putting a call on hold (RFC 3264 §8.4) and reads as ``inactive`` unless an
    explicit attribute says otherwise.  Returns None when there is no audio stream.
    """
    session_dir: str | None = None
    session_null_c = False
    in_audio = False
    seen_audio = False
    media_dir: str | None = None
    media_null_c: bool | None = None
    port_zero = False
    for raw_line in sdp.replace("\r\n", "\n").split("\n"):
        line = raw_line.strip()
        if line.startswith("m="):
            if in_audio:
                break  # only the first audio stream is reported
            parts = line[2:].split()
            in_audio = bool(parts) and parts[0] == "audio"
            if in_audio:
                seen_audio = True
                port_zero = len(parts) > 1 and parts[1].split("/")[0] == "0"
            continue
        is_session = not seen_audio and not in_audio
        if line.startswith("a=") and line[2:] in _DIRECTIONS:
            if is_session:
                session_dir = line[2:]
            elif in_audio:
                media_dir = line[2:]
        elif line.startswith("c="):
            null = _is_null_connection(line)
            if is_session:
                session_null_c = null
            elif in_audio:
                media_null_c = null
    if not seen_audio:
        return None
    if port_zero:
        return "inactive"
    explicit = media_dir or session_dir
    if explicit:
        return explicit
    null_c = media_null_c if media_null_c is not None else session_null_c
    return "inactive" if null_c else "sendrecv"


def _is_null_connection(line: str) -> bool:
    parts = line[2:].split()
    return len(parts) >= 3 and parts[2] in ("0.0.0.0", "::")


def audio_codecs(sdp: str) -> list[str]:
    """Encodings offered for the first audio stream, in the m= line's preference order, as
    ``NAME/rate`` (static payload types 0, 8 and 9 are named even without an rtpmap)."""
    static = {"0": "PCMU/8000", "8": "PCMA/8000", "9": "G722/8000", "3": "GSM/8000", "18": "G729/8000"}
    formats: list[str] = []
    rtpmap: dict[str, str] = {}
    in_audio = False
    for raw_line in sdp.replace("\r\n", "\n").split("\n"):
        line = raw_line.strip()
        if line.startswith("m="):
            if in_audio:
                break
            parts = line[2:].split()
            in_audio = bool(parts) and parts[0] == "audio"
            if in_audio:
                formats = parts[3:]
        elif in_audio and line.startswith("a=rtpmap:"):
            pt, _, enc = line[len("a=rtpmap:"):].partition(" ")
            rtpmap[pt] = "/".join(enc.split("/")[:2])
    return [rtpmap.get(pt) or static.get(pt, f"pt{pt}") for pt in formats]


def telephone_event_types(sdp: str) -> list[str]:
    """Payload types of the first audio stream that are RFC 4733 ``telephone-event`` (empty: the SDP's author
    neither sends nor receives RFC 4733 events on that stream, RFC 4733 §7.1.1)."""
    out: list[str] = []
    in_audio = False
    formats: list[str] = []
    for raw_line in sdp.replace("\r\n", "\n").split("\n"):
        line = raw_line.strip()
        if line.startswith("m="):
            if in_audio:
                break
            parts = line[2:].split()
            in_audio = bool(parts) and parts[0] == "audio"
            formats = parts[3:] if in_audio else []
        elif in_audio and line.startswith("a=rtpmap:"):
            pt, _, enc = line[len("a=rtpmap:"):].partition(" ")
            if enc.split("/")[0].strip().lower() == "telephone-event" and pt in formats:
                out.append(pt)
    return out


def without_telephone_event(sdp: str) -> str:
    """The SDP with every ``telephone-event`` payload type removed from its audio streams (m= format list,
    ``a=rtpmap`` and ``a=fmtp`` lines); other lines are kept byte for byte."""
    eol = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(eol)
    drop: set[str] = set()
    in_audio = False
    for line in lines:
        if line.startswith("m="):
            in_audio = line[2:].split()[:1] == ["audio"]
        elif in_audio and line.startswith("a=rtpmap:"):
            pt, _, enc = line[len("a=rtpmap:"):].partition(" ")
            if enc.split("/")[0].strip().lower() == "telephone-event":
                drop.add(pt)
    if not drop:
        return sdp
    out = []
    in_audio = False
    for line in lines:
        if line.startswith("m="):
            parts = line[2:].split()
            in_audio = parts[:1] == ["audio"]
            if in_audio and len(parts) > 3:
                line = "m=" + " ".join(parts[:3] + [f for f in parts[3:] if f not in drop])
        elif in_audio and (line.startswith("a=rtpmap:") or line.startswith("a=fmtp:")):
            pt = line.split(":", 1)[1].split(" ", 1)[0]
            if pt in drop:
                continue
        out.append(line)
    return eol.join(out)


_NAME_ADDR_RE = re.compile(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<([^>]*)>')


def parse_name_addr(value: str) -> tuple[str | None, str]:
    """Split ``"Display" <sip:uri>`` (RFC 3261 §25.1 name-addr) into (display name, URI).
    A bare addr-spec returns (None, uri without header parameters)."""
    m = _NAME_ADDR_RE.match(value)
    if m:
        quoted, token, uri = m.groups()
        display = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else token.strip() or None
        return (display if display else None), uri.strip()
    return None, value.split(";")[0].strip()
