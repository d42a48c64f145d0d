from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from harness.simulators import DeviceIdentity, FakeBackend, LineInfo


def wait_until(predicate: Callable[[], object], timeout: float = 5.0,
               what: str | Callable[[], str] = "condition") -> object:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` past the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")
        time.sleep(0.02)


def fake_identity(vendor: str, model: str, firmware: str, user_agent: str, *, lines: int = 1) -> DeviceIdentity:
    return DeviceIdentity(vendor=vendor, model=model, firmware=firmware, mac="00:04:f2:8e:5a:79",
                          user_agent=user_agent, serial="SN123",
                          lines=tuple(LineInfo(index=i, username=f"user{i}", number=f"+1425555010{i}",
                                               domain="sipgw.lab", display_name=f"User {i}")
                                      for i in range(1, lines + 1)))


@pytest.fixture
def fake() -> Callable[..., FakeBackend]:
    def make(vendor: str = "Poly", model: str = "VVX 450", firmware: str = "6.4.3.5018",
             user_agent: str = "PolycomVVX-VVX_450-UA/6.4.3.5018", **kw) -> FakeBackend:
        lines = kw.pop("lines", 1)
        return FakeBackend(fake_identity(vendor, model, firmware, user_agent, lines=lines), **kw)
    return make
