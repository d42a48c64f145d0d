"""Sign-in state per hardware id: each port of a multi-port ATA is its own line (pairing, credentials, sign-out,
offboarding), bulk sign-in puts two ports of one ATA in to two users in one batch, and a store written when
state was keyed by MAC (``signin.v1``) is migrated without losing anything."""

from __future__ import annotations

import json

import pytest

from gateway.services import signin as s
from gateway.services.directory import Directory
from gateway.services.lifecycle import Lifecycle
from gateway.services.model import Device, PairState, User
from gateway.services.registrar import DeviceRegistry
from gateway.services.signin import SignInError, SignInService
from gateway.store.sqlite import Store

REALM = "sipgw.lab"
ATA = "00908f0a0b0c"  # an AudioCodes MP112: two usable ports
PHONE = "805ec012dc69"
P1, P2 = f"{ATA}:001", f"{ATA}:002"


class FakeClock:
    def __init__(self, t: float = 1_900_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def users(directory: Directory) -> None:
    directory.put_user(User("lobby", "Lobby", "+14255550199", common_area=True), password="pw-lobby")
    directory.put_user(User("gate", "Gate", "+14255550198", common_area=True), password="pw-gate")
    directory.put_user(User("avery", "Avery Chen", "+14255550101"), password="pw-avery")


@pytest.fixture
def env(tmp_path):
    store = Store(tmp_path / "gw.db")
    directory = Directory(store, REALM)
    users(directory)
    devices = DeviceRegistry(store)
    clock = FakeClock()
    online: set[str] = set()
    dropped: list[str] = []
    svc = SignInService(directory, devices, store, clock, realm=REALM, is_online=lambda k: k in online,
                        drop_bindings=dropped.append, monotonic=clock)
    yield svc, clock, online, dropped, store
    store.close()


def ata(svc, online) -> None:
    svc.onboard(ATA, vendor="AudioCodes", model="MP112")
    svc.config_fetched(ATA)
    online.update({P1, P2})


def test_onboarding_an_ata_gives_each_port_its_own_line_and_credentials(env):
    svc, _clock, online, *_ = env
    ata(svc, online)
    lines = svc.lines(ATA)
    assert [d.key for d in lines] == [P1, P2] and all(d.mac == ATA for d in lines)
    assert all(d.pair_state is PairState.UNPAIRED for d in lines)
    c1, c2 = svc.credentials(P1), svc.credentials(P2)
    assert (c1.username, c2.username) == (f"onb-{ATA}-001", f"onb-{ATA}-002") and c1.password != c2.password
    assert svc.account_for(c2.username) == ("onboarding", P2, c2.password)
    assert svc.record(P2)["token"] == svc.record(P1)["token"]  # one state URL, one configuration file per ATA
    assert s.hardware_id(P2) == "00-90-8f-0a-0b-0c:002" and s.split_key(P2) == (ATA, 2)


def test_two_ports_of_one_ata_to_two_users_in_one_batch_and_sign_out_of_one(env):
    svc, _clock, online, dropped, _ = env
    ata(svc, online)
    batch = svc.bulk_sign_in(f"Username,HardwareId\nlobby,{s.hardware_id(P1)}\ngate,{s.hardware_id(P2)}\n")
    assert [(r.ok, r.device_key) for r in batch.rows] == [(True, P1), (True, P2)], batch.rows
    d1, d2 = svc.devices.get(P1), svc.devices.get(P2)
    assert (d1.username, d2.username) == ("lobby", "gate")
    c1, c2 = svc.credentials(P1), svc.credentials(P2)
    assert (c1.username, c2.username) == (f"dev-{ATA}-001", f"dev-{ATA}-002")
    assert svc.account_for(c1.username)[:2] == ("device", P1) and svc.account_for(c2.username)[:2] == ("device", P2)
    assert {b["id"] for b in svc.running_batches()} == {batch.id}
    svc.signed_in_config_fetched(P1)
    svc.signed_in_config_fetched(P2)
    assert svc.running_batches() == []
    svc.sign_out(P1, by="admin")
    assert dropped[-1] == P1
    assert svc.devices.get(P1).pair_state is PairState.UNPAIRED and svc.devices.get(P1).username is None
    assert svc.devices.get(P2).pair_state is PairState.PAIRED and svc.devices.get(P2).username == "gate"
    assert svc.account_for(c1.username) is None and svc.account_for(c2.username)[:2] == ("device", P2)


def test_an_ata_named_by_its_mac_alone_is_its_first_port_and_the_same_line_twice_is_a_duplicate(env):
    svc, _clock, online, *_ = env
    ata(svc, online)
    mac_id = s.hardware_id(ATA)
    batch = svc.bulk_sign_in(f"Username,HardwareId\nlobby,{mac_id}\ngate,{mac_id}:001\nlobby,{mac_id}:002\n")
    assert [r.error for r in batch.rows[:2]] == [s.ERR_DUPLICATE, s.ERR_DUPLICATE]
    assert batch.rows[2].ok and batch.rows[2].device_key == P2
    with pytest.raises(SignInError) as e:
        svc.sign_out(ATA)
    assert e.value.status == 404 and P1 in e.value.message and P2 in e.value.message  # names the ports


def test_pairing_code_signs_in_only_its_port_and_offline_is_per_port(env):
    svc, _clock, online, *_ = env
    ata(svc, online)
    p = svc.start_pairing(P2)
    assert p.key == P2 and p.mac == ATA and svc.pairing_for(P1) is None
    svc.complete_pairing("avery", "pw-avery", p.code)
    assert svc.devices.get(P2).username == "avery" and svc.devices.get(P1).pair_state is PairState.UNPAIRED
    online.discard(P1)
    batch = svc.bulk_sign_in(f"Username,HardwareId\nlobby,{s.hardware_id(P1)}\n")
    assert batch.rows[0].error == s.ERR_OFFLINE


def test_ports_are_offboarded_independently(env):
    svc, clock, online, _dropped, _ = env
    ata(svc, online)
    svc.bulk_sign_in(f"Username,HardwareId\nlobby,{s.hardware_id(P2)}\n")
    online.clear()
    life = Lifecycle(svc.devices, clock, on_offboard=lambda d: svc.forget_credentials(d.key))
    clock.t += 14 * 86400  # the signed-out port reaches its limit, the signed-in one (30 days) does not
    assert [o.key for o in life.sweep()] == [P1]
    assert svc.devices.get(P1).pair_state is PairState.OFFBOARDED and svc.credentials(P1) is None
    assert svc.devices.get(P2).pair_state is PairState.PAIRED and svc.credentials(P2) is not None
    token = svc.record(P2)["token"]
    assert svc.state_token_ok(ATA, token)  # the ATA still fetches its configuration for port 2
    clock.t += 16 * 86400
    assert [o.key for o in life.sweep()] == [P2]
    assert not svc.state_token_ok(ATA, token)


def test_enrolment_by_mac_then_onboarding_of_an_ata_splits_it_into_ports(env):
    svc, *_ = env
    device, code, _ = svc.enrol(ATA)
    assert device.key == ATA
    svc.onboard(ATA, vendor="AudioCodes", model="MP112")
    assert [d.key for d in svc.lines(ATA)] == [P1, P2] and svc.devices.get(ATA) is None
    svc.verify_enrolment(ATA, code)
    assert all(d.pair_state is PairState.UNPAIRED for d in svc.lines(ATA))
    assert all(svc.record(k)["enrolled"] for k in (P1, P2))


def test_a_static_registration_row_of_the_mac_is_not_one_of_the_ata_lines(env):
    svc, _clock, online, *_ = env
    ata(svc, online)
    svc.devices.put(Device(key=ATA, mac=ATA, vendor="AudioCodes", model="MP112", pair_state=PairState.PAIRED,
                           username="lobby"))  # what the registrar records for a static line account
    assert svc.keys(ATA) == [P1, P2]


# --- migration of a store written when sign-in state was keyed by MAC --------------------------------------------
def _old_store(path) -> dict:
    """A store as the gateway wrote it before per-port state: rows and the signin.v1 document keyed by MAC."""
    store = Store(path)
    directory = Directory(store, REALM)
    users(directory)
    t = 1_900_000_000.0
    store.upsert_device(Device(key=ATA, vendor="AudioCodes", model="MP112", firmware="6.60A.367.001",
                               user_agent="AudioCodes-MP112/6.60A.367.001 00908F0A0B0C", verdict="supported",
                               pair_state=PairState.PAIRED, username="lobby", mac=ATA, last_connected=t - 60,
                               created=t - 86400))
    store.upsert_device(Device(key=PHONE, vendor="Yealink", model="T46S", pair_state=PairState.UNPAIRED, mac=PHONE,
                               last_connected=t - 30, created=t - 3600))
    v1 = {
        "devices": {
            ATA: {"onb_user": f"onb-{ATA}", "onb_password": "onb-secret", "dev_user": f"dev-{ATA}",
                  "dev_password": "dev-secret", "token": f"{ATA}-{int(t) - 86400}-aaaaaaaaaaaa",
                  "onboarded_at": t - 86400, "lang": "de", "tenant": None, "enrolled": True,
                  "signed_in_at": t - 100, "fetched_signed_in": t - 90},
            PHONE: {"onb_user": f"onb-{PHONE}", "onb_password": "phone-secret",
                    "token": f"{PHONE}-{int(t) - 3600}-bbbbbbbbbbbb", "onboarded_at": t - 3600, "lang": "en",
                    "tenant": None, "enrolled": False, "signed_out_at": t - 3000},
        },
        "pairing": {"ABCDEFGHJ": {"mac": PHONE, "expires": t + 600, "used": False}},
        "enrol": {"123456": {"mac": PHONE, "expires": t + 86400, "used": False}},
        "batches": [{"id": "b1", "created": t - 100, "devices": [ATA],
                     "rows": [{"line": 2, "username": "lobby", "hardware_id": "00-90-8f-0a-0b-0c", "device_key": ATA,
                               "ok": True, "error": None}]}],
    }
    store.set_setting("signin.v1", json.dumps(v1, sort_keys=True))
    store.close()
    return v1


def _service(path, clock=None):
    store = Store(path)
    svc = SignInService(Directory(store, REALM), DeviceRegistry(store), store, clock or FakeClock(), realm=REALM)
    return svc, store


def test_migration_from_state_keyed_by_mac_loses_nothing(tmp_path):
    v1 = _old_store(tmp_path / "gw.db")
    svc, store = _service(tmp_path / "gw.db")
    try:
        # the ATA's row and record are port :001's, every field kept; port :002 is added, signed out
        p1, p2 = svc.devices.get(P1), svc.devices.get(P2)
        assert svc.devices.get(ATA) is None
        assert (p1.pair_state, p1.username, p1.firmware, p1.last_connected, p1.created, p1.mac) == (
            PairState.PAIRED, "lobby", "6.60A.367.001", 1_900_000_000.0 - 60, 1_900_000_000.0 - 86400, ATA)
        assert (p2.pair_state, p2.username, p2.created, p2.mac) == (PairState.UNPAIRED, None, p1.created, ATA)
        # credentials keep their names: the ATA configured before the upgrade still registers
        assert svc.account_for(f"dev-{ATA}") == ("device", P1, "dev-secret")
        assert svc.account_for(f"onb-{ATA}") == ("onboarding", P1, "onb-secret")
        assert svc.credentials(P1).username == f"dev-{ATA}"
        assert svc.credentials(P2).username == f"onb-{ATA}-002"
        r1 = svc.record(P1)
        old = v1["devices"][ATA]
        for k in ("token", "onboarded_at", "lang", "enrolled", "signed_in_at", "fetched_signed_in"):
            assert r1[k] == old[k], k
        assert svc.state_token_ok(ATA, old["token"])
        # the single-line phone is as it was, and so are its pairing and enrolment codes
        assert svc.devices.get(PHONE).pair_state is PairState.UNPAIRED
        assert svc.record(PHONE)["token"] == v1["devices"][PHONE]["token"]
        assert svc.account_for(f"onb-{PHONE}") == ("onboarding", PHONE, "phone-secret")
        assert svc.pairing_for(PHONE).code == "ABCDEFGHJ"
        assert svc.batches()[0]["devices"] == [P1] and svc.batches()[0]["rows"][0]["device_key"] == P1
        svc.verify_enrolment(PHONE, "123456")
        assert json.loads(store.setting("signin.v1")) == v1  # the old document is left as it was
    finally:
        store.close()
    svc, store = _service(tmp_path / "gw.db")  # a restart reads the migrated state and changes nothing
    try:
        assert [d.key for d in svc.lines(ATA)] == [P1, P2]
        assert svc.account_for(f"dev-{ATA}") == ("device", P1, "dev-secret")
        assert svc.record(PHONE)["enrolled"] is True
    finally:
        store.close()
