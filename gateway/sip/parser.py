"""Parsing SIP messages from bytes (RFC 3261 §7, §18.3, §25).

``parse_message`` takes one complete message: a UDP datagram, or a frame cut from a stream by
:class:`gateway.sip.framing.StreamFramer`. It splits the start line and the header fields (unfolding
continuation lines and expanding compact names), frames the body by Content-Length and checks what
every later layer relies on: the top Via, From, To, Call-ID, CSeq and Max-Forwards, and for requests
the Request-URI. Every other header stays raw text until someone asks for it.

Anything wrong raises :class:`SipParseError` -- nothing else, whatever the bytes -- with the response
it calls for and, for requests, the part that could be read (``partial``) so the transport can answer.
"""

from __future__ import annotations

from typing import Final

from gateway.sip.abnf import SCHEME_RE, SIP_VERSION_RE, STATUS_CODE_RE, TOKEN_RE
from gateway.sip.errors import SipParseError, printable
from gateway.sip.headers import Headers, _lookup
from gateway.sip.message import (
    Request,
    Response,
    parse_cseq,
    parse_from,
    parse_max_forwards,
    parse_to,
    parse_top_via,
)
from gateway.sip.uri import SipURI
from gateway.sip.validate import KNOWN_METHODS

__all__ = ["MAX_MESSAGE_SIZE", "parse_message"]

#: Default limit of a whole message in bytes; larger ones are refused with 513 (RFC 3261 §18.1.1).
MAX_MESSAGE_SIZE: Final = 65535

# Headers that may appear once only (RFC 3261 §7.3.1: only comma-list headers may repeat);
# RFC 4475 §3.3.8 (multi01) and §3.3.9 (mcl01) expect a 400 when they repeat.
_SINGLE: Final = frozenset({"call-id", "cseq", "from", "to", "max-forwards", "content-length", "content-type"})
# Headers whose first value the parser checks.
_CORE: Final = frozenset({"via", "call-id", "cseq", "from", "to", "max-forwards", "content-length"})
_MANDATORY: Final = (("via", "Via"), ("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq"))


def parse_message(data: object, *, max_size: int = MAX_MESSAGE_SIZE, stream: bool = False) -> Request | Response:
    """Parse one SIP message.

    ``stream`` says the message came over TCP/TLS, where Content-Length is mandatory (RFC 3261
    §18.3); on UDP a missing Content-Length means the body is the rest of the datagram, and octets
    after the declared body are ignored (RFC 4475 §3.1.1.8). ``data`` is bytes, a bytearray or a memoryview;
    anything else is a :class:`SipParseError` too (typed ``object`` so that the compiled build checks it here).
    """
    try:
        return _parse(data, max_size, stream)
    except SipParseError:
        raise
    except Exception as exc:  # pragma: no cover - a bug; still never let it escape as another type
        raise SipParseError(f"unparseable message ({type(exc).__name__})") from exc


def _parse(raw: object, max_size: int, stream: bool) -> Request | Response:
    if isinstance(raw, bytes):
        data = raw
    elif isinstance(raw, (bytearray, memoryview)):
        data = bytes(raw)
    else:
        raise SipParseError(f"expected bytes, got {type(raw).__name__}")
    n = len(data)
    # RFC 3261 §7.5: CRLFs before the start line are ignored (keep-alives, RFC 5626 §3.5.1).
    start = 0
    while start < n and data[start] in (13, 10):
        start += 1
    if start == n:
        raise SipParseError("empty message (keep-alive CRLFs only)")

    end = data.find(b"\r\n\r\n", start)
    sep = 4
    # Bare-LF line ends are tolerated; the earliest blank line ends the header section.
    lf_end = data.find(b"\n\n", start, n if end == -1 else end)
    if lf_end != -1:
        end, sep = lf_end, 2
    if end == -1:
        if data.endswith(b"\n"):
            # The blank line after the last header is missing: tolerated as an empty body.
            end, sep = n, 0
            while end > start and data[end - 1] in (13, 10):
                end -= 1
        elif n - start > max_size:
            raise SipParseError(f"header section of more than {max_size} bytes", 513, None)
        else:
            partial = _partial_only(data[start:])
            raise SipParseError("truncated message: no empty line after the header section", 400, partial)

    if end - start > max_size:
        raise SipParseError(f"header section of more than {max_size} bytes", 513, None)
    raw_head = data[start:end]
    try:
        head = raw_head.decode("utf-8")  # strict UTF-8 is a compiled primitive; the error handler is not
    except UnicodeDecodeError:
        head = raw_head.decode("utf-8", "surrogateescape")  # same text for valid UTF-8, and kept byte for byte
    msg, first, error = _parse_head(head)
    request = msg if isinstance(msg, Request) else None
    if error is not None:
        raise error.with_partial(request)

    body_start = min(end + sep, n)
    available = n - body_start
    length_text = first.get("content-length")
    if length_text is None:
        if stream:
            raise SipParseError("missing Content-Length on a stream transport (RFC 3261 §18.3)", 400, request)
        length = available
    else:
        if not (length_text.isascii() and length_text.isdigit()):
            raise SipParseError(
                f"Content-Length {printable(length_text, 24)} is not a non-negative integer", 400, request
            )
        if len(length_text) > 10:
            raise SipParseError("Content-Length is larger than any acceptable message", 513, request)
        length = int(length_text)
        if length > available:
            if body_start + length - start > max_size:
                raise SipParseError(
                    f"message of {body_start + length - start} bytes exceeds the limit of {max_size}", 513, request
                )
            raise SipParseError(
                f"body shorter than Content-Length ({available} of {length} bytes)", 400, request
            )
    if body_start + length - start > max_size:
        raise SipParseError(
            f"message of {body_start + length - start} bytes exceeds the limit of {max_size}", 513, request
        )
    msg.body = data[body_start : body_start + length]

    _check_core(msg, first)
    return msg


