"""Teams meetings in the tenant: dial-in by access number, dial-out, Request to Join, guests.

Seed, "Teams meetings": a SIP device user can join a Teams meeting by dialing the meeting access number;
participants can dial out to the user or use Request to Join; guests can be added by dial-out.

A **meeting** has an id, a conference id (digits), an organiser and participants (tenant users), and a subject.
The tenant's **meeting access number** (:data:`ACCESS_NUMBER`) reaches the audio-conferencing IVR on a conference
hub of the media node (:mod:`gateway.media_node.conference`): the caller hears the IVR's tone, enters the
conference id by DTMF and ``#`` (RFC 4733 or SIP INFO, as the device sends them), and joins: the tone stops and the
caller hears the mix of everyone else. A wrong id is logged and the caller may try again.

What a participant does in the Teams client is a control-API action (README, "Teams meetings"):

- *join* (``POST /meetings/{id}/join {"user"}``): the user's Teams client (a media-node party) joins;
- *dial out* (``{"by", "number"}``): the meeting calls a phone number through the gateway, caller id the access
  number; the callee answering joins;
- *Request to Join* (``{"by", "user"}``): the meeting calls a tenant user: every endpoint of the user rings (SIP
  devices and Teams client, forked by the gateway), ``Subject: Request to join <subject>``;
- *add a guest* (``{"by", "number"}``): dial-out to a number outside the tenant (a PSTN number; a tenant user's
  number is refused: use Request to Join).

Only the organiser and participants may act (403 otherwise). The roster (``GET /meetings/{id}``) lists every leg
with its kind, state, join and leave times: leaving is a call that ends, seen by everyone through the roster and
the audio (the leaver's tone is gone from the mix).
"""

from __future__ import annotations

import json
import logging
import re
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from typing import Any

from gateway.services.directory import number_key

log = logging.getLogger("sipgw.meetings")

ACCESS_NUMBER = "+14255559500"
IVR_TONE_HZ = 3000.0
SETTING_KEY = "meetings"
_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CONF = re.compile(r"^[0-9]{4,12}$")
_NUMBER = re.compile(r"^\+[0-9]{2,15}$")


