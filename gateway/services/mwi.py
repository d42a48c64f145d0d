"""Message-waiting indication: RFC 3842 ``message-summary`` over RFC 6665 subscriptions, and unsolicited NOTIFY.

* A device SUBSCRIBEs to ``Event: message-summary`` for its user (Request-URI or To user: the user name or the
  number). The gateway accepts it only from an address that holds a live registration of that user (the
  registration's flow, RFC 5626 style; the registrar has authenticated it), answers ``200`` with the granted
  ``Expires`` (bounded to :data:`MIN_EXPIRES`–:data:`MAX_EXPIRES`; ``423`` with ``Min-Expires`` below the
  minimum, RFC 6665 §4.2.1.1) and sends a NOTIFY with the current state at once (§4.2.1.2). A refresh inside
  the dialog extends it; ``Expires: 0`` ends it with a final NOTIFY (``Subscription-State: terminated``);
  a subscription that is not refreshed in time ends with ``terminated;reason=timeout`` (§4.1.3).
* Devices that do not subscribe get unsolicited NOTIFYs (outside any dialog, as many desk phones expect):
  on every change of the box, and when a device registers a new binding (a contact not bound before, or
  bound again after it expired or was removed), when its binding moves to another flow (a new source address
  or connection, as after a reboot or a NAT rebinding), when the binding's last NOTIFY no longer matches the
  box, and when the device *rebooted* to the same address and port (:func:`rebooted`): RFC 3261 §10.2.4 has a
  UA keep one Call-ID for all registrations of a boot cycle, so a new Call-ID for a bound contact is a new
  boot cycle, as is a CSeq that went back or a new ``+sip.instance`` / ``reg-id`` (RFC 5626 §4.2). A plain
  refresh (same Call-ID, higher CSeq, same flow) of a binding that was told the current state gets none:
  RFC 3842 §5 leaves unsolicited NOTIFY to configuration, and one per refresh is wasted work (an unanswered one
  retransmits for 32 s, RFC 3261 §17.1.2.2). A UA that sends every REGISTER with a new Call-ID (load tools do)
  shows that its Call-ID says nothing about boot cycles: once a binding changed its Call-ID twice without a
  refresh under the same one in between, further Call-ID changes of that binding are refreshes, until it
  refreshes under one Call-ID again. Such a UA is told at most twice (its first registration and its first
  Call-ID change).
* Body (RFC 3842 §5.2, ``application/simple-message-summary``)::

      Messages-Waiting: yes
      Message-Account: sip:avery@sipgw.lab
      Voice-Message: 1/0

The state itself is the voicemail box (:mod:`gateway.services.voicemail`), which is durable, so the lamp is
right again after a gateway restart. Sans-IO apart from the :class:`Stack` it sends through and the
``call_later`` it arms expiry with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.services.diagnostics import warning_header
from gateway.services.directory import Directory, number_key
from gateway.services.model import Flow
from gateway.services.registrar import Binding, Registrar
from gateway.services.routing import contact_flow
from gateway.sip import Headers, Request, Response, SipParseError
from gateway.sip.dialog import Dialog, DialogError, DialogId
from gateway.sip.endpoint import Address
from gateway.sip.randomness import random_hex

log = logging.getLogger("sipgw.mwi")

EVENT = "message-summary"
CONTENT_TYPE = "application/simple-message-summary"
MIN_EXPIRES = 60
MAX_EXPIRES = 3600
DEFAULT_EXPIRES = 3600


def message_summary(new: int, old: int, account: str) -> bytes:
    """The RFC 3842 §5.2 body for ``new``/``old`` voice messages."""
    waiting = "yes" if new > 0 else "no"
    return (f"Messages-Waiting: {waiting}\r\nMessage-Account: {account}\r\n"
            f"Voice-Message: {new}/{old} (0/0)\r\n").encode()


@dataclass
class Subscription:
    username: str
    dialog: Dialog
    dest: Address
    expires_at: float
    flow: Flow
    timer: Any = field(default=None, repr=False)  # the call_later handle
    notified: tuple[int, int] | None = None


class MwiService:
    def __init__(self, stack, directory: Directory, registrar: Registrar, counts: Callable[[str], tuple[int, int]],
                 *, domain: str, call_later: Callable[[float, Callable[[], object]], object] | None = None) -> None:
        self.stack = stack
        self.directory = directory
        self.registrar = registrar
        self.counts = counts
        self.domain = domain
        self.call_later = call_later
        self.subscriptions: dict[DialogId, Subscription] = {}
        #: (username, target, body) of every NOTIFY sent, newest last (bounded), for tests and the API.
        self.sent: list[tuple[str, str, str]] = []
        self._next_in_dialog: Callable | None = None
        self._next_subscribe: Callable | None = None
        #: What each live binding was last told unsolicited: username -> contact URI -> what was told.
        self._told: dict[str, dict[str, _Told]] = {}

    # --- wiring -------------------------------------------------------------------------------------------------
    def install(self, core) -> None:
        """Chain into the SIP core: out-of-dialog SUBSCRIBE, in-dialog requests of our subscriptions, and the
        registrar's change listeners."""
        self._next_subscribe = core.handlers.get("SUBSCRIBE")
        core.handlers["SUBSCRIBE"] = self.on_subscribe
        b2bua = core.b2bua
        self._next_in_dialog = b2bua.in_dialog
        b2bua.in_dialog = self.on_in_dialog_request
        self.registrar.listeners.append(self.on_registration)

    def account(self, username: str) -> str:
        return f"sip:{username}@{self.domain}"

    def state(self, username: str) -> dict:
        new, old = self.counts(username)
        subs = [s for s in self.subscriptions.values() if s.username == username]
        return {"username": username, "waiting": new > 0, "new": new, "old": old,
                "subscriptions": [{"call_id": s.dialog.call_id,
                                   "expires_in": max(0, int(s.expires_at - self.stack.now())),
                                   "contact": str(s.dialog.remote_target)} for s in subs]}

    # --- SUBSCRIBE ------------------------------------------------------------------------------------------------
    def on_subscribe(self, req: Request, tx, source: Address) -> bool:
        event = (req.headers.get("Event") or "").split(";", 1)[0].strip().lower()
        if event != EVENT:
            return bool(self._next_subscribe and self._next_subscribe(req, tx, source))
        try:
            uri_user = req.request_uri.user or req.to.uri.user
        except (SipParseError, AttributeError):
            uri_user = None
        user = self._user(uri_user)
        if user is None:
            self._reply(tx, req, 404, "SGW-MWI-NO-USER", f"no tenant user {uri_user!r} to watch messages of")
            return True
        flow = Flow(source.transport, source.host, source.port)
        if not self._registered_from(user.username, flow):
            self._reply(tx, req, 403, "SGW-MWI-NOT-REGISTERED",
                        f"{flow} holds no registration of {user.username}; register before subscribing")
            return True
        expires = req.expires if req.expires is not None else DEFAULT_EXPIRES
        if 0 < expires < MIN_EXPIRES:
            self._reply(tx, req, 423, headers=[("Min-Expires", str(MIN_EXPIRES))])
            return True
        expires = min(expires, MAX_EXPIRES)
        to_tag = random_hex(6)
        resp = Response.for_request(req, 200, headers=[
            ("Expires", str(expires)), ("Contact", f"<{self.stack.contact_uri(source.transport)}>")], to_tag=to_tag)
        try:
            dialog = Dialog.from_uas(req, resp)
        except (DialogError, SipParseError) as exc:
            self._reply(tx, req, 400, "SGW-MWI-BAD-SUBSCRIBE", f"cannot make a dialog of this SUBSCRIBE: {exc}")
            return True
        dialog.confirm()
        self.stack.send_response(tx, resp)
        sub = Subscription(user.username, dialog, _dest(dialog, source), self.stack.now() + expires, flow)
        if expires == 0:  # a fetch (RFC 6665 §4.4.3): one NOTIFY, terminated
            self._notify(sub, terminated="timeout")
            return True
        self.subscriptions[dialog.id] = sub
        self._arm(sub)
        self._notify(sub)
        log.info("event=mwi_subscribe user=%s expires=%d from=%s", user.username, expires, flow)
        return True

    def on_in_dialog_request(self, req: Request, tx, source: Address) -> bool:
        did = DialogId.for_received_request(req)
        sub = self.subscriptions.get(did) if did is not None else None
        if sub is None:
            return bool(self._next_in_dialog and self._next_in_dialog(req, tx, source))
        error = sub.dialog.receive_request(req)
        if error is not None:
            self.stack.send_response(tx, error)
            return True
        if req.method != "SUBSCRIBE":
            self.stack.send_response(tx, Response.for_request(req, 405 if req.method != "BYE" else 481))
            return True
        expires = req.expires if req.expires is not None else DEFAULT_EXPIRES
        if 0 < expires < MIN_EXPIRES:
            self.stack.send_response(tx, Response.for_request(req, 423, headers=[("Min-Expires", str(MIN_EXPIRES))]))
            return True
        expires = min(expires, MAX_EXPIRES)
        self.stack.send_response(tx, Response.for_request(req, 200, headers=[("Expires", str(expires))]))
        if expires == 0:
            self._end(sub, "timeout")  # RFC 6665 §4.2.1.4: unsubscribed, a final NOTIFY follows
            return True
        sub.expires_at = self.stack.now() + expires
        self._arm(sub)
        self._notify(sub)
        return True

    # --- changes ----------------------------------------------------------------------------------------------------
    def changed(self, username: str) -> None:
        """The user's box changed: notify every subscription, and unsolicited every other registered device."""
        subs = [s for s in self.subscriptions.values() if s.username == username]
        for s in subs:
            self._notify(s)
        flows = {s.flow for s in subs}
        for b in self.registrar.bindings(username, self.stack.now()):
            if b.flow not in flows:
                self._unsolicited(username, b)

    def on_registration(self, username: str, bindings: list[Binding]) -> None:
        """The user's bindings changed: tell each new binding (or one told an older state) the current state,
        unsolicited when it has no subscription of its own. A refresh of a binding that already knows the
        state sends nothing."""
        told = self._told.get(username)
        if not bindings:
            self._told.pop(username, None)
            return
        if told is not None and len(told) > len(bindings):  # forget bindings that are gone
            live = {b.uri for b in bindings}
            for uri in [u for u in told if u not in live]:
                del told[uri]
        counts = None
        flows = None
        for b in bindings:
            last = told.get(b.uri) if told is not None else None
            if last is not None and last.flow == b.flow and not rebooted(last, b):
                last.seen(b)
                if counts is None:
                    counts = self.counts(username)
                if last.counts == counts:
                    continue  # a refresh: this device already shows the current state
            if flows is None:
                flows = {s.flow for s in self.subscriptions.values() if s.username == username}
            if b.flow not in flows:
                self._unsolicited(username, b, after_reply=True)

    # --- sending ----------------------------------------------------------------------------------------------------
    def _body(self, username: str) -> tuple[bytes, tuple[int, int]]:
        new, old = self.counts(username)
        return message_summary(new, old, self.account(username)), (new, old)

    def _notify(self, sub: Subscription, terminated: str | None = None) -> None:
        body, counts = self._body(sub.username)
        left = max(0, int(sub.expires_at - self.stack.now()))
        state = f"terminated;reason={terminated}" if terminated else f"active;expires={left}"
        try:
            req = sub.dialog.create_request("NOTIFY", headers=[
                ("Event", EVENT), ("Subscription-State", state), ("Content-Type", CONTENT_TYPE)], body=body)
            self.stack.send_request(req, sub.dest)
        except (DialogError, ValueError) as exc:
            log.info("mwi: NOTIFY to %s not sent: %s", sub.username, exc)
            return
        sub.notified = counts
        self._record(sub.username, str(sub.dialog.remote_target), body)

    def _unsolicited(self, username: str, b: Binding, *, after_reply: bool = False) -> None:
        """Tell one binding the box's state in a NOTIFY outside any subscription.

        ``after_reply``: the change comes from a REGISTER whose answer is not sent yet (the registrar tells its
        listeners before it returns the 200). The device learns that it is registered from that 200 (RFC 3261
        §10.2), so the NOTIFY goes out once the current event has been handled, after the 200; what it was told
        is noted at once, so a second REGISTER handled before then sends nothing twice."""
        body, counts = self._body(username)
        flow = b.flow
        live = getattr(self.stack, "transports", None)
        if live is not None and flow.transport != "UDP" and not live.is_live(flow):
            flow = contact_flow(b) or flow
        tag = random_hex(6)
        headers = [
            ("From", f"<{self.account(username)}>;tag={tag}"),
            ("To", f"<{b.contact.uri}>"),
            ("Call-ID", f"{random_hex(10)}@{self.domain}"),
            ("CSeq", "1 NOTIFY"),
            ("Max-Forwards", "70"),
            ("Contact", f"<{self.stack.contact_uri(flow.transport)}>"),
            ("Event", EVENT),
            ("Subscription-State", "active"),
            ("Content-Type", CONTENT_TYPE),
        ]
        notify = Request("NOTIFY", b.uri, Headers(headers), body)
        dest = Address(flow.transport, flow.host, flow.port)
        if after_reply and self.call_later is not None:
            self.call_later(0, lambda: self._send_unsolicited(notify, dest, username))
        elif not self._send_unsolicited(notify, dest, username):
            return
        told = self._told.setdefault(username, {})
        last = told.get(b.uri)
        if last is not None and last.flow == b.flow:
            last.seen(b)  # the Call-ID history of the binding carries over to what it is told now
            last.counts = counts
        else:
            told[b.uri] = _Told.first(b, counts)

    def _send_unsolicited(self, notify: Request, dest: Address, username: str) -> bool:
        """Send it; the record the control API reads (``sent``) names only NOTIFYs that did leave."""
        try:
            self.stack.send_request(notify, dest)
        except ValueError as exc:
            log.info("mwi: unsolicited NOTIFY to %s not sent: %s", notify.uri, exc)
            return False
        self._record(username, str(notify.uri), notify.body)
        return True

    def _record(self, username: str, target: str, body: bytes) -> None:
        self.sent.append((username, target, body.decode()))
        if len(self.sent) > 1000:
            del self.sent[:500]

    def _end(self, sub: Subscription, reason: str) -> None:
        self.subscriptions.pop(sub.dialog.id, None)
        if sub.timer is not None and hasattr(sub.timer, "cancel"):
            sub.timer.cancel()
        self._notify(sub, terminated=reason)

    def _arm(self, sub: Subscription) -> None:
        if self.call_later is None:
            return
        if sub.timer is not None and hasattr(sub.timer, "cancel"):
            sub.timer.cancel()
        delay = max(0.0, sub.expires_at - self.stack.now())
        sub.timer = self.call_later(delay, lambda: self._expire(sub))

    def _expire(self, sub: Subscription) -> None:
        if self.subscriptions.get(sub.dialog.id) is sub and sub.expires_at <= self.stack.now() + 0.05:
            self._end(sub, "timeout")

    # --- helpers -----------------------------------------------------------------------------------------------------
    def _user(self, uri_user: str | None):
        if not uri_user:
            return None
        return self.directory.user(uri_user) or self.directory.by_number(number_key(uri_user)) \
            or self.directory.by_number(uri_user)

    def _registered_from(self, username: str, flow: Flow) -> bool:
        for b in self.registrar.bindings(username, self.stack.now()):
            if b.flow == flow or (b.flow.transport, b.flow.host, b.flow.port) == (flow.transport, flow.host,
                                                                                   flow.port):
                return True
        return False

    def _reply(self, tx, req: Request, status: int, code: str | None = None, text: str = "",
               headers: list[tuple[str, str]] | None = None) -> None:
        extra = list(headers or [])
        if code:
            extra.append(("Warning", warning_header(code, text, "sipgw-lab")))
        self.stack.send_response(tx, Response.for_request(req, status, headers=extra,
                                                          to_tag=None if req.to.tag else random_hex(6)))


