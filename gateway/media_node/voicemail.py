"""Voicemail on the media node: leaving messages, and ``*99*`` to hear, save or delete them with DTMF.

Two kinds of media-node party serve it (``GET /api/v1/media/calls`` lists them with these kinds):

* ``voicemail`` (identity: the user name) takes calls the gateway sends to a user's voicemail — when the
  user's devices do not answer within the box's ``no_answer_s`` (default 20 s), when every branch is busy,
  or when the user is in do-not-disturb (:mod:`gateway.services.routing`). It answers, plays its greeting tone
  and records what the caller says; when the call ends the recording becomes a new message in the user's box
  (:class:`gateway.services.voicemail.VoicemailBoxes`, durable under ``<data dir>/voicemail/``).
* ``vmaccess`` (identity: the user name) answers ``*99*`` (or a call to ``voicemail``, the URI the gateway
  provisions for the message key) from the user's own device. It plays the messages, new ones first, each
  marked heard as it starts; DTMF during or after a message: ``7`` deletes it, ``9`` saves it (kept as heard),
  ``#`` skips to the next. After the last message it plays a steady 425 Hz tone (nothing more).

The box calls the MWI service on every change, on the gateway's loop, so the device's lamp follows.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from gateway.media_node.wavfile import snapshot_wav
from gateway.services.directory import number_key
from gateway.services.model import Flow, User
from gateway.services.routing import RouteDecision, Target
from gateway.services.voicemail import VoicemailBoxes
from gateway.sip import NameAddr, Request, SipParseError, SipURI

log = logging.getLogger("sipgw.voicemail")

DEPOSIT = "voicemail"
ACCESS = "vmaccess"
ACCESS_CODES = ("*99*", "%2A99%2A", "voicemail")
END_TONE_HZ = 425.0
#: Seconds after a deposit call ends before its recording is read (the worker closes the file first).
RECORDING_SETTLE_S = 0.3


@dataclass
class _Session:
    username: str
    queue: list[str] = field(default_factory=list)  # message ids still to play
    current: str | None = None
    digits_seen: int = 0


class VoicemailNode:
    def __init__(self, gw, boxes: VoicemailBoxes, mwi=None) -> None:
        self.gw = gw
        self.node = gw.media
        self.boxes = boxes
        self.mwi = mwi
        self.core = gw.core
        self._sessions: dict[str, _Session] = {}
        self._deposited: set[str] = set()
        self._next_invite = None

    # --- wiring -----------------------------------------------------------------------------------------------
    def install(self) -> None:
        self.node.add_listener(self._on_call)
        self.gw.router.voicemail = self.deposit_flow
        b2bua = self.core.b2bua
        prev_new, prev_fail = b2bua.on_new_call, b2bua.on_failure
        b2bua.on_new_call = lambda call: (prev_new and prev_new(call), self.on_new_call(call))
        b2bua.on_failure = lambda call: (prev_fail and prev_fail(call)) or self.on_failure(call)
        self._next_invite = self.core.handlers.get("INVITE")
        self.core.handlers["INVITE"] = self.on_invite
        loop = self.gw._loop
        if self.mwi is not None and loop is not None:
            self.boxes.listeners.append(lambda username: loop.call_soon_threadsafe(self.mwi.changed, username))

    # --- targets ----------------------------------------------------------------------------------------------
    def deposit_flow(self, user: User) -> Flow | None:
        return self.node.reserve(number_key(user.number or user.username), DEPOSIT, user.username)

    def deposit_target(self, user: User) -> Target | None:
        flow = self.deposit_flow(user)
        if flow is None:
            return None
        uri = f"sip:{number_key(user.number or user.username)}@{flow.host}:{flow.port}"
        return Target(DEPOSIT, uri, flow, f"voicemail of {user.username}")

    def access_target(self, user: User) -> Target | None:
        key = f"vm-{user.username}"
        flow = self.node.reserve(key, ACCESS, user.username)
        if flow is None:
            return None
        return Target(ACCESS, f"sip:{key}@{flow.host}:{flow.port}", flow, f"voicemail access of {user.username}")

    # --- B2BUA hooks ---------------------------------------------------------------------------------------------
    def on_new_call(self, call) -> None:
        user: User | None = call.callee_user
        if user is None or not user.voicemail or call.no_answer_by:
            return
        if all(leg.target is not None and leg.target.kind in (DEPOSIT, ACCESS) for leg in call.b_legs):
            return
        loop = self.gw._loop
        if loop is None:
            return
        call.no_answer_by = "voicemail"
        seconds = self.boxes.no_answer_s(user.username)
        b2bua = self.core.b2bua

        def fire() -> None:
            current = self.gw.directory.user(user.username) or user
            b2bua.divert(call.id, lambda: [t for t in [self.deposit_target(current)] if t is not None],
                         f"No answer in {seconds:g} s: voicemail")
        loop.call_later(seconds, fire)

    def on_failure(self, call) -> list[Target]:
        """Every branch busy (486/600): the caller leaves a message (once per call)."""
        user: User | None = call.callee_user
        if user is None or not user.voicemail or not call.busy_seen or call.voicemail_tried:
            return []
        call.voicemail_tried = True
        t = self.deposit_target(user)
        return [t] if t is not None else []

    # --- *99* ------------------------------------------------------------------------------------------------------
    def on_invite(self, req: Request, tx, source) -> bool:
        try:
            uri_user = (req.request_uri.user or "").split(";", 1)[0]
        except SipParseError:
            uri_user = ""
        if uri_user not in ACCESS_CODES and uri_user.replace("%2A", "*").rstrip("#") != "*99*":
            return bool(self._next_invite and self._next_invite(req, tx, source))
        user = self.core.authenticate_invite(req, tx, source)  # answers 407/403 itself
        if user is None:
            return True
        target = self.access_target(user)
        if target is None:
            decision = RouteDecision(callee=user, reject_status=480, reject_code="SGW-VOICEMAIL-UNAVAILABLE",
                                     reject_text="the voicemail service has no free media slot")
        else:
            decision = RouteDecision(targets=(target,), callee=None)
        identity = user.number or user.username
        caller = NameAddr(SipURI.parse(f"sip:{identity}@{self.core.domain}"), user.name)
        self.core.b2bua.new_call(req, tx, source, decision, caller)
        return True

    # --- media-node calls (listener, on the gateway's loop) ------------------------------------------------------
    def _on_call(self, js: dict[str, Any]) -> None:
        kind = (js.get("party") or {}).get("kind")
        if kind == DEPOSIT:
            if js.get("state") == "disconnected" and js.get("answered") and js["id"] not in self._deposited:
                self._deposited.add(js["id"])
                self.node.schedule(lambda: self._deposit(js), delay_s=RECORDING_SETTLE_S)
        elif kind == ACCESS:
            cid = js["id"]
            if js.get("state") == "confirmed" and cid not in self._sessions:
                username = js["party"]["identity"]
                self._sessions[cid] = _Session(username)
                self.node.schedule(lambda: self._start(cid))
            elif js.get("state") == "disconnected":
                self._sessions.pop(cid, None)
            elif cid in self._sessions and len(js.get("dtmf") or []) > self._sessions[cid].digits_seen:
                digits = [d["digit"] for d in js["dtmf"]]
                self.node.schedule(lambda: self._digits(cid, digits))

    # --- control thread ---------------------------------------------------------------------------------------------
    def _deposit(self, js: dict[str, Any]) -> None:
        try:
            c = self.node.call(js["id"])
            data = snapshot_wav(c.recording_path)
            duration = max(0.0, (js.get("ended") or time.time()) - (js.get("answered") or time.time()))
            m = self.boxes.deposit(js["party"]["identity"], js.get("remote") or "", data, duration)
            log.info("event=voicemail_deposit user=%s message=%s caller=%s duration=%.1f", m.username, m.id,
                     m.caller, m.duration_s)
        except Exception:
            log.exception("voicemail: deposit of media call %s failed", js.get("id"))

    def _start(self, cid: str) -> None:
        s = self._sessions.get(cid)
        if s is None:
            return
        ms = self.boxes.messages(s.username)
        s.queue = [m.id for m in ms if not m.heard] + [m.id for m in ms if m.heard]
        self._play_next(cid, s)

    def _play_next(self, cid: str, s: _Session) -> None:
        while s.queue:
            mid = s.queue.pop(0)
            try:
                m = self.boxes.message(s.username, mid)
            except KeyError:
                continue
            s.current = mid
            try:
                self.node.play_wav(cid, str(self.boxes.path(m)), loop=False)
            except Exception as exc:
                log.info("voicemail: cannot play %s on %s: %s", mid, cid, exc)
                return
            if not m.heard:
                self.boxes.mark_heard(s.username, mid)
            return
        s.current = None
        with contextlib.suppress(Exception):
            self.node.set_tone(cid, END_TONE_HZ)

    def _digits(self, cid: str, digits: list[str]) -> None:
        s = self._sessions.get(cid)
        if s is None:
            return
        for digit in digits[s.digits_seen:]:
            s.digits_seen += 1
            if digit == "7" and s.current is not None:
                self.boxes.delete(s.username, s.current)
                s.current = None
                self._play_next(cid, s)
            elif digit in ("9", "#"):
                self._play_next(cid, s)


__all__ = ["ACCESS", "DEPOSIT", "VoicemailNode"]
