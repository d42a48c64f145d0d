"""Fixtures shared by the services' tests."""

from __future__ import annotations

import pytest

from gateway.services.directory import Directory
from gateway.services.model import User
from gateway.services.registrar import DeviceRegistry, Registrar, RegistrarConfig
from gateway.sip.auth import DigestServer
from gateway.store.sqlite import Store

REALM = "sipgw.lab"


@pytest.fixture
def env(tmp_path):
    """A registrar over a store with two users (avery, blake), throttling after 3 failures: (registrar, store)."""
    store = Store(tmp_path / "gw.db")
    directory = Directory(store, REALM)
    directory.put_user(User("avery", "Avery Chen", "+14255550101"), password="pw-avery")
    directory.put_user(User("blake", "Blake Rivera", "+14255550102"), password="pw-blake")
    auth = DigestServer(REALM, b"0123456789abcdef0123456789abcdef", algorithms=("SHA-256", "MD5"))
    devices = DeviceRegistry(store)
    reg = Registrar(directory, auth, devices, RegistrarConfig(min_expires=60, throttle_failures=3))
    yield reg, store
    store.close()
