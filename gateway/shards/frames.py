"""What the gateway's process and its registrar workers say to each other, one frame per ``SOCK_SEQPACKET`` record.

- ``D``: datagrams for a worker, as many as arrived in one turn of the gateway's event loop: ``D``, then for each
  the source port (2 bytes), the length of the source host (1 byte), the length of the datagram (4 bytes), the
  host (ASCII) and the datagram. The worker answers from the gateway's socket of the host's address family, as
  the gateway's own process does.
- ``M``: a list of messages (``{"k": kind, ...}``) in :mod:`marshal`'s format, batched per event-loop turn. Both
  ends run the same interpreter (the worker is started with the gateway's ``sys.executable``), and marshal
  writes and reads these plain values four times faster than JSON, which counts at one message per REGISTER.

Bindings and device records travel as lists and dictionaries of plain values (:func:`binding_to_wire`,
:func:`device_to_wire`); a frame that does not decode raises
:class:`FrameError` naming what is wrong.
"""

from __future__ import annotations

import marshal
import struct
from dataclasses import asdict, fields
from typing import Any

from gateway.services.model import Device, Flow, PairState
from gateway.services.registrar import Binding
from gateway.sip import NameAddr, SipParseError

DATAGRAM = 0x44  # "D"
MESSAGES = 0x4D  # "M"


class FrameError(ValueError):
    """A frame between the gateway and a registrar worker that cannot be read."""


_ENTRY = struct.Struct("!HBI")  # source port, host length, datagram length


def datagram_entry(host: str, port: int, data: bytes) -> bytes:
    """One datagram of a ``D`` frame (``b"D" + b"".join(entries)``)."""
    host_b = host.encode("ascii")
    return b"".join((_ENTRY.pack(port, len(host_b), len(data)), host_b, data))


def datagram_frame(entries: list[bytes]) -> bytes:
    return b"D" + b"".join(entries)


def read_datagrams(frame: bytes) -> list[tuple[str, int, bytes]]:
    """``(source host, source port, datagram)`` of each datagram of a ``D`` frame."""
    if len(frame) < 1 + _ENTRY.size or frame[0] != DATAGRAM:
        raise FrameError(f"not a datagram frame ({len(frame)} bytes)")
    out = []
    at, size = 1, len(frame)
    while at < size:
        if at + _ENTRY.size > size:
            raise FrameError(f"datagram frame ends inside the header of its datagram {len(out) + 1}")
        port, host_len, data_len = _ENTRY.unpack_from(frame, at)
        at += _ENTRY.size
        end = at + host_len + data_len
        if end > size:
            raise FrameError(f"datagram {len(out) + 1} of a {size}-byte frame claims {host_len + data_len} bytes, "
                             f"{size - at} are left")
        try:
            host = frame[at:at + host_len].decode("ascii")
        except UnicodeDecodeError:
            raise FrameError(f"the host of datagram {len(out) + 1} is not ASCII") from None
        out.append((host, port, frame[at + host_len:end]))
        at = end
    return out


def messages_frame(messages: list[dict[str, Any]]) -> bytes:
    return b"M" + marshal.dumps(messages)


def read_messages(frame: bytes) -> list[dict[str, Any]]:
    if not frame or frame[0] != MESSAGES:
        raise FrameError(f"not a message frame (starts with {frame[:1]!r})")
    try:
        messages = marshal.loads(frame[1:])
    except (ValueError, EOFError, TypeError) as exc:
        raise FrameError(f"message frame cannot be read: {exc}") from None
    if not isinstance(messages, list) or not all(isinstance(m, dict) and isinstance(m.get("k"), str)
                                                 for m in messages):
        raise FrameError("message frame is not a list of objects with a string 'k'")
    return messages


# --- bindings ------------------------------------------------------------------------------------------------

def binding_to_wire(b: Binding) -> list[Any]:
    f = b.flow
    return [b.username, str(b.contact), b.uri, b.expires_at, b.call_id, b.cseq,
            [f.transport, f.host, f.port, f.conn_id], b.user_agent, b.device_key, b.registered_at, b.instance, b.q,
            None if b.recv_info is None else list(b.recv_info), None if b.allow is None else list(b.allow)]


def binding_from_wire(item: Any) -> Binding:
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


def device_to_wire(d: Device) -> dict[str, Any]:
    data = asdict(d)
    data["pair_state"] = d.pair_state.value
    return data


def device_from_wire(data: Any) -> Device:
    if not isinstance(data, dict) or set(data) - _DEVICE_FIELDS or not isinstance(data.get("key"), str):
        raise FrameError(f"device record {str(data)[:120]!r} has unknown fields or no key")
    try:
        return Device(**{**data, "pair_state": PairState(data.get("pair_state", PairState.UNPAIRED.value))})
    except (TypeError, ValueError) as exc:
        raise FrameError(f"device record of {data['key']!r} cannot be read: {exc}") from None
