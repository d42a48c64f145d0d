"""Cutting a TCP/TLS byte stream into SIP messages (RFC 3261 §18.3).

On a stream the end of a message is known only from Content-Length, which is therefore mandatory.
CRLFs between messages are skipped (RFC 3261 §7.5); a double CRLF is the keep-alive "ping" of RFC 5626
§3.5.1, which the framer hands out as :data:`KEEPALIVE_PING` so the transport can answer with
:data:`KEEPALIVE_PONG` (a single CRLF). The framer buffers at most ``max_message_size`` bytes of an
incomplete message; past that, or on any framing error, the stream cannot be resynchronised: the
framer reports the error once and from then on accepts nothing (``broken``), and the transport closes
the connection.
"""

from __future__ import annotations

import re

from gateway.sip.errors import SipParseError
from gateway.sip.message import Request
from gateway.sip.parser import MAX_MESSAGE_SIZE, parse_message

__all__ = ["KEEPALIVE_PING", "KEEPALIVE_PONG", "StreamFramer", "is_keepalive"]

#: RFC 5626 §3.5.1: the client's keep-alive on a stream is a double CRLF ...
KEEPALIVE_PING = b"\r\n\r\n"
#: ... and the server's answer a single CRLF.
KEEPALIVE_PONG = b"\r\n"

# Content-Length or its compact form "l" at the start of a header line, case-insensitive, with the
# value possibly folded onto the next line: the framer only needs the number.
_CONTENT_LENGTH_RE = re.compile(rb"\n[ \t]*(?:content-length|l)[ \t]*:[ \t]*(?:\r?\n[ \t]+)?([^\r\n]*)", re.IGNORECASE)


def is_keepalive(frame: bytes) -> bool:
    """True for the keep-alive ping frames :meth:`StreamFramer.feed` returns."""
    return frame == KEEPALIVE_PING


class StreamFramer:
    """Frame SIP messages out of a byte stream; one instance per connection.

    ``feed(data)`` returns, in order, each complete message (bytes, to give to ``parse_message`` with
    ``stream=True``), each keep-alive ping (:data:`KEEPALIVE_PING`) and at most one
    :class:`SipParseError` after which the stream is unusable.
    """

    __slots__ = ("_broken", "_buf", "_scan_from", "keepalives", "max_message_size", "messages")

    def __init__(self, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        if max_message_size < 64:
            raise ValueError(f"max_message_size {max_message_size} is too small for any SIP message")
        self.max_message_size = max_message_size
        self._buf = bytearray()
        self._scan_from = 0  # where to resume looking for the end of the header section
        self._broken = False
        self.keepalives = 0  # CRLF pings and pongs seen between messages
        self.messages = 0

    @property
    def broken(self) -> bool:
        """True after a framing error: the connection must be closed."""
        return self._broken

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes | SipParseError]:
        if self._broken:
            return []
        buf = self._buf
        buf += data
        out: list[bytes | SipParseError] = []
        pos = 0
        n = len(buf)
        while pos < n:
            # Between messages: keep-alives (RFC 5626 §3.5.1) and stray CRLFs (RFC 3261 §7.5).
            if buf[pos] in (13, 10):
                if buf.startswith(KEEPALIVE_PING, pos):
                    out.append(KEEPALIVE_PING)
                    self.keepalives += 1
                    pos += 4
                    continue
                if n - pos < 4 and all(b in (13, 10) for b in buf[pos:]):
                    break  # maybe the first half of a ping: wait for more
                pos += 2 if buf.startswith(b"\r\n", pos) else 1
                self.keepalives += 1
                continue
            end, sep = self._find_head_end(buf, pos)
            if end == -1:
                if n - pos > self.max_message_size:
                    out.append(self._fail(f"header section longer than {self.max_message_size} bytes", 513))
                    return out
                self._scan_from = max(pos, n - 3)
                break
            head_end = end + sep
            length = self._content_length(buf, pos, end)
            if isinstance(length, SipParseError):
                out.append(self._fail_with_partial(bytes(buf[pos:head_end]), length))
                return out
            total = head_end - pos + length
            if total > self.max_message_size:
                out.append(
                    self._fail_with_partial(
                        bytes(buf[pos:head_end]),
                        SipParseError(f"message of {total} bytes exceeds the limit of {self.max_message_size}", 513),
                    )
                )
                return out
            if n < pos + total:
                self._scan_from = pos  # header end known; re-found cheaply next time
                break
            out.append(bytes(buf[pos : pos + total]))
            self.messages += 1
            pos += total
            self._scan_from = pos
        if pos:
            del buf[:pos]
            self._scan_from = max(0, self._scan_from - pos)
        return out

    def _find_head_end(self, buf: bytearray, pos: int) -> tuple[int, int]:
        start = max(pos, self._scan_from)
        end = buf.find(b"\r\n\r\n", start)
        lf_end = buf.find(b"\n\n", start, end if end != -1 else len(buf))
        if lf_end != -1 and (end == -1 or lf_end < end):
            return lf_end, 2
        return end, 4

    def _content_length(self, buf: bytearray, pos: int, end: int) -> int | SipParseError:
        head = bytes(buf[pos:end])
        found = _CONTENT_LENGTH_RE.findall(head)
        if not found:
            return SipParseError("missing Content-Length on a stream transport (RFC 3261 §18.3)")
        values = {v.strip(b" \t") for v in found}
        if len(found) > 1:
            return SipParseError("Content-Length header appears more than once")
        (text,) = values
        if not text.isdigit():
            return SipParseError("Content-Length is not a non-negative integer")
        if len(text) > 10:
            return SipParseError("Content-Length is larger than any acceptable message", 513)
        return int(text)

    def _fail(self, reason: str, status: int) -> SipParseError:
        self._broken = True
        self._buf.clear()
        return SipParseError(reason, status)

    def _fail_with_partial(self, head: bytes, err: SipParseError) -> SipParseError:
        """The framing error, carrying what the header section says (so a response can be sent)."""
        self._broken = True
        self._buf.clear()
        partial: Request | None = None
        try:
            msg = parse_message(head, max_size=len(head) + 1)
        except SipParseError as inner:
            partial = inner.partial
        else:
            partial = msg if isinstance(msg, Request) else None
        return err.with_partial(partial)
