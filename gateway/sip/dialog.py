"""SIP dialogs (RFC 3261 §12) and route-set handling (§12.2.1.1, §16.4, §16.6, §16.12).

A ``Dialog`` holds the state RFC 3261 §12 lists: the dialog id (Call-ID, local tag, remote tag), the local
and remote sequence numbers, the local and remote URIs, the remote target and the route set, and whether
it is early or confirmed. It builds in-dialog requests (loose and strict routing) and checks incoming
ones (a CSeq below the remote sequence number gets a 500).

A ``DialogSet`` follows one outgoing INVITE: a forking proxy can make it create several early dialogs,
one per To tag in the provisional responses, and several confirmed ones (each 2xx is a dialog, §13.2.2.4);
a non-2xx final response ends every early dialog (§12.3 / §13.2.2.3).

Dialogs never send anything: ``create_request`` returns a Request for the endpoint to send (it adds the
Via), ``receive_request`` returns the error response to send, if any.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from .headers import Headers
from .message import DIALOG_CREATING_METHODS, Request, Response
from .randomness import random_bytes, random_hex
from .uri import NameAddr, SipURI

__all__ = [
    "TARGET_REFRESH_METHODS",
    "Dialog",
    "DialogError",
    "DialogId",
    "DialogSet",
    "DialogState",
    "new_tag",
    "next_hop",
    "preprocess_routes",
    "strict_route",
]

#: Requests and their 2xx that may replace the remote target (§12.2, RFC 3311 §5.1, RFC 6665 §4.1.2.1).
TARGET_REFRESH_METHODS: Final = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})

_MAX_FORWARDS: Final = "70"
_MAX_CSEQ: Final = 2**31 - 1  # §8.1.1.5: an initial CSeq MUST be less than 2**31


class DialogError(ValueError):
    """A message cannot create or belong to a dialog; the message says which rule it breaks."""


def new_tag() -> str:
    """A From/To tag with at least 32 random bits (RFC 3261 §19.3)."""
    return random_hex(8)


def _initial_cseq() -> int:
    return int.from_bytes(random_bytes(2), "big") + 1  # 1 .. 2**16, well below 2**31 (§8.1.1.5)


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(slots=True, init=False, eq=False)  # a value, never changed; see endpoint.py's events
class DialogId:
    """Call-ID plus the local and remote tags, as seen from this side (§12).

    Compared and hashed by its three fields. ``__eq__`` and ``__hash__`` are written out like ``__init__``: the
    B2BUA looks calls up by dialog several times per message, and the generated ones are interpreted.
    """

    call_id: str
    local_tag: str
    remote_tag: str

    def __init__(self, call_id: str, local_tag: str, remote_tag: str) -> None:
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DialogId):
            return NotImplemented
        return (self.call_id == other.call_id and self.local_tag == other.local_tag
                and self.remote_tag == other.remote_tag)

    def __hash__(self) -> int:
        return hash((self.call_id, self.local_tag, self.remote_tag))

    @classmethod
    def for_received_request(cls, request: Request) -> DialogId | None:
        """The id a request received inside a dialog names: To tag local, From tag remote (§12.2.2).

        None when the request has no To tag (it is outside any dialog).
        """
        to_tag = request.to.tag
        from_tag = request.from_.tag
        if not to_tag or not from_tag:
            return None
        return cls(request.call_id, to_tag, from_tag)

    @classmethod
    def for_received_response(cls, response: Response) -> DialogId | None:
        """The id a response received by the UAC names: From tag local, To tag remote (§12.1.2)."""
        to_tag = response.to.tag
        from_tag = response.from_.tag
        if not to_tag or not from_tag:
            return None
        return cls(response.call_id, from_tag, to_tag)

    def __str__(self) -> str:
        return f"{self.call_id};local-tag={self.local_tag};remote-tag={self.remote_tag}"


def _record_route(message: Request | Response) -> list[NameAddr]:
    """The Record-Route values in message order (each field may hold several, §20.30)."""
    return message.record_route


def _contact_uri(message: Request | Response) -> SipURI | None:
    contacts = message.contact
    return contacts[0].uri if contacts else None


class Dialog:
    """One dialog's state (RFC 3261 §12.1) and the rules for requests inside it (§12.2)."""

    __slots__ = (
        "_cseq_factory", "_texts", "call_id", "is_uac", "local", "local_seq", "local_target", "remote",
        "remote_seq", "remote_target", "route_set", "secure", "state",
    )  # fmt: skip

    def __init__(
        self,
        *,
        call_id: str,
        local: NameAddr,
        remote: NameAddr,
        remote_target: SipURI,
        route_set: Iterable[NameAddr] = (),
        local_seq: int | None = None,
        remote_seq: int | None = None,
        local_target: SipURI | None = None,
        secure: bool = False,
        is_uac: bool,
        state: DialogState = DialogState.EARLY,
        cseq_factory: Callable[[], int] = _initial_cseq,
    ) -> None:
        if not local.tag or not remote.tag:
            raise DialogError("a dialog needs both a local and a remote tag (RFC 3261 §12)")
        self.call_id = call_id
        self.local = local
        self.remote = remote
        self.remote_target = remote_target
        self.route_set: tuple[NameAddr, ...] = tuple(route_set)
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.local_target = local_target
        self.secure = secure
        self.is_uac = is_uac
        self.state = state
        self._cseq_factory = cseq_factory
        #: (local, remote, route set, remote target) and what create_request writes for them: the To, From,
        #: Request-URI and Route texts, computed again only when one of them is replaced.
        self._texts: tuple | None = None

    def __repr__(self) -> str:
        role = "UAC" if self.is_uac else "UAS"
        return f"<Dialog {role} {self.state.value} {self.id}>"

    @property
    def id(self) -> DialogId:
        assert self.local.tag is not None and self.remote.tag is not None
        return DialogId(self.call_id, self.local.tag, self.remote.tag)

    @property
    def early(self) -> bool:
        return self.state is DialogState.EARLY

    @property
    def confirmed(self) -> bool:
        return self.state is DialogState.CONFIRMED

    # -- creation ----------------------------------------------------------------------------------

    @classmethod
    def from_uac(
        cls,
        request: Request,
        response: Response,
        *,
        secure: bool = False,
        cseq_factory: Callable[[], int] = _initial_cseq,
    ) -> Dialog:
        """The UAC's dialog for a 101-299 response with a To tag to ``request`` (§12.1.2).

        The route set is the Record-Route of the response in reverse order; the remote target is the
        response's Contact (when a provisional response carries none, the Request-URI stands in until a
        later response gives one). ``secure`` is True when the request went over TLS to a SIPS URI.
        """
        _check_creates_dialog(request, response)
        return cls(
            call_id=request.call_id,
            local=request.from_,
            remote=response.to,
            remote_target=_contact_uri(response) or request.request_uri,
            route_set=reversed(_record_route(response)),
            local_seq=request.cseq.seq,
            remote_seq=None,
            local_target=_contact_uri(request),
            secure=secure,
            is_uac=True,
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
            cseq_factory=cseq_factory,
        )

    @classmethod
    def from_uas(
        cls,
        request: Request,
        response: Response,
        *,
        secure: bool = False,
        cseq_factory: Callable[[], int] = _initial_cseq,
    ) -> Dialog:
        """The UAS's dialog when it sends ``response`` (101-299, with its To tag) to ``request`` (§12.1.1).

        The route set is the request's Record-Route in order; the remote target is the request's Contact.
        """
        _check_creates_dialog(request, response)
        remote_target = _contact_uri(request)
        if remote_target is None:
            raise DialogError(
                f"a {request.method} that creates a dialog must carry a Contact (RFC 3261 §8.1.1.8)"
            )
        return cls(
            call_id=request.call_id,
            local=response.to,
            remote=request.from_,
            remote_target=remote_target,
            route_set=_record_route(request),
            local_seq=None,
            remote_seq=request.cseq.seq,
            local_target=_contact_uri(response),
            secure=secure,
            is_uac=False,
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
            cseq_factory=cseq_factory,
        )

    # -- state changes ------------------------------------------------------------------------------

    def update_from_response(self, response: Response) -> None:
        """Apply a response received by the UAC for a request in this dialog.

        In the early state a 2xx confirms the dialog and, as §13.2.2.4 requires, recomputes the route set
        from its Record-Route; a response with a Contact to a target refresh request replaces the remote
        target (§12.2.1.2; in the early state any 1xx/2xx does, RFC 3261 §12.1.2 and RFC 3262).
        """
        if self.state is DialogState.TERMINATED:
            raise DialogError(f"dialog {self.id} is terminated")
        status = response.status
        if status < 101 or status >= 300:
            return
        method = response.cseq.method
        if self.state is DialogState.EARLY and self.is_uac:
            if status >= 200 and method in DIALOG_CREATING_METHODS:
                self.route_set = tuple(reversed(_record_route(response)))
                self.state = DialogState.CONFIRMED
            target = _contact_uri(response)
            if target is not None:
                self.remote_target = target
            return
        if status >= 200 and method in TARGET_REFRESH_METHODS:
            target = _contact_uri(response)
            if target is not None:
                self.remote_target = target

    def confirm(self) -> None:
        """The UAS sent a 2xx: the early dialog is now confirmed (§12.1.1)."""
        if self.state is DialogState.TERMINATED:
            raise DialogError(f"dialog {self.id} is terminated and cannot be confirmed")
        self.state = DialogState.CONFIRMED

    def terminate(self) -> None:
        self.state = DialogState.TERMINATED

    def update_remote_target(self, message: Request | Response) -> None:
        """Take the remote target from the Contact of an accepted target refresh (RFC 6141 §3.4)."""
        target = _contact_uri(message)
        if target is not None:
            self.remote_target = target

    # -- requests inside the dialog -----------------------------------------------------------------

    def next_cseq(self) -> int:
        """Take the next local sequence number (§12.2.1.1: one more than the last, random at first)."""
        if self.local_seq is None:
            self.local_seq = self._cseq_factory()
            if not 0 < self.local_seq <= _MAX_CSEQ:
                raise DialogError(f"initial CSeq {self.local_seq} is not in 1..2**31-1 (RFC 3261 §8.1.1.5)")
        else:
            self.local_seq += 1
        return self.local_seq

    def create_request(
        self,
        method: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        cseq: int | None = None,
    ) -> Request:
        """A request inside this dialog (§12.2.1.1), without a Via: ``SipEndpoint.send_request`` adds it
        (and checks the whole request) when sending.

        To/From/Call-ID come from the dialog, CSeq is the next local number (ACK and CANCEL must give the
        INVITE's ``cseq``; see ``create_ack``), the Request-URI and Route follow the route set: loose
        routing keeps the remote target in the Request-URI, a strict first hop takes its place (§12.2.1.1).
        A target refresh request carries the local target as Contact when one is known.
        """
        if self.state is DialogState.TERMINATED:
            raise DialogError(f"dialog {self.id} is terminated; no request can be sent in it")
        if method == "CANCEL":
            raise DialogError("CANCEL is built from the INVITE it cancels (RFC 3261 §9.1); see send_cancel")
        if cseq is None:
            if method == "ACK":
                raise DialogError("an ACK carries the CSeq number of its INVITE; use create_ack")
            cseq = self.next_cseq()
        texts = self._texts
        if (texts is None or texts[0] is not self.local or texts[1] is not self.remote
                or texts[2] is not self.route_set or texts[3] is not self.remote_target):
            uri, routes = _route_request(self.remote_target, self.route_set)
            texts = self._texts = (self.local, self.remote, self.route_set, self.remote_target, str(self.remote),
                                   str(self.local), str(uri), [("Route", str(route)) for route in routes])
        fields: list[tuple[str, str]] = [
            ("To", texts[4]),
            ("From", texts[5]),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Max-Forwards", _MAX_FORWARDS),
        ]
        fields.extend(texts[7])
        if method in TARGET_REFRESH_METHODS and self.local_target is not None:
            fields.append(("Contact", f"<{self.local_target}>"))
        # A list or tuple of pairs (the usual input) before the Mapping check, which goes through the ABC machinery.
        extra = headers if isinstance(headers, list | tuple) else (
            headers.items() if isinstance(headers, Mapping) else headers)
        fields.extend(extra)
        if not isinstance(body, bytes):
            raise TypeError(f"a SIP body is bytes, not {type(body).__name__}")
        return Request(method, texts[6], Headers(fields), body)

    def create_ack(
        self, invite_cseq: int, *, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()
    ) -> Request:
        """The ACK for a 2xx to the INVITE with CSeq ``invite_cseq`` (§13.2.2.4); it may carry an answer."""
        return self.create_request("ACK", cseq=invite_cseq, body=body, headers=headers)

    def receive_request(self, request: Request) -> Response | None:
        """Check a request received in this dialog (§12.2.2); return the error response to send, if any.

        A CSeq lower than the remote sequence number is out of order: 500. Otherwise the remote sequence
        number moves forward. ACK and CANCEL carry their INVITE's number and leave it unchanged.
        """
        if self.state is DialogState.TERMINATED:
            return Response.for_request(request, 481, "Call/Transaction Does Not Exist")
        seq = request.cseq.seq
        if request.method in ("ACK", "CANCEL"):
            return None
        if self.remote_seq is not None and seq < self.remote_seq:
            return Response.for_request(
                request, 500, f"Server Internal Error: CSeq {seq} is lower than {self.remote_seq}"
            )
        self.remote_seq = seq
        return None

    def matches_request(self, request: Request) -> bool:
        return DialogId.for_received_request(request) == self.id

    def matches_response(self, response: Response) -> bool:
        return DialogId.for_received_response(response) == self.id


