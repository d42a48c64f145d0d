"""Vendor control-API simulators backed by emulated devices (see the README, "Vendor API simulators")."""

from harness.simulators.backend import (
    BackendCall,
    BackendError,
    BackendEvent,
    CallPhase,
    DeviceBackend,
    DeviceIdentity,
    EventKind,
    FakeBackend,
    LineInfo,
    Registration,
)
from harness.simulators.base import RequestRecord, SimulatorServer

__all__ = [
    "BackendCall",
    "BackendError",
    "BackendEvent",
    "CallPhase",
    "DeviceBackend",
    "DeviceIdentity",
    "EventKind",
    "FakeBackend",
    "LineInfo",
    "Registration",
    "RequestRecord",
    "SimulatorServer",
]
