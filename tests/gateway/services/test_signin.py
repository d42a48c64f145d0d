"""The sign-in service: onboarding, pairing codes (format, expiry, single use, throttled guessing), users refused
with a reason, enrolment codes, remote sign-in for common-area accounts only, bulk sign-in limits and error texts,
and state that survives a restart (a new service over the same store)."""

from __future__ import annotations

import re

import pytest

from gateway.services import signin as s
from gateway.services.directory import Directory
from gateway.services.model import CallingPolicy, PairState, User
from gateway.services.registrar import DeviceRegistry
from gateway.services.signin import SignInError, SignInService
from gateway.store.sqlite import Store

REALM = "sipgw.lab"
MAC = "805ec012dc69"
MAC2 = "0004f28e5a79"


class FakeClock:
    def __init__(self, t: float = 1_900_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def env(tmp_path):
    store = Store(tmp_path / "gw.db")
    directory = Directory(store, REALM)
    directory.put_user(User("avery", "Avery Chen", "+14255550101"), password="pw-avery")
    directory.put_user(User("lobby", "Lobby Phone", "+14255550199", common_area=True), password="pw-lobby")
    directory.put_user(User("nonum", "No Number"), password="pw")
    directory.put_user(User("nopolicy", "No Policy", "+14255550198",
                            policy=CallingPolicy(allow_sip_devices_calling=False)), password="pw")
    devices = DeviceRegistry(store)
    clock = FakeClock()
    online: set[str] = set()
    svc = SignInService(directory, devices, store, clock, realm=REALM, guess_limit=3, guess_window_s=60,
                        is_online=lambda k: k in online, monotonic=clock)
    yield svc, clock, online, store, directory, devices
    store.close()


def onboarded(svc, mac=MAC):
    svc.onboard(mac, vendor="Yealink", model="T46S")
    return svc.config_fetched(mac)


def test_onboarding_mints_credentials_and_token_and_fetch_signs_out(env):
    svc, _clock, *_ = env
    d = svc.onboard(MAC, vendor="Yealink", model="T46S")
    assert d.pair_state is PairState.ONBOARDING
    rec = svc.record(MAC)
    assert rec["onb_user"] == f"onb-{MAC}" and re.fullmatch(rf"{MAC}-\d+-[0-9a-f]{{12}}", rec["token"])
    assert svc.credentials(MAC).username == f"onb-{MAC}"
    assert svc.config_fetched(MAC).pair_state is PairState.UNPAIRED
    first = rec["token"]
    svc.onboard(MAC)  # a factory reset fetches the bootstrap again: new token, new password
    again = svc.record(MAC)
    assert again["token"] != first and again["onb_password"] != rec["onb_password"]
    assert not svc.state_token_ok(MAC, first) and svc.state_token_ok(MAC, again["token"])


def test_pairing_code_format_single_use_and_pairing(env):
    svc, *_ = env
    onboarded(svc)
    p = svc.start_pairing(MAC)
    assert re.fullmatch(r"[A-Z0-9]{9}", p.code) and not set(p.code) & set("01OIL")
    d = svc.complete_pairing("avery", "pw-avery", p.code.lower(), peer="10.0.0.1")
    assert d.pair_state is PairState.PAIRED and d.username == "avery"
    assert svc.credentials(MAC).username == f"dev-{MAC}"
    assert svc.account_for(f"dev-{MAC}")[0] == "device"
    with pytest.raises(SignInError) as e:
        svc.complete_pairing("avery", "pw-avery", p.code, peer="10.0.0.2")
    assert e.value.code == "code_used"


def test_pairing_code_expires_after_ttl(env):
    svc, clock, *_ = env
    onboarded(svc)
    p = svc.start_pairing(MAC)
    clock.t += 15 * 60 - 1
    assert svc.pairing_for(MAC) is not None
    clock.t += 1
    assert svc.pairing_for(MAC) is None
    with pytest.raises(SignInError) as e:
        svc.complete_pairing("avery", "pw-avery", p.code, peer="p")
    assert e.value.code == "code_expired" and "expired" in e.value.message


def test_wrong_password_and_users_without_number_or_policy_are_refused(env):
    svc, *_ = env
    onboarded(svc)
    p = svc.start_pairing(MAC)
    with pytest.raises(SignInError) as e:
        svc.complete_pairing("avery", "wrong", p.code)
    assert e.value.code == "bad_credentials"
    with pytest.raises(SignInError) as e:
        svc.complete_pairing("nonum", "pw", p.code)
    assert e.value.code == "no_phone_number" and "phone number" in e.value.message
    with pytest.raises(SignInError) as e:
        svc.complete_pairing("nopolicy", "pw", p.code)
    assert "AllowSIPDevicesCalling" in e.value.message
    assert svc.pairing_for(MAC) is not None  # none of that used the code up


def test_guessing_is_throttled_per_address_and_logged(env):
    svc, clock, *_ = env
    onboarded(svc)
    p = svc.start_pairing(MAC)
    with pytest.raises(SignInError):  # a malformed code counts as a guess
        svc.complete_pairing("avery", "pw-avery", "Q" * 8, peer="10.9.9.9")
    svc.guess_limit = 4
    for guess in ("AAAAAAAAA", "BBBBBBBBB", "CCCCCCCCC"):
        with pytest.raises(SignInError):
            svc.complete_pairing("avery", "pw-avery", guess, peer="10.9.9.9")
    with pytest.raises(SignInError) as e:  # even the right code is refused while throttled
        svc.complete_pairing("avery", "pw-avery", p.code, peer="10.9.9.9")
    assert e.value.status == 429 and "10.9.9.9" in e.value.message
    assert [x["event"] for x in svc.log].count("pairing_code_refused") == 4
    assert svc.complete_pairing("avery", "pw-avery", p.code, peer="10.1.1.1").pair_state is PairState.PAIRED
    clock.t += 61  # the window has passed: the address may try again (and gets the code's own answer)
    with pytest.raises(SignInError) as e:
        svc.complete_pairing("avery", "pw-avery", "DDDDDDDDD", peer="10.9.9.9")
    assert e.value.code == "unknown_code"


def test_sign_out_returns_to_unpaired_and_drops_device_credentials(env):
    svc, *_ = env
    onboarded(svc)
    dropped = []
    svc.drop_bindings = dropped.append
    svc.complete_pairing("avery", "pw-avery", svc.start_pairing(MAC).code)
    d = svc.sign_out(MAC)
    assert d.pair_state is PairState.UNPAIRED and d.username is None and dropped == [MAC]
    assert svc.account_for(f"dev-{MAC}") is None
    with pytest.raises(SignInError):
        svc.sign_out(MAC)


def test_enrolment_code_once_and_for_its_device_only(env):
    svc, *_ = env
    onboarded(svc)
    onboarded(svc, MAC2)
    _, code, _ = svc.enrol(MAC)
    assert re.fullmatch(r"\d{6}", code)
    with pytest.raises(SignInError) as e:
        svc.verify_enrolment(MAC2, code)
    assert e.value.code == "bad_verification_code"
    assert svc.verify_enrolment(MAC, code).pair_state is PairState.UNPAIRED
    assert svc.record(MAC)["enrolled"]
    with pytest.raises(SignInError) as e:
        svc.verify_enrolment(MAC, code)
    assert e.value.code == "verification_code_used"


def test_remote_sign_in_only_for_common_area_accounts(env):
    svc, *_ = env
    onboarded(svc)
    with pytest.raises(SignInError) as e:
        svc.remote_sign_in(MAC, "avery")
    assert e.value.code == "personal_account" and "common area" in e.value.message
    assert svc.remote_sign_in(MAC, "lobby").username == "lobby"


def test_bulk_sign_in_rows_each_documented_error(env):
    svc, clock, online, *_ = env
    onboarded(svc)                    # online, within 72 h: signs in
    onboarded(svc, "00908f602aac")    # offline
    onboarded(svc, "7c2f80e0d605")    # online but onboarded 73 h ago
    online.update({MAC, "7c2f80e0d605"})
    svc.record("7c2f80e0d605")
    svc._state["devices"]["7c2f80e0d605"]["onboarded_at"] = clock.t - 73 * 3600
    svc._state["devices"]["7c2f80e0d605"].pop("signed_out_at", None)
    csv = ("Username,HardwareId\n"
           "lobby,80-5E-C0-12-DC-69\n"
           "ghost,80-5e-c0-12-dc-70\n"
           "nonum,80-5e-c0-12-dc-71\n"
           "lobby,11-22-33-44-55-66\n"
           "lobby,00-90-8f-60-2a-ac\n"
           "lobby,7c-2f-80-e0-d6-05\n"
           "lobby,aa-bb-cc-dd-ee-ff\nlobby,aa-bb-cc-dd-ee-ff\n"
           "lobby,80:5e:c0:12:dc:69\n")
    batch = svc.bulk_sign_in(csv)
    got = [(r.line, r.ok, r.error) for r in batch.rows]
    assert got == [(2, True, None), (3, False, s.ERR_USER_NOT_FOUND), (4, False, s.ERR_NO_NUMBER),
                   (5, False, s.ERR_DEVICE_NOT_FOUND), (6, False, s.ERR_OFFLINE), (7, False, s.ERR_DEADLINE),
                   (8, False, s.ERR_DUPLICATE), (9, False, s.ERR_DUPLICATE), (10, False, s.ERR_HWID_FORMAT)]
    assert svc.devices.get(MAC).username == "lobby"


def test_bulk_limits_refuse_the_whole_batch(env):
    svc, *_ = env
    rows = "".join(f"lobby,00-00-00-00-{i // 256:02x}-{i % 256:02x}\n" for i in range(101))
    with pytest.raises(SignInError) as e:
        svc.bulk_sign_in("Username,HardwareId\n" + rows)
    assert e.value.code == "too_many_devices" and "100" in e.value.message
    with pytest.raises(SignInError) as e:
        svc.bulk_sign_in("User,Mac\nlobby,00-00-00-00-00-01\n")
    assert e.value.code == "bad_csv_header" and "line 1" in e.value.message
    with pytest.raises(SignInError) as e:
        svc.bulk_sign_in("Username,HardwareId\nlobby\n")
    assert "line 2" in e.value.message


def test_fourth_concurrent_batch_is_refused(env):
    svc, _clock, online, *_ = env
    macs = ["0000000000a1", "0000000000a2", "0000000000a3"]
    for m in macs:
        onboarded(svc, m)
        online.add(m)
    for m in macs:
        b = svc.bulk_sign_in(f"Username,HardwareId\nlobby,{'-'.join(m[i:i + 2] for i in range(0, 12, 2))}\n")
        assert b.succeeded == 1
    with pytest.raises(SignInError) as e:
        svc.bulk_sign_in("Username,HardwareId\nlobby,00-00-00-00-00-a9\n")
    assert e.value.status == 429
    svc.signed_in_config_fetched(macs[0])  # that batch's device picked up its configuration: batch done
    assert len(svc.running_batches()) == 2


def test_state_survives_a_restart(env):
    svc, clock, _online, store, directory, _devices = env
    onboarded(svc)
    code = svc.start_pairing(MAC).code
    again = SignInService(directory, DeviceRegistry(store), store, clock, realm=REALM)
    assert again.pairing_for(MAC).code == code
    assert again.complete_pairing("avery", "pw-avery", code).pair_state is PairState.PAIRED


def test_expired_and_used_codes_are_not_guesses(env):
    svc, clock, *_ = env
    onboarded(svc)
    p = svc.start_pairing(MAC)
    clock.t += 16 * 60
    for _ in range(5):  # more than guess_limit: real codes entered late are refused, never throttled
        with pytest.raises(SignInError) as e:
            svc.complete_pairing("avery", "pw-avery", p.code, peer="10.7.7.7")
        assert e.value.code == "code_expired"


def _hw(mac: str, port: int) -> str:
    return "-".join(mac[i:i + 2] for i in range(0, 12, 2)) + f":{port:03d}"


@pytest.mark.parametrize(("model", "usable"), [("MP114-FXS", 3), ("MP118-FXS", 6), ("MP112", 2)])
def test_bulk_accepts_every_usable_ata_port_and_refuses_the_next(env, model, usable):
    """ATA hardware IDs carry the port (``:001``, ``:002``, …): every usable port of the model signs in, each as
    its own line; the port after the last usable one (an MP114's 4th) is refused as wrong format, naming the port
    and the usable count."""
    svc, _clock, online, *_ = env
    mac = "00908f000001"
    svc.onboard(mac, vendor="AudioCodes", model=model)
    svc.config_fetched(mac)
    keys = [f"{mac}:{p:03d}" for p in range(1, usable + 1)]
    assert [d.key for d in svc.lines(mac)] == keys and svc.devices.get(mac) is None
    online.update(keys)
    csv = "Username,HardwareId\n" + "".join(f"lobby,{_hw(mac, port)}\n" for port in range(1, usable + 2))
    batch = svc.bulk_sign_in(csv)
    assert [r.ok for r in batch.rows] == [True] * usable + [False], batch.rows
    assert [r.device_key for r in batch.rows[:usable]] == keys
    for k in keys:
        assert svc.devices.get(k).pair_state is PairState.PAIRED and svc.devices.get(k).username == "lobby"
    bad = batch.rows[-1]
    assert bad.error.startswith(s.ERR_HWID_FORMAT), bad.error
    assert f":{usable + 1:03d}" in bad.error and f"{usable} usable ports" in bad.error and model in bad.error


def test_bulk_port_suffix_on_a_phone_only_001_and_port_000_refused(env):
    svc, _clock, online, *_ = env
    onboarded(svc)            # a Yealink T46S phone
    onboarded(svc, MAC2)
    svc.onboard("00908f000001", vendor="AudioCodes", model="MP114-FXS")
    svc.config_fetched("00908f000001")
    online.update({MAC, MAC2, "00908f000001:001"})
    batch = svc.bulk_sign_in("Username,HardwareId\n"
                             f"lobby,{_hw(MAC, 2)}\n"
                             f"lobby,{_hw('00908f000001', 0)}\n"
                             f"lobby,{_hw(MAC2, 1)}\n")
    phone, zero, ok = batch.rows
    assert not phone.ok and phone.error.startswith(s.ERR_HWID_FORMAT) and ":002" in phone.error \
        and "not an ATA" in phone.error, phone.error
    assert not zero.ok and zero.error.startswith(s.ERR_HWID_FORMAT) and ":000" in zero.error \
        and "3 usable ports" in zero.error, zero.error
    assert ok.ok, ok
    assert svc.devices.get(MAC).pair_state is PairState.UNPAIRED
    assert svc.devices.get(MAC2).username == "lobby"