def _split_lines(head: str) -> list[str]:
    lines = head.split("\r\n")
    # No CR or LF is left in any line unless one stood alone (str.join and ``in`` are memcpy and memchr; two
    # str.count over the head cost ten times as much).
    joined = "".join(lines)
    if "\n" not in joined and "\r" not in joined:
        return lines
    # Bare LF line ends (tolerated); a CR anywhere else is an error.
    lines = head.split("\n")
    for i, line in enumerate(lines):
        if line.endswith("\r"):
            line = lines[i] = line[:-1]
        if "\r" in line:
            raise SipParseError(f"bare CR in line {i + 1} of the header section")
    return lines


def _parse_head(head: str) -> tuple[Request | Response, dict[str, str], SipParseError | None]:
    """Start line and header fields. Returns the message (empty body), the first value of each core
    header, and the first error met after the start line (the message is still built, as partial).
    """
    lines = _split_lines(head)
    msg, error = _parse_start_line(lines[0])
    folded = False
    for i in range(1, len(lines)):  # a continuation line starts with white space (cheaper than searching the text)
        if lines[i][:1] in (" ", "\t"):
            folded = True
            break
    if folded:
        # Unfold continuation lines (RFC 3261 §7.3.1: folding is equivalent to one SP).
        logical: list[str] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t"):
                if not logical:
                    error = error or SipParseError("continuation line before the first header field")
                    continue
                logical[-1] = logical[-1].rstrip(" \t") + " " + line.strip(" \t")
            else:
                logical.append(line)
        header_lines = logical
    else:
        header_lines = lines[1:]

    fields: list[tuple[str, str, str]] = []
    first: dict[str, str] = {}
    for line in header_lines:
        colon = line.find(":")
        if colon <= 0:
            error = error or SipParseError(f"header line {printable(line)} has no name and colon")
            continue
        info = _lookup(line[:colon])
        if info is None:
            error = error or SipParseError(f"invalid header name {printable(line[:colon])}")
            continue
        key = info[0]
        value = line[colon + 1 :].strip(" \t")
        if key in _CORE:
            if key not in first:
                first[key] = value
            elif key in _SINGLE:
                error = error or SipParseError(f"{info[1]} header appears more than once")
        fields.append((key, info[1], value))
    msg.headers = Headers._from_fields(fields)
    return msg, first, error


def _parse_start_line(line: str) -> tuple[Request | Response, SipParseError | None]:
    """The message the start line begins, and an error to raise once the headers are read.

    A Request-Line that is wrong but recognisable (it ends in a SIP version) still yields a request,
    so that the error can carry it as ``partial`` and be answered (RFC 4475 §3.1.2.7-10).
    Anything else raises at once.
    """
    if line[:4].upper() == "SIP/":
        return _parse_status_line(line), None
    parts = line.split(" ")
    if len(parts) == 3 and all(parts):
        method, uri, version = parts
        if version != "SIP/2.0" and SIP_VERSION_RE.fullmatch(version) is None:
            raise SipParseError(f"start line {printable(line)} is neither a Request-Line nor a Status-Line")
        req = Request(method, uri, None, b"", version.upper())
        if method not in KNOWN_METHODS and TOKEN_RE.fullmatch(method) is None:  # registered ones are tokens
            return req, SipParseError(f"invalid method {printable(method)} in the Request-Line")
        return req, None
    words = line.split()
    if len(words) >= 3 and SIP_VERSION_RE.fullmatch(words[-1]):
        req = Request(words[0], " ".join(words[1:-1]), None, b"", words[-1].upper())
        return req, SipParseError("malformed Request-Line: elements must be separated by exactly one SP")
    raise SipParseError(f"start line {printable(line)} is neither a Request-Line nor a Status-Line")


