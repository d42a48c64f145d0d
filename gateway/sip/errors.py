"""Errors of the SIP message layer.

Every problem found in bytes received from the network is a :class:`SipParseError`. It carries the
response the problem calls for (``status_hint``), a reason phrase that says exactly what is wrong
(safe to put on a status line) and, for requests, whatever part of the message could be read
(``partial``), so the transport can still answer when Via/From/To/Call-ID/CSeq were readable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from gateway.sip.message import Request

__all__ = ["SipParseError", "printable"]

# Status codes a parse or validation error may suggest (RFC 3261 §21).
_HINTS: Final = {400, 413, 415, 416, 420, 483, 501, 505, 513}

_MAX_SNIPPET: Final = 48


def printable(text: str, limit: int = _MAX_SNIPPET) -> str:
    """Quote a piece of untrusted input for an error message or a reason phrase.

    The result never contains control characters (so it cannot inject a line into a status line
    built from it) and is cut to ``limit`` characters.
    """
    if len(text) > limit:
        text = text[:limit] + "..."
    out = []
    for ch in text:
        code = ord(ch)
        if code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\x{code & 0xFF:02x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


class SipParseError(ValueError):
    """Malformed or unacceptable SIP input.

    ``status_hint`` is the response code the problem calls for: 400 malformed, 505 SIP version,
    513 message too large, 420 bad extension, 501 not implemented, 483 too many hops, 416
    unsupported URI scheme, 415 unsupported media type. ``reason`` is a short human phrase used as
    the reason phrase of that response. ``partial`` is the request as far as it could be read, or
    None when the input must be dropped and counted (garbage, or any malformed response: RFC 3261
    §18.1.2 discards those).

    It derives from ValueError so that code parsing configured values (a URI typed by an operator)
    can catch the usual exception.
    """

    def __init__(self, reason: str, status_hint: int = 400, partial: Request | None = None) -> None:
        if status_hint not in _HINTS:
            raise ValueError(f"unexpected status hint {status_hint} for a SIP parse error")
        # A reason phrase is a single line of printable text (RFC 3261 §25.1 Reason-Phrase).
        reason = "".join(ch if ch >= " " and ch != "\x7f" else " " for ch in reason)
        super().__init__(reason)
        self.reason = reason
        self.status_hint = status_hint
        self.partial = partial

    def with_partial(self, partial: Request | None) -> SipParseError:
        """The same error, carrying ``partial`` (used once the parser has built the request)."""
        err = SipParseError(self.reason, self.status_hint, partial)
        err.__cause__ = self.__cause__
        return err

    def __str__(self) -> str:
        return f"{self.status_hint} {self.reason}"

    def __repr__(self) -> str:
        kind = "request" if self.partial is not None else "none"
        return f"SipParseError({self.status_hint}, {self.reason!r}, partial={kind})"
