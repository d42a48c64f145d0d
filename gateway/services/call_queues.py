"""Call queues and auto attendants of the tenant (voice apps), with SIP devices as agents.

Seed, "Call queues and voice apps": SIP devices can be call queue agents with some restrictions: SIP Gateway
doesn't publish presence for devices, hence presence based routing is not supported.

A **call queue** has a resource number, agents (tenant users), a routing method and an agent alert time:

- ``attendant``: every opted-in agent rings at once (a fork, RFC 3261 §16.6);
- ``serial``: agents in list order, each for the alert time (the next one rings after a CANCEL of the last,
  or at once when an agent declines or is busy);
- ``round_robin``: like serial, starting with the agent after the one the previous queue call started with;
- ``longest_idle``: like serial, the agent whose last answered queue call is oldest first (never answered
  first, then list order). *(Lab design: the real service measures idle time from presence, which SIP devices do
  not publish; the lab measures it from the queue calls the agents answered.)*

An agent may opt out (and in again); an opted-out agent is never offered a call. Each offer rings all of the
agent's endpoints as a direct call would (SIP devices and the Teams client). With **presence-based routing** a
Teams agent whose presence is not ``available`` is skipped, but SIP devices publish no presence: an agent reached
through SIP devices is still offered the call, as the real service does, and the queue call's record says so
(``presence_not_applied``: "presence-based routing does not apply to SIP devices").

An **auto attendant** has a resource number and a menu: digit → a number (a user or a queue). The media node
answers it (a party of kind ``pstn`` with the attendant's number, its own tone); when a digit of the menu
arrives (RFC 4733 or SIP INFO), the attendant transfers the caller with REFER (RFC 3515) to that number, so the
caller's next INVITE goes where the menu says; a digit outside the menu is only recorded.

Queues and attendants are kept in the store (they survive a restart); every queue call is logged with the
offers made (agent, time, branches) and who answered.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from gateway.services.directory import number_key
from gateway.services.model import Presence
from gateway.services.routing import RouteDecision, dialled_number
from gateway.sip.errors import SipParseError
from gateway.sip.uri import NameAddr, SipURI

log = logging.getLogger("sipgw.queues")

ROUTING_METHODS = ("attendant", "serial", "round_robin", "longest_idle")
SETTING_KEY = "voiceapps"
PRESENCE_NOTE = "presence-based routing does not apply to SIP devices: SIP Gateway publishes no presence for them"
_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_NUMBER = re.compile(r"^\+[0-9]{2,15}$")
_DIGITS = "0123456789*#"


class VoiceAppError(ValueError):
    def __init__(self, message: str, where: str, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.where = where
        self.status = status
        self.code = code


@dataclass
class CallQueue:
    id: str
    number: str
    agents: list[str]
    method: str = "attendant"
    name: str = ""
    presence_based: bool = False
    agent_alert_s: float = 15.0
    opted_out: list[str] = field(default_factory=list)
    rr_next: int = 0  # round robin: index of the agent the next call starts with

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AutoAttendant:
    id: str
    number: str
    menu: dict[str, str]
    name: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_queue(doc: Any, where: str = "body", *, known_users: set[str] | None = None) -> CallQueue:
    if not isinstance(doc, dict):
        raise VoiceAppError("a call queue must be a JSON object", where)
    allowed = {"id", "number", "agents", "method", "name", "presence_based", "agent_alert_s", "opted_out"}
    for key in doc:
        if key not in allowed:
            raise VoiceAppError(f"unknown field {key!r} (known: {', '.join(sorted(allowed))})", f"{where}.{key}")
    qid = doc.get("id")
    if not isinstance(qid, str) or not _ID.match(qid):
        raise VoiceAppError(f"id {qid!r} must be 1-64 of letters, digits, '.', '_', '-'", f"{where}.id")
    number = doc.get("number")
    if not isinstance(number, str) or not _NUMBER.match(number):
        raise VoiceAppError(f"number {number!r} must be an E.164 resource number such as +14255559200",
                            f"{where}.number")
    agents = doc.get("agents")
    if not isinstance(agents, list) or not agents or not all(isinstance(a, str) and a for a in agents):
        raise VoiceAppError("agents must be a non-empty list of user names", f"{where}.agents")
    if len(set(agents)) != len(agents):
        raise VoiceAppError("an agent is listed twice", f"{where}.agents")
    if known_users is not None:
        for i, a in enumerate(agents):
            if a not in known_users:
                raise VoiceAppError(f"agent {a!r} is not a tenant user", f"{where}.agents[{i}]", 404, "not_found")
    method = doc.get("method", "attendant")
    if method not in ROUTING_METHODS:
        raise VoiceAppError(f"method {method!r} is not one of {', '.join(ROUTING_METHODS)}", f"{where}.method")
    alert = doc.get("agent_alert_s", 15.0)
    if isinstance(alert, bool) or not isinstance(alert, int | float) or not 0.2 <= alert <= 180:
        raise VoiceAppError(f"agent_alert_s must be a number of seconds from 0.2 to 180, got {alert!r}",
                            f"{where}.agent_alert_s")
    presence = doc.get("presence_based", False)
    if not isinstance(presence, bool):
        raise VoiceAppError("presence_based must be true or false", f"{where}.presence_based")
    name = doc.get("name", "")
    if not isinstance(name, str):
        raise VoiceAppError("name must be a string", f"{where}.name")
    opted = doc.get("opted_out", [])
    if not isinstance(opted, list) or any(a not in agents for a in opted):
        raise VoiceAppError("opted_out must list agents of the queue", f"{where}.opted_out")
    return CallQueue(qid, number, list(agents), method, name, presence, float(alert), list(opted))


def check_attendant(doc: Any, where: str = "body") -> AutoAttendant:
    if not isinstance(doc, dict):
        raise VoiceAppError("an auto attendant must be a JSON object", where)
    for key in doc:
        if key not in ("id", "number", "menu", "name"):
            raise VoiceAppError(f"unknown field {key!r} (known: id, menu, name, number)", f"{where}.{key}")
    aid, number, menu = doc.get("id"), doc.get("number"), doc.get("menu")
    if not isinstance(aid, str) or not _ID.match(aid):
        raise VoiceAppError(f"id {aid!r} must be 1-64 of letters, digits, '.', '_', '-'", f"{where}.id")
    if not isinstance(number, str) or not _NUMBER.match(number):
        raise VoiceAppError(f"number {number!r} must be an E.164 resource number", f"{where}.number")
    if not isinstance(menu, dict) or not menu:
        raise VoiceAppError("menu must map DTMF digits to numbers, e.g. {\"1\": \"+14255550101\"}", f"{where}.menu")
    for digit, target in menu.items():
        if digit not in _DIGITS or len(digit) != 1:
            raise VoiceAppError(f"{digit!r} is not a DTMF digit (one of {_DIGITS})", f"{where}.menu")
        if not isinstance(target, str) or not _NUMBER.match(target):
            raise VoiceAppError(f"target {target!r} of digit {digit} is not an E.164 number", f"{where}.menu.{digit}")
    name = doc.get("name", "")
    if not isinstance(name, str):
        raise VoiceAppError("name must be a string", f"{where}.name")
    return AutoAttendant(aid, number, dict(menu), name)


def agent_order(queue: CallQueue, *, last_answered: dict[str, float]) -> list[list[str]]:
    """The groups of agents a new call is offered to, in turn (attendant: one group with everyone)."""
    eligible = [a for a in queue.agents if a not in queue.opted_out]
    if not eligible:
        return []
    if queue.method == "attendant":
        return [eligible]
    if queue.method == "serial":
        order = eligible
    elif queue.method == "round_robin":
        start = queue.rr_next % len(queue.agents)
        rotated = queue.agents[start:] + queue.agents[:start]
        order = [a for a in rotated if a in eligible]
    else:  # longest_idle
        order = sorted(eligible, key=lambda a: (last_answered.get(a, float("-inf")), queue.agents.index(a)))
    return [[a] for a in order]


@dataclass
class _QueueCall:
    queue: CallQueue
    groups: list[list[str]]
    entry: dict[str, Any]
    index: int = -1
    labels: dict[str, str] = field(default_factory=dict)  # branch label → agent


class CallQueues:
    """The gateway side: routes queue numbers, times agents out, runs auto attendants on the media node."""

    def __init__(self, gw) -> None:
        self.gw = gw
        self.core = gw.core
        self.queues: dict[str, CallQueue] = {}
        self.attendants: dict[str, AutoAttendant] = {}
        self.log: list[dict[str, Any]] = []
        self._active: dict[str, _QueueCall] = {}
        self._aa_done: set[str] = set()
        raw = gw.store.setting(SETTING_KEY)
        if raw:
            doc = json.loads(raw)
            for q in doc.get("queues", []):
                rr = q.pop("rr_next", 0)
                self.queues[q["id"]] = check_queue(q)
                self.queues[q["id"]].rr_next = rr
            for a in doc.get("attendants", []):
                self.attendants[a["id"]] = check_attendant(a)

    # --- administration -------------------------------------------------------------------------------------
    def _save(self) -> None:
        self.gw.store.set_setting(SETTING_KEY, json.dumps({
            "queues": [q.to_json() for q in self.queues.values()],
            "attendants": [a.to_json() for a in self.attendants.values()]}))

    def _number_taken(self, number: str, own: str) -> None:
        key = number_key(number)
        others: list[CallQueue | AutoAttendant] = [*self.queues.values(), *self.attendants.values()]
        for other in others:
            if other.id != own and number_key(other.number) == key:
                raise VoiceAppError(f"number {number} is already used by {other.id}", "body.number", 409, "conflict")
        if self.gw.directory.by_number(number) is not None:
            raise VoiceAppError(f"number {number} belongs to a user", "body.number", 409, "conflict")

    def put_queue(self, doc: Any) -> CallQueue:
        q = check_queue(doc, known_users={u.username for u in self.gw.directory.users()})
        self._number_taken(q.number, q.id)
        old = self.queues.get(q.id)
        if old is not None and old.agents == q.agents:
            q.rr_next = old.rr_next
        self.queues[q.id] = q
        self._save()
        return q

    def delete_queue(self, qid: str) -> None:
        if self.queues.pop(qid, None) is None:
            raise VoiceAppError(f"no call queue {qid!r}", "path.id", 404, "not_found")
        self._save()

    def set_opt_in(self, qid: str, username: str, opted_in: bool) -> CallQueue:
        q = self.queues.get(qid)
        if q is None:
            raise VoiceAppError(f"no call queue {qid!r}", "path.id", 404, "not_found")
        if username not in q.agents:
            raise VoiceAppError(f"{username!r} is not an agent of {qid} (agents: {', '.join(q.agents)})",
                                "path.username", 404, "not_found")
        if opted_in and username in q.opted_out:
            q.opted_out.remove(username)
        elif not opted_in and username not in q.opted_out:
            q.opted_out.append(username)
        self._save()
        return q

    def put_attendant(self, doc: Any) -> AutoAttendant:
        a = check_attendant(doc)
        self._number_taken(a.number, a.id)
        self.attendants[a.id] = a
        self._route_attendants()
        self._save()
        return a

    def delete_attendant(self, aid: str) -> None:
        a = self.attendants.pop(aid, None)
        if a is None:
            raise VoiceAppError(f"no auto attendant {aid!r}", "path.id", 404, "not_found")
        self.gw.router.services.pop(number_key(a.number), None)
        self._save()

    # --- wiring ---------------------------------------------------------------------------------------------
    def install(self) -> None:
        self._next_invite = self.core.handlers.get("INVITE")
        self.core.handlers["INVITE"] = self.on_invite
        b2bua = self.core.b2bua
        prev_fail = b2bua.on_failure
        b2bua.on_failure = lambda call: (self._on_failure(call) if call.id in self._active
                                         else (prev_fail(call) if prev_fail else []))
        self._route_attendants()
        if hasattr(self.gw.media, "add_listener"):
            self.gw.media.add_listener(self._on_media_call)

    def _route_attendants(self) -> None:
        media = self.gw.media
        for a in self.attendants.values():
            self.gw.router.services[number_key(a.number)] = (lambda n=a.number: media.pstn_party(n))

    # --- queue calls ----------------------------------------------------------------------------------------
    def on_invite(self, req, tx, source) -> bool:
        try:
            key = number_key(dialled_number(req.request_uri.user))
        except SipParseError:
            key = ""
        queue = next((q for q in self.queues.values() if number_key(q.number) == key), None) if key else None
        if queue is None:
            return bool(self._next_invite and self._next_invite(req, tx, source))
        if self.core.is_trusted(source):
            f = req.from_
            caller = NameAddr(f.uri, f.display)
        else:
            user = self.core.authenticate_invite(req, tx, source)  # answers the request itself when refused
            if user is None:
                return True
            caller = NameAddr(SipURI.parse(f"sip:{user.number or user.username}@{self.core.domain}"), user.name)
        self._start(queue, req, tx, source, caller)
        return True

    def _last_answered(self) -> dict[str, float]:
        self._settle()
        out: dict[str, float] = {}
        for e in self.log:
            if "queue" in e and e.get("answered_by_agent") and e.get("answered"):
                out[e["answered_by_agent"]] = max(out.get(e["answered_by_agent"], 0.0), e["answered"])
        return out

    def _start(self, queue: CallQueue, req, tx, source, caller: NameAddr) -> None:
        groups = agent_order(queue, last_answered=self._last_answered())
        notes: list[str] = []
        if queue.presence_based:
            kept = []
            for group in groups:
                g = []
                for agent in group:
                    verdict = self._presence_check(agent)
                    if verdict is None:
                        g.append(agent)
                    elif verdict == "device":
                        g.append(agent)
                        notes.append(f"{agent}: {PRESENCE_NOTE}; offered regardless of presence")
                    else:
                        notes.append(f"{agent}: skipped, presence {verdict}")
                if g:
                    kept.append(g)
            groups = kept
        if queue.method == "round_robin" and queue.agents:
            queue.rr_next = (queue.rr_next + 1) % len(queue.agents)
            self._save()
        entry: dict[str, Any] = {"queue": queue.id, "method": queue.method, "a_call_id": req.call_id,
                                 "call": None, "offers": [], "notes": notes, "presence_not_applied": [],
                                 "answered_by": None, "answered_by_agent": None, "answered": None,
                                 "t": time.time()}
        entry["presence_not_applied"] = [n.split(":", 1)[0] for n in notes if PRESENCE_NOTE in n]
        self.log.append(entry)
        del self.log[:-1000]
        qc = _QueueCall(queue, groups, entry)
        targets = self._advance_targets(qc)
        if not targets:
            decision = RouteDecision(reject_status=480, reject_code="SGW-QUEUE-NO-AGENT",
                                     reject_text=f"no agent of call queue {queue.id} can take the call")
            self.core.b2bua.new_call(req, tx, source, decision, caller)
            return
        call = self.core.b2bua.new_call(req, tx, source, RouteDecision(targets=tuple(targets)), caller)
        if call is None:
            return
        entry["call"] = call.id
        self._active[call.id] = qc
        self._arm(call.id, qc.index, queue.agent_alert_s)

    def _presence_check(self, agent: str) -> str | None:
        """None: offer (available); "device": offered because its SIP devices publish no presence; else the
        presence that makes a Teams-only agent skipped."""
        user = self.gw.directory.user(agent)
        if user is None:
            return "unknown user"
        if self.gw.registrar.bindings(agent, self.core.now()):
            return "device"
        return None if user.presence is Presence.AVAILABLE else user.presence.value

    def _advance_targets(self, qc: _QueueCall) -> list:
        now = self.core.now()
        while qc.index + 1 < len(qc.groups):
            qc.index += 1
            targets = []
            for agent in qc.groups[qc.index]:
                user = self.gw.directory.user(agent)
                if user is None:
                    continue
                decision = self.gw.router.route(user.number or user.username, now)
                if decision.rejected:
                    qc.entry["offers"].append({"agent": agent, "round": qc.index, "t": time.time(), "branches": [],
                                               "refused": f"{decision.reject_status} {decision.reject_code}"})
                    continue
                for t in decision.targets:
                    qc.labels[t.label] = agent
                targets.extend(decision.targets)
                qc.entry["offers"].append({"agent": agent, "round": qc.index, "t": time.time(),
                                           "branches": [t.label for t in decision.targets]})
            if targets:
                return targets
        return []

    def _arm(self, call_id: str, index: int, seconds: float) -> None:
        if self.gw._loop is not None:
            self.gw._loop.call_later(seconds, self._timeout, call_id, index)

    def _timeout(self, call_id: str, index: int) -> None:
        qc = self._active.get(call_id)
        if qc is None or qc.index != index or qc.index + 1 >= len(qc.groups):
            return
        # RFC 3261 §9.1: CANCEL the ringing branches, then offer the next agent (B2BUA divert).
        self.core.b2bua.divert(call_id, lambda: self._next(call_id), "Call queue: agent did not answer")

    def _next(self, call_id: str) -> list:
        qc = self._active.get(call_id)
        if qc is None:
            return []
        targets = self._advance_targets(qc)
        if targets:
            self._arm(call_id, qc.index, qc.queue.agent_alert_s)
        else:
            self._active.pop(call_id, None)
        return targets

    def _on_failure(self, call) -> list:
        return self._next(call.id)

    def _settle(self) -> None:
        """Fill in who answered each logged queue call, from the B2BUA's calls and history."""
        b2bua = self.core.b2bua
        history = {r.id: r for r in b2bua.history[-2000:]}
        for cid, qc in list(self._active.items()):
            live = b2bua.calls.get(cid)
            rec = live.record() if live is not None else history.get(cid)
            if rec is None:
                continue
            if rec.answered_by and qc.entry["answered_by"] is None:
                qc.entry["answered_by"] = rec.answered_by
                qc.entry["answered_by_agent"] = qc.labels.get(rec.answered_by)
                qc.entry["answered"] = rec.answered
            if live is None:
                self._active.pop(cid, None)

    def calls(self, qid: str | None = None) -> list[dict[str, Any]]:
        self._settle()
        return [e for e in self.log if "queue" in e and (qid is None or e["queue"] == qid)]

    # --- auto attendants ------------------------------------------------------------------------------------
    def _on_media_call(self, call: dict[str, Any]) -> None:
        """Media node change (on the loop): a digit on an attendant's call transfers the caller."""
        party = call.get("party") or {}
        if party.get("kind") != "pstn" or call.get("id") in self._aa_done:
            return
        aa = next((a for a in self.attendants.values() if number_key(a.number) == number_key(party.get("identity")
                                                                                                 or "")), None)
        if aa is None or call.get("state") != "confirmed":
            return
        for d in call.get("dtmf") or []:
            target = aa.menu.get(str(d.get("digit")))
            if target is None:
                continue
            self._aa_done.add(call["id"])
            self.log.append({"attendant": aa.id, "digit": d["digit"], "target": target, "media_call": call["id"],
                             "sip_call_id": call.get("sip_call_id"), "t": time.time()})
            self._transfer(call["id"], target)
            return

    def _transfer(self, media_call_id: str, target: str) -> None:
        media = self.gw.media
        uri = f"sip:{target}@{self.core.domain}"

        def work() -> None:
            c = media.call(media_call_id)
            c.worker.transfer(c.handle, uri)  # REFER (RFC 3515) to the caller, through the gateway

        import asyncio

        def failed(f: asyncio.Future) -> None:
            if f.exception() is not None:
                log.warning("auto attendant transfer of %s failed: %s", media_call_id, f.exception())

        fut = asyncio.ensure_future(media.run(work))
        fut.add_done_callback(failed)
