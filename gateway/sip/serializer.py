"""Writing SIP messages as bytes (RFC 3261 §7).

Header fields are written one per line in their stored order, names in canonical spelling (compact
forms expanded), values as stored. Content-Length is always written and always equals the body
length (RFC 3261 §20.14; mandatory on stream transports, §18.3).
"""

from __future__ import annotations

from gateway.sip.headers import Headers

__all__ = ["serialize", "serialize_request_line", "serialize_status_line"]


def serialize_request_line(method: str, uri: str, version: str) -> str:
    # Request-Line = Method SP Request-URI SP SIP-Version CRLF
    return f"{method} {uri} {version}"


def serialize_status_line(version: str, status: int, reason: str) -> str:
    # Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF
    return f"{version} {status} {reason}"


def serialize(start_line: str, headers: Headers, body: bytes) -> bytes:
    """Start line, header fields and body as one message.

    The first Content-Length field is rewritten in place with the body length; any other is
    dropped. Without one, Content-Length is added after the last field.
    """
    lines = [start_line]
    append = lines.append
    length_written = False
    for key, name, value in headers._fields:
        if key == "content-length":
            if length_written:
                continue
            value = str(len(body))
            length_written = True
        append(f"{name}: {value}")
    if not length_written:
        append(f"Content-Length: {len(body)}")
    append("")
    append("")
    text = "\r\n".join(lines)
    try:
        head = text.encode("utf-8")  # strict UTF-8 is a compiled primitive; the error handler is not
    except UnicodeEncodeError:  # lone surrogates: bytes a peer sent that were not UTF-8, written back as they came
        head = text.encode("utf-8", "surrogateescape")
    return head + body
