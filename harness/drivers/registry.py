"""The driver registry, keyed by the inventory's ``driver:`` names.

Drivers register themselves with :func:`register_driver`. Built-in drivers are listed by module so the
inventory can be validated without importing heavy dependencies (pjsua2, netmiko, labgrid); the module is
imported only when a driver is created.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Built-in driver names and the module that registers each.
BUILTIN_DRIVERS: dict[str, str] = {
    "emulated": "harness.drivers.emulated",
    "fake": "harness.drivers.fake",
    "poly-rest": "harness.drivers.physical.poly_rest",
    "yealink-action-uri": "harness.drivers.physical.yealink_action_uri",
    "cisco-mpp": "harness.drivers.physical.cisco_mpp",
    "algo-rest": "harness.drivers.physical.algo_rest",
    "audiocodes-mp": "harness.drivers.physical.audiocodes_mp",
    "sip-side": "harness.drivers.physical.sip_side",
    "manual": "harness.drivers.physical.sip_side",
}

_registered: dict[str, type] = {}


class RegistrationError(Exception):
    pass


class UnknownDriver(LookupError):
    def __init__(self, name: str):
        self.name = name
        self.known = known_drivers()
        super().__init__(f"unknown driver {name!r}; known drivers: {', '.join(self.known)}")


def register_driver(name: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: make a driver available under ``name``. Duplicate names are refused."""

    def deco(cls: type[T]) -> type[T]:
        existing = _registered.get(name)
        if existing is not None and existing is not cls:
            raise RegistrationError(f"driver name {name!r} is already taken by {existing.__qualname__}")
        _registered[name] = cls
        return cls

    return deco


def known_drivers() -> list[str]:
    return sorted(set(BUILTIN_DRIVERS) | set(_registered))


def is_known(name: str) -> bool:
    return name in BUILTIN_DRIVERS or name in _registered


def driver_class(name: str) -> type:
    """The class registered as ``name``, importing its built-in module on first use."""
    if name not in _registered and name in BUILTIN_DRIVERS:
        importlib.import_module(BUILTIN_DRIVERS[name])
    try:
        return _registered[name]
    except KeyError:
        raise UnknownDriver(name) from None