def _parse_status_line(line: str) -> Response:
    version, sp, rest = line.partition(" ")
    if version != "SIP/2.0" or not sp:
        m = SIP_VERSION_RE.fullmatch(version)
        if m is None or not sp:
            raise SipParseError(f"malformed Status-Line {printable(line)}")
        if int(m.group(1)) != 2 or int(m.group(2)) != 0:
            raise SipParseError(f"response with unsupported version {printable(version)}", 505)
    code = rest[:3]
    usual = len(code) == 3 and code.isdigit() and code.isascii() and "1" <= code[0] <= "6"  # [1-6][0-9][0-9]
    if (not usual and STATUS_CODE_RE.fullmatch(code) is None) or (len(rest) > 3 and rest[3] != " "):
        raise SipParseError(f"invalid status code in {printable(line)}: expected 100-699")
    reason = rest[4:]
    for ch in reason:
        if (ch < " " and ch != "\t") or ch == "\x7f":
            raise SipParseError("control character in the reason phrase")
    return Response(int(code), reason, None, b"", "SIP/2.0")


def _check_core(msg: Request | Response, first: dict[str, str]) -> None:
    """Check the fields every layer above relies on; memoise what was parsed."""
    request = msg if isinstance(msg, Request) else None
    h = msg.headers
    try:
        if request is not None:
            m = None if request.version == "SIP/2.0" else SIP_VERSION_RE.fullmatch(request.version)
            if m is not None and (int(m.group(1)) != 2 or int(m.group(2)) != 0):
                raise SipParseError(f"SIP version {request.version} not supported", 505)
            _check_request_line(request)
        if "via" not in first or "from" not in first or "to" not in first or "call-id" not in first \
                or "cseq" not in first:
            # RFC 3261 §8.1.1: every request and response carries these (RFC 4475 §3.3.1).
            missing = [name for key, name in _MANDATORY if key not in first]
            raise SipParseError(f"missing {', '.join(missing)} header{'s' if len(missing) > 1 else ''}")
        h._remember("top_via", parse_top_via(h))
        h._remember("from", parse_from(h))
        h._remember("to", parse_to(h))
        call_id = first["call-id"]
        # CALL_ID_RE ([!-~]+: printable ASCII but the space) without the regular expression.
        if not (call_id and call_id.isascii() and call_id.isprintable()) or " " in call_id:
            raise SipParseError(f"bad Call-ID header {printable(call_id)}")
        h._remember("cseq", parse_cseq(h))
        h._remember("max_forwards", parse_max_forwards(h) if "max-forwards" in first else None)
    except SipParseError as err:
        raise err.with_partial(request) from None


def _check_request_line(request: Request) -> None:
    uri = request.uri
    colon = uri.find(":")
    if not (colon == 3 and uri.startswith("sip")) and (colon <= 0 or SCHEME_RE.fullmatch(uri, 0, colon) is None):
        raise SipParseError(f"Request-URI {printable(uri)} is not an absolute URI")
    scheme = uri[:colon].lower()
    if scheme in ("sip", "sips", "tel"):
        parsed = SipURI.parse(uri)
        if parsed.headers:
            # RFC 3261 §19.1.1 table: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
            raise SipParseError("Request-URI must not contain headers (?...)")
        request._request_uri = parsed
    else:
        for ch in uri:
            if ch <= " " or ch in '<>"\\^`{|}' or ch == "\x7f":
                raise SipParseError(f"character {ch!r} not allowed in Request-URI {printable(uri)}")


def _partial_only(data: bytes) -> Request | None:
    """Best-effort request from a message whose framing failed (for the error's ``partial``)."""
    try:
        msg, _, _ = _parse_head(data.rstrip(b"\r\n").decode("utf-8", "surrogateescape"))
    except SipParseError as err:
        return err.partial
    return msg if isinstance(msg, Request) else None