def _check_creates_dialog(request: Request, response: Response) -> None:
    if request.method not in DIALOG_CREATING_METHODS:
        raise DialogError(f"{request.method} does not create a dialog")
    if not 101 <= response.status <= 299:
        raise DialogError(f"a {response.status} response does not create a dialog (only 101-299 do, §12.1)")
    if not response.to.tag:
        raise DialogError(f"the {response.status} response has no To tag, so it cannot create a dialog")
    if not request.from_.tag:
        raise DialogError(f"the {request.method} has no From tag (RFC 3261 §8.1.1.3)")
    if response.call_id != request.call_id or response.cseq.seq != request.cseq.seq:
        raise DialogError("the response does not belong to the request (Call-ID or CSeq differ)")


# --------------------------------------------------------------------------------------------------
# Routing
# --------------------------------------------------------------------------------------------------


def _route_request(
    remote_target: SipURI, route_set: tuple[NameAddr, ...]
) -> tuple[SipURI, list[NameAddr]]:
    """Request-URI and Route values for the remote target and route set (§12.2.1.1)."""
    if not route_set or route_set[0].uri.lr:
        return remote_target, list(route_set)
    # Strict first hop: its URI becomes the Request-URI (without the parts a Request-URI may not carry,
    # §19.1.1 table 1: the method parameter and headers), and the remote target goes last in Route.
    first = route_set[0].uri.copy()
    first.params.pop("method", None)
    first.headers = {}
    return first, [*route_set[1:], NameAddr(remote_target)]


