"""The HTTP plumbing the vendor modules share: one ``httpx.Client`` per device, transport failures turned
into :class:`DeviceUnreachable`, and an exchange log for evidence that never holds a credential."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from harness.drivers.vendors import DeviceUnreachable, Endpoint

LOG_MAX = 500
_REDACT = ("authorization", "cookie", "pwd", "password", "psw")


class HttpSession:
    def __init__(self, ep: Endpoint, *, auth: httpx.Auth | tuple[str, str] | None = None, vendor: str = "") -> None:
        self.ep = ep
        self.vendor = vendor
        # ``transport`` (endpoint option) replays recorded replies in tests (httpx.MockTransport)
        self.http = httpx.Client(base_url=ep.base_url, auth=auth, verify=ep.verify, timeout=ep.timeout,
                                 transport=ep.options.get("transport"))
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        t0 = time.time()
        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            self._record(t0, method, path, None, f"{type(exc).__name__}: {exc}")
            raise DeviceUnreachable(f"{self.vendor} API at {self.ep.base_url}: {method} {_clean(path)} failed: "
                                    f"{type(exc).__name__}: {exc}") from exc
        self._record(t0, method, path, r.status_code, "")
        return r

    def _record(self, t0: float, method: str, path: str, status: int | None, error: str) -> None:
        with self.lock:
            self.log.append({"t": t0, "method": method, "path": _clean(path), "status": status, "error": error,
                             "duration_s": round(time.time() - t0, 4)})
            del self.log[:-LOG_MAX]

    def close(self) -> None:
        self.http.close()


def _clean(path: str) -> str:
    """The path with credential-like query values replaced (``pwd=***``)."""
    if "?" not in path:
        return path
    base, _, query = path.partition("?")
    parts = []
    for item in query.split("&"):
        k, sep, _v = item.partition("=")
        parts.append(f"{k}{sep}***" if k.lower() in _REDACT else item)
    return f"{base}?{'&'.join(parts)}"
