"""Sync client for the voicemail, MWI and forwarding routes, used as ``ControlClient.features``.

    api = ControlClient("http://127.0.0.1:8080")
    api.features.set_forwarding("avery", "no_answer", "+12065550100", seconds=10)
    box = api.features.voicemail("avery")          # {"messages": [...], "new": 1, "old": 0, "waiting": true}
    api.features.wait_voicemail("avery", new=1, timeout=10)

Errors raise ``gateway.control_api.client.ControlApiError`` (status, code, message, where).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx

from gateway.control_api.client_http import send


class FeaturesApi:
    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def _request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        resp = send(self._http, method, path, json=json, params=params)
        if resp.headers.get("content-type", "").startswith("audio/"):
            return resp.content
        return resp.json()

    # --- voicemail ----------------------------------------------------------------------------------------------
    def voicemail(self, username: str) -> dict[str, Any]:
        return self._request("GET", f"/users/{quote(username)}/voicemail")

    def clear_voicemail(self, username: str) -> dict[str, Any]:
        return self._request("DELETE", f"/users/{quote(username)}/voicemail")

    def set_voicemail(self, username: str, *, no_answer_s: float) -> dict[str, Any]:
        return self._request("PUT", f"/users/{quote(username)}/voicemail/settings", json={"no_answer_s": no_answer_s})

    def message_audio(self, username: str, message_id: str) -> bytes:
        return self._request("GET", f"/users/{quote(username)}/voicemail/{quote(message_id)}.wav")

    def mark_heard(self, username: str, message_id: str, heard: bool = True) -> dict[str, Any]:
        return self._request("PATCH", f"/users/{quote(username)}/voicemail/{quote(message_id)}", json={"heard": heard})

    def delete_message(self, username: str, message_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/users/{quote(username)}/voicemail/{quote(message_id)}")

    def wait_voicemail(self, username: str, *, new: int | None = None, total: int | None = None,
                       timeout: float = 10.0) -> dict[str, Any]:
        """Poll the box until it holds ``new`` new (and/or ``total``) messages; TimeoutError names what it saw."""
        deadline = time.monotonic() + timeout
        box: dict[str, Any] = {}
        while True:
            box = self.voicemail(username)
            if (new is None or box["new"] == new) and (total is None or len(box["messages"]) == total):
                return box
            if time.monotonic() >= deadline:
                raise TimeoutError(f"voicemail of {username}: wanted new={new} total={total} within {timeout} s; "
                                   f"saw new={box.get('new')} total={len(box.get('messages', []))}")
            time.sleep(0.05)

    def mwi(self, username: str) -> dict[str, Any]:
        return self._request("GET", f"/users/{quote(username)}/mwi")

    # --- forwarding ---------------------------------------------------------------------------------------------
    def forwarding(self, username: str) -> dict[str, Any]:
        return self._request("GET", f"/users/{quote(username)}/forwarding")

    def set_forwarding(self, username: str, kind: str, target: str, *, seconds: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": kind, "target": target}
        if seconds is not None:
            body["seconds"] = seconds
        return self._request("PUT", f"/users/{quote(username)}/forwarding", json=body)

    def clear_forwarding(self, username: str, kind: str | None = None) -> dict[str, Any]:
        return self._request("DELETE", f"/users/{quote(username)}/forwarding",
                             params={"kind": kind} if kind else None)


__all__ = ["FeaturesApi"]
