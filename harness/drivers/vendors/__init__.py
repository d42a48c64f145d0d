"""One small module per vendor control API, each with the same few functions (labgrid's power-backend
pattern): ``connect(endpoint) -> session``, ``close(session)``, ``identity``, ``lines``, ``calls``,
``dial``, ``answer``, ``reject``, ``hangup``, ``hold``, ``resume``, ``set_mute``, ``send_dtmf``,
``transfer``, ``reboot``, ``factory_reset`` and ``probe`` (is the control path usable, and if not, why).
Optional: ``ended_calls(session)``, the calls that ended before ``calls`` could list them live (a feature
code's final response), each reported once; ``mwi(session, line)`` and ``dnd(session)``, the message-waiting
lamp and do-not-disturb state the device shows.

A function the vendor's API does not offer raises :class:`~harness.protocols.NotApplicable` with the reason.
Every value returned was read back from the device (or reported by it in an event), never assumed.
The vendor modules know nothing of the lab: :mod:`harness.drivers.physical.api_driver` turns them into a
``CallControl`` driver.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from harness.protocols import CallState, InfrastructureError, OperationFailed

#: driver name → vendor module (``harness.drivers.vendors.<name>``)
VENDOR_MODULES: dict[str, str] = {
    "poly-rest": "poly",
    "yealink-action-uri": "yealink",
    "cisco-mpp": "cisco",
    "algo-rest": "algo",
    "audiocodes-mp": "audiocodes",
}


def module_for(driver_name: str) -> ModuleType:
    try:
        return importlib.import_module(f"harness.drivers.vendors.{VENDOR_MODULES[driver_name]}")
    except KeyError:
        raise LookupError(f"no vendor API module for driver {driver_name!r}; known: "
                          f"{', '.join(sorted(VENDOR_MODULES))}") from None


@dataclass(frozen=True)
class Endpoint:
    """Where a device's control API is and how to authenticate. Secrets come from environment variables
    (resolved by the driver) and are never logged: ``repr`` hides them."""

    base_url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    verify: bool | str = True  # TLS verification: True, False (lab self-signed, said in the report) or a CA file
    timeout: float = 5.0
    options: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class VendorIdentity:
    vendor: str
    model: str
    firmware: str
    mac: str | None
    serial: str | None = None
    source: str = "http-api"


@dataclass(frozen=True)
class LineStatus:
    """A line's registration as the device reports it (``line`` is 1-based, as vendor APIs count)."""

    line: int
    registered: bool
    status_code: int | None = None
    expires: int = 0
    address: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class VendorCall:
    """A call as the device's API reports it. ``handle`` is the vendor's id (Poly CallHandle, Yealink
    ``$call_id``, Cisco ``line:callId``)."""

    handle: str
    state: CallState
    direction: str  # "in" | "out"
    remote: str = ""
    line: int = 1
    muted: bool = False
    local_hold: bool = False
    remote_hold: bool = False
    sip_call_id: str | None = None
    status_code: int | None = None  # the final SIP status, when the API reports it
    started: float | None = None  # when the call began (epoch seconds), when the API reports it


@dataclass(frozen=True)
class Probe:
    """Is the control path usable? ``problem`` names what bootstrap must fix (``api_disabled``,
    ``default_password``, ``not_allowed``, ``confirm_on_device``, ``not_connected``, ``auth``)."""

    ok: bool
    problem: str | None = None
    detail: str = ""


class VendorApiError(OperationFailed):
    """The device refused an operation; ``code`` is the vendor's (Poly ``4007``, HTTP ``403``…)."""

    def __init__(self, message: str, *, code: str | int | None = None, where: str | None = None) -> None:
        self.code = code
        self.where = where
        super().__init__(message)


class InvalidParameters(VendorApiError):
    """The device refused the request's parameters (Poly 4000)."""


class DeviceBusy(VendorApiError):
    """The device is busy with something else (Poly 4001)."""


class LineNotRegistered(VendorApiError):
    """The line is not registered, so the device will not call on it (Poly 4002)."""


class NotAllowed(VendorApiError):
    """Not allowed in the device's current state (Poly 4003)."""


class NoSuchLine(VendorApiError, LookupError):
    """The line does not exist (Poly 4005)."""


class NoSuchCall(VendorApiError, LookupError):
    """The call does not exist on the device (Poly 4007)."""


class DefaultPasswordRefused(VendorApiError):
    """The API refuses every request while the factory admin password is set (Poly 4010, UCS 5.9.7+)."""


class DeviceUnreachable(InfrastructureError):
    """The control API did not answer (connection refused, timeout): the lab, not the device's behaviour."""
