"""sipgw-lab's SIP core: sans-IO, standard library only.

Bytes go in (``parse_message``, ``StreamFramer.feed``), messages come out; messages go in
(``to_bytes``), bytes come out. Nothing here opens a socket, starts a thread or reads a clock.
"""

from gateway.sip.errors import SipParseError
from gateway.sip.headers import Headers, canonical_name
from gateway.sip.message import REASON_PHRASES, Request, Response, reason_phrase
from gateway.sip.parser import MAX_MESSAGE_SIZE, parse_message
from gateway.sip.uri import CSeq, NameAddr, SipURI, Via

__all__ = [
    "MAX_MESSAGE_SIZE",
    "REASON_PHRASES",
    "CSeq",
    "Headers",
    "NameAddr",
    "Request",
    "Response",
    "SipParseError",
    "SipURI",
    "Via",
    "canonical_name",
    "parse_message",
    "reason_phrase",
]
