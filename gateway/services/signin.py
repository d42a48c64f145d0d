"""Onboarding, pairing codes, sign-in and sign-out, admin enrolment, remote and bulk sign-in.

What SIP Gateway does (sip-gateway-facts), as pure logic over the directory, the device registry and the
gateway's clock:

- A factory-fresh device that fetches its provisioning bootstrap is *onboarded*: it gets temporary onboarding
  SIP credentials (user ``onb-<mac>``) that reach only the sign-in service, ``*55*`` and emergency numbers,
  and a per-device *state token* (MAC + time + random) that names its state URL. Fetching the bootstrap again
  (what a factory reset makes a device do) mints new credentials and a new token.
- Local sign-in (the OAuth device-authorization pattern): the device's Sign-in action yields a 9-character
  pairing code and the sign-in page URL; a tenant user signs in on the page and enters the code; the device
  is paired and its next configuration carries device credentials (user ``dev-<mac>``) registered as that
  user. Codes expire (default 15 minutes) and are single use; wrong codes are counted per address and an
  address that guesses too often is refused for a while (each attempt is logged).
- Admin enrolment: the admin registers a MAC and gets a one-time 6-digit verification code; the device dials
  ``*55*<code>`` and waits for sign-in; the admin may then sign a common-area account in remotely, one by one
  or by a ``Username,HardwareId`` CSV (bulk sign-in, with the documented limits and error texts).

State that is not in the ``devices`` table (credentials, tokens, codes, batches) is kept as one JSON document
in the store's settings, written on every change, so all of it survives a restart. Passwords of onboarding and
device credentials are kept in clear: the served configuration must carry them (a lab gateway).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from device_profiles.catalogue import default_catalogue
from gateway.services.model import Device, PairState, User
from gateway.sip.auth import compute_ha1

log = logging.getLogger("sipgw.signin")

SETTINGS_KEY = "signin.v1"
#: Pairing-code alphabet: capitals and digits without the look-alikes 0/O, 1/I/L.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 9
ONBOARDING_PREFIX = "onb-"
DEVICE_PREFIX = "dev-"

# Documented bulk sign-in limits and error texts (Configure SIP Gateway).
BULK_MAX_DEVICES = 100
BULK_MAX_CONCURRENT = 3
BULK_ONBOARDED_WINDOW_S = 72 * 3600
BULK_SIGNED_OUT_WINDOW_S = 168 * 3600
ERR_USER_NOT_FOUND = "User not found in tenant."
ERR_NO_NUMBER = "User missing phone number assignment."
ERR_DEVICE_NOT_FOUND = "Device not found in records."
ERR_OFFLINE = "Device is offline."
ERR_DEADLINE = "Bulk Sign-in deadline expired."
ERR_DUPLICATE = "Duplicate devices found for bulk sign-in."
ERR_HWID_FORMAT = "Input hardware-ID is of wrong format"

_HWID = re.compile(r"^([0-9A-Fa-f]{2})-([0-9A-Fa-f]{2})-([0-9A-Fa-f]{2})-([0-9A-Fa-f]{2})-([0-9A-Fa-f]{2})-"
                   r"([0-9A-Fa-f]{2})(?::(\d{3}))?$")
_MAC_SEP = re.compile(r"[:\-.]")
_MAC = re.compile(r"^[0-9a-f]{12}$")


class SignInError(Exception):
    """A refused sign-in operation: HTTP-like status, a stable code, a message for people, where it is wrong."""

    def __init__(self, status: int, code: str, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.where = status, code, message, where


def normalise_mac(value: str) -> str:
    mac = _MAC_SEP.sub("", value.strip()).lower()
    if not _MAC.match(mac):
        raise ValueError(f"{value!r} is not a MAC address (12 hex digits, e.g. 00:04:f2:8e:5a:79)")
    return mac


def new_pairing_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True)
class Pairing:
    code: str
    mac: str
    expires: float
    url: str


@dataclass(frozen=True)
class BulkRow:
    line: int
    username: str
    hardware_id: str
    device_key: str | None
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class BulkBatch:
    id: str
    created: float
    rows: tuple[BulkRow, ...]

    @property
    def succeeded(self) -> int:
        return sum(1 for r in self.rows if r.ok)


class SignInService:
    """Pairing state of every device; the control API, the web pages, provisioning and SIP hooks call it."""

    def __init__(self, directory, devices, store, clock: Callable[[], float], *, realm: str,
                 code_ttl_s: float = 900.0, enrol_ttl_s: float = 7 * 86400.0, guess_limit: int = 5,
                 guess_window_s: float = 300.0, is_online: Callable[[str], bool] | None = None,
                 drop_bindings: Callable[[str], None] | None = None, signin_url: str = "/signin",
                 monotonic: Callable[[], float] = time.monotonic):
        self.directory = directory
        self.devices = devices
        self.store = store
        self.now = clock
        self.realm = realm
        self.code_ttl_s = code_ttl_s
        self.enrol_ttl_s = enrol_ttl_s
        self.guess_limit = guess_limit
        self.guess_window_s = guess_window_s
        #: Whether a device (by key) has a live registration; set by the server.
        self.is_online = is_online or (lambda key: False)
        #: Drops the registrations of a device (by key); set by the server.
        self.drop_bindings = drop_bindings or (lambda key: None)
        self.signin_url = signin_url
        #: Guess throttling runs on real time: moving the gateway's clock neither trips nor clears it.
        self.monotonic = monotonic
        self._lock = threading.RLock()
        self._guesses: dict[str, deque] = {}
        self.log: list[dict[str, Any]] = []  # refused and throttled guesses (bounded), for the API and tests
        raw = store.setting(SETTINGS_KEY)
        self._state: dict[str, Any] = json.loads(raw) if raw else {}
        for k in ("devices", "pairing", "enrol", "batches"):
            self._state.setdefault(k, {} if k != "batches" else [])

    # --- persistence ---------------------------------------------------------------------------------------
    def _save(self) -> None:
        self.store.set_setting(SETTINGS_KEY, json.dumps(self._state, sort_keys=True))

    def _dev(self, mac: str) -> dict[str, Any]:
        return self._state["devices"].setdefault(mac, {})

    def record(self, mac: str) -> dict[str, Any]:
        """A copy of the sign-in record of a device (tokens, credentials, times)."""
        with self._lock:
            return dict(self._state["devices"].get(mac, {}))

    # --- onboarding ---------------------------------------------------------------------------------------
    def onboard(self, mac: str, *, vendor: str | None = None, model: str | None = None, firmware: str | None = None,
                user_agent: str | None = None, verdict: str | None = None, verdict_reason: str | None = None,
                lang: str = "en", tenant: str | None = None) -> Device:
        """A device fetched its bootstrap configuration (factory-fresh or factory-reset): onboard it again.

        Mints new onboarding credentials and a new state token; a paired device loses its pairing (the
        reset wiped it), an offboarded one is allowed back (that is what the factory reset is for).
        """
        now = self.now()
        with self._lock:
            old = self.devices.get(mac)
            rec = self._dev(mac)
            for k in ("dev_user", "dev_password"):
                rec.pop(k, None)
            rec.update(onb_user=f"{ONBOARDING_PREFIX}{mac}", onb_password=secrets.token_urlsafe(12),
                       token=f"{mac}-{int(now)}-{secrets.token_hex(6)}", onboarded_at=now, lang=lang,
                       tenant=tenant, enrolled=bool(rec.get("enrolled")))
            device = Device(key=mac, vendor=vendor or (old.vendor if old else None),
                            model=model or (old.model if old else None),
                            firmware=firmware or (old.firmware if old else None),
                            user_agent=user_agent or (old.user_agent if old else None),
                            verdict=verdict or (old.verdict if old else None),
                            verdict_reason=verdict_reason or (old.verdict_reason if old else None),
                            pair_state=PairState.ONBOARDING, username=None, mac=mac,
                            last_connected=now, created=old.created if old and old.created else now,
                            id=old.id if old else None)
            self._save()
            saved = self.devices.put(device)
        self.drop_bindings(mac)
        log.info("event=onboarded device=%s vendor=%s model=%s", mac, vendor, model)
        return saved

    def state_token_ok(self, mac: str, token: str) -> bool:
        with self._lock:
            return bool(token) and self._state["devices"].get(mac, {}).get("token") == token

    def config_fetched(self, mac: str) -> Device:
        """The device fetched its state URL: an onboarding device is now onboarded, signed out (unpaired)."""
        device = self._require_device(mac)
        now = self.now()
        if device.pair_state is PairState.ONBOARDING:
            with self._lock:
                self._dev(mac).setdefault("signed_out_at", now)
                self._save()
            device = self.devices.put(replace(device, pair_state=PairState.UNPAIRED, last_connected=now))
        return device

    def credentials(self, mac: str) -> Credentials | None:
        """The SIP credentials the device's configuration carries in its current state."""
        with self._lock:
            rec = self._state["devices"].get(mac) or {}
        device = self.devices.get(mac)
        if device is None or device.pair_state is PairState.OFFBOARDED:
            return None
        if device.pair_state is PairState.PAIRED and rec.get("dev_user"):
            return Credentials(rec["dev_user"], rec["dev_password"])
        if rec.get("onb_user"):
            return Credentials(rec["onb_user"], rec["onb_password"])
        return None

    def account_for(self, digest_username: str) -> tuple[str, str, str] | None:
        """(kind "onboarding"|"device", mac, password) for credentials this service issued, else None."""
        if not digest_username.startswith((ONBOARDING_PREFIX, DEVICE_PREFIX)):
            return None
        mac = digest_username.split("-", 1)[1]
        with self._lock:
            rec = self._state["devices"].get(mac) or {}
        if rec.get("onb_user") == digest_username:
            return "onboarding", mac, rec["onb_password"]
        if rec.get("dev_user") == digest_username:
            return "device", mac, rec["dev_password"]
        return None

    def ha1_for(self, digest_username: str, algorithms=("MD5", "SHA-256")) -> dict[str, str] | None:
        acct = self.account_for(digest_username)
        if acct is None:
            return None
        return {a: compute_ha1(digest_username, self.realm, acct[2], a) for a in algorithms}

    # --- local sign-in -------------------------------------------------------------------------------------
    def start_pairing(self, mac: str) -> Pairing:
        """The device's Sign-in action: a new single-use pairing code (earlier codes of the device lapse)."""
        device = self._require_device(mac)
        if device.pair_state is PairState.OFFBOARDED:
            raise SignInError(403, "offboarded", f"device {mac} was offboarded; factory-reset it to onboard again")
        if device.pair_state is PairState.PAIRED:
            raise SignInError(409, "already_signed_in",
                              f"device {mac} is signed in as {device.username}; sign out first")
        now = self.now()
        with self._lock:
            pairing = self._state["pairing"]
            for code in [c for c, p in pairing.items() if p["mac"] == mac or p["expires"] < now - 86400]:
                del pairing[code]
            code = new_pairing_code()
            pairing[code] = {"mac": mac, "expires": now + self.code_ttl_s, "used": False}
            self._save()
        log.info("event=pairing_code_issued device=%s expires_in_s=%d", mac, self.code_ttl_s)
        return Pairing(code, mac, now + self.code_ttl_s, self.signin_url)

    def pairing_for(self, mac: str) -> Pairing | None:
        """The device's current unused, unexpired pairing code (what its display shows)."""
        now = self.now()
        with self._lock:
            for code, p in self._state["pairing"].items():
                if p["mac"] == mac and not p["used"] and p["expires"] > now:
                    return Pairing(code, mac, p["expires"], self.signin_url)
        return None

    def check_user_password(self, username: str, password: str) -> User:
        user = self.directory.user(username)
        ok = user is not None and bool(user.ha1)
        if ok:
            alg = "SHA-256" if "SHA-256" in user.ha1 else next(iter(user.ha1))
            ok = secrets.compare_digest(user.ha1[alg], compute_ha1(username, self.realm, password, alg))
        if not ok:
            raise SignInError(401, "bad_credentials", "the user name or password is not right", "username")
        return user

    def check_user_can_use_device(self, user: User, where: str = "username") -> None:
        if not user.number:
            raise SignInError(403, "no_phone_number",
                              f"{user.username} has no phone number; SIP Gateway needs a user with a phone number "
                              "(assign one, then sign in again)", where)
        if not user.policy.allow_sip_devices_calling:
            raise SignInError(403, "policy_sip_devices",
                              f"the calling policy of {user.username} does not allow SIP devices "
                              "(AllowSIPDevicesCalling is off)", where)

    def complete_pairing(self, username: str, password: str | None, code: str, *, peer: str = "?",
                         authenticated: bool = False) -> Device:
        """The user signed in on the web page and entered ``code``: pair the device to the user."""
        self._check_throttle(peer)
        user = self.directory.user(username) if authenticated else self.check_user_password(username, password or "")
        if user is None:
            raise SignInError(404, "unknown_user", f"no user {username!r} in the tenant", "username")
        self.check_user_can_use_device(user)
        norm = re.sub(r"[\s-]", "", code or "").upper()
        now = self.now()
        with self._lock:
            p = self._state["pairing"].get(norm)
            problem = None
            if not re.fullmatch(rf"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}", norm):
                problem = ("bad_code_format", f"a pairing code is {CODE_LENGTH} letters and digits as the device "
                           "shows it")
            elif p is None:
                problem = ("unknown_code", "this pairing code is not known; check the code on the device")
            elif p["used"]:
                problem = ("code_used", "this pairing code was already used; press Sign-in on the device for a "
                           "new one")
            elif p["expires"] <= now:
                problem = ("code_expired", "this pairing code has expired; press Sign-in on the device for a new one")
            if problem is not None:
                if problem[0] in ("bad_code_format", "unknown_code"):  # a guess; a used or expired code was real
                    self._guessed_wrong(peer, norm, problem[0])
                else:
                    log.info("event=pairing_code_refused peer=%s reason=%s", peer, problem[0])
                raise SignInError(400, problem[0], problem[1], "code")
            p["used"] = True
            self._save()
        device = self.pair(p["mac"], user)
        log.info("event=signed_in device=%s user=%s how=pairing_code", device.key, user.username)
        return device

    def _check_throttle(self, peer: str) -> None:
        now = self.monotonic()
        with self._lock:
            q = self._guesses.get(peer)
            while q and q[0] < now - self.guess_window_s:
                q.popleft()
            if q and len(q) >= self.guess_limit:
                wait = int(q[0] + self.guess_window_s - now) + 1
                self._note({"event": "pairing_throttled", "peer": peer, "t": now})
                log.warning("event=pairing_throttled peer=%s wrong=%d retry_after_s=%d", peer, len(q), wait)
                raise SignInError(429, "too_many_attempts",
                                  f"too many wrong pairing codes from {peer}; try again in {wait} s", "code")

    def _guessed_wrong(self, peer: str, code: str, why: str) -> None:
        now = self.monotonic()
        q = self._guesses.setdefault(peer, deque())
        q.append(now)
        self._note({"event": "pairing_code_refused", "peer": peer, "reason": why, "t": now})
        log.warning("event=pairing_code_refused peer=%s reason=%s wrong_in_window=%d", peer, why, len(q))

    def _note(self, entry: dict[str, Any]) -> None:
        self.log.append(entry)
        del self.log[:-200]

    def pair(self, mac: str, user: User) -> Device:
        device = self._require_device(mac)
        if device.pair_state is PairState.OFFBOARDED:
            raise SignInError(403, "offboarded", f"device {mac} was offboarded; factory-reset it to onboard again")
        with self._lock:
            rec = self._dev(mac)
            rec.update(dev_user=f"{DEVICE_PREFIX}{mac}", dev_password=secrets.token_urlsafe(12),
                       signed_in_at=self.now())
            self._save()
        return self.devices.put(replace(device, pair_state=PairState.PAIRED, username=user.username))

    # --- sign-out ----------------------------------------------------------------------------------------
    def sign_out(self, mac: str, *, by: str = "device") -> Device:
        device = self._require_device(mac)
        if device.pair_state is not PairState.PAIRED:
            raise SignInError(409, "not_signed_in", f"device {mac} is not signed in ({device.pair_state.value})")
        now = self.now()
        with self._lock:
            rec = self._dev(mac)
            rec.pop("dev_user", None)
            rec.pop("dev_password", None)
            rec["signed_out_at"] = now
            self._save()
        saved = self.devices.put(replace(device, pair_state=PairState.UNPAIRED, username=None))
        self.drop_bindings(mac)
        log.info("event=signed_out device=%s user=%s by=%s", mac, device.username, by)
        return saved

    def forget_credentials(self, mac: str) -> None:
        """Offboarding: the device's credentials stop working (a factory reset mints new ones)."""
        with self._lock:
            rec = self._state["devices"].get(mac)
            if rec:
                for k in ("dev_user", "dev_password", "onb_user", "onb_password", "token"):
                    rec.pop(k, None)
                rec["enrolled"] = False
                self._save()

    # --- admin enrolment ------------------------------------------------------------------------------------
    def enrol(self, mac: str) -> tuple[Device, str, float]:
        """The admin adds a device by MAC: a one-time verification code for ``*55*<code>`` on the device."""
        now = self.now()
        device = self.devices.get(mac)
        if device is None:
            device = self.devices.put(Device(key=mac, mac=mac, pair_state=PairState.ONBOARDING, created=now))
        elif device.pair_state is PairState.PAIRED:
            raise SignInError(409, "already_signed_in", f"device {mac} is signed in as {device.username}")
        with self._lock:
            enrol = self._state["enrol"]
            for c in [c for c, e in enrol.items() if e["mac"] == mac]:
                del enrol[c]
            code = f"{secrets.randbelow(10**6):06d}"
            while code in enrol:
                code = f"{secrets.randbelow(10**6):06d}"
            enrol[code] = {"mac": mac, "expires": now + self.enrol_ttl_s, "used": False}
            self._save()
        return device, code, now + self.enrol_ttl_s

    def verify_enrolment(self, mac: str, code: str) -> Device:
        """The device dialled ``*55*<code>``: on a match it is signed out and waiting for sign-in."""
        now = self.now()
        with self._lock:
            e = self._state["enrol"].get(code)
            if e is None or e["mac"] != mac:
                raise SignInError(403, "bad_verification_code",
                                  f"verification code {code!r} was not issued for device {mac}")
            if e["used"]:
                raise SignInError(403, "verification_code_used", f"verification code {code!r} was already used")
            if e["expires"] <= now:
                raise SignInError(403, "verification_code_expired", f"verification code {code!r} has expired")
            e["used"] = True
            rec = self._dev(mac)
            rec["enrolled"] = True
            rec.setdefault("signed_out_at", now)
            self._save()
        device = self._require_device(mac)
        if device.pair_state is PairState.ONBOARDING:
            device = self.devices.put(replace(device, pair_state=PairState.UNPAIRED))
        log.info("event=enrolment_verified device=%s", mac)
        return device

    # --- remote and bulk sign-in -------------------------------------------------------------------------------
    def remote_sign_in(self, mac: str, username: str) -> Device:
        user = self.directory.user(username)
        if user is None:
            raise SignInError(404, "unknown_user", f"no user {username!r} in the tenant", "username")
        if not user.common_area:
            raise SignInError(403, "personal_account",
                              f"{username} is a personal account: remote sign-in is only for common area phone "
                              "accounts; the user signs in on the device with a pairing code", "username")
        self.check_user_can_use_device(user)
        device = self._require_device(mac)
        if device.pair_state is PairState.PAIRED:
            raise SignInError(409, "already_signed_in", f"device {mac} is signed in as {device.username}", "key")
        saved = self.pair(mac, user)
        log.info("event=signed_in device=%s user=%s how=remote", mac, username)
        return saved

    def bulk_sign_in(self, csv_text: str) -> BulkBatch:
        """Bulk sign-in from a ``Username,HardwareId`` CSV; every row gets a result, valid rows are signed in.

        Refused as a whole (nothing signed in): a missing header, more than 100 rows, or a fourth batch while
        three are running (a batch runs until its devices fetched their signed-in configuration).
        """
        rows = _read_bulk_csv(csv_text)
        if len(rows) > BULK_MAX_DEVICES:
            raise SignInError(400, "too_many_devices",
                              f"a bulk sign-in batch holds at most {BULK_MAX_DEVICES} devices; this one has "
                              f"{len(rows)}", "body.csv")
        running = self.running_batches()
        if len(running) >= BULK_MAX_CONCURRENT:
            raise SignInError(429, "too_many_batches",
                              f"at most {BULK_MAX_CONCURRENT} bulk sign-in batches run at once; "
                              f"{', '.join(b['id'] for b in running)} are still running", "body.csv")
        now = self.now()
        counts: dict[str, int] = {}
        for _, _, hw in rows:
            counts[hw.lower()] = counts.get(hw.lower(), 0) + 1
        results: list[BulkRow] = []
        for line, username, hw in rows:
            key, error = None, None
            m = _HWID.match(hw)
            if not m:
                error = ERR_HWID_FORMAT
            else:
                key = "".join(m.groups()[:6]).lower()
                port = m.group(7)
                user = self.directory.user(username)
                device = self.devices.get(key)
                rec = self.record(key)
                if counts[hw.lower()] > 1:
                    error = ERR_DUPLICATE
                elif user is None:
                    error = ERR_USER_NOT_FOUND
                elif not user.number:
                    error = ERR_NO_NUMBER
                elif device is None or device.pair_state is PairState.OFFBOARDED:
                    error = ERR_DEVICE_NOT_FOUND
                elif port is not None and (port_error := _port_error(device, port)):
                    error = port_error
                elif not self.is_online(key):
                    error = ERR_OFFLINE
                elif not _within_deadline(device, rec, now):
                    error = ERR_DEADLINE
                elif not user.common_area:
                    error = "Remote sign-in is only for common area phone accounts."
                elif not user.policy.allow_sip_devices_calling:
                    error = "User calling policy does not allow SIP devices."
                elif device.pair_state is PairState.PAIRED:
                    error = f"Device is already signed in as {device.username}."
                if error is None:
                    self.pair(key, user)
                    log.info("event=signed_in device=%s user=%s how=bulk", key, username)
            results.append(BulkRow(line, username, hw, key, error is None, error))
        batch = BulkBatch(id=f"b{int(now)}-{secrets.token_hex(3)}", created=now, rows=tuple(results))
        with self._lock:
            self._state["batches"].append({"id": batch.id, "created": now,
                                           "devices": [r.device_key for r in results if r.ok],
                                           "rows": [r.__dict__ for r in results]})
            del self._state["batches"][:-50]
            self._save()
        return batch

    def running_batches(self) -> list[dict[str, Any]]:
        """Batches whose signed-in devices have not all fetched their signed-in configuration yet."""
        out = []
        with self._lock:
            for b in self._state["batches"]:
                pending = [k for k in b["devices"]
                           if (self._state["devices"].get(k) or {}).get("fetched_signed_in", 0)
                           < (self._state["devices"].get(k) or {}).get("signed_in_at", 0)]
                if pending:
                    out.append({"id": b["id"], "pending": pending})
        return out

    def batches(self) -> list[dict[str, Any]]:
        with self._lock:
            return json.loads(json.dumps(self._state["batches"]))

    def signed_in_config_fetched(self, mac: str) -> None:
        with self._lock:
            self._dev(mac)["fetched_signed_in"] = self.now()
            self._save()

    # --- helpers -----------------------------------------------------------------------------------------
    def _require_device(self, mac: str) -> Device:
        device = self.devices.get(mac)
        if device is None:
            raise SignInError(404, "unknown_device", f"no device {mac!r}; it onboards when it first fetches its "
                              "configuration, or an admin enrols it by MAC", "key")
        return device


