"""The tenant's data as the gateway's services see it: users, devices, PSTN numbers.

Plain frozen values; the store persists them and the services change them by building new ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple


class PairState(StrEnum):
    """A device's state in the tenant (sip-gateway-facts: onboarding → signed out → signed in)."""

    ONBOARDING = "onboarding"  # fetched its first configuration, holds onboarding credentials
    UNPAIRED = "unpaired"  # "signed out": onboarded, no user
    PAIRED = "paired"  # "signed in": paired to one user
    OFFBOARDED = "offboarded"  # stale; refused until a factory reset


class Presence(StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    DND = "dnd"
    AWAY = "away"
    OFFLINE = "offline"


@dataclass(frozen=True)
class CallingPolicy:
    """The parts of Set-CsTeamsCallingPolicy SIP Gateway depends on."""

    allow_sip_devices_calling: bool = True
    allow_call_redirect: bool = True


@dataclass(frozen=True)
class User:
    username: str
    name: str
    number: str | None = None
    policy: CallingPolicy = field(default_factory=CallingPolicy)
    teams_client: bool = False
    voicemail: bool = True
    common_area: bool = False
    presence: Presence = Presence.AVAILABLE
    #: HA1 digests per algorithm for the gateway's realm (the password itself is not stored).
    ha1: dict[str, str] = field(default_factory=dict, compare=False)
    id: int | None = None


@dataclass(frozen=True)
class Device:
    """A device known to the tenant, identified by MAC where known, else by its first SIP identity."""

    key: str
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    user_agent: str | None = None
    verdict: str | None = None
    verdict_reason: str | None = None
    pair_state: PairState = PairState.UNPAIRED
    username: str | None = None
    mac: str | None = None
    last_connected: float | None = None
    created: float | None = None
    id: int | None = None


@dataclass(frozen=True)
class PstnRange:
    """Numbers routed to the emulated PSTN: a single number, or a prefix with a length."""

    prefix: str
    length: int | None = None  # total digits (without '+'); None = any length

    def matches(self, number: str) -> bool:
        digits = number.lstrip("+")
        pre = self.prefix.lstrip("+")
        if not digits.startswith(pre):
            return False
        return self.length is None or len(digits) == self.length


class Flow(NamedTuple):
    """Where a message came from (and where replies and requests to that device go): RFC 5626 flow.

    A NamedTuple, not a frozen dataclass: every datagram makes or looks one up, and a tuple is built, hashed and
    compared in C where a dataclass runs generated Python methods.
    """

    transport: str  # "UDP", "TCP" or "TLS"
    host: str
    port: int
    conn_id: int | None = None  # the stream connection for TCP/TLS

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport.lower()}:{host}:{self.port}"