@dataclass(slots=True)
class _Told:
    """What a binding was last told unsolicited, and what its REGISTERs showed of its boot cycle."""

    flow: Flow
    counts: tuple[int, int]
    call_id: str
    cseq: int
    instance: str | None
    reg_id: str | None
    #: Refreshed at least once under its current Call-ID (RFC 3261 §10.2.4 followed).
    refreshed: bool = False
    #: Changed its Call-ID twice without a refresh in between: a new Call-ID is no sign of a reboot.
    volatile: bool = False
    #: Its Call-ID changed since the last refresh under one Call-ID.
    changed: bool = False

    @classmethod
    def first(cls, b: Binding, counts: tuple[int, int]) -> _Told:
        return cls(b.flow, counts, b.call_id, b.cseq, b.instance, _reg_id(b))

    def seen(self, b: Binding) -> None:
        """Follow the binding's Call-ID and CSeq after one of its REGISTERs."""
        if b.call_id == self.call_id:
            if b.cseq > self.cseq:
                self.refreshed = True
                self.volatile = self.changed = False
        else:
            if self.changed and not self.refreshed:
                self.volatile = True
            self.changed = True
            self.refreshed = False
        self.call_id, self.cseq, self.instance, self.reg_id = b.call_id, b.cseq, b.instance, _reg_id(b)


