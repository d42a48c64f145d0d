"""Stale-device offboarding on the gateway's clock.

The seed: "Paired (signed-in) devices will be offboarded if not connected for 30 days, and unpaired
(signed-out) devices after 14 days. An offboarded device can be re-onboarded after a factory reset."

Every device keeps its last-connected time (the registrar stamps it on each REGISTER; onboarding and
configuration fetches stamp it too); a device that holds a live registration when the sweeper looks is connected
at that moment, however far the clock was moved. :meth:`Lifecycle.sweep` offboards a device whose idle time has reached
its limit — exactly 30 days (paired) or 14 days (unpaired or still onboarding) goes, one second less stays.
An offboarded device loses its credentials and registrations, the registrar and the provisioning server refuse
it with a reason, and only a factory reset (a fresh fetch of the bootstrap configuration) brings it back.
Pair states and times are in the store, so the sweep after a restart sees what the sweep before it saw.

The sweep goes over devices as stored, one row per line: each port of a multi-port ATA (``<mac>:002``) has its
own pair state and last-connected time and is offboarded on its own (:mod:`gateway.services.signin`); the ATA
is refused as a whole only once every port is offboarded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from gateway.services.model import Device, PairState

log = logging.getLogger("sipgw.lifecycle")

PAIRED_LIMIT_S = 30 * 86400
UNPAIRED_LIMIT_S = 14 * 86400


@dataclass(frozen=True)
class Offboarded:
    key: str
    state_before: PairState
    idle_s: float
    reason: str


def limit_for(device: Device) -> float | None:
    if device.pair_state is PairState.PAIRED:
        return PAIRED_LIMIT_S
    if device.pair_state in (PairState.UNPAIRED, PairState.ONBOARDING):
        return UNPAIRED_LIMIT_S
    return None


def last_seen(device: Device) -> float | None:
    return device.last_connected if device.last_connected is not None else device.created


def offboarding_date(device: Device) -> float | None:
    """When the sweeper will offboard the device if it does not connect before (None: never / already)."""
    limit = limit_for(device)
    seen = last_seen(device)
    if limit is None or seen is None:
        return None
    return seen + limit


class Lifecycle:
    def __init__(self, devices, clock: Callable[[], float], *, on_offboard: Callable[[Device], None] | None = None,
                 is_online: Callable[[str], bool] | None = None):
        self.devices = devices
        self.now = clock
        #: A device with a live registration is connected now, whatever the clock says (set by the server).
        self.is_online = is_online or (lambda key: False)
        #: Called with each device just offboarded (the server drops its credentials and registrations).
        self.on_offboard = on_offboard
        self.history: list[Offboarded] = []

    def sweep(self, now: float | None = None) -> list[Offboarded]:
        now = self.now() if now is None else now
        out = []
        for device in self.devices.all():
            due = offboarding_date(device)
            if due is None or now < due:
                continue
            if self.is_online(device.key):  # registered right now: connected, so not stale
                self.devices.put(replace(device, last_connected=now))
                continue
            idle = now - (last_seen(device) or now)
            limit_days = (limit_for(device) or 0) / 86400
            reason = (f"{'paired' if device.pair_state is PairState.PAIRED else 'unpaired'} device not connected "
                      f"for {idle / 86400:.2f} days (limit {limit_days:.0f})")
            out.append(self.offboard(device, reason, idle))
        return out

    def offboard(self, device: Device, reason: str, idle_s: float = 0.0) -> Offboarded:
        saved = self.devices.put(replace(device, pair_state=PairState.OFFBOARDED))
        if self.on_offboard is not None:
            self.on_offboard(saved)
        entry = Offboarded(device.key, device.pair_state, idle_s, reason)
        self.history.append(entry)
        del self.history[:-500]
        log.info("event=offboarded device=%s was=%s reason=%r", device.key, device.pair_state.value, reason)
        return entry