def strict_route(request: Request) -> Request:
    """Rewrite a request whose first Route is a strict router (no ``lr``), as §16.6 step 6 requires.

    The Request-URI becomes the last Route value, the first Route value becomes the Request-URI. A request
    whose first Route is a loose router (or that has no Route) is returned unchanged.
    """
    routes = request.headers.get_all("Route")
    if not routes:
        return request
    first = NameAddr.parse(routes[0])
    if first.uri.lr:
        return request
    headers = request.headers.copy()
    headers.remove("Route")
    for value in [*routes[1:], f"<{request.uri}>"]:
        headers.add("Route", value)
    uri = first.uri.copy()
    uri.params.pop("method", None)
    uri.headers = {}
    return request.replace(uri=uri, headers=headers)


def preprocess_routes(request: Request, is_local: Callable[[SipURI], bool]) -> Request:
    """Route information preprocessing of §16.4 for a request received by this element.

    If the Request-URI is a URI this element put in a Record-Route, the previous hop was a strict router:
    the real Request-URI is the last Route value, which is moved back. Then, if the first Route value is
    this element, it is removed. ``is_local`` says whether a URI designates this element.
    """
    routes = request.headers.get_all("Route")
    uri = request.uri
    changed = False
    if routes and is_local(request.request_uri):
        uri = str(NameAddr.parse(routes[-1]).uri)
        routes = routes[:-1]
        changed = True
    if routes and is_local(NameAddr.parse(routes[0]).uri):
        routes = routes[1:]
        changed = True
    if not changed:
        return request
    headers = request.headers.copy()
    headers.remove("Route")
    for value in routes:
        headers.add("Route", value)
    return request.replace(uri=uri, headers=headers)


