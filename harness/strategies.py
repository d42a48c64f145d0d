"""The device state machine: factory_reset → provisioned → registered → signed_in.

A :class:`DeviceStrategy` knows where its device is and walks the transition table to where a test needs
it, calling the driver's action for each edge (``provision``, ``register``, ``sign_in``, …) as a traced step.
The first action that fails breaks the device for good (labgrid's ``never_retry``): the strategy remembers
that cause and every later transition raises :class:`~harness.protocols.DeviceBroken` with it, so the
device's remaining tests are reported *blocked* with the real reason instead of failing one by one.

An action the device does not have (no ``sign_in`` on an ATA) raises ``NotApplicable`` and does not break
the device.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from harness import steps
from harness.protocols import DeviceBroken, NotApplicable


class DeviceState(StrEnum):
    UNKNOWN = "unknown"  # nothing done yet (the device may be in any state)
    FACTORY_RESET = "factory_reset"
    PROVISIONED = "provisioned"
    REGISTERED = "registered"
    SIGNED_IN = "signed_in"
    BROKEN = "broken"


S = DeviceState

#: (from, to) → the driver action that moves the device along that edge.
TRANSITIONS: dict[tuple[DeviceState, DeviceState], str] = {
    (S.UNKNOWN, S.FACTORY_RESET): "factory_reset",
    (S.FACTORY_RESET, S.PROVISIONED): "provision",
    (S.PROVISIONED, S.REGISTERED): "register",
    (S.REGISTERED, S.SIGNED_IN): "sign_in",
    (S.SIGNED_IN, S.REGISTERED): "sign_out",
    (S.REGISTERED, S.PROVISIONED): "unregister",
    (S.PROVISIONED, S.FACTORY_RESET): "factory_reset",
    (S.REGISTERED, S.FACTORY_RESET): "factory_reset",
    (S.SIGNED_IN, S.FACTORY_RESET): "factory_reset",
}

ACTIONS: tuple[str, ...] = tuple(sorted(set(TRANSITIONS.values())))


def path(src: DeviceState, dst: DeviceState) -> list[tuple[DeviceState, DeviceState, str]]:
    """The shortest list of edges from ``src`` to ``dst`` (empty if already there)."""
    if src == dst:
        return []
    prev: dict[DeviceState, tuple[DeviceState, str]] = {}
    queue = deque([src])
    while queue:
        cur = queue.popleft()
        for (a, b), action in TRANSITIONS.items():
            if a == cur and b not in prev and b != src:
                prev[b] = (a, action)
                if b == dst:
                    out = []
                    node = b
                    while node != src:
                        a2, act = prev[node]
                        out.append((a2, node, act))
                        node = a2
                    return out[::-1]
                queue.append(b)
    raise ValueError(f"no transition path from {src.value} to {dst.value}")


class DeviceStrategy:
    """Drives one device through :data:`TRANSITIONS` with the given actions (name → zero-argument callable)."""

    def __init__(self, device_id: str, actions: Mapping[str, Callable[[], Any]],
                 initial: DeviceState = DeviceState.UNKNOWN) -> None:
        unknown = sorted(set(actions) - set(ACTIONS))
        if unknown:
            raise ValueError(f"unknown strategy action(s) {unknown}; known: {', '.join(ACTIONS)}")
        self.device_id = device_id
        self._actions = dict(actions)
        self._state = DeviceState(initial)
        self._broken: BaseException | str | None = None
        self._broken_in: DeviceState | None = None
        self._lock = threading.RLock()
        self.history: list[tuple[DeviceState, DeviceState, str]] = []

    @property
    def state(self) -> DeviceState:
        return DeviceState.BROKEN if self._broken is not None else self._state

    @property
    def broken(self) -> bool:
        return self._broken is not None

    @property
    def cause(self) -> BaseException | str | None:
        """The first failure, or None."""
        return self._broken

    def mark_broken(self, cause: BaseException | str) -> None:
        """Break the device from outside (e.g. its worker died); only the first cause is kept."""
        with self._lock:
            if self._broken is None:
                self._broken = cause
                self._broken_in = self._state
                steps.record("strategy.broken", args={"state": self._state.value}, ok=False,
                             error=cause if isinstance(cause, BaseException) else str(cause),
                             device_id=self.device_id)

    def check(self, attempted: str | None = None) -> None:
        """Raise :class:`DeviceBroken` with the first cause if the device is broken."""
        if self._broken is not None:
            raise DeviceBroken(self._broken, device_id=self.device_id,
                               state=self._broken_in.value if self._broken_in else None, attempted=attempted)

    def transition(self, target: DeviceState | str) -> DeviceState:
        """Move the device to ``target`` (skipping the work when already there) and return the new state."""
        target = DeviceState(target)
        if target in (DeviceState.UNKNOWN, DeviceState.BROKEN):
            raise ValueError(f"{target.value} is not a state a device can be moved to")
        with self._lock:
            self.check(attempted=f"transition to {target.value}")
            for src, dst, action in path(self._state, target):
                fn = self._actions.get(action)
                if fn is None:
                    raise NotApplicable(f"{self.device_id} has no {action!r} action, so it cannot go from "
                                        f"{src.value} to {dst.value}", device_id=self.device_id)
                try:
                    with_step(self.device_id, action, src, dst, fn)
                except NotApplicable:
                    raise
                except Exception as exc:
                    self.mark_broken(exc)
                    self.check(attempted=f"{action} ({src.value} → {dst.value})")
                self._state = dst
                self.history.append((src, dst, action))
            return self._state

    def __repr__(self) -> str:
        return f"DeviceStrategy({self.device_id!r}, {self.state.value})"


def with_step(device_id: str, action: str, src: DeviceState, dst: DeviceState, fn: Callable[[], Any]) -> Any:
    @steps.step(f"strategy.{action}", device_id=device_id)
    def run(src: str, dst: str) -> Any:
        return fn()

    return run(src.value, dst.value)
