"""A minimal MPP Remote SDK control server for the tests: the phone connects to it; requests go one at
a time and wait for the response (with a deadline); events are collected."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from aiohttp import WSMsgType, web


class RemoteSdkServer:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.connections = 0
        self._cond = threading.Condition()
        self._ws: web.WebSocketResponse | None = None
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.url = ""

    def start(self) -> str:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self.url

    async def _start(self) -> None:
        app = web.Application()
        app.add_routes([web.get("/", self._handler)])
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"ws://127.0.0.1:{self._runner.addresses[0][1]}/"

    async def _handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        with self._cond:
            self._ws = ws
            self.connections += 1
            self._cond.notify_all()
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                data = json.loads(msg.data)
                with self._cond:
                    (self.events if data.get("type") == "event" else self.responses).append(data)
                    self._cond.notify_all()
        with self._cond:
            if self._ws is ws:
                self._ws = None
            self._cond.notify_all()
        return ws

    def wait_connected(self, timeout: float = 5.0, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._ws is None or self.connections < count:
                if not self._cond.wait(max(0.0, deadline - time.monotonic())) and time.monotonic() > deadline:
                    raise AssertionError(f"the phone did not connect within {timeout} s")

    def send_raw(self, text: str) -> None:
        ws = self._ws
        assert ws is not None, "no phone connected"
        asyncio.run_coroutine_threadsafe(ws.send_str(text), self._loop).result(5)

    def request(self, payload: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        with self._cond:
            before = len(self.responses)
        self.send_raw(json.dumps(payload))
        return self.wait_response(before, timeout)

    def wait_response(self, index: int, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.responses) <= index:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no response within {timeout} s")
                self._cond.wait(remaining)
            return self.responses[index]

    def wait_event(self, pred, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no matching event within {timeout} s; got {self.events[-5:]}")
                self._cond.wait(remaining)

    def stop(self) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
