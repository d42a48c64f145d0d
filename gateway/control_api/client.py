"""Sync Python client of the gateway's control API (httpx), one method per route.

    with ControlClient("http://127.0.0.1:8080") as api:
        api.create_user("avery", "Avery Chen", password="s3cret", number="+14255550101")
        api.wait_registered("avery", timeout=10)
        print(api.trace_ladder(call_id="..."))
        api.reset()

Every method returns decoded JSON (or bytes / text for the pcap and the ladder) and raises
:class:`ControlApiError` with the error document's ``code``, ``message`` and ``where`` on a 4xx/5xx answer.
``ControlClient.media`` is the media node's API (:class:`gateway.control_api.client_media.MediaApi`).
``token``: the gateway's control token, sent as ``Authorization: Bearer <token>`` on every request (a gateway with
a token answers 401 without it: ``ControlApiError`` says "the control API needs a token: ...").
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx

from gateway.control_api.client_features import FeaturesApi
from gateway.control_api.client_http import PREFIX, ControlApiError, send
from gateway.control_api.client_media import MediaApi
from gateway.control_api.client_signin import SignInApi
from gateway.control_api.client_voiceapps import VoiceAppsApi

_UNSET: Any = object()


def _q(value: str) -> str:
    return quote(value, safe="")


def _fields(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not _UNSET}


class ControlClient:
    def __init__(self, base_url: str, timeout: float = 10.0, *, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token or None  # the gateway's control token, if it has one
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)
        self.media = MediaApi(self._http)
        self.signin = SignInApi(self._http)
        self.features = FeaturesApi(self._http)
        self.voiceapps = VoiceAppsApi(self._http)

    # --- plumbing ------------------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, *, json: Any = None, params: Any = None) -> httpx.Response:
        return send(self._http, method, path, json=json, params=params, shown_as=f"{self.base_url}{PREFIX}{path}")

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        return self._send(method, path, **kw).json()

    # --- system --------------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health")

    def openapi(self) -> dict[str, Any]:
        return self._json("GET", "/openapi.json")

    def reset(self) -> dict[str, Any]:
        """End calls, clear the trace, reset the clock, restore baseline policies (users and devices stay)."""
        return self._json("POST", "/reset")

    def wait_ready(self, timeout: float = 10.0) -> dict[str, Any]:
        """Poll ``/health`` until the gateway answers (e.g. right after starting it as a process)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.health()
            except ControlApiError as exc:
                if exc.status != 0 or time.monotonic() >= deadline:
                    raise
            time.sleep(0.05)

    # --- users ---------------------------------------------------------------------------------------------
    def users(self) -> list[dict[str, Any]]:
        return self._json("GET", "/users")["users"]

    def user(self, username: str) -> dict[str, Any]:
        return self._json("GET", f"/users/{_q(username)}")

    def create_user(self, username: str, name: str, *, password: str | None = None, number: str | None = None,
                    allow_sip_devices_calling: bool = True, allow_call_redirect: bool = True,
                    teams_client: bool = False, voicemail: bool = True, common_area: bool = False,
                    presence: str = "available") -> dict[str, Any]:
        body = {"username": username, "name": name, "password": password, "number": number,
                "policy": {"allow_sip_devices_calling": allow_sip_devices_calling,
                           "allow_call_redirect": allow_call_redirect},
                "teams_client": teams_client, "voicemail": voicemail, "common_area": common_area,
                "presence": presence}
        return self._json("POST", "/users", json=body)

    def update_user(self, username: str, *, name: str = _UNSET, password: str = _UNSET,
                    number: str | None = _UNSET, allow_sip_devices_calling: bool = _UNSET,
                    allow_call_redirect: bool = _UNSET, teams_client: bool = _UNSET, voicemail: bool = _UNSET,
                    common_area: bool = _UNSET, presence: str = _UNSET) -> dict[str, Any]:
        """Change only the fields given (``number=None`` removes the number)."""
        body = _fields(name=name, password=password, number=number, teams_client=teams_client,
                       voicemail=voicemail, common_area=common_area, presence=presence)
        policy = _fields(allow_sip_devices_calling=allow_sip_devices_calling,
                         allow_call_redirect=allow_call_redirect)
        if policy:
            body["policy"] = policy
        return self._json("PATCH", f"/users/{_q(username)}", json=body)

    def set_policy(self, username: str, *, allow_sip_devices_calling: bool = _UNSET,
                   allow_call_redirect: bool = _UNSET) -> dict[str, Any]:
        return self.update_user(username, allow_sip_devices_calling=allow_sip_devices_calling,
                                allow_call_redirect=allow_call_redirect)

    def delete_user(self, username: str) -> dict[str, Any]:
        return self._json("DELETE", f"/users/{_q(username)}")

    # --- devices -------------------------------------------------------------------------------------------
    def devices(self, *, username: str | None = None, pair_state: str | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("username", username), ("pair_state", pair_state)) if v is not None}
        return self._json("GET", "/devices", params=params)["devices"]

    def device(self, key: str) -> dict[str, Any]:
        return self._json("GET", f"/devices/{_q(key)}")

    def create_device(self, mac: str, *, vendor: str | None = None, model: str | None = None,
                      firmware: str | None = None, username: str | None = None,
                      pair_state: str | None = None) -> dict[str, Any]:
        body = {"mac": mac, "vendor": vendor, "model": model, "firmware": firmware, "username": username}
        if pair_state is not None:
            body["pair_state"] = pair_state
        return self._json("POST", "/devices", json=body)

    def update_device(self, key: str, *, username: str | None = _UNSET, pair_state: str = _UNSET,
                      vendor: str = _UNSET, model: str = _UNSET, firmware: str = _UNSET) -> dict[str, Any]:
        body = _fields(username=username, pair_state=pair_state, vendor=vendor, model=model, firmware=firmware)
        return self._json("PATCH", f"/devices/{_q(key)}", json=body)

    def delete_device(self, key: str) -> dict[str, Any]:
        return self._json("DELETE", f"/devices/{_q(key)}")

    # --- registrations -------------------------------------------------------------------------------------
    def registrations(self) -> list[dict[str, Any]]:
        return self._json("GET", "/registrations")["registrations"]

    def registration(self, username: str) -> dict[str, Any]:
        return self._json("GET", f"/registrations/{_q(username)}")

    def wait_registered(self, username: str, contacts: int = 1, timeout: float = 10.0) -> dict[str, Any]:
        """Poll until ``username`` has at least ``contacts`` live bindings; TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            reg = self.registration(username)
            if len(reg["contacts"]) >= contacts:
                return reg
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{username} has {len(reg['contacts'])} registered contact(s) after "
                                   f"{timeout} s; expected {contacts}")
            time.sleep(0.05)

    # --- calls ---------------------------------------------------------------------------------------------
    def calls(self, *, ended: bool = False) -> list[dict[str, Any]]:
        return self._json("GET", "/calls", params={"ended": "true"} if ended else None)["calls"]

    def call(self, call_id: str) -> dict[str, Any]:
        return self._json("GET", f"/calls/{_q(call_id)}")

    def hangup(self, call_id: str) -> dict[str, Any]:
        return self._json("POST", f"/calls/{_q(call_id)}/hangup")

    # --- trace ---------------------------------------------------------------------------------------------
    @staticmethod
    def _trace_params(call_id: str | list[str] | None, call: str | None, since: float | None,
                      until: float | None, after_seq: int | None, limit: int | None) -> list[tuple[str, Any]]:
        params: list[tuple[str, Any]] = []
        ids = [call_id] if isinstance(call_id, str) else list(call_id or ())
        params.extend(("call_id", i) for i in ids)
        for name, value in (("call", call), ("since", since), ("until", until), ("after_seq", after_seq),
                            ("limit", limit)):
            if value is not None:
                params.append((name, value))
        return params

    def trace(self, *, call_id: str | list[str] | None = None, call: str | None = None, since: float | None = None,
              until: float | None = None, after_seq: int | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
        params = self._trace_params(call_id, call, since, until, after_seq, limit)
        return self._json("GET", "/trace", params=params)["entries"]

    def trace_notes(self, *, call_id: str | list[str] | None = None, call: str | None = None,
                    since: float | None = None, until: float | None = None) -> list[dict[str, Any]]:
        """The trace's notes (service decisions, e.g. DTMF interworking) about those calls: ``{time, text,
        call_ids}``."""
        params = self._trace_params(call_id, call, since, until, None, None)
        return self._json("GET", "/trace", params=params).get("notes", [])

    def trace_pcap(self, *, call_id: str | list[str] | None = None, call: str | None = None,
                   since: float | None = None, until: float | None = None, after_seq: int | None = None,
                   limit: int | None = None) -> bytes:
        params = self._trace_params(call_id, call, since, until, after_seq, limit)
        return self._send("GET", "/trace.pcap", params=params).content

    def trace_ladder(self, *, call_id: str | list[str] | None = None, call: str | None = None,
                     since: float | None = None, until: float | None = None, after_seq: int | None = None,
                     limit: int | None = None) -> str:
        params = self._trace_params(call_id, call, since, until, after_seq, limit)
        return self._send("GET", "/trace.txt", params=params).text

    # --- clock ---------------------------------------------------------------------------------------------
    def clock(self) -> dict[str, Any]:
        return self._json("GET", "/clock")

    def set_clock(self, now: float | str | None = None, *, offset: float | None = None) -> dict[str, Any]:
        """Set the gateway's clock to ``now`` (epoch seconds or ISO 8601) or to ``offset`` seconds from the host."""
        if (now is None) == (offset is None):
            raise ValueError("give exactly one of now or offset")
        body = {"now": now} if now is not None else {"offset": offset}
        return self._json("PUT", "/clock", json=body)

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        return self._json("POST", "/clock/advance", json={"seconds": seconds})
