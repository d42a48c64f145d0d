"""The hooks registrar workers (gateway.shards) rely on, in one process: what each tells and what each takes."""

from __future__ import annotations

from dataclasses import replace

from gateway.clock import Clock
from gateway.services.directory import Directory
from gateway.services.model import PairState, User
from gateway.services.registrar import DeviceRegistry, Registrar, RegistrarConfig
from gateway.sip.auth import DigestClient, DigestServer, compute_ha1
from gateway.store.sqlite import Store
from tests.gateway.services.test_registrar import REALM, Phone


class Mirror:
    def __init__(self):
        self.heard: list[tuple] = []

    def dropped_device(self, key):
        self.heard.append(("drop", key))

    def removed_user(self, username):
        self.heard.append(("remove_user", username))

    def cleared(self):
        self.heard.append(("clear",))

    def auth_failed(self, host, now):
        self.heard.append(("fail", host, now))


def test_the_mirror_hears_what_the_workers_must_repeat(env):
    reg, _ = env
    reg.mirror = mirror = Mirror()
    assert Phone("avery", "pw-avery").register(reg).status == 200
    assert mirror.heard == []  # a registration is not the mirror's business (workers send their own)
    assert Phone("avery", "wrong").register(reg, now=101.0).status == 403
    reg.drop_device("0004f28e5a79", 102.0)
    reg.remove_user("blake", 103.0)
    reg.clear()
    assert mirror.heard == [("fail", "127.0.0.1", 101.0), ("drop", "0004f28e5a79"), ("remove_user", "blake"),
                            ("clear",)]


def test_adopted_bindings_replace_the_users_and_listeners_hear_them(env):
    reg, _ = env
    Phone("avery", "pw-avery").register(reg)
    (mine,) = reg.bindings("avery", 100.0)
    other = Registrar(reg.directory, reg.auth, DeviceRegistry(reg.devices._store), RegistrarConfig())
    heard = []
    other.listeners.append(lambda user, bindings: heard.append((user, [b.uri for b in bindings])))
    other.adopt("avery", [mine], 100.0)
    assert other.bindings("avery", 100.0) == [mine]
    assert other.bindings("avery", mine.expires_at + 1) == []  # expiry is read from the copy as it is
    other.adopt("avery", [], 100.0)
    assert other.all_bindings(100.0) == {}
    assert heard == [("avery", [mine.uri]), ("avery", [])]


def test_failures_another_process_saw_count_towards_the_throttle(env):
    reg, _ = env
    for _ in range(3):  # the fixture's throttle: 3 failures
        reg.note_failure("127.0.0.1", 100.0)
    resp = Phone("avery", "pw-avery").register(reg)
    assert resp.status == 503 and "SGW-AUTH-THROTTLED" in resp.headers.get("Warning")


def test_device_records_tell_their_changes_but_not_their_touches(env):
    reg, _ = env
    devices = reg.devices
    changed, touched = [], []
    devices.listeners.append(changed.append)
    devices.on_touch = lambda key, wall: touched.append((key, wall))
    phone = Phone("avery", "pw-avery")
    phone.register(reg, wall=1_700_000_000.0)
    phone.reauth()
    phone.register(reg, wall=1_700_000_060.0)  # a refresh: only the last-connected time
    assert changed == ["0004f28e5a79"] and touched == [("0004f28e5a79", 1_700_000_060.0)]
    device = devices.get("0004f28e5a79")
    devices.put(replace(device, pair_state=PairState.OFFBOARDED))
    devices.remove("0004f28e5a79")
    assert changed == ["0004f28e5a79"] * 3


def test_device_records_taken_from_another_process(env):
    reg, store = env
    Phone("avery", "pw-avery").register(reg, wall=1_700_000_000.0)
    copy = DeviceRegistry(store)  # another process's registry over the same store
    heard = []
    copy.listeners.append(heard.append)
    record = reg.devices.get("0004f28e5a79")
    copy.touched("0004f28e5a79", 1_700_000_500.0)
    assert copy.get("0004f28e5a79").last_connected == 1_700_000_500.0
    copy.touched("unknown", 1.0)  # nothing to touch: nothing made up
    assert copy.get("unknown") is None
    reg.devices.put(replace(record, pair_state=PairState.OFFBOARDED))
    assert copy.get("0004f28e5a79").pair_state is PairState.PAIRED  # until told
    assert copy.refresh("0004f28e5a79").pair_state is PairState.OFFBOARDED
    reg.devices.remove("0004f28e5a79")
    assert copy.refresh("0004f28e5a79") is None and copy.get("0004f28e5a79") is None
    copy.adopt(record)
    assert copy.get("0004f28e5a79") == record and heard == []  # taken, not told again


def test_directory_writes_are_told(tmp_path):
    store = Store(tmp_path / "gw.db")
    try:
        directory = Directory(store, REALM)
        told = []
        directory.listeners.append(lambda: told.append(len(directory.users())))
        directory.put_user(User("casey", "Casey"), password="pw")
        directory.set_pstn_ranges([])
        directory.delete_user("casey")
        assert told == [1, 1, 0]
        reader = Directory(store, REALM)  # another process's cache, read again when told
        directory.put_user(User("drew", "Drew", "+14255550199"), password="pw")
        assert reader.user("drew") is None
        reader.reload()
        assert reader.by_number("+14255550199").username == "drew"
        assert reader.user("drew").ha1 == directory.user("drew").ha1
    finally:
        store.close()


def test_the_clock_tells_its_offset_and_takes_another():
    clock = Clock(source=lambda: 1000.0)
    told = []
    clock.listeners.append(told.append)
    clock.advance(60)
    clock.set(5000.0)
    clock.reset()
    assert told == [60.0, 4000.0, 0.0]
    other = Clock(source=lambda: 1000.0)
    other.set_offset(4000.0)
    assert other.now() == 5000.0 and told == [60.0, 4000.0, 0.0]


def test_digest_server_is_shared_by_its_secret():
    # Workers build their own DigestServer from the store's secret: a nonce one issues, the other accepts.
    a = DigestServer(REALM, b"s" * 32, algorithms=("MD5",))
    b = DigestServer(REALM, b"s" * 32, algorithms=("MD5",))
    creds = DigestClient("avery", "pw").authorize(a.challenge_values(1_700_000_000.0), method="REGISTER",
                                                  uri=f"sip:{REALM}")
    ha1 = {"MD5": compute_ha1("avery", REALM, "pw", "MD5")}
    assert b.verify(str(creds), method="REGISTER", now=1_700_000_001.0, ha1=ha1).ok
    other = DigestServer(REALM, b"t" * 32, algorithms=("MD5",))
    assert not other.verify(str(creds), method="REGISTER", now=1_700_000_001.0, ha1=ha1).ok
