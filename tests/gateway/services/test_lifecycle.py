"""Offboarding of stale devices: the 30-day and 14-day boundaries to the second, refusal, survival of a restart."""

from __future__ import annotations

import pytest

from gateway.services.lifecycle import Lifecycle, offboarding_date
from gateway.services.model import Device, PairState
from gateway.services.registrar import DeviceRegistry
from gateway.store.sqlite import Store

T0 = 1_900_000_000.0
DAY, HOUR = 86400, 3600


@pytest.fixture
def env(tmp_path):
    store = Store(tmp_path / "gw.db")
    devices = DeviceRegistry(store)
    devices.put(Device("aaaaaaaaaaa1", pair_state=PairState.PAIRED, last_connected=T0, created=T0))
    devices.put(Device("aaaaaaaaaaa2", pair_state=PairState.UNPAIRED, last_connected=T0, created=T0))
    devices.put(Device("aaaaaaaaaaa3", pair_state=PairState.ONBOARDING, last_connected=None, created=T0))
    yield store, devices
    store.close()


@pytest.mark.parametrize("key,stays,goes", [
    ("aaaaaaaaaaa1", 29 * DAY + 23 * HOUR, 30 * DAY),
    ("aaaaaaaaaaa2", 13 * DAY + 23 * HOUR, 14 * DAY),
    ("aaaaaaaaaaa3", 14 * DAY - 1, 14 * DAY),
])
def test_boundaries(env, key, stays, goes):
    _, devices = env
    off = []
    lc = Lifecycle(devices, lambda: T0, on_offboard=off.append)
    assert key not in [o.key for o in lc.sweep(T0 + stays)]
    assert devices.get(key).pair_state is not PairState.OFFBOARDED
    done = [o for o in lc.sweep(T0 + goes) if o.key == key]
    assert done and devices.get(key).pair_state is PairState.OFFBOARDED
    assert key in [d.key for d in off]
    assert "not connected" in done[0].reason


def test_offboarding_date_and_connection_resets_it(env):
    _, devices = env
    d = devices.get("aaaaaaaaaaa1")
    assert offboarding_date(d) == T0 + 30 * DAY
    devices.put(Device("aaaaaaaaaaa1", pair_state=PairState.PAIRED, last_connected=T0 + 10 * DAY, created=T0))
    lc = Lifecycle(devices, lambda: T0)
    assert "aaaaaaaaaaa1" not in [o.key for o in lc.sweep(T0 + 30 * DAY)]


def test_offboarded_state_survives_restart(env, tmp_path):
    store, devices = env
    Lifecycle(devices, lambda: T0).sweep(T0 + 31 * DAY)
    store.close()
    store2 = Store(tmp_path / "gw.db")
    try:
        again = DeviceRegistry(store2)
        assert {d.key: d.pair_state for d in again.all()} == {k: PairState.OFFBOARDED for k in
                                                               ("aaaaaaaaaaa1", "aaaaaaaaaaa2", "aaaaaaaaaaa3")}
        assert Lifecycle(again, lambda: T0).sweep(T0 + 60 * DAY) == []  # offboarded devices are left alone
    finally:
        store2.close()


def test_a_registered_device_is_connected_whatever_the_clock(env):
    _, devices = env
    lc = Lifecycle(devices, lambda: T0, is_online=lambda key: key == "aaaaaaaaaaa1")
    gone = [o.key for o in lc.sweep(T0 + 40 * DAY)]
    assert "aaaaaaaaaaa1" not in gone and devices.get("aaaaaaaaaaa1").last_connected == T0 + 40 * DAY
    assert "aaaaaaaaaaa2" in gone
