"""What the gateway's process and its registrar workers say to each other, one frame per ``SOCK_SEQPACKET`` record.

- ``D``: a datagram for a worker: ``D``, the source port (2 bytes), the length of the source host (1 byte), the
  host (ASCII), then the datagram itself. The worker answers from the gateway's socket of the host's address
  family, as the gateway's own process does.
- ``J``: a list of JSON messages (``{"k": kind, ...}``), batched per event-loop turn.

Bindings and device records travel as JSON lists and objects (:func:`binding_to_json`, :func:`device_to_json`);
a frame that does not decode raises :class:`FrameError` naming what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any

from gateway.services.model import Device, Flow, PairState
from gateway.services.registrar import Binding
from gateway.sip import NameAddr, SipParseError

DATAGRAM = 0x44  # "D"
MESSAGES = 0x4A  # "J"


class FrameError(ValueError):
    """A frame between the gateway and a registrar worker that cannot be read."""


def datagram_frame(host: str, port: int, data: bytes) -> bytes:
    host_b = host.encode("ascii")
    return b"".join((b"D", bytes((port >> 8, port & 0xFF, len(host_b))), host_b, data))


def read_datagram(frame: bytes) -> tuple[str, int, bytes]:
    """``(source host, source port, datagram)`` of a ``D`` frame."""
    if len(frame) < 4 or frame[0] != DATAGRAM:
        raise FrameError(f"not a datagram frame ({len(frame)} bytes)")
    n = frame[3]
    if len(frame) < 4 + n:
        raise FrameError(f"datagram frame of {len(frame)} bytes is shorter than its {n}-byte host")
    try:
        host = frame[4:4 + n].decode("ascii")
    except UnicodeDecodeError:
        raise FrameError("datagram frame's host is not ASCII") from None
    return host, (frame[1] << 8) | frame[2], frame[4 + n:]


def messages_frame(messages: list[dict[str, Any]]) -> bytes:
    return b"J" + json.dumps(messages, separators=(",", ":")).encode()


def read_messages(frame: bytes) -> list[dict[str, Any]]:
    if not frame or frame[0] != MESSAGES:
        raise FrameError(f"not a message frame (starts with {frame[:1]!r})")
    try:
        messages = json.loads(frame[1:])
    except ValueError as exc:
        raise FrameError(f"message frame is not JSON: {exc}") from None
    if not isinstance(messages, list) or not all(isinstance(m, dict) and isinstance(m.get("k"), str)
                                                 for m in messages):
        raise FrameError("message frame is not a list of objects with a string 'k'")
    return messages


# --- bindings ------------------------------------------------------------------------------------------------

def binding_to_json(b: Binding) -> list[Any]:
    f = b.flow
    return [b.username, str(b.contact), b.uri, b.expires_at, b.call_id, b.cseq,
            [f.transport, f.host, f.port, f.conn_id], b.user_agent, b.device_key, b.registered_at, b.instance, b.q,
            None if b.recv_info is None else list(b.recv_info), None if b.allow is None else list(b.allow)]


def binding_from_json(item: Any) -> Binding:
    try:
        (username, contact, uri, expires_at, call_id, cseq, flow, user_agent, device_key, registered_at, instance, q,
         recv_info, allow) = item
        transport, host, port, conn_id = flow
        return Binding(str(username), NameAddr.parse(contact), str(uri), float(expires_at), str(call_id), int(cseq),
                       Flow(str(transport), str(host), int(port), conn_id), user_agent, str(device_key),
                       float(registered_at), instance, float(q), None if recv_info is None else tuple(recv_info),
                       None if allow is None else tuple(allow))
    except (TypeError, ValueError, SipParseError) as exc:
        raise FrameError(f"binding {str(item)[:120]!r} cannot be read: {exc}") from None


# --- devices -------------------------------------------------------------------------------------------------

_DEVICE_FIELDS = frozenset(f.name for f in fields(Device))


def device_to_json(d: Device) -> dict[str, Any]:
    data = asdict(d)
    data["pair_state"] = d.pair_state.value
    return data


def device_from_json(data: Any) -> Device:
    if not isinstance(data, dict) or set(data) - _DEVICE_FIELDS or not isinstance(data.get("key"), str):
        raise FrameError(f"device record {str(data)[:120]!r} has unknown fields or no key")
    try:
        return Device(**{**data, "pair_state": PairState(data.get("pair_state", PairState.UNPAIRED.value))})
    except (TypeError, ValueError) as exc:
        raise FrameError(f"device record of {data['key']!r} cannot be read: {exc}") from None
