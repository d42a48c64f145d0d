"""Sync client for meetings, call queues, auto attendants and emergency calling, as ``ControlClient.voiceapps``.

    api = ControlClient("http://127.0.0.1:8080")
    api.voiceapps.set_lis({"addresses": [...], "subnets": [...], "ports": [...]})
    calls = api.voiceapps.e911_calls(call_id="...")      # the location the gateway resolved, and how

Errors raise ``gateway.control_api.client.ControlApiError`` (status, code, message, where).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx

from gateway.control_api.client_http import send


class VoiceAppsApi:
    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def _request(self, method: str, path: str, *, json: Any = None, params: Any = None) -> Any:
        resp = send(self._http, method, path, json=json, params=params)
        return resp.json()

    # --- emergency calling ----------------------------------------------------------------------------------
    def lis(self) -> dict[str, Any]:
        return self._request("GET", "/e911/lis")

    def set_lis(self, doc: dict[str, Any]) -> dict[str, Any]:
        return self._request("PUT", "/e911/lis", json=doc)

    def e911_numbers(self) -> dict[str, Any]:
        return self._request("GET", "/e911/numbers")

    def e911_calls(self, call_id: str | None = None) -> list[dict[str, Any]]:
        params = {"call_id": call_id} if call_id else None
        return self._request("GET", "/e911/calls", params=params)["calls"]

    def wait_e911_call(self, call_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The gateway's record of the emergency call with this A-leg Call-ID (waited for, with a deadline)."""
        deadline = time.monotonic() + timeout
        while True:
            calls = self.e911_calls(call_id)
            if calls:
                return calls[-1]
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the gateway saw no emergency call with Call-ID {call_id} within {timeout:.1f} s")
            time.sleep(0.03)

    # --- call queues and auto attendants -------------------------------------------------------------------
    def queues(self) -> list[dict[str, Any]]:
        return self._request("GET", "/queues")["queues"]

    def put_queue(self, queue_id: str, number: str, agents: list[str], *, method: str = "attendant",
                  agent_alert_s: float = 15.0, presence_based: bool = False, name: str = "",
                  opted_out: list[str] | None = None) -> dict[str, Any]:
        return self._request("PUT", f"/queues/{quote(queue_id, safe='')}", json={
            "number": number, "agents": agents, "method": method, "agent_alert_s": agent_alert_s,
            "presence_based": presence_based, "name": name, "opted_out": opted_out or []})

    def delete_queue(self, queue_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/queues/{quote(queue_id, safe='')}")

    def set_agent_opt_in(self, queue_id: str, username: str, opted_in: bool) -> dict[str, Any]:
        return self._request("PUT", f"/queues/{quote(queue_id, safe='')}/agents/{quote(username, safe='')}",
                             json={"opted_in": opted_in})

    def queue_calls(self, queue_id: str) -> list[dict[str, Any]]:
        return self._request("GET", f"/queues/{quote(queue_id, safe='')}/calls")["calls"]

    def put_attendant(self, attendant_id: str, number: str, menu: dict[str, str], *, name: str = "") -> dict:
        return self._request("PUT", f"/auto-attendants/{quote(attendant_id, safe='')}",
                             json={"number": number, "menu": menu, "name": name})

    def delete_attendant(self, attendant_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/auto-attendants/{quote(attendant_id, safe='')}")

    def attendant_calls(self) -> list[dict[str, Any]]:
        return self._request("GET", "/auto-attendants/calls")["calls"]

    # --- Teams meetings -----------------------------------------------------------------------------------------
    def put_meeting(self, meeting_id: str, conference_id: str, organiser: str, participants: list[str] | None = None,
                    *, subject: str = "") -> dict[str, Any]:
        return self._request("PUT", f"/meetings/{quote(meeting_id, safe='')}", json={
            "conference_id": conference_id, "organiser": organiser, "participants": participants or [],
            "subject": subject})

    def meeting(self, meeting_id: str) -> dict[str, Any]:
        return self._request("GET", f"/meetings/{quote(meeting_id, safe='')}")

    def delete_meeting(self, meeting_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/meetings/{quote(meeting_id, safe='')}")

    def meeting_access(self) -> dict[str, Any]:
        return self._request("GET", "/meetings/access")

    def join_meeting(self, meeting_id: str, user: str) -> dict[str, Any]:
        return self._request("POST", f"/meetings/{quote(meeting_id, safe='')}/join", json={"user": user})

    def meeting_dial_out(self, meeting_id: str, by: str, number: str) -> dict[str, Any]:
        return self._request("POST", f"/meetings/{quote(meeting_id, safe='')}/dial-out",
                             json={"by": by, "number": number})

    def request_to_join(self, meeting_id: str, by: str, user: str) -> dict[str, Any]:
        return self._request("POST", f"/meetings/{quote(meeting_id, safe='')}/request-to-join",
                             json={"by": by, "user": user})

    def add_guest(self, meeting_id: str, by: str, number: str) -> dict[str, Any]:
        return self._request("POST", f"/meetings/{quote(meeting_id, safe='')}/guests",
                             json={"by": by, "number": number})

    def wait_roster(self, meeting_id: str, predicate, *, timeout: float = 5.0, what: str = "the roster") -> dict:
        """The meeting once ``predicate(meeting)`` holds (polled until ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.meeting(meeting_id)
            if predicate(m):
                return m
            if time.monotonic() >= deadline:
                raise TimeoutError(f"meeting {meeting_id}: {what} not seen within {timeout:.1f} s; roster "
                                   f"{[(r['label'], r['state']) for r in m['roster']]}")
            time.sleep(0.03)
