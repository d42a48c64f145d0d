"""sipgw-lab's SIP core: sans-IO, standard library only.

Bytes go in (``parse_message``, ``StreamFramer.feed``), messages come out; messages go in
(``to_bytes``), bytes come out. Nothing here opens a socket, starts a thread or reads a clock.

The modules run compiled (mypyc, ``tools/compile_sip_core.py``) when a build of exactly this source
exists, else as Python; ``BUILD.reason`` says which and why (see ``gateway.sip._compiled``). The same
build holds the gateway modules that handle every message above this core (``gateway/sipcore.py`` and
some services): ``gateway``'s ``__init__`` imports this package first, so the choice is made here, once.
"""

from gateway.sip import _compiled

#: Whether the modules below were imported from a compiled build, and why (or why not).
BUILD = _compiled.activate()
COMPILED = BUILD.compiled

# The imports below come after the build is chosen: they load the compiled modules when there are some.

from gateway.sip.errors import SipParseError
from gateway.sip.framing import KEEPALIVE_PING, KEEPALIVE_PONG, StreamFramer, is_keepalive
from gateway.sip.headers import Headers, canonical_name
from gateway.sip.message import REASON_PHRASES, Request, Response, reason_phrase
from gateway.sip.multipart import BodyPart, build_multipart, find_part, parse_multipart, part_by_content_id
from gateway.sip.parser import MAX_MESSAGE_SIZE, parse_message
from gateway.sip.uri import CSeq, NameAddr, SipURI, Via
from gateway.sip.validate import accepts, check_request, response_for_error

__all__ = [
    "BUILD",
    "COMPILED",
    "KEEPALIVE_PING",
    "KEEPALIVE_PONG",
    "MAX_MESSAGE_SIZE",
    "REASON_PHRASES",
    "BodyPart",
    "CSeq",
    "Headers",
    "NameAddr",
    "Request",
    "Response",
    "SipParseError",
    "SipURI",
    "StreamFramer",
    "Via",
    "accepts",
    "build_multipart",
    "canonical_name",
    "check_request",
    "find_part",
    "is_keepalive",
    "parse_message",
    "parse_multipart",
    "part_by_content_id",
    "reason_phrase",
    "response_for_error",
]