def rebooted(last: _Told, b: Binding) -> bool:
    """Whether a REGISTER of a bound contact on the same flow starts a new boot cycle of the device.

    RFC 5626 §4.2: a new ``+sip.instance`` or ``reg-id`` is another UA instance or registration. RFC 3261
    §10.2.4: a UA SHOULD use one Call-ID for all registrations of a boot cycle and increment CSeq by one, so a
    CSeq that went back under the same Call-ID, or a new Call-ID, is a new boot cycle. The registrar refuses a
    CSeq that went back under the same Call-ID (§10.3 step 7), so that one shows only where a registrar lets it
    through. A Call-ID change of a binding whose UA changes its Call-ID on every REGISTER (``volatile``) is not.
    """
    if b.instance != last.instance or _reg_id(b) != last.reg_id:
        return True
    if b.call_id == last.call_id:
        return b.cseq < last.cseq
    if last.volatile:
        return False
    return not (last.changed and not last.refreshed)  # a second change without a refresh: a load tool's pattern


def _reg_id(b: Binding) -> str | None:
    params = getattr(b.contact, "params", None)
    return params.get("reg-id") if params else None


def _dest(dialog: Dialog, source: Address) -> Address:
    """Where in-dialog requests go: back on the flow the SUBSCRIBE came from (the device is behind it)."""
    return source


__all__ = ["CONTENT_TYPE", "EVENT", "MwiService", "Subscription", "message_summary"]