class MeetingError(ValueError):
    def __init__(self, message: str, where: str, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.where = where
        self.status = status
        self.code = code


@dataclass
class Meeting:
    id: str
    conference_id: str
    organiser: str
    participants: list[str] = field(default_factory=list)
    subject: str = ""

    def members(self) -> set[str]:
        return {self.organiser, *self.participants}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_meeting(doc: Any, users: set[str]) -> Meeting:
    if not isinstance(doc, dict):
        raise MeetingError("a meeting must be a JSON object", "body")
    allowed = {"id", "conference_id", "organiser", "participants", "subject"}
    for key in doc:
        if key not in allowed:
            raise MeetingError(f"unknown field {key!r} (known: {', '.join(sorted(allowed))})", f"body.{key}")
    mid, conf = doc.get("id"), doc.get("conference_id")
    if not isinstance(mid, str) or not _ID.match(mid):
        raise MeetingError(f"id {mid!r} must be 1-64 of letters, digits, '.', '_', '-'", "body.id")
    if not isinstance(conf, str) or not _CONF.match(conf):
        raise MeetingError(f"conference_id {conf!r} must be 4-12 digits (a string)", "body.conference_id")
    org = doc.get("organiser")
    if not isinstance(org, str) or org not in users:
        raise MeetingError(f"organiser {org!r} is not a tenant user", "body.organiser", 404, "not_found")
    parts = doc.get("participants", [])
    if not isinstance(parts, list):
        raise MeetingError("participants must be a list of user names", "body.participants")
    for i, p in enumerate(parts):
        if not isinstance(p, str) or p not in users:
            raise MeetingError(f"participant {p!r} is not a tenant user", f"body.participants[{i}]", 404, "not_found")
    subject = doc.get("subject", "")
    if not isinstance(subject, str) or len(subject) > 200 or any(c in subject for c in "\r\n"):
        raise MeetingError("subject must be one line of at most 200 characters", "body.subject")
    return Meeting(mid, conf, org, list(parts), subject)


def conference_digits(dtmf: list[dict[str, Any]]) -> list[str]:
    """Every conference id entered and ended by ``#`` so far, in order (digits before each ``#``)."""
    out, cur = [], ""
    for d in dtmf:
        digit = str(d.get("digit"))
        if digit == "#":
            out.append(cur)
            cur = ""
        elif digit.isdigit():
            cur += digit
        else:
            cur = ""  # '*' starts over
    return out


class Meetings:
    def __init__(self, gw) -> None:
        self.gw = gw
        self.meetings: dict[str, Meeting] = {}
        self.attempts: list[dict[str, Any]] = []  # conference ids entered at the IVR
        self.mixer = None
        raw = gw.store.setting(SETTING_KEY)
        if raw:
            users = {u.username for u in gw.directory.users()}
            for m in json.loads(raw):
                try:
                    self.meetings[m["id"]] = check_meeting(m, users)
                except MeetingError as exc:
                    log.warning("stored meeting %s dropped: %s", m.get("id"), exc)

    # --- administration -------------------------------------------------------------------------------------
    def _save(self) -> None:
        self.gw.store.set_setting(SETTING_KEY, json.dumps([m.to_json() for m in self.meetings.values()]))

    def put(self, doc: Any) -> Meeting:
        m = check_meeting(doc, {u.username for u in self.gw.directory.users()})
        for other in self.meetings.values():
            if other.id != m.id and other.conference_id == m.conference_id:
                raise MeetingError(f"conference id {m.conference_id} is already used by meeting {other.id}",
                                   "body.conference_id", 409, "conflict")
        self.meetings[m.id] = m
        self._save()
        return m

    def get(self, mid: str) -> Meeting:
        m = self.meetings.get(mid)
        if m is None:
            raise MeetingError(f"no meeting {mid!r}", "path.id", 404, "not_found")
        return m

    def delete(self, mid: str) -> None:
        self.get(mid)
        for leg in self._legs(mid):
            if leg.state != "disconnected" and self.mixer is not None:
                self.mixer.hangup(leg)
        del self.meetings[mid]
        self._save()

    # --- wiring ---------------------------------------------------------------------------------------------
    def install(self) -> None:
        media = self.gw.media
        if not hasattr(media, "add_listener") or getattr(media, "_pool", None) is None:
            log.info("meetings: no media node; the access number is unreachable")
            return
        from gateway.media_node.conference import ConferenceMixer

        # Hubs are reserved when the first meeting is put in place (ensure_mixer), not at start-up: a gateway
        # without meetings spawns no extra media processes.
        self.mixer = ConferenceMixer(media)
        self.gw.router.services[number_key(ACCESS_NUMBER)] = self.mixer.hub_flow
        media.set_party("pstn", ACCESS_NUMBER, tone_hz=IVR_TONE_HZ)
        media.add_listener(self._on_media)
        reset = getattr(media, "reset", None)
        if callable(reset):  # the per-test reset also ends the calls the mixer placed (the node does not know them)
            def reset_all() -> None:
                self.reset()
                reset()
                media.set_party("pstn", ACCESS_NUMBER, tone_hz=IVR_TONE_HZ)  # the IVR keeps its prompt tone

            media.reset = reset_all

    def reset(self) -> None:
        if self.mixer is None:
            return
        with self.mixer._lock:
            legs = list(self.mixer.legs.values())
        for leg in legs:
            if leg.state != "disconnected" and leg.media_call is None:
                self.mixer.hangup(leg)
        self.mixer.forget_ended()
        self.attempts.clear()

    def ensure_mixer(self) -> Future | None:
        """Reserve the conference hubs (on the mixer's thread; spawning workers when needed)."""
        if self.mixer is None:
            return None
        return self.mixer.start()

    def close(self) -> None:
        if self.mixer is not None:
            self.mixer.close()

    def _on_media(self, call: dict[str, Any]) -> None:
        """The node's notifications (on the loop): IVR legs and chain legs on the hubs."""
        if self.mixer is None or self.mixer.hub_of_worker(call.get("worker")) is None:
            return
        if call.get("state") not in ("confirmed", "disconnected"):
            return
        leg = self.mixer.note_answered(call)
        if leg is None or call["state"] != "confirmed" or leg.joined is not None or leg.meeting is not None:
            return
        identity = (call.get("party") or {}).get("identity", "")
        if identity.startswith("+chain-"):
            self.mixer.join(leg, identity[len("+chain-"):], "chain", "chain from another hub")
            return
        if number_key(identity) != number_key(ACCESS_NUMBER):
            return
        entered = conference_digits(call.get("dtmf") or [])
        if not entered:
            return
        conf = entered[-1]
        meeting = next((m for m in self.meetings.values() if m.conference_id == conf), None)
        self.attempts.append({"media_call": call["id"], "caller": call.get("remote"), "conference_id": conf,
                              "meeting": meeting.id if meeting else None, "t": time.time()})
        del self.attempts[:-1000]
        if meeting is None:
            log.info("event=meeting_unknown_conference_id id=%s caller=%s", conf, call.get("remote"))
            return
        self.mixer.join(leg, meeting.id, "dial_in", f"dial-in {call.get('remote')}")

    # --- participant actions --------------------------------------------------------------------------------
    def _member(self, m: Meeting, by: Any) -> None:
        if not isinstance(by, str) or by not in m.members():
            raise MeetingError(f"{by!r} is neither the organiser nor a participant of meeting {m.id}", "body.by",
                               403, "not_a_participant")

    def _need_mixer(self):
        if self.mixer is None or not self.mixer.hubs:
            raise MeetingError("the conference mixer is not running (no media node)", "path.id", 409, "no_mixer")
        return self.mixer

    def join_teams(self, mid: str, user: Any) -> Future:
        m = self.get(mid)
        self._member(m, user)
        u = self.gw.directory.user(user)
        if u is None or not u.teams_client:
            raise MeetingError(f"{user!r} has no Teams client", "body.user", 409, "no_teams_client")
        mixer = self._need_mixer()
        media = self.gw.media

        def target() -> str:  # on the mixer's thread: a free slot is made (spawning if needed), then reserved
            pool = getattr(media, "_pool", None)
            if pool is not None:
                pool.ensure_free(1)
            flow = media.teams_client(u)
            if flow is None:
                raise RuntimeError("the media node has no free call slot for the Teams client")
            return f"sip:{number_key(u.number or u.username)}@{flow.host}:{flow.port}"

        return mixer.dial(mid, "teams", f"Teams client of {user}", target, self._meeting_uri(), f"Meeting {m.subject}")

    def dial_out(self, mid: str, by: Any, number: Any, *, guest: bool = False) -> Future:
        m = self.get(mid)
        self._member(m, by)
        if not isinstance(number, str) or not _NUMBER.match(number):
            raise MeetingError(f"number {number!r} must be an E.164 number such as +12065550100", "body.number")
        if guest:
            if self.gw.directory.by_number(number) is not None:
                raise MeetingError(f"{number} belongs to a tenant user, not a guest from outside the tenant; use "
                                   "Request to Join", "body.number", 400, "not_a_guest")
            if not self.gw.directory.is_pstn(number):
                raise MeetingError(f"{number} is not reachable on the PSTN", "body.number", 400, "not_reachable")
        kind = "guest" if guest else "dial_out"
        return self._need_mixer().dial(mid, kind, f"{kind.replace('_', '-')} {number} by {by}", number,
                                       self._meeting_uri(), f"Meeting {m.subject}")

    def request_to_join(self, mid: str, by: Any, user: Any) -> Future:
        m = self.get(mid)
        self._member(m, by)
        u = self.gw.directory.user(user) if isinstance(user, str) else None
        if u is None:
            raise MeetingError(f"{user!r} is not a tenant user", "body.user", 404, "not_found")
        if not u.number:
            raise MeetingError(f"{user} has no phone number; SIP devices can only be reached by number",
                               "body.user", 409, "no_number")
        asker = self.gw.directory.user(by)
        display = f"{asker.name if asker else by} (Meeting {m.subject})"
        return self._need_mixer().dial(mid, "request_to_join", f"request to join {user} by {by}", u.number,
                                       self._meeting_uri(), display,
                                       (("Subject", f"Request to join {m.subject or m.id}"),))

    def _meeting_uri(self) -> str:
        return f"sip:{ACCESS_NUMBER}@{self.gw.config.domain}"

    # --- reads ----------------------------------------------------------------------------------------------
    def _legs(self, mid: str):
        return self.mixer.meeting_legs(mid) if self.mixer is not None else []

    def view(self, mid: str) -> dict[str, Any]:
        m = self.get(mid)
        legs = [leg.to_json() for leg in self._legs(mid) if leg.kind != "chain"]
        live = [leg for leg in self._legs(mid) if leg.state == "confirmed" and leg.joined]
        hubs = sorted({leg.hub for leg in live if leg.kind != "chain"})
        chained = {leg.hub for leg in live if leg.kind == "chain"}
        # every hub beyond the first is chained (both ends of the chain call joined): everyone hears everyone
        mixed = len(hubs) <= 1 or all(h in chained for h in hubs)
        return {**m.to_json(), "access_number": ACCESS_NUMBER, "roster": legs, "mixed": mixed,
                "in_meeting": [leg for leg in legs if leg["state"] == "confirmed" and leg["joined"]],
                "hubs_used": sorted({leg.hub for leg in self._legs(mid) if leg.state == "confirmed"})}
