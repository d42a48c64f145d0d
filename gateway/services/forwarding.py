"""Call forwarding: the gateway's rules set with feature codes, and redirects (3xx) sent by the devices.

Rules per user (stored in the ``settings`` table as ``forwarding.<username>``, so they survive a restart):

| rule | set with | effect |
|---|---|---|
| ``always`` | ``*33*<number>`` | calls to the user go to ``<number>`` instead (the user's devices do not ring) |
| ``no_answer`` | ``*34*<number>*<seconds>`` | the devices ring ``<seconds>`` (5–120), then ``<number>`` |
| ``simultaneous`` | ``*35*<number>`` | ``<number>`` rings alongside the user's devices |
| (reset) | ``*32*`` | every rule is cleared |

``<number>`` is what the device would dial: a tenant number or a PSTN number, with or without ``+``; the
arguments end at the closing ``*`` of the code (``*34*+12065550100*15``; a final ``#`` is ignored).

Every rule, and every redirect a device sends (``302`` with a ``Contact``, RFC 3261 §8.1.3.4 / §21.3.3),
is honoured only when the user's calling policy has ``allow_call_redirect`` (AllowCallRedirect) enabled.
Otherwise a feature code is refused (``403``, ``SGW-POLICY-CALL-REDIRECT``) and a device redirect is not followed: the
caller gets ``480`` with ``Warning: 399 … "SGW-POLICY-CALL-REDIRECT: …"`` naming the user and the policy, so the
reason is in the trace. A forwarded call is announced to the caller with ``181 Call Is Being Forwarded``
(RFC 3261 §21.1.3) when its first branches ended first (redirect, no answer).

Loop protection: a chain of ``always`` rules (A → B → A) stops at the first user seen twice: the call rings
the last user of the chain (B) and the rule that would close the loop is ignored; a device redirect back to
a user the call already went through is refused (``SGW-LOOP``).

The no-answer timer runs on the gateway's event loop (``call_later``); the call moves within about 0.2 s of
the stated seconds plus the time the cancelled branches take to answer the CANCEL (on loopback, a few ms).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from gateway.services.feature_codes import FeatureCode, FeatureResult
from gateway.services.model import User
from gateway.services.routing import RouteDecision, Target, dialled_number

log = logging.getLogger("sipgw.forwarding")

KINDS = ("always", "no_answer", "simultaneous")
TIMEOUT_RANGE = (5, 120)
_NUMBER = re.compile(r"^\+?[0-9]{2,15}$")


class ForwardingError(ValueError):
    def __init__(self, message: str, where: str = "body") -> None:
        super().__init__(message)
        self.where = where


@dataclass(frozen=True)
class Rule:
    kind: str
    target: str
    seconds: int | None = None

    def to_json(self) -> dict:
        out: dict[str, object] = {"kind": self.kind, "target": self.target}
        if self.seconds is not None:
            out["seconds"] = self.seconds
        return out


def check_rule(kind: object, target: object, seconds: object = None, where: str = "body") -> Rule:
    if kind not in KINDS:
        raise ForwardingError(f"kind {kind!r} is not one of {list(KINDS)}", f"{where}.kind")
    if not isinstance(target, str) or not _NUMBER.match(dialled_number(target)):
        raise ForwardingError(f"target {target!r} is not a number (E.164 with or without '+', 2-15 digits)",
                              f"{where}.target")
    if kind == "no_answer":
        lo, hi = TIMEOUT_RANGE
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not lo <= seconds <= hi:
            raise ForwardingError(f"seconds must be a whole number from {lo} to {hi} for no_answer, got {seconds!r}",
                                  f"{where}.seconds")
    elif seconds is not None:
        raise ForwardingError(f"seconds applies only to no_answer, not {kind}", f"{where}.seconds")
    return Rule(kind, dialled_number(target), seconds)


class Forwarding:
    """Forwarding rules over the settings store; hooks for the router and the B2BUA."""

    def __init__(self, store, directory, *, call_later: Callable[[float, Callable[[], None]], object] | None = None):
        self.store = store
        self.directory = directory
        self.call_later = call_later
        self._route: Callable[[str | None, float], RouteDecision] | None = None
        self.b2bua: Any = None  # the B2BUA once installed (its divert and on_* hooks)
        #: (username, what happened) newest last, bounded: the decisions taken, for the API and tests.
        self.log: list[tuple[str, str]] = []

    # --- rules ------------------------------------------------------------------------------------------------
    def rules(self, username: str) -> list[Rule]:
        raw = self.store.setting(f"forwarding.{username}")
        if not raw:
            return []
        try:
            return [Rule(**r) for r in json.loads(raw)]
        except (ValueError, TypeError):
            return []

    def rule(self, username: str, kind: str) -> Rule | None:
        return next((r for r in self.rules(username) if r.kind == kind), None)

    def set_rule(self, username: str, rule: Rule) -> list[Rule]:
        keep = [r for r in self.rules(username) if r.kind != rule.kind]
        # ``always`` and ``no_answer`` exclude each other (the second one set wins).
        if rule.kind in ("always", "no_answer"):
            keep = [r for r in keep if r.kind not in ("always", "no_answer")]
        out = [*keep, rule]
        self._save(username, out)
        return out

    def clear(self, username: str, kind: str | None = None) -> list[Rule]:
        out = [r for r in self.rules(username) if kind is not None and r.kind != kind]
        self._save(username, out)
        return out

    def _save(self, username: str, rules: list[Rule]) -> None:
        self.store.set_setting(f"forwarding.{username}", json.dumps([r.to_json() for r in rules]))

    def _note(self, username: str, text: str) -> None:
        log.info("event=forwarding user=%s %s", username, text)
        self.log.append((username, text))
        if len(self.log) > 1000:
            del self.log[:500]

    # --- wiring -----------------------------------------------------------------------------------------------
    def install(self, router, b2bua, feature_codes=None) -> None:
        self._route = router.route
        router.route = self.route
        self.b2bua = b2bua
        prev_new = b2bua.on_new_call

        def chained(call) -> None:
            self.on_new_call(call)
            if prev_new is not None:
                prev_new(call)
        b2bua.on_new_call = chained
        b2bua.on_redirect = self.on_redirect
        if feature_codes is not None:
            for code in FORWARDING_CODES.values():
                feature_codes.register(code)

    # --- routing ----------------------------------------------------------------------------------------------
    def route(self, uri_user: str | None, now: float) -> RouteDecision:
        assert self._route is not None
        decision = self._route(uri_user, now)
        user = decision.callee
        if user is None or (decision.rejected and decision.reject_status != 480):
            return decision
        seen = [user.username]
        while True:
            rule = self.rule(user.username, "always")
            if rule is None or not user.policy.allow_call_redirect:
                if rule is not None:
                    self._note(user.username, f"always-rule to {rule.target} ignored: AllowCallRedirect disabled")
                break
            nxt = self._route(rule.target, now)
            if nxt.callee is not None and nxt.callee.username in seen:
                self._note(user.username, f"loop {' -> '.join(seen)} -> {nxt.callee.username}: stays with "
                                          f"{user.username}")
                break
            self._note(user.username, f"forwarded always to {rule.target}")
            decision = nxt
            if nxt.callee is None:
                break
            user = nxt.callee
            seen.append(user.username)
        final = decision.callee
        unreachable = decision.rejected and decision.reject_status == 480
        if final is not None and (not decision.rejected or unreachable) and final.policy.allow_call_redirect:
            sim = self.rule(final.username, "simultaneous")
            if sim is not None:
                extra = self._route(sim.target, now)
                if extra.targets and (extra.callee is None or extra.callee.username not in seen):
                    have = {t.uri for t in decision.targets}
                    add = tuple(t for t in extra.targets if t.uri not in have)
                    # The target rings even while none of the user's own devices is reachable.
                    decision = replace(decision, targets=decision.targets + add, reject_status=None,
                                       reject_code=None, reject_text=None)
                    self._note(final.username, f"simultaneous ring {sim.target}")
        return decision

    def on_new_call(self, call) -> None:
        user: User | None = call.callee_user
        if user is None or self.call_later is None or self.b2bua is None:
            return
        call.forwarded_via = call.forwarded_via or [user.username]
        rule = self.rule(user.username, "no_answer")
        if rule is None or not user.policy.allow_call_redirect:
            return
        call.no_answer_by = "forwarding"
        b2bua, target = self.b2bua, rule.target

        def fire() -> None:
            def targets() -> list[Target]:
                d = self._route(target, b2bua.stack.now())  # type: ignore[misc]
                if d.callee is not None and d.callee.username in call.forwarded_via:
                    self._note(user.username, f"no-answer forward to {target} would loop: not forwarded")
                    return []
                if d.callee is not None:
                    call.callee_user = d.callee
                    call.forwarded_via.append(d.callee.username)
                return list(d.targets)
            if b2bua.divert(call.id, targets, f"No answer in {rule.seconds} s"):
                self._note(user.username, f"no answer in {rule.seconds} s: forwarded to {target}")

        self.call_later(float(rule.seconds or 0), fire)

    def on_redirect(self, call, leg, resp) -> list[Target] | None:
        binding = getattr(leg.target, "binding", None)
        username = binding.username if binding is not None else (call.callee_user.username
                                                                 if call.callee_user is not None else None)
        user = self.directory.user(username) if username else None
        try:
            contact = resp.contact[0].uri if resp.contact else None
        except Exception:
            contact = None
        dest = getattr(contact, "user", None)
        if user is None:
            call.refusal = ("SGW-REDIRECT-REFUSED", f"{resp.status} from {leg.label} is not from a tenant user's "
                                                   "device; redirects are followed only for users")
            return None
        if not dest:
            call.refusal = ("SGW-REDIRECT-REFUSED", f"{user.username}'s device answered {resp.status} without a "
                                                       "Contact with a number to redirect to")
            return None
        if not user.policy.allow_call_redirect:
            call.refusal = ("SGW-POLICY-CALL-REDIRECT",
                            f"{user.username}'s device redirected the call to {dest}, but the calling policy of "
                            f"{user.username} has AllowCallRedirect disabled; the redirect was refused")
            self._note(user.username, f"device redirect to {dest} refused: AllowCallRedirect disabled")
            return None
        assert self._route is not None
        d = self._route(dest, self.b2bua.stack.now() if self.b2bua else 0.0)
        via = call.forwarded_via or [user.username]
        if d.callee is not None and d.callee.username in via:
            call.refusal = ("SGW-LOOP", f"{user.username}'s device redirected the call to {dest} "
                                                 f"({d.callee.username}), which it already went through "
                                                 f"({' -> '.join(via)})")
            self._note(user.username, f"device redirect to {dest} refused: loop")
            return None
        if d.rejected or not d.targets:
            call.refusal = ("SGW-REDIRECT-REFUSED",
                            f"{user.username}'s device redirected the call to {dest}: {d.reject_text}")
            return None
        if d.callee is not None:
            call.callee_user = d.callee
            via.append(d.callee.username)
        call.forwarded_via = via
        self._note(user.username, f"device redirect to {dest} followed")
        return list(d.targets)


# --- feature codes ------------------------------------------------------------------------------------------------
def _service(fc) -> Forwarding:
    svc = getattr(fc.gw, "forwarding", None)
    if svc is None:
        raise ValueError("no forwarding service")
    return svc


def _policy_refusal(user: User, code: str) -> FeatureResult | None:
    if user.policy.allow_call_redirect:
        return None
    return FeatureResult(403, "Forwarding Not Allowed", "SGW-POLICY-CALL-REDIRECT",
                         f"*{code}*: the calling policy of {user.username} has AllowCallRedirect disabled; "
                         "forwarding cannot be set")


def _bad(code: str, text: str) -> FeatureResult:
    return FeatureResult(484, "Address Incomplete", "SGW-FWD-ARGUMENT", f"*{code}*: {text}")


def _fc_reset(fc, user: User, arg: str) -> FeatureResult:
    _service(fc).clear(user.username)
    return FeatureResult(603, "Forwarding Off", "SGW-FWD-OFF", f"every forwarding rule of {user.username} cleared",
                         "Call forwarding is off")


def _fc_set(kind: str, code: str) -> Callable:
    def handler(fc, user: User, arg: str) -> FeatureResult:
        refused = _policy_refusal(user, code)
        if refused is not None:
            return refused
        parts = arg.split("*") if arg else []
        if kind == "no_answer":
            if len(parts) != 2 or not parts[1].isdigit():
                return _bad(code, f"expected *{code}*<number>*<seconds>, got {arg!r}")
            number, seconds = parts[0], int(parts[1])
        else:
            if len(parts) != 1 or not parts[0]:
                return _bad(code, f"expected *{code}*<number>, got {arg!r}")
            number, seconds = parts[0], None
        try:
            rule = check_rule(kind, number, seconds)
        except ForwardingError as exc:
            return _bad(code, str(exc))
        if fc.directory.by_number(rule.target) is None and not fc.directory.is_pstn(rule.target):
            return FeatureResult(404, "Unknown Forwarding Target", "SGW-FWD-TARGET",
                                 f"*{code}*: {rule.target} is neither a tenant number nor a PSTN route")
        target_user = fc.directory.by_number(rule.target)
        if target_user is not None and target_user.username == user.username:
            return _bad(code, f"{rule.target} is {user.username}'s own number")
        _service(fc).set_rule(user.username, rule)
        after = f" after {seconds} s without answer" if seconds else ""
        return FeatureResult(603, "Forwarding Set", "SGW-FWD-ON",
                             f"{kind} forwarding of {user.username} to {rule.target}{after}", "Call forwarding is on")
    return handler


FORWARDING_CODES: dict[str, FeatureCode] = {
    "32": FeatureCode("32", "reset call forwarding", _fc_reset),
    "33": FeatureCode("33", "forward always to a number", _fc_set("always", "33"), takes_argument=True),
    "34": FeatureCode("34", "forward on no answer after seconds", _fc_set("no_answer", "34"), takes_argument=True),
    "35": FeatureCode("35", "simultaneous ring", _fc_set("simultaneous", "35"), takes_argument=True),
}

__all__ = ["FORWARDING_CODES", "KINDS", "Forwarding", "ForwardingError", "Rule", "check_rule"]
