"""Sync client for provisioning, sign-in, enrolment, bulk sign-in and offboarding, used as ``ControlClient.signin``.

    api.signin.provisioning_url()            # what DHCP option 66/160 would hand a device
    api.signin.status(mac)                   # what the device shows: state, pairing code, sign-in URL
    api.signin.enrol(mac)                    # {"verification_code", "dial": "*55*123456", ...}
    api.signin.bulk("Username,HardwareId\\nlobby,00-04-f2-8e-5a-79\\n")
    api.signin.sweep()                       # run the offboarding sweeper now

Errors raise :class:`gateway.control_api.client.ControlApiError`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from gateway.control_api.client_http import send


class SignInApi:
    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def _request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        resp = send(self._http, method, path, json=json, params=params, shown_as=path)
        return resp.json()

    def provisioning(self) -> dict[str, Any]:
        return self._request("GET", "/provisioning")

    def configure(self, *, code_ttl_s: int | None = None, lab_mode: bool | None = None) -> dict[str, Any]:
        body = {k: v for k, v in (("code_ttl_s", code_ttl_s), ("lab_mode", lab_mode)) if v is not None}
        return self._request("PATCH", "/provisioning", json=body)

    def provisioning_url(self) -> str:
        return self.provisioning()["url"]

    def exchanges(self, after_seq: int = 0) -> list[dict[str, Any]]:
        return self._request("GET", "/provisioning/exchanges", params={"after_seq": after_seq})["exchanges"]

    def status(self, key: str) -> dict[str, Any]:
        return self._request("GET", f"/devices/{quote(key, safe='')}/signin")

    def remote_sign_in(self, key: str, username: str) -> dict[str, Any]:
        return self._request("POST", f"/devices/{quote(key, safe='')}/signin", json={"username": username})

    def sign_out(self, key: str) -> dict[str, Any]:
        return self._request("POST", f"/devices/{quote(key, safe='')}/signout")

    def enrol(self, mac: str) -> dict[str, Any]:
        return self._request("POST", "/enrolments", json={"mac": mac})["enrolments"][0]

    def enrol_csv(self, csv: str) -> list[dict[str, Any]]:
        return self._request("POST", "/enrolments", json={"csv": csv})["enrolments"]

    def bulk(self, csv: str) -> dict[str, Any]:
        return self._request("POST", "/signin/bulk", json={"csv": csv})

    def sweep(self) -> list[dict[str, Any]]:
        return self._request("POST", "/lifecycle/sweep")["offboarded"]
