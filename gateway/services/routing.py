"""Where a call goes: a tenant user's devices and Teams client (forking), the emulated PSTN, or nowhere.

SIP Gateway rules (seed): SIP device users can only call users who have phone numbers; inbound calls fork
to the user's SIP devices alongside the Teams clients. Every refusal carries a diagnostic code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from gateway.services.directory import Directory, number_key
from gateway.services.model import Flow, Presence, User
from gateway.services.registrar import Binding, Registrar


class MediaDirectory(Protocol):
    """Where the gateway-side endpoints (Teams clients, PSTN parties) are reached."""

    def teams_client(self, user: User) -> Flow | None: ...
    def pstn_party(self, number: str) -> Flow | None: ...


@dataclass(frozen=True)
class Target:
    """One branch of a call: a registered device contact, a Teams client, or a PSTN party."""

    kind: str  # "device", "teams", "pstn"
    uri: str  # Request-URI of the branch
    flow: Flow
    label: str
    binding: Binding | None = field(default=None, compare=False)
    #: Headers this branch's INVITE carries besides those relayed from the caller's (each replaces a relayed one of
    #: the same name): a transfer's ``Replaces`` rewritten for the target's own dialog (RFC 3891 §3).
    headers: tuple[tuple[str, str], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class RouteDecision:
    targets: tuple[Target, ...] = ()
    callee: User | None = None
    reject_status: int | None = None
    reject_code: str | None = None
    reject_text: str | None = None

    @property
    def rejected(self) -> bool:
        return self.reject_status is not None


_DIALLABLE = re.compile(r"^\+?[0-9]{2,15}$")
#: Visual separators people type in numbers: white space, parentheses, dots and dashes.
_SEPARATORS = re.compile(r"[\s().-]")


def dialled_number(uri_user: str | None) -> str:
    """The number a device dialled, from the Request-URI user part (visual separators removed)."""
    raw = (uri_user or "").split(";", 1)[0]
    return _SEPARATORS.sub("", raw)


def contact_flow(binding: Binding) -> Flow | None:
    """Where a binding's Contact says the device listens (RFC 3261 §19.1.4 transport, §18.1.1 default port)."""
    uri = binding.contact.uri
    if not getattr(uri, "host", None):
        return None
    transport = (uri.params.get("transport") or binding.flow.transport).upper()
    if uri.scheme == "sips":
        transport = "TLS"
    if transport not in ("UDP", "TCP", "TLS"):
        return None
    port = uri.port or (5061 if transport == "TLS" else 5060)
    return Flow(transport, uri.host, port)


