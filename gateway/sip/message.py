"""SIP requests and responses.

A message is a start line, a :class:`Headers` multi-map of raw values and a body. Messages are
treated as immutable: the gateway builds new ones (``Request.build``, ``Response.for_request``,
``replace``) rather than editing received ones. The structured views (``cseq``, ``top_via``,
``from_``...) parse on first use and are memoised in the message's headers; the parser already fills
in the ones it checks (Via, From, To, Call-ID, CSeq, Max-Forwards), so reading them costs nothing.
Headers the gateway only copies are never parsed.

A property raises :class:`SipParseError` when its header is missing or malformed; for messages
returned by :func:`gateway.sip.parser.parse_message` this can only happen for the headers it does not
check (Contact, Route, Record-Route...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar, Final

from gateway.sip.abnf import is_token
from gateway.sip.errors import SipParseError, printable
from gateway.sip.headers import Headers, split_list
from gateway.sip.serializer import serialize, serialize_request_line, serialize_status_line
from gateway.sip.uri import CSeq, NameAddr, SipURI, Via, parse_cseq_text

__all__ = [
    "DIALOG_CREATING_METHODS",
    "REASON_PHRASES",
    "HeadersInput",
    "Request",
    "Response",
    "reason_phrase",
]

HeadersInput = Headers | Mapping[str, str] | Iterable[tuple[str, str]] | None

SIP_VERSION: Final = "SIP/2.0"

#: Methods whose 101-299 responses establish a dialog, so they copy Record-Route (RFC 3261 §12.1.1,
#: RFC 6665 §4.4.1 for SUBSCRIBE/NOTIFY, RFC 3515 for REFER).
DIALOG_CREATING_METHODS: Final = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})

#: Default reason phrases (RFC 3261 §21 and extensions registered with IANA).
REASON_PHRASES: Final[dict[int, str]] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    417: "Unknown Resource-Priority",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    424: "Bad Location Information",
    428: "Use Identity Header",
    429: "Provide Referrer Identity",
    433: "Anonymity Disallowed",
    436: "Bad Identity Info",
    437: "Unsupported Credential",
    438: "Invalid Identity Header",
    439: "First Hop Lacks Outbound Support",
    440: "Max-Breadth Exceeded",
    469: "Bad Info Package",
    470: "Consent Needed",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    494: "Security Agreement Required",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    555: "Push Notification Service Not Supported",
    580: "Precondition Failure",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
    607: "Unwanted",
    608: "Rejected",
}

_CLASS_PHRASES: Final = {1: "Provisional", 2: "Success", 3: "Redirection", 4: "Client Error", 5: "Server Error",
                  6: "Global Failure"}


def reason_phrase(status: int) -> str:
    """The standard reason phrase of ``status`` (or of its class for unregistered codes)."""
    return REASON_PHRASES.get(status) or _CLASS_PHRASES.get(status // 100, "Unknown")


def _as_headers(headers: HeadersInput) -> Headers:
    if headers is None:
        return Headers()
    if isinstance(headers, Headers):
        return headers.copy()
    return Headers(headers)


#: A body as given to the builders: bytes, or a buffer of them (copied into bytes).
BodyInput = bytes | bytearray | memoryview


def _check_body(body: BodyInput) -> bytes:
    if isinstance(body, bytes):  # the usual case first: one type check, not an isinstance against a tuple
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    raise TypeError(f"a SIP body is bytes, not {type(body).__name__}")


#: What ``Response.for_request`` copies from the request unchanged, as memo slots.
_RESPONSE_COPIED_SLOTS: Final = ("top_via", "vias", "from", "to", "cseq")


# -- parsers used by the memoised properties -------------------------------------------------------


def _required(h: Headers, name: str) -> str:
    value = h.get(name)
    if value is None:
        raise SipParseError(f"missing {name} header")
    return value


def _first_element(value: str, name: str) -> str:
    if "," in value:
        parts = split_list(value)
        if not parts:
            raise SipParseError(f"empty {name} header")
        return parts[0]
    if not value:
        raise SipParseError(f"empty {name} header")
    return value


def _in_header(name: str, err: SipParseError) -> SipParseError:
    new = SipParseError(f"bad {name} header: {err.reason}", err.status_hint)
    return new


def parse_top_via(h: Headers) -> Via:
    try:
        return Via.parse(_first_element(_required(h, "Via"), "Via"))
    except SipParseError as err:
        if err.reason.startswith(("missing", "empty")):
            raise
        raise _in_header("Via", err) from None


def parse_vias(h: Headers) -> list[Via]:
    values = h.get_all("Via")
    if not values:
        raise SipParseError("missing Via header")
    try:
        return [Via.parse(v) for v in values]
    except SipParseError as err:
        raise _in_header("Via", err) from None


def _name_addr(h: Headers, name: str) -> NameAddr:
    value = _required(h, name)
    try:
        return NameAddr.parse(value)
    except SipParseError as err:
        raise _in_header(name, err) from None


def parse_from(h: Headers) -> NameAddr:
    return _name_addr(h, "From")


def parse_to(h: Headers) -> NameAddr:
    return _name_addr(h, "To")


def parse_cseq(h: Headers) -> CSeq:
    try:
        return parse_cseq_text(_required(h, "CSeq"))
    except SipParseError as err:
        if err.reason.startswith("missing"):
            raise
        raise _in_header("CSeq", err) from None


def parse_max_forwards(h: Headers) -> int | None:
    value = h.get("Max-Forwards")
    if value is None:
        return None
    # Max-Forwards = 1*DIGIT, an integer in the range 0-255 (RFC 3261 §20.22)
    if not (value.isascii() and value.isdigit()) or len(value) > 10 or int(value) > 255:
        raise SipParseError(f"Max-Forwards {printable(value, 24)} is not an integer from 0 to 255")
    return int(value)


def _address_list(h: Headers, name: str) -> list[NameAddr]:
    try:
        return [NameAddr.parse(v) for v in h.get_all(name)]
    except SipParseError as err:
        raise _in_header(name, err) from None


def parse_contacts(h: Headers) -> list[NameAddr]:
    values = h.get_all("Contact")
    if "*" in values:
        # Contact: * is only legal alone (REGISTER removing every binding, RFC 3261 §10.2.2)
        if len(values) != 1:
            raise SipParseError("bad Contact header: '*' mixed with addresses")
        return []
    return _address_list(h, "Contact")


def parse_expires(h: Headers) -> int | None:
    value = h.get("Expires")
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 10 or int(value) > 2**32 - 1:
        raise SipParseError(f"Expires {printable(value, 24)} is not an integer from 0 to 2**32-1")
    return int(value)


def _option_tags(h: Headers, name: str) -> list[str]:
    return h.get_all(name)


# The parsers the structured views hand to ``Headers._memo``. Final, so that the compiled build reads them from C
# statics: a function named as a value is otherwise looked up in the module's dict on every use.
_PARSE_CSEQ: Final = parse_cseq
_PARSE_VIAS: Final = parse_vias
_PARSE_TOP_VIA: Final = parse_top_via
_PARSE_FROM: Final = parse_from
_PARSE_TO: Final = parse_to
_PARSE_CONTACTS: Final = parse_contacts
_PARSE_MAX_FORWARDS: Final = parse_max_forwards
_PARSE_EXPIRES: Final = parse_expires


# --------------------------------------------------------------------------------------------------


class _Message:
    """What requests and responses share: headers, body, version and the structured views."""

    __slots__ = ("body", "headers", "version")

    is_request: ClassVar[bool]

    headers: Headers
    body: bytes
    version: str

    # -- structured views (parsed on first use, memoised in the headers) -------------------------

    @property
    def call_id(self) -> str:
        return _required(self.headers, "Call-ID")

    @property
    def cseq(self) -> CSeq:
        return self.headers._memo("cseq", _PARSE_CSEQ)

    @property
    def vias(self) -> list[Via]:
        return self.headers._memo("vias", _PARSE_VIAS)

    @property
    def top_via(self) -> Via:
        return self.headers._memo("top_via", _PARSE_TOP_VIA)

    @property
    def from_(self) -> NameAddr:
        return self.headers._memo("from", _PARSE_FROM)

    @property
    def to(self) -> NameAddr:
        return self.headers._memo("to", _PARSE_TO)

    @property
    def contact(self) -> list[NameAddr]:
        """Contact addresses in order; empty for ``Contact: *`` and when absent."""
        return self.headers._memo("contact", _PARSE_CONTACTS)

    @property
    def route(self) -> list[NameAddr]:
        return self.headers._memo("route", lambda h: _address_list(h, "Route"))

    @property
    def record_route(self) -> list[NameAddr]:
        return self.headers._memo("record_route", lambda h: _address_list(h, "Record-Route"))

    @property
    def max_forwards(self) -> int | None:
        return self.headers._memo("max_forwards", _PARSE_MAX_FORWARDS)

    @property
    def expires(self) -> int | None:
        return self.headers._memo("expires", _PARSE_EXPIRES)

    @property
    def require(self) -> list[str]:
        return _option_tags(self.headers, "Require")

    @property
    def supported(self) -> list[str]:
        return _option_tags(self.headers, "Supported")

    @property
    def content_type(self) -> str | None:
        """The Content-Type value as written (``application/sdp``, ``multipart/mixed;boundary=x``)."""
        return self.headers.get("Content-Type")

    @property
    def media_type(self) -> str | None:
        """The lower-case ``type/subtype`` of Content-Type, without parameters."""
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip(" \t").lower()

    def release_parsed(self) -> None:
        """Forget the memoised structured views (Via, From, To, Contact, CSeq ..., the Request-URI).

        The message stays the same and every view is parsed again on its next use. A transaction that only
        keeps a message to answer retransmissions calls this, so a busy element does not hold dozens of
        parsed objects per finished transaction for the seconds its timers run (they are what the garbage
        collector has to scan over and over)."""
        self.headers._forget_all()

    def _comparable(self) -> tuple[object, ...]:
        fields = [(k, v) for k, _, v in self.headers._fields if k != "content-length"]
        return (self.version.upper(), fields, self.body)


class Request(_Message):
    """A SIP request. Construct with :meth:`build` (checked) or get one from the parser."""

    __slots__ = ("_request_uri", "method", "uri")

    is_request: ClassVar[bool] = True

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = SIP_VERSION,
    ) -> None:
        self.method = method
        self.uri = uri
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self.version = version
        self._request_uri: SipURI | None = None

    @property
    def request_uri(self) -> SipURI:
        """The Request-URI parsed (raises SipParseError if it is not a valid URI)."""
        if self._request_uri is None:
            self._request_uri = SipURI.parse(self.uri)
        return self._request_uri

    @property
    def start_line(self) -> str:
        return serialize_request_line(self.method, self.uri, self.version)

    def release_parsed(self) -> None:
        super().release_parsed()
        self._request_uri = None

    @classmethod
    def build(
        cls,
        method: str,
        uri: str | SipURI,
        headers: HeadersInput = None,
        body: BodyInput = b"",
        *,
        adopt: bool = False,
    ) -> Request:
        """A new request, checked: method is a token, the URI parses, Via, From, To, Call-ID and CSeq
        are present and well formed, the CSeq method is the request method. Max-Forwards: 70 is
        added when absent (RFC 3261 §8.1.1.6). Raises ValueError saying what is wrong.

        With ``adopt`` a ``Headers`` object becomes the request's own instead of being copied (the caller
        built it for this request and does not touch it afterwards).
        """
        if not isinstance(method, str) or not is_token(method):
            raise ValueError(f"invalid SIP method {method!r}: a method is a token")
        uri_text = str(uri)
        try:
            parsed_uri = uri if isinstance(uri, SipURI) else SipURI.parse(uri_text)
        except SipParseError as err:
            raise ValueError(f"cannot build {method} request: {err.reason}") from None
        h = headers if adopt and isinstance(headers, Headers) else _as_headers(headers)
        req = cls(method, uri_text, h, _check_body(body))
        req._request_uri = parsed_uri
        try:
            req.top_via  # noqa: B018 - parsed for the check, memoised for later
            req.from_  # noqa: B018
            req.to  # noqa: B018
            call_id = req.call_id
            cseq = req.cseq
            if req.max_forwards is None:
                h.add("Max-Forwards", "70")
        except SipParseError as err:
            raise ValueError(f"cannot build {method} request: {err.reason}") from None
        if not call_id:
            raise ValueError(f"cannot build {method} request: empty Call-ID")
        if cseq.method != method:
            raise ValueError(f"cannot build {method} request: CSeq method {cseq.method} differs from {method}")
        return req

    def replace(
        self,
        *,
        method: str | None = None,
        uri: str | SipURI | None = None,
        headers: HeadersInput = None,
        body: BodyInput | None = None,
    ) -> Request:
        """A new request with some parts replaced (the others shared; headers copied)."""
        new = Request(
            self.method if method is None else method,
            self.uri if uri is None else str(uri),
            self.headers.copy() if headers is None else _as_headers(headers),
            self.body if body is None else _check_body(body),
            self.version,
        )
        if uri is None:
            new._request_uri = self._request_uri
        elif isinstance(uri, SipURI):
            new._request_uri = uri
        return new

    def to_bytes(self) -> bytes:
        return serialize(self.start_line, self.headers, self.body)

    def __eq__(self, other: object) -> bool:
        """Semantic equality: same start line, same header values in the same order (names compared
        case-insensitively with compact forms expanded; Content-Length ignored), same body."""
        if not isinstance(other, Request):
            return NotImplemented
        return (
            self.method == other.method and self.uri == other.uri and self._comparable() == other._comparable()
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} ({len(self.headers)} headers, {len(self.body)} body bytes)>"


class Response(_Message):
    """A SIP response. Construct with :meth:`for_request` or :meth:`build`, or get one from the parser."""

    __slots__ = ("reason", "status")

    is_request: ClassVar[bool] = False

    def __init__(
        self,
        status: int,
        reason: str,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = SIP_VERSION,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self.version = version

    @property
    def start_line(self) -> str:
        return serialize_status_line(self.version, self.status, self.reason)

    @staticmethod
    def _check_status(status: int, reason: str | None) -> str:
        if not isinstance(status, int) or not 100 <= status <= 699:
            raise ValueError(f"invalid SIP status code {status!r}: must be 100-699")
        if reason is None:
            return reason_phrase(status)
        if "\r" in reason or "\n" in reason:
            raise ValueError(f"reason phrase contains a line break: {reason!r}")
        return reason

    @classmethod
    def build(
        cls, status: int, reason: str | None = None, headers: HeadersInput = None, body: BodyInput = b""
    ) -> Response:
        """A new response from explicit headers (for a UAC-side or test use; see for_request)."""
        return cls(status, cls._check_status(status, reason), _as_headers(headers), _check_body(body))

    @classmethod
    def for_request(
        cls,
        request: Request,
        status: int,
        reason: str | None = None,
        headers: HeadersInput = None,
        body: BodyInput = b"",
        to_tag: str | None = None,
    ) -> Response:
        """The response a UAS sends to ``request`` (RFC 3261 §8.2.6).

        Copies every Via (in order), From, To, Call-ID and CSeq; adds ``to_tag`` to To when To has no
        tag yet (§8.2.6.2); copies Timestamp into a 100 (§8.2.6.1); for 101-299 responses to
        dialog-creating requests copies Record-Route (§12.1.1). ``headers`` are added after these;
        one that names a copied header replaces it. Works on a partial request (from a
        SipParseError) too: whatever of those headers is present is copied, raw.
        """
        reason = cls._check_status(status, reason)
        if to_tag is not None and not is_token(to_tag):
            raise ValueError(f"a To tag is a token (RFC 3261 §19.3): {to_tag!r}")
        copy_rr = 101 <= status <= 299 and request.method in DIALOG_CREATING_METHODS
        fields: list[tuple[str, str, str]] = []
        to_done = False
        for entry in request.headers._fields:
            key = entry[0]
            if key in ("via", "from", "call-id", "cseq"):
                fields.append(entry)
            elif key == "to":
                if to_tag is not None and not to_done:
                    to_done = True
                    entry = (key, entry[1], _add_tag(request, entry[2], to_tag))
                fields.append(entry)
            elif (key == "record-route" and copy_rr) or (key == "timestamp" and status == 100):
                fields.append(entry)
        h = Headers._from_fields(fields)
        parsed = request.headers._cache
        if parsed:
            # The copied headers are the request's own: keep what was parsed of them (not To once tagged).
            h._cache = {slot: parsed[slot] for slot in _RESPONSE_COPIED_SLOTS if slot in parsed}
            if to_tag is not None:
                h._cache.pop("to", None)
        if headers is not None:
            extra = headers if isinstance(headers, Headers) else Headers(headers)
            replaced: set[str] = set()
            for key, name, value in extra._fields:
                if key in ("via", "from", "to", "call-id", "cseq", "record-route") and key not in replaced:
                    h.set(name, value)
                    replaced.add(key)
                else:
                    h.add(name, value)
        return cls(status, reason, h, _check_body(body), SIP_VERSION)

    def to_bytes(self) -> bytes:
        return serialize(self.start_line, self.headers, self.body)

    def replace(
        self,
        *,
        status: int | None = None,
        reason: str | None = None,
        headers: HeadersInput = None,
        body: BodyInput | None = None,
    ) -> Response:
        """A new response with some parts replaced (the reason follows a new status unless given)."""
        new_status = self.status if status is None else status
        if reason is None:
            reason = self.reason if status is None else reason_phrase(new_status)
        return Response(
            new_status,
            self._check_status(new_status, reason),
            self.headers.copy() if headers is None else _as_headers(headers),
            self.body if body is None else _check_body(body),
            self.version,
        )

    def __eq__(self, other: object) -> bool:
        """Semantic equality (see Request.__eq__); the reason phrase is compared too."""
        if not isinstance(other, Response):
            return NotImplemented
        return (
            self.status == other.status and self.reason == other.reason and self._comparable() == other._comparable()
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} ({len(self.headers)} headers, {len(self.body)} body bytes)>"


def _add_tag(request: Request, raw_to: str, tag: str) -> str:
    """``raw_to`` with ``;tag=`` appended unless it already has a tag (then it is kept, §8.2.6.2)."""
    try:
        if request.to.tag is not None:
            return raw_to
    except SipParseError:
        # A partial request with an unreadable To: the response copies it unchanged.
        return raw_to
    return f"{raw_to};tag={tag}"
