"""Sync client for the media node's routes (``/api/v1/media/...``), used as ``ControlClient.media``.

    api = MediaApi(httpx.Client(base_url="http://127.0.0.1:8080"))
    call = api.originate({"kind": "pstn", "number": "+14255550100"}, "+14255550111", tone_hz=700)
    api.wait_state(call["id"], "confirmed", timeout=5)
    api.dtmf(call["id"], "123#")
    wav = api.recording(call["id"])

Every method returns the decoded JSON (a Call is a dict as in ``routes_media``) and raises
``MediaApiError`` (a ``ControlApiError``) carrying the error document's ``code``, ``message`` and ``where`` on a
4xx/5xx, or status 0 when the gateway cannot be reached.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx

from gateway.control_api.client_http import ControlApiError, send

PREFIX = "/media"  # under the control API's /api/v1


class MediaApiError(ControlApiError):
    """A media route answered with an error document (or the gateway could not be reached: status 0)."""


class MediaApi:
    """The media node's control routes over an ``httpx.Client`` whose ``base_url`` is the gateway's
    control URL."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    # ------------------------------------------------------------------ plumbing

    def _request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        resp = send(self._http, method, PREFIX + path, json=json, params=params, error=MediaApiError)
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    # ------------------------------------------------------------------ calls

    def calls(self, party: str | None = None) -> list[dict[str, Any]]:
        """Every call of the media node, or of one party (a number or a Teams user name)."""
        params = {"party": party} if party is not None else None
        return list(self._request("GET", "/calls", params=params)["calls"])

    def call(self, call_id: str) -> dict[str, Any]:
        return self._request("GET", f"/calls/{quote(call_id, safe='')}")

    def originate(self, from_: dict[str, Any], to: str, *, tone_hz: float | None = None) -> dict[str, Any]:
        """Call ``to`` (a number or user name) from a Teams user (``{"kind": "teams", "user": ...}``)
        or a PSTN party (``{"kind": "pstn", "number": ...}``) through the gateway."""
        body: dict[str, Any] = {"from": from_, "to": to}
        if tone_hz is not None:
            body["tone_hz"] = tone_hz
        return self._request("POST", "/calls", json=body)

    def hangup(self, call_id: str) -> dict[str, Any]:
        return self._op(call_id, "hangup")

    def answer(self, call_id: str) -> dict[str, Any]:
        return self._op(call_id, "answer")

    def hold(self, call_id: str) -> dict[str, Any]:
        return self._op(call_id, "hold")

    def resume(self, call_id: str) -> dict[str, Any]:
        return self._op(call_id, "resume")

    def dtmf(self, call_id: str, digits: str) -> dict[str, Any]:
        return self._op(call_id, "dtmf", {"digits": digits})

    def tone(self, call_id: str, hz: float) -> dict[str, Any]:
        return self._op(call_id, "tone", {"hz": hz})

    def recording(self, call_id: str) -> bytes:
        """The WAV (16-bit PCM) of what the party heard on that call so far."""
        return send(self._http, "GET", f"{PREFIX}/calls/{quote(call_id, safe='')}/recording.wav",
                    error=MediaApiError).content

    def _op(self, call_id: str, op: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._request("POST", f"/calls/{quote(call_id, safe='')}/{op}", json=body or {})

    # ------------------------------------------------------------------ parties

    def set_party(self, kind: str, identity: str, *, answer: str | None = None,
                  answer_delay_ms: int | None = None, tone_hz: float | None = None) -> dict[str, Any]:
        """How a party (``kind`` "teams" with a user name, or "pstn" with a number) treats inbound calls."""
        body: dict[str, Any] = {}
        if answer is not None:
            body["answer"] = answer
        if answer_delay_ms is not None:
            body["answer_delay_ms"] = answer_delay_ms
        if tone_hz is not None:
            body["tone_hz"] = tone_hz
        return self._request("PUT", f"/parties/{quote(kind, safe='')}/{quote(identity, safe='')}", json=body)

    # ------------------------------------------------------------------ waiting

    def wait_call(self, party: str, *, state: str | None = None, timeout: float = 10.0,
                  poll_s: float = 0.05) -> dict[str, Any]:
        """The newest call of ``party`` (in ``state`` if given), polling until ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            calls = [c for c in self.calls(party) if state is None or c["state"] == state]
            if calls:
                return calls[-1]
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no call of {party!r}" + (f" in state {state!r}" if state else "")
                                   + f" within {timeout} s")
            time.sleep(poll_s)

    def wait_state(self, call_id: str, state: str, *, timeout: float = 10.0, poll_s: float = 0.05) -> dict[str, Any]:
        """Poll a call until it reaches ``state``; a call that ends first raises."""
        deadline = time.monotonic() + timeout
        while True:
            call = self.call(call_id)
            if call["state"] == state:
                return call
            if call["state"] == "disconnected":
                raise RuntimeError(f"call {call_id} ended ({call.get('status_code')}) before reaching {state!r}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"call {call_id} still {call['state']!r} after {timeout} s, waiting for {state!r}")
            time.sleep(poll_s)
