"""One end of the ``SOCK_SEQPACKET`` pair between the gateway's process and a registrar worker, on an event loop.

Records keep their boundaries and their order. Sending never blocks the loop: when the socket's buffer is full the
frame waits in a queue that the loop drains when the socket is writable again, and every later frame waits behind
it (a worker must see a directory change before the REGISTER that depends on it). Datagram frames are dropped
instead once ``max_queued`` frames wait (UDP: the device retransmits), and counted; message frames always wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("sipgw.shards")

#: Socket buffers of each end: a burst of REGISTERs waits here instead of in the queue.
BUFFER = 4 * 1024 * 1024
#: Frames read per wake-up before the loop runs anything else.
READ_BATCH = 64
#: The largest frame: a batch of datagrams (gateway.shards.pool.MAX_BATCH_BYTES) and one more of the largest
#: message size.
MAX_FRAME = 2 << 20


@dataclass
class ChannelStats:
    sent: int = 0
    received: int = 0
    dropped: int = 0
    queued_max: int = 0


class Channel:
    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop, on_frame: Callable[[bytes], None],
                 on_closed: Callable[[], None], *, max_queued: int = 10_000):
        sock.setblocking(False)
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, BUFFER)
        self.sock = sock
        self.loop = loop
        self.on_frame = on_frame
        self.on_closed = on_closed
        self.max_queued = max_queued
        self.stats = ChannelStats()
        self.closed = False
        self._queue: deque[bytes] = deque()
        self._writing = False
        self._buffer = bytearray(MAX_FRAME)  # received into, then copied out at the record's size
        self._view = memoryview(self._buffer)
        loop.add_reader(sock.fileno(), self._readable)

    def send(self, frame: bytes, *, droppable: bool = False) -> bool:
        """Send or queue one frame; False when it was dropped (closed channel, or a full queue and droppable)."""
        if self.closed:
            return False
        if self._queue:
            if droppable and len(self._queue) >= self.max_queued:
                self.stats.dropped += 1
                return False
            self._queue.append(frame)
            self.stats.queued_max = max(self.stats.queued_max, len(self._queue))
            return True
        try:
            self.sock.send(frame)
        except BlockingIOError:
            self._queue.append(frame)
            self._start_writing()
            return True
        except OSError as exc:
            self._close(f"send failed: {exc}")
            return False
        self.stats.sent += 1
        return True

    def _start_writing(self) -> None:
        if not self._writing:
            self._writing = True
            self.loop.add_writer(self.sock.fileno(), self._writable)

    def _writable(self) -> None:
        while self._queue:
            try:
                self.sock.send(self._queue[0])
            except BlockingIOError:
                return
            except OSError as exc:
                self._close(f"send failed: {exc}")
                return
            self._queue.popleft()
            self.stats.sent += 1
        self._writing = False
        self.loop.remove_writer(self.sock.fileno())

    def _readable(self) -> None:
        for _ in range(READ_BATCH):
            try:
                size = self.sock.recv_into(self._buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._close(f"receive failed: {exc}")
                return
            if not size:
                self._close("closed by the other end")
                return
            frame = bytes(self._view[:size])
            self.stats.received += 1
            try:
                self.on_frame(frame)
            except Exception:  # one bad frame must not stop the channel
                log.exception("event=shard_frame_failed size=%d", len(frame))

    def close(self) -> None:
        self._close(None)

    def _close(self, why: str | None) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.sock.fileno())
        if self._writing:
            with contextlib.suppress(Exception):
                self.loop.remove_writer(self.sock.fileno())
        with contextlib.suppress(OSError):
            self.sock.close()
        if why is not None:
            log.info("event=shard_channel_closed why=%s", why.replace(" ", "_"))
        self.on_closed()