def next_hop(request: Request) -> SipURI:
    """The URI to resolve (RFC 3263) to send ``request``: the first Route value, else the Request-URI.

    With a strict first hop the Request-URI already is that hop (§12.2.1.1), so both cases agree (§8.1.2).
    """
    routes = request.route
    if routes:
        return routes[0].uri
    return request.request_uri


# --------------------------------------------------------------------------------------------------
# Forking: the dialogs of one outgoing INVITE
# --------------------------------------------------------------------------------------------------


class DialogSet:
    """The dialogs one outgoing dialog-creating request gives rise to, one per remote tag (§12.1.2).

    Feed every response of the request's client transaction to ``on_response``.
    """

    __slots__ = ("_cseq_factory", "dialogs", "request", "secure")

    def __init__(
        self, request: Request, *, secure: bool = False, cseq_factory: Callable[[], int] = _initial_cseq
    ) -> None:
        if request.method not in DIALOG_CREATING_METHODS:
            raise DialogError(f"{request.method} does not create dialogs")
        self.request = request
        self.secure = secure
        self.dialogs: dict[str, Dialog] = {}
        self._cseq_factory = cseq_factory

    def __repr__(self) -> str:
        return f"<DialogSet {self.request.method} {self.request.call_id} {list(self.dialogs.values())}>"

    @property
    def early(self) -> list[Dialog]:
        return [d for d in self.dialogs.values() if d.state is DialogState.EARLY]

    @property
    def confirmed(self) -> list[Dialog]:
        return [d for d in self.dialogs.values() if d.state is DialogState.CONFIRMED]

    def on_response(self, response: Response) -> Dialog | None:
        """Create or update the dialog ``response`` belongs to; return it, or None if it has none.

        100 and responses without a To tag have no dialog. A 300-699 final response terminates every
        early dialog (§13.2.2.3); confirmed ones (from another branch's 2xx) are the TU's to end with BYE.
        """
        if response.call_id != self.request.call_id or response.cseq.seq != self.request.cseq.seq:
            raise DialogError("the response does not belong to this request (Call-ID or CSeq differ)")
        status = response.status
        if status >= 300:
            self.end_early_dialogs()
            return None
        tag = response.to.tag
        if status == 100 or not tag:
            return None
        dialog = self.dialogs.get(tag)
        if dialog is None:
            dialog = Dialog.from_uac(
                self.request, response, secure=self.secure, cseq_factory=self._cseq_factory
            )
            self.dialogs[tag] = dialog
        elif dialog.state is not DialogState.TERMINATED:
            dialog.update_from_response(response)
        return dialog

    def end_early_dialogs(self) -> list[Dialog]:
        """Terminate the dialogs still early (also when the INVITE transaction ends after a 2xx)."""
        ended = self.early
        for dialog in ended:
            dialog.terminate()
        return ended
