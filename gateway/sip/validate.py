"""Request checks a UAS or the B2BUA runs before processing (RFC 3261 §8.2, §16.3).

:func:`check_request` returns the error response a request calls for, or None when it may be
processed. :func:`response_for_error` turns a :class:`SipParseError` from the parser into the
response to send (or None when the input must just be dropped).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from gateway.sip.errors import SipParseError
from gateway.sip.message import Request, Response

__all__ = [
    "KNOWN_METHODS",
    "SUPPORTED_SCHEMES",
    "accepts",
    "check_request",
    "response_for_error",
]

#: Methods defined by RFC 3261 and its extensions (IANA "Methods" registry). A method outside this
#: set that the element does not implement gets 501; one inside it gets 405 (RFC 3261 §8.2.1).
KNOWN_METHODS: Final = frozenset(
    {
        "ACK", "BYE", "CANCEL", "INFO", "INVITE", "MESSAGE", "NOTIFY", "OPTIONS", "PRACK", "PUBLISH",
        "REFER", "REGISTER", "SUBSCRIBE", "UPDATE",
    }
)

#: Request-URI schemes the gateway handles (RFC 3261 §8.2.2.1: others get 416).
SUPPORTED_SCHEMES: Final = frozenset({"sip", "sips", "tel"})

# RFC 3261 §3 "3261-style" branch prefix (§8.1.1.7).
_MAGIC_COOKIE: Final = "z9hG4bK"


def _reply(
    req: Request, status: int, reason: str | None = None, headers: list[tuple[str, str]] | None = None
) -> Response:
    return Response.for_request(req, status, reason, headers=headers)


def check_request(
    req: Request,
    *,
    supported: Collection[str],
    methods: Collection[str],
    forwarding: bool = True,
    schemes: Collection[str] = SUPPORTED_SCHEMES,
    content_types: Collection[str] | None = None,
) -> Response | None:
    """The error response ``req`` calls for, or None if it may be processed.

    In order: 505 for a SIP version other than 2.0; 400 for missing or malformed mandatory headers
    (Via, From, To, Call-ID, CSeq, Max-Forwards, Contact); 501 for a method outside ``methods`` that
    is not a known SIP method, 405 with Allow for a known one (§8.2.1); 400 when the CSeq method
    differs from the request method, or when the branch is the bare magic cookie (RFC 4475 §3.2.1);
    416 for a Request-URI scheme outside ``schemes`` (§8.2.2.1); when ``forwarding`` (the request
    would be relayed to another leg), 483 for Max-Forwards 0 (§16.3 step 2) and 420 for
    Proxy-Require options outside ``supported``; 420 with Unsupported for Require options outside
    ``supported`` (§8.2.2.3); when ``content_types`` is given, 415 with Accept for a body of another
    type (§8.2.3).

    Nothing is ever sent in response to an ACK (§17.1.1.3): for ACK the result only says why it
    must be dropped. Require is not checked on CANCEL and ACK (§8.2.2.3).
    """
    version = req.version.upper()
    if version != "SIP/2.0":
        return _reply(req, 505, f"SIP version {req.version} not supported")

    try:
        req.top_via  # noqa: B018 - the checks are the side effect
        req.from_  # noqa: B018
        req.to  # noqa: B018
        if not req.call_id:
            return _reply(req, 400, "Empty Call-ID")
        cseq = req.cseq
        max_forwards = req.max_forwards
        req.contact  # noqa: B018
    except SipParseError as err:
        return _reply(req, 400, err.reason)

    method = req.method
    if method not in methods:
        if method in KNOWN_METHODS:
            allow = ", ".join(sorted(methods))
            return _reply(req, 405, None, [("Allow", allow)])
        return _reply(req, 501, f"Method {method} not implemented")
    if cseq.method != method:
        return _reply(req, 400, f"CSeq method {cseq.method} does not match request method {method}")
    if req.top_via.branch == _MAGIC_COOKIE:
        return _reply(req, 400, "Via branch is the magic cookie without a transaction identifier")

    scheme = req.uri.partition(":")[0].lower()
    if scheme not in schemes:
        return _reply(req, 416, f"URI scheme {scheme} not supported")

    skip_require = method in ("ACK", "CANCEL")
    if forwarding:
        if max_forwards == 0:
            return _reply(req, 483)
        unknown = [tag for tag in req.headers.get_all("Proxy-Require") if tag not in supported]
        if unknown and not skip_require:
            return _reply(req, 420, None, [("Unsupported", tag) for tag in unknown])
    if not skip_require:
        unknown = [tag for tag in req.headers.get_all("Require") if tag not in supported]
        if unknown:
            return _reply(req, 420, None, [("Unsupported", tag) for tag in unknown])

    if content_types is not None and req.body:
        media_type = req.media_type or "application/octet-stream"
        if media_type not in content_types:
            return _reply(req, 415, None, [("Accept", ", ".join(content_types))])
    return None


def accepts(req: Request, media_type: str) -> bool:
    """Whether the sender of ``req`` accepts a body of ``media_type`` in the response.

    RFC 3261 §20.1: without an Accept header, ``application/sdp`` is assumed; ``*/*`` and
    ``type/*`` ranges match (RFC 4475 §3.3.15 sdp01 is the case where the answer is no).
    """
    media_type = media_type.lower()
    values = req.headers.get_all("Accept")
    if "Accept" not in req.headers:
        return media_type == "application/sdp"
    major = media_type.split("/", 1)[0]
    for value in values:
        rng, *params = value.split(";")
        if _q_value(params) == 0:
            continue  # q=0: explicitly not acceptable (RFC 3261 §20.1, RFC 2616 §14.1)
        if rng.strip(" \t").lower() in (media_type, "*/*", f"{major}/*"):
            return True
    return False


def _q_value(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip(" \t").lower() == "q":
            try:
                return float(value.strip(" \t"))
            except ValueError:
                return 1.0
    return 1.0


def response_for_error(err: SipParseError) -> Response | None:
    """The response to send for a parse error, or None when the input is just dropped.

    None when there is no readable request (garbage, any malformed response) or the request is an
    ACK (never answered); otherwise the hinted status with the error's reason phrase, built from
    whatever headers could be read. The transport still needs a top Via (or the source address) to
    send it.
    """
    req = err.partial
    if req is None or req.method == "ACK":
        return None
    return Response.for_request(req, err.status_hint, err.reason)
