"""Multipart message bodies (RFC 2046 §5.1, RFC 5621 for SIP).

An emergency INVITE carries SDP and a PIDF-LO location object in one ``multipart/mixed`` body, the
location part named by a Content-ID that the Geolocation header points at with a ``cid:`` URI
(RFC 6442 §4.1); S/MIME uses ``multipart/signed``. :func:`parse_multipart` splits such a body into
:class:`BodyPart` objects (headers and bytes, binary content untouched); :func:`build_multipart`
writes one.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from typing import Final
from urllib.parse import unquote

from gateway.sip.errors import SipParseError, printable
from gateway.sip.headers import Headers, _lookup

__all__ = [
    "BodyPart",
    "boundary_of",
    "build_multipart",
    "find_part",
    "parse_multipart",
    "part_by_content_id",
]

# boundary := 0*69<bchars> bcharsnospace   (RFC 2046 §5.1.1)
# bchars := bcharsnospace / " " ; bcharsnospace := DIGIT / ALPHA / "'" / "(" / ")" / "+" / "_" / ","
#           / "-" / "." / "/" / ":" / "=" / "?"
_BOUNDARY_RE: Final = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_PARAM_RE: Final = re.compile(r';[ \t]*([^=; \t]+)[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^; \t]+)')


class BodyPart:
    """One part of a multipart body: its MIME headers and its content (bytes, as received)."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: Headers | Iterable[tuple[str, str]] | None = None, body: bytes = b"") -> None:
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = bytes(body)

    @property
    def content_type(self) -> str:
        """Content-Type as written; RFC 2046 §5.1: a part without one is ``text/plain``."""
        return self.headers.get("Content-Type") or "text/plain"

    @property
    def media_type(self) -> str:
        return self.content_type.split(";", 1)[0].strip(" \t").lower()

    @property
    def content_id(self) -> str | None:
        """The Content-ID without its angle brackets (``<abc@host>`` -> ``abc@host``)."""
        value = self.headers.get("Content-ID")
        if value is None:
            return None
        value = value.strip(" \t")
        if value.startswith("<") and value.endswith(">"):
            value = value[1:-1]
        return value

    @property
    def disposition(self) -> str | None:
        value = self.headers.get("Content-Disposition")
        return value.split(";", 1)[0].strip(" \t").lower() if value else None

    def __repr__(self) -> str:
        return f"<BodyPart {self.media_type} ({len(self.body)} bytes)>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BodyPart):
            return NotImplemented
        return self.headers == other.headers and self.body == other.body

    __hash__ = None  # type: ignore[assignment]


def boundary_of(content_type: str) -> str:
    """The ``boundary`` parameter of a multipart Content-Type (quotes removed)."""
    for m in _PARAM_RE.finditer(content_type):
        if m.group(1).lower() == "boundary":
            value = m.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            if _BOUNDARY_RE.fullmatch(value) is None:
                raise SipParseError(f"invalid multipart boundary {printable(value)}")
            return value
    raise SipParseError(f"multipart Content-Type without a boundary: {printable(content_type)}")


def parse_multipart(body: bytes, content_type: str) -> list[BodyPart]:
    """Split a multipart body into its parts; preamble and epilogue are dropped.

    Raises SipParseError (400) when the body does not follow RFC 2046 §5.1.1: no boundary parameter,
    no opening delimiter, or no closing delimiter. Line ends may be CRLF or (tolerated) bare LF.
    """
    media = content_type.split(";", 1)[0].strip(" \t").lower()
    if not media.startswith("multipart/"):
        raise SipParseError(f"body of type {printable(media)} is not multipart")
    delimiter = b"--" + boundary_of(content_type).encode("ascii")
    if body.startswith(delimiter):
        pos = 0
    else:
        found = body.find(b"\n" + delimiter)
        if found == -1:
            raise SipParseError("multipart body without an opening boundary delimiter")
        pos = found + 1
    parts: list[BodyPart] = []
    while True:
        after = pos + len(delimiter)
        if body.startswith(b"--", after):
            return parts  # close-delimiter; the rest is the epilogue
        line_end = body.find(b"\n", after)
        if line_end == -1:
            raise SipParseError("multipart body ends after a boundary delimiter")
        padding = body[after:line_end].rstrip(b"\r")
        if padding.strip(b" \t"):
            raise SipParseError("text after a multipart boundary delimiter on the same line")
        start = line_end + 1
        nxt = body.find(b"\n" + delimiter, start)
        if nxt == -1:
            raise SipParseError("multipart body without a closing boundary delimiter")
        end = nxt - 1 if nxt > start and body[nxt - 1] == 13 else nxt  # the CRLF belongs to the delimiter
        parts.append(_parse_part(body[start:end] if end >= start else b"", len(parts) + 1))
        pos = nxt + 1


