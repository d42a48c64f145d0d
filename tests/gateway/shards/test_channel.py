"""The channel between the gateway's process and a worker (gateway.shards.channel), over a real socket pair."""

from __future__ import annotations

import asyncio
import socket

from gateway.shards.channel import Channel


def _pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    return a, b


def test_frames_keep_their_order_through_a_full_buffer_and_a_dropped_frame_is_counted():
    async def run():
        loop = asyncio.get_running_loop()
        a, b = _pair()
        got: list[bytes] = []
        closed = []
        sender = Channel(a, loop, lambda f: None, lambda: closed.append("a"), max_queued=50)
        # A small buffer: the receiver is not read until everything is sent, so frames must queue.
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        b.setblocking(False)
        frames = [i.to_bytes(4, "big") * 512 for i in range(200)]  # 2 KiB each
        for frame in frames[:100]:
            assert sender.send(frame)  # message frames always wait their turn
        assert sender.stats.queued_max > 0
        dropped = [not sender.send(b"D" * 100, droppable=True) for _ in range(200)]
        assert any(dropped) and sender.stats.dropped == sum(dropped)  # a full queue drops datagram frames
        receiver = Channel(b, loop, got.append, lambda: closed.append("b"))
        for _ in range(500):
            if sender.stats.sent == 100 + 200 - sender.stats.dropped:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert got[:100] == frames[:100]  # in order, none lost
        assert all(f == b"D" * 100 for f in got[100:])
        sender.close()
        for _ in range(100):
            if "b" in closed:
                break
            await asyncio.sleep(0.01)
        assert closed == ["a", "b"]  # each end hears the close
        assert not sender.send(b"late") and receiver.closed

    asyncio.run(run())


def test_a_bad_frame_does_not_stop_the_channel():
    async def run():
        loop = asyncio.get_running_loop()
        a, b = _pair()
        seen: list[bytes] = []

        def on_frame(frame: bytes) -> None:
            if frame == b"bad":
                raise ValueError("cannot read this")
            seen.append(frame)

        receiver = Channel(b, loop, on_frame, lambda: None)
        for frame in (b"one", b"bad", b"two"):
            a.send(frame)
        for _ in range(100):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.01)
        assert seen == [b"one", b"two"] and not receiver.closed
        receiver.close()
        a.close()

    asyncio.run(run())
