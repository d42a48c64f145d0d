"""Replaying recorded vendor replies (``tests/data/vendors/<vendor>/``) through ``httpx.MockTransport``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from device_profiles.catalogue import default_catalogue
from harness.drivers.base import DriverContext, LineAccount

DATA = Path(__file__).resolve().parents[2] / "data" / "vendors"


def reply(vendor: str, name: str) -> bytes:
    return (DATA / vendor / name).read_bytes()


class Replay:
    """Routes ``(METHOD, path)`` to ``(status, body)``; every request is kept for assertions."""

    def __init__(self, routes: dict[tuple[str, str], tuple[int, bytes | str | Any]]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, request.url.path)
        if key not in self.routes:
            return httpx.Response(404, text="404 Not Found")
        status, body = self.routes[key]
        if isinstance(body, bytes):
            return httpx.Response(status, content=body)
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, content=json.dumps(body).encode())


def context(vendor: str, model: str, firmware: str, *, mac: str | None = None, **options: Any) -> DriverContext:
    profile = default_catalogue().find(model, vendor)
    assert profile is not None, f"{vendor} {model} is not in the catalogue"
    lines = (LineAccount(0, "+14255550111", "Blake Rivera", "blake", "pw"),)
    return DriverContext(device_id=f"{vendor.lower()}-1", vendor=vendor, model=profile.model, firmware=firmware,
                         profile=profile, lines=lines, mac=mac, options=options)
