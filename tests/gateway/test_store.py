"""The gateway's SQLite store keeps the directory, devices, pair state and policies, even across kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from gateway.services.model import CallingPolicy, Device, PairState, Presence, PstnRange, User
from gateway.store.sqlite import SCHEMA_VERSION, Store, StoreError


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "gw.db")
    yield s
    s.close()


def test_users_round_trip(store):
    u = store.upsert_user(User("avery", "Avery Chen", "+14255550101", ha1={"MD5": "abc"}))
    assert u.id is not None
    assert store.user("avery") == u
    assert store.user_by_number("14255550101") == u
    assert store.user_by_number("+14255550101") == u
    store.set_policy("avery", CallingPolicy(allow_sip_devices_calling=True, allow_call_redirect=False))
    store.set_presence("avery", Presence.DND)
    again = store.user("avery")
    assert again.policy.allow_call_redirect is False and again.presence is Presence.DND
    assert again.ha1 == {"MD5": "abc"}
    assert store.delete_user("avery") and store.user("avery") is None


def test_numbers_are_unique(store):
    store.upsert_user(User("a", "A", "+100"))
    with pytest.raises(Exception, match="UNIQUE"):
        store.upsert_user(User("b", "B", "+100"))
    assert store.user("b") is None


def test_devices_and_batched_last_seen(store):
    store.upsert_user(User("a", "A", "+100"))
    store.upsert_device(Device("00045a000001", vendor="Poly", model="VVX 450", pair_state=PairState.PAIRED,
                               username="a", created=1.0))
    store.touch_device("00045a000001", 50.0)
    assert store.device("00045a000001").last_connected == 50.0  # visible before the flush
    assert store.flush() == 1 and store.flush() == 0
    assert [d.key for d in store.devices("a")] == ["00045a000001"]
    store.delete_user("a")
    assert store.device("00045a000001").username is None


def test_pstn_ranges(store):
    store.set_pstn_ranges([PstnRange("+1206555", None), PstnRange("+442079460000", 12)])
    ranges = store.pstn_ranges()
    assert any(r.matches("+12065550100") for r in ranges)
    assert not any(r.matches("+14255550100") for r in ranges)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "gw.db"
    Store(path).close()
    import sqlite3

    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer sipgw-lab"):
        Store(path)


def test_kill_minus_nine_loses_nothing_committed(tmp_path):
    path = tmp_path / "gw.db"
    script = textwrap.dedent(f"""
        import os, signal
        from gateway.store.sqlite import Store
        from gateway.services.model import User, Device, PairState, CallingPolicy
        s = Store({str(path)!r})
        for i in range(200):
            s.upsert_user(User(f"u{{i}}", f"User {{i}}", f"+1425555{{i:04d}}"))
        s.upsert_device(Device("dev1", pair_state=PairState.PAIRED, username="u7"))
        s.set_policy("u7", CallingPolicy(True, False))
        s.touch_device("dev1", 1234.0)
        s.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    s = Store(path)
    assert len(s.users()) == 200
    dev = s.device("dev1")
    assert dev.pair_state is PairState.PAIRED and dev.username == "u7" and dev.last_connected == 1234.0
    assert s.user("u7").policy.allow_call_redirect is False
    s.close()
    assert os.path.exists(path)