class Router:
    def __init__(self, directory: Directory, registrar: Registrar, media: MediaDirectory, domain: str,
                 flow_live: Callable[[Flow], bool] | None = None):
        self.directory = directory
        self.registrar = registrar
        self.media = media
        self.domain = domain
        #: Whether a registration flow can still be used (its TCP/TLS connection is open); set by the server.
        self.flow_live = flow_live
        #: Where a user's voicemail is reached (``voicemail(user) -> Flow | None``), when a voicemail service
        #: exists; a DND user's calls go there, else the caller gets 486.
        self.voicemail: Callable[[User], Flow | None] | None = None
        #: Service numbers of the tenant (number without '+' → where the service answers now), e.g. the media
        #: node's IVR; checked before users and the PSTN.
        self.services: dict[str, Callable[[], Flow | None]] = {}
        #: Where a dialled user part goes: ``route(uri_user, now) -> RouteDecision``. The head of a chain:
        #: a service that decides some calls first (forwarding) puts its own here and passes the rest on to
        #: the one it replaced; the chain ends at ``route_by_directory``.
        self.route: Callable[[str | None, float], RouteDecision] = self.route_by_directory

    def route_by_directory(self, uri_user: str | None, now: float) -> RouteDecision:
        """Services, tenant users (DND, devices and Teams client), then the PSTN."""
        dialled = dialled_number(uri_user)
        service = self.services.get(number_key(dialled)) if self.services and dialled else None
        if service is not None:
            return self._service(dialled, service)
        user = self.directory.by_number(dialled) if _DIALLABLE.match(dialled) else None
        if user is None and uri_user:
            named = self.directory.user(uri_user)
            if named is not None and not named.number:
                return RouteDecision(callee=named, reject_status=404, reject_code="SGW-ROUTE-NO-NUMBER",
                                     reject_text=f"{named.name} has no phone number; SIP devices can only call "
                                                 "users who have phone numbers")
            if named is not None:
                user = named
        if user is not None:
            return self._user_targets(user, now)
        if _DIALLABLE.match(dialled) and self.directory.is_pstn(dialled):
            flow = self.media.pstn_party(dialled)
            if flow is None:
                return RouteDecision(reject_status=480, reject_code="SGW-ROUTE-UNREACHABLE",
                                     reject_text=f"the PSTN is not reachable for {dialled}")
            number = dialled if dialled.startswith("+") else "+" + dialled
            return RouteDecision(targets=(Target("pstn", f"sip:{number}@{flow.host}:{flow.port}", flow,
                                                 f"PSTN {number}"),))
        return RouteDecision(reject_status=404, reject_code="SGW-ROUTE-NOT-FOUND",
                             reject_text=f"no tenant user or PSTN route for {dialled or uri_user!r}")

    def _user_targets(self, user: User, now: float) -> RouteDecision:
        if user.presence is Presence.DND:
            return self._dnd(user)
        targets: list[Target] = []
        for b in self.registrar.bindings(user.username, now):
            flow = b.flow
            if self.flow_live is not None and not self.flow_live(flow):
                # The connection the device registered on is closed: without RFC 5626 outbound the
                # gateway opens a new one to the address in its Contact (RFC 3261 §18.1.1, §10.3).
                flow = contact_flow(b) or flow
            targets.append(Target("device", b.uri, flow, f"device {b.device_key}", b))
        if user.teams_client:
            teams = self.media.teams_client(user)
            if teams is not None:
                uri = f"sip:{number_key(user.number or user.username)}@{teams.host}:{teams.port}"
                targets.append(Target("teams", uri, teams, f"Teams client of {user.username}"))
        if not targets:
            return RouteDecision(callee=user, reject_status=480, reject_code="SGW-ROUTE-UNREACHABLE",
                                 reject_text=f"{user.name} has no registered device and no Teams client online")
        return RouteDecision(targets=tuple(targets), callee=user)

    def _dnd(self, user: User) -> RouteDecision:
        """Do not disturb (``*30*``): no device or Teams client of the user rings. The call goes to the user's
        voicemail when the user has one and a voicemail service exists, else the caller gets 486 Busy Here
        (RFC 3261 §21.4.24: the callee is not willing to take the call)."""
        flow = self.voicemail(user) if (user.voicemail and self.voicemail is not None) else None
        if flow is not None:
            uri = f"sip:{number_key(user.number or user.username)}@{flow.host}:{flow.port}"
            return RouteDecision(targets=(Target("voicemail", uri, flow, f"voicemail of {user.username}"),),
                                 callee=user)
        why = "the user has no voicemail" if not user.voicemail else "no voicemail service is available"
        return RouteDecision(callee=user, reject_status=486, reject_code="SGW-ROUTE-DND",
                             reject_text=f"{user.name} is in do-not-disturb ({why}); dial *31* to turn it off")

    def _service(self, dialled: str, service: Callable[[], Flow | None]) -> RouteDecision:
        number = "+" + number_key(dialled)
        flow = service()
        if flow is None:
            return RouteDecision(reject_status=480, reject_code="SGW-ROUTE-UNREACHABLE",
                                 reject_text=f"the service at {number} is not reachable now")
        return RouteDecision(targets=(Target("service", f"sip:{number}@{flow.host}:{flow.port}", flow,
                                             f"service {number}"),))