def _port_error(device: Device, port: str) -> str | None:
    """A bulk sign-in ``:NNN`` port suffix checked against the device's model (None when it is usable).

    An ATA's ports are ``:001`` up to its model's usable ports (catalogue ``ports_usable``: an MP114 exposes 3 of
    its 4); any other device (or a model the catalogue does not know) has the one line ``:001``.
    """
    profile = default_catalogue().find(device.model, device.vendor) if device.model else None
    usable = profile.ports_usable if profile is not None and profile.kind == "ata" else None
    n = int(port)
    if usable is None:
        if n == 1:
            return None
        what = f"{profile.vendor} {profile.model} ({profile.kind})" if profile is not None else \
            f"device {device.key} (model {device.model or 'unknown'})"
        return f"{ERR_HWID_FORMAT}: port :{port} given, but {what} is not an ATA and has only port :001"
    if 1 <= n <= usable:
        return None
    return (f"{ERR_HWID_FORMAT}: port :{port} is not a usable port of the {profile.vendor} {profile.model}, "
            f"which has {usable} usable port{'s' if usable != 1 else ''} (:001 to :{usable:03d})")


def _within_deadline(device: Device, rec: dict[str, Any], now: float) -> bool:
    """Bulk sign-in: within 72 h of onboarding or 168 h of sign-out (Configure SIP Gateway)."""
    onboarded = rec.get("onboarded_at") or device.created
    signed_out = rec.get("signed_out_at")
    return ((onboarded is not None and now - onboarded <= BULK_ONBOARDED_WINDOW_S)
            or (signed_out is not None and now - signed_out <= BULK_SIGNED_OUT_WINDOW_S))


def _read_bulk_csv(text: str) -> list[tuple[int, str, str]]:
    """(line, username, hardware id) rows of a ``Username,HardwareId`` CSV; a located error when malformed."""
    if not text or not text.strip():
        raise SignInError(400, "empty_csv", "the CSV is empty; it needs the header Username,HardwareId", "body.csv")
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    rows: list[tuple[int, str, str]] = []
    header = None
    for fields in reader:
        line = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if header is None:
            header = [f.strip().lower() for f in fields]
            if header != ["username", "hardwareid"]:
                raise SignInError(400, "bad_csv_header",
                                  f"line {line}: the header must be Username,HardwareId (found {','.join(fields)})",
                                  "body.csv")
            continue
        if len(fields) != 2:
            raise SignInError(400, "bad_csv_row",
                              f"line {line}: expected 2 fields (Username,HardwareId), found {len(fields)}",
                              "body.csv")
        rows.append((line, fields[0].strip(), fields[1].strip()))
    if header is None:
        raise SignInError(400, "bad_csv_header", "line 1: the header must be Username,HardwareId", "body.csv")
    return rows
