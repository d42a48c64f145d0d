"""What every part of the control-API client shares: the error type and one request that turns an error
document (``{"error": {"code", "message", "where"}}``) or an unreachable gateway into :class:`ControlApiError`."""

from __future__ import annotations

from typing import Any

import httpx

PREFIX = "/api/v1"


class ControlApiError(Exception):
    """The control API answered with an error document (or the gateway could not be reached: status 0)."""

    def __init__(self, status: int, code: str, message: str, where: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.where = where
        at = f" (at {where})" if where else ""
        super().__init__(f"HTTP {status} {code}: {message}{at}")


def send(http: httpx.Client, method: str, path: str, *, json: Any = None, params: Any = None,
         shown_as: str | None = None, error: type[ControlApiError] = ControlApiError) -> httpx.Response:
    """``method`` on ``PREFIX + path``; a 4xx/5xx answer or a transport failure raises ``error`` (a
    :class:`ControlApiError`; ``shown_as``: how the request is named in the unreachable message, by default the
    API path)."""
    try:
        resp = http.request(method, PREFIX + path, json=json, params=params)
    except httpx.HTTPError as exc:
        raise error(0, "unreachable", f"{method} {shown_as or PREFIX + path}: {exc}") from exc
    if resp.status_code >= 400:
        try:
            err = resp.json().get("error") or {}
        except (ValueError, AttributeError):
            err = {}
        message = str(err.get("message") or resp.text[:200])
        if resp.status_code == 401:  # the gateway has a control token: none was sent, or another one
            hint = ("give it as ControlClient(url, token=...); the harness reads SIPGW_CONTROL_TOKEN"
                    if "Authorization" not in resp.request.headers else "the token given is not the gateway's")
            message = f"the control API needs a token: {message} ({hint})"
        raise error(resp.status_code, str(err.get("code") or "http_error"), message, err.get("where"))
    return resp