def _parse_part(raw: bytes, number: int) -> BodyPart:
    if raw.startswith(b"\r\n"):
        return BodyPart(Headers(), raw[2:])
    if raw.startswith(b"\n"):
        return BodyPart(Headers(), raw[1:])
    end, sep = raw.find(b"\r\n\r\n"), 4
    if end == -1:
        end, sep = raw.find(b"\n\n"), 2
    if end == -1:
        head, content = raw, b""
    else:
        head, content = raw[:end], raw[end + sep :]
    fields: list[tuple[str, str, str]] = []
    for line in head.decode("utf-8", "surrogateescape").replace("\r\n", "\n").split("\n"):
        if line[:1] in (" ", "\t") and fields:
            key, name, value = fields[-1]
            fields[-1] = (key, name, (value + " " + line.strip(" \t")).strip(" \t"))
            continue
        name, colon, value = line.partition(":")
        info = _lookup(name) if colon else None
        if info is None:
            raise SipParseError(f"malformed header line {printable(line)} in multipart body part {number}")
        fields.append((info[0], info[1], value.strip(" \t")))
    return BodyPart(Headers._from_fields(fields), content)


def build_multipart(
    parts: Sequence[BodyPart | tuple[str, bytes]],
    *,
    subtype: str = "mixed",
    boundary: str | None = None,
) -> tuple[str, bytes]:
    """Write ``parts`` as one multipart body; returns (Content-Type value, body).

    A part may be given as ``(content_type, content)``. The boundary is random unless given, and is
    checked not to occur in any part.
    """
    if not parts:
        raise ValueError("a multipart body needs at least one part (RFC 2046 §5.1.1)")
    items = [p if isinstance(p, BodyPart) else BodyPart([("Content-Type", p[0])], p[1]) for p in parts]
    if boundary is None:
        boundary = secrets.token_hex(12)
    elif _BOUNDARY_RE.fullmatch(boundary) is None:
        raise ValueError(f"invalid multipart boundary {boundary!r} (RFC 2046 §5.1.1)")
    delimiter = b"--" + boundary.encode("ascii")
    out = bytearray()
    for item in items:
        if delimiter in item.body:
            raise ValueError(f"boundary {boundary!r} occurs inside a body part")
        out += delimiter + b"\r\n"
        for name, value in item.headers.items():
            out += f"{name}: {value}\r\n".encode("utf-8", "surrogateescape")
        out += b"\r\n" + item.body + b"\r\n"
    out += delimiter + b"--\r\n"
    quoted = boundary if re.fullmatch(r"[0-9A-Za-z'+_\-.]+", boundary) else f'"{boundary}"'
    return f"multipart/{subtype};boundary={quoted}", bytes(out)


def find_part(parts: Iterable[BodyPart], media_type: str) -> BodyPart | None:
    """The first part of ``media_type`` (``application/sdp``, ``application/pidf+xml``...)."""
    media_type = media_type.lower()
    return next((p for p in parts if p.media_type == media_type), None)


def part_by_content_id(parts: Iterable[BodyPart], cid: str) -> BodyPart | None:
    """The part a ``cid:`` URI names (RFC 2392; Geolocation: <cid:...> in RFC 6442 §4.1).

    ``cid`` may be given with or without the ``cid:`` scheme; %-escapes in it are undone.
    """
    if cid.lower().startswith("cid:"):
        cid = unquote(cid[4:])
    cid = cid.strip("<>")
    return next((p for p in parts if p.content_id == cid), None)
