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

Sign-in state is kept per *hardware id* (bulk sign-in's ``HardwareId``): a single-line device is its MAC
(key ``805ec012dc69``), each usable port of a multi-port ATA is its own line with its own key
(``00908f000001:002``), pair state, user, credentials, pairing code, last-connected time and offboarding. The MAC
stays the device's identity for provisioning: one state token and one configuration file per ATA, carrying each
port's account. A single-port ATA (OBi 300) is a single-line device.

State that is not in the ``devices`` table (credentials, tokens, codes, batches) is kept as one JSON document
in the store's settings (``signin.v2``), written on every change, so all of it survives a restart. A store
written before ports had their own state (``signin.v1``: everything keyed by MAC) is migrated when the service
starts: a multi-port ATA's MAC-keyed row and record become port ``:001``'s (its credentials keep their names,
so a device configured before the upgrade still registers), its other ports are added signed out, and the
``signin.v1`` document is left as it was. Passwords of onboarding and device credentials are kept in clear: the
served configuration must carry them (a lab gateway).
"""

from __future__ import annotations

import csv
import functools
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

SETTINGS_KEY = "signin.v2"
#: The document of stores written before sign-in state was kept per port (read once, to migrate; never written).
SETTINGS_KEY_V1 = "signin.v1"
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


def split_key(key: str) -> tuple[str, int | None]:
    """(MAC, port) of a hardware-id key: ``00908f000001:002`` → (``00908f000001``, 2); a MAC alone → (MAC, None)."""
    mac, _, port = key.partition(":")
    return mac, (int(port) if port.isdigit() else None)


@functools.lru_cache(maxsize=256)
def port_count(vendor: str | None, model: str | None) -> int:
    """How many lines (hardware ids) a device has: a multi-port ATA's usable ports (catalogue ``ports_usable``),
    else 1."""
    if not model:
        return 1
    profile = default_catalogue().find(model, vendor)
    if profile is None or profile.kind != "ata" or not profile.ports_usable:
        return 1
    return int(profile.ports_usable)


def port_key(mac: str, port: int) -> str:
    return f"{mac}:{port:03d}"


def hardware_keys(mac: str, vendor: str | None, model: str | None) -> list[str]:
    """The keys of a device's lines: the MAC for a single-line device, ``<mac>:001`` … for a multi-port ATA."""
    n = port_count(vendor, model)
    return [mac] if n <= 1 else [port_key(mac, p) for p in range(1, n + 1)]


def hardware_id(key: str) -> str:
    """A key as bulk sign-in writes it: ``00-90-8f-00-00-01:002`` (a MAC alone without the port)."""
    mac, port = split_key(key)
    text = "-".join(mac[i:i + 2] for i in range(0, 12, 2))
    return text if port is None else f"{text}:{port:03d}"


def credential_name(prefix: str, key: str) -> str:
    """SIP user name of a line's onboarding or device credentials: ``dev-<mac>`` or ``dev-<mac>-<port>``."""
    mac, port = split_key(key)
    return f"{prefix}{mac}" if port is None else f"{prefix}{mac}-{port:03d}"


def new_pairing_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True)
class Pairing:
    code: str
    key: str  # the hardware id (line) the code signs in
    expires: float
    url: str

    @property
    def mac(self) -> str:
        return split_key(self.key)[0]


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
    """Pairing state of every line (hardware id); the control API, the web pages, provisioning and SIP hooks call
    it. Methods that take ``key`` work on one line; those that take ``mac`` on the whole device."""

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
        #: Whether a line (by key) has a live registration; set by the server.
        self.is_online = is_online or (lambda key: False)
        #: Drops the registrations of a line (by key); set by the server.
        self.drop_bindings = drop_bindings or (lambda key: None)
        self.signin_url = signin_url
        #: Guess throttling runs on real time: moving the gateway's clock neither trips nor clears it.
        self.monotonic = monotonic
        self._lock = threading.RLock()
        self._guesses: dict[str, deque] = {}
        self.log: list[dict[str, Any]] = []  # refused and throttled guesses (bounded), for the API and tests
        self._accounts: dict[str, tuple[str, str]] = {}  # credential user name -> (kind, key)
        raw = store.setting(SETTINGS_KEY)
        if raw:
            self._state: dict[str, Any] = json.loads(raw)
        else:
            old = store.setting(SETTINGS_KEY_V1)
            self._state = _from_v1(json.loads(old)) if old else {}
        for k, empty in (("devices", {}), ("macs", {}), ("pairing", {}), ("enrol", {}), ("batches", [])):
            self._state.setdefault(k, empty)
        with self._lock:
            for mac in sorted(self._state["macs"]):
                self._split_ports(mac)
            if not raw and self._state["macs"]:
                self._save()
            self._index()

    # --- persistence ---------------------------------------------------------------------------------------
    def _save(self) -> None:
        self.store.set_setting(SETTINGS_KEY, json.dumps(self._state, sort_keys=True))
        self._index()

    def _index(self) -> None:
        self._accounts = {}
        for key, rec in self._state["devices"].items():
            if rec.get("onb_user"):
                self._accounts[rec["onb_user"]] = ("onboarding", key)
            if rec.get("dev_user"):
                self._accounts[rec["dev_user"]] = ("device", key)

    def _dev(self, key: str) -> dict[str, Any]:
        return self._state["devices"].setdefault(key, {})

    def _mac(self, mac: str) -> dict[str, Any]:
        return self._state["macs"].setdefault(mac, {})

    def record(self, key: str) -> dict[str, Any]:
        """A copy of the sign-in record of a line (its device's token and onboarding time, its own credentials
        and times)."""
        with self._lock:
            out = dict(self._state["macs"].get(split_key(key)[0], {}))
            out.update(self._state["devices"].get(key, {}))
            return out

    def keys(self, mac: str) -> list[str]:
        """The keys of a device's lines, port order (the MAC alone for a single-line device)."""
        # A multi-port ATA is its ports; a MAC-keyed row beside them is what the registrar records for the
        # static accounts a lab configured on the device, not one of its sign-in lines.
        return self.devices.ports_of(mac) or ([mac] if self.devices.get(mac) is not None else [])

    def lines(self, mac: str) -> list[Device]:
        """The device's lines as stored, port order."""
        return [d for d in (self.devices.get(k) for k in self.keys(mac)) if d is not None]

    def key_for_port(self, mac: str, port: int | None) -> str:
        """The key of port ``port`` (None: the first line) of device ``mac``; a located error when it has none."""
        keys = self.keys(mac)
        if not keys:
            raise SignInError(404, "unknown_device", f"no device {mac!r}", "key")
        if port is None:
            return keys[0]
        for k in keys:
            if (split_key(k)[1] or 1) == port:
                return k
        usable = len(keys)
        raise SignInError(404, "unknown_port", f"device {mac} has no port :{port:03d}; it has {usable} line"
                          f"{'s' if usable != 1 else ''} (:001 to :{usable:03d})", "query.port")

    def _split_ports(self, mac: str) -> None:
        """A device known by its MAC alone that is a multi-port ATA gets one line per port (under the lock).

        The MAC-keyed row and record become port ``:001``'s, with every field and credential as they were; the
        other ports are added in the device's state (signed out when it was signed in), with onboarding
        credentials of their own when the device had them. Pairing codes and batches follow port ``:001``.
        Safe to run again after an interruption: rows and records already split are kept.
        """
        bare = self.devices.get(mac)
        if bare is None or any(k.startswith(mac + ":") for k in self._state["devices"]):
            return  # nothing to split, or split already (a MAC-keyed row now is the registrar's, see keys())
        keys = hardware_keys(mac, bare.vendor, bare.model)
        if keys == [mac]:
            return
        devices = self._state["devices"]
        first = devices.pop(mac, None)
        if first is not None:
            devices.setdefault(keys[0], first)
        base = devices.get(keys[0], {})
        for k in keys[1:]:
            if k in devices:
                continue
            rec = {f: base[f] for f in ("onboarded_at", "signed_out_at", "enrolled") if f in base}
            if base.get("onb_user"):
                rec.update(onb_user=credential_name(ONBOARDING_PREFIX, k), onb_password=secrets.token_urlsafe(12))
            devices[k] = rec
        for p in self._state["pairing"].values():
            if p.get("key") == mac:
                p["key"] = keys[0]
        for b in self._state["batches"]:
            b["devices"] = [keys[0] if d == mac else d for d in b["devices"]]
            for row in b.get("rows", []):
                if row.get("device_key") == mac:
                    row["device_key"] = keys[0]
        line_state = PairState.UNPAIRED if bare.pair_state is PairState.PAIRED else bare.pair_state
        for i, k in enumerate(keys):
            if i == 0:
                self.devices.put(replace(bare, key=k, mac=mac, id=None))
            elif self.devices.get(k) is None:
                self.devices.put(replace(bare, key=k, mac=mac, id=None, pair_state=line_state, username=None))
        self._save()  # the new shape is stored before the MAC-keyed row goes
        self.devices.remove(mac)
        log.info("event=device_split_into_ports device=%s ports=%d", mac, len(keys))

    # --- onboarding ---------------------------------------------------------------------------------------
    def onboard(self, mac: str, *, vendor: str | None = None, model: str | None = None, firmware: str | None = None,
                user_agent: str | None = None, verdict: str | None = None, verdict_reason: str | None = None,
                lang: str = "en", tenant: str | None = None) -> Device:
        """A device fetched its bootstrap configuration (factory-fresh or factory-reset): onboard it again.

        Mints a new state token and new onboarding credentials for every line; a paired line loses its pairing
        (the reset wiped it), an offboarded one is allowed back (that is what the factory reset is for). Returns
        the first line (the device itself for a single-line device); :meth:`lines` gives them all.
        """
        now = self.now()
        with self._lock:
            known = self.lines(mac)
            old_any = known[0] if known else None
            vendor = vendor or (old_any.vendor if old_any else None)
            model = model or (old_any.model if old_any else None)
            keys = hardware_keys(mac, vendor, model)
            stale = [d.key for d in known if d.key not in keys]  # e.g. a MAC-keyed row from an enrolment
            enrolled = any(self._state["devices"].get(d.key, {}).get("enrolled") for d in known)
            self._mac(mac).update(token=f"{mac}-{int(now)}-{secrets.token_hex(6)}", onboarded_at=now, lang=lang,
                                  tenant=tenant)
            saved = []
            for key in keys:
                old = self.devices.get(key) or (old_any if old_any is not None and old_any.key in stale else None)
                rec = self._dev(key)
                for k in ("dev_user", "dev_password"):
                    rec.pop(k, None)
                rec.update(onb_user=credential_name(ONBOARDING_PREFIX, key), onb_password=secrets.token_urlsafe(12),
                           onboarded_at=now, enrolled=bool(rec.get("enrolled")) or enrolled)
                device = Device(key=key, vendor=vendor, model=model,
                                firmware=firmware or (old.firmware if old else None),
                                user_agent=user_agent or (old.user_agent if old else None),
                                verdict=verdict or (old.verdict if old else None),
                                verdict_reason=verdict_reason or (old.verdict_reason if old else None),
                                pair_state=PairState.ONBOARDING, username=None, mac=mac,
                                last_connected=now, created=old.created if old and old.created else now,
                                id=old.id if old is not None and old.key == key else None)
                saved.append(self.devices.put(device))
            for key in stale:
                self._state["devices"].pop(key, None)
            self._save()
            for key in stale:
                self.devices.remove(key)
        for key in keys + stale:
            self.drop_bindings(key)
        log.info("event=onboarded device=%s vendor=%s model=%s lines=%d", mac, vendor, model, len(keys))
        return saved[0]

    def state_token_ok(self, mac: str, token: str) -> bool:
        with self._lock:
            return bool(token) and self._state["macs"].get(mac, {}).get("token") == token

    def config_fetched(self, mac: str) -> Device:
        """The device fetched its state URL: its onboarding lines are now onboarded, signed out (unpaired).
        Returns the first line, as :meth:`onboard` does."""
        lines = self.lines(mac)
        if not lines:
            self._require_device(mac)
        now = self.now()
        out = []
        for device in lines:
            if device.pair_state is PairState.ONBOARDING:
                with self._lock:
                    self._dev(device.key).setdefault("signed_out_at", now)
                    self._save()
                device = self.devices.put(replace(device, pair_state=PairState.UNPAIRED, last_connected=now))
            out.append(device)
        return out[0]

    def credentials(self, key: str) -> Credentials | None:
        """The SIP credentials the configuration carries for a line in its current state."""
        with self._lock:
            rec = self._state["devices"].get(key) or {}
        device = self.devices.get(key)
        if device is None or device.pair_state is PairState.OFFBOARDED:
            return None
        if device.pair_state is PairState.PAIRED and rec.get("dev_user"):
            return Credentials(rec["dev_user"], rec["dev_password"])
        if rec.get("onb_user"):
            return Credentials(rec["onb_user"], rec["onb_password"])
        return None

    def account_for(self, digest_username: str) -> tuple[str, str, str] | None:
        """(kind "onboarding"|"device", line key, password) for credentials this service issued, else None."""
        if not digest_username.startswith((ONBOARDING_PREFIX, DEVICE_PREFIX)):
            return None
        with self._lock:
            found = self._accounts.get(digest_username)
            if found is None:
                return None
            kind, key = found
            rec = self._state["devices"].get(key) or {}
            password = rec.get("onb_password" if kind == "onboarding" else "dev_password")
        return (kind, key, password) if password else None

    def ha1_for(self, digest_username: str, algorithms=("MD5", "SHA-256")) -> dict[str, str] | None:
        acct = self.account_for(digest_username)
        if acct is None:
            return None
        return {a: compute_ha1(digest_username, self.realm, acct[2], a) for a in algorithms}

    # --- local sign-in -------------------------------------------------------------------------------------
    def start_pairing(self, key: str) -> Pairing:
        """The line's Sign-in action: a new single-use pairing code (earlier codes of the line lapse)."""
        device = self._require_device(key)
        if device.pair_state is PairState.OFFBOARDED:
            raise SignInError(403, "offboarded", f"device {key} was offboarded; factory-reset it to onboard again")
        if device.pair_state is PairState.PAIRED:
            raise SignInError(409, "already_signed_in",
                              f"device {key} is signed in as {device.username}; sign out first")
        now = self.now()
        with self._lock:
            pairing = self._state["pairing"]
            for code in [c for c, p in pairing.items() if p["key"] == key or p["expires"] < now - 86400]:
                del pairing[code]
            code = new_pairing_code()
            pairing[code] = {"key": key, "expires": now + self.code_ttl_s, "used": False}
            self._save()
        log.info("event=pairing_code_issued device=%s expires_in_s=%d", key, self.code_ttl_s)
        return Pairing(code, key, now + self.code_ttl_s, self.signin_url)

    def pairing_for(self, key: str) -> Pairing | None:
        """The line's current unused, unexpired pairing code (what its display shows)."""
        now = self.now()
        with self._lock:
            for code, p in self._state["pairing"].items():
                if p["key"] == key and not p["used"] and p["expires"] > now:
                    return Pairing(code, key, p["expires"], self.signin_url)
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
        device = self.pair(p["key"], user)
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

    def pair(self, key: str, user: User) -> Device:
        device = self._require_device(key)
        if device.pair_state is PairState.OFFBOARDED:
            raise SignInError(403, "offboarded", f"device {key} was offboarded; factory-reset it to onboard again")
        with self._lock:
            rec = self._dev(key)
            rec.update(dev_user=credential_name(DEVICE_PREFIX, key), dev_password=secrets.token_urlsafe(12),
                       signed_in_at=self.now())
            self._save()
        return self.devices.put(replace(device, pair_state=PairState.PAIRED, username=user.username))

    # --- sign-out ----------------------------------------------------------------------------------------
    def sign_out(self, key: str, *, by: str = "device") -> Device:
        """Sign one line out (the other ports of an ATA stay as they are)."""
        device = self._require_device(key)
        if device.pair_state is not PairState.PAIRED:
            raise SignInError(409, "not_signed_in", f"device {key} is not signed in ({device.pair_state.value})")
        now = self.now()
        with self._lock:
            rec = self._dev(key)
            rec.pop("dev_user", None)
            rec.pop("dev_password", None)
            rec["signed_out_at"] = now
            self._save()
        saved = self.devices.put(replace(device, pair_state=PairState.UNPAIRED, username=None))
        self.drop_bindings(key)
        log.info("event=signed_out device=%s user=%s by=%s", key, device.username, by)
        return saved

    def forget_credentials(self, key: str) -> None:
        """Offboarding of a line: its credentials stop working (a factory reset mints new ones). The device's
        state token goes with its last line."""
        mac = split_key(key)[0]
        with self._lock:
            rec = self._state["devices"].get(key)
            if rec:
                for k in ("dev_user", "dev_password", "onb_user", "onb_password", "token"):
                    rec.pop(k, None)
                rec["enrolled"] = False
            others = [d for d in self.lines(mac) if d.key != key and d.pair_state is not PairState.OFFBOARDED]
            if not others:
                self._state["macs"].get(mac, {}).pop("token", None)
            self._save()

    def forget_line(self, key: str) -> None:
        """A line's device record was deleted (control API): its sign-in record and pairing codes go too, and
        with the device's last line its MAC record (state token, onboarding time) and enrolment codes. A device
        that comes back is onboarded afresh."""
        mac = split_key(key)[0]
        with self._lock:
            self._state["devices"].pop(key, None)
            pairing = self._state["pairing"]
            for code in [c for c, p in pairing.items() if p["key"] == key]:
                del pairing[code]
            if not self.keys(mac):
                self._state["macs"].pop(mac, None)
                enrol = self._state["enrol"]
                for code in [c for c, e in enrol.items() if e["mac"] == mac]:
                    del enrol[code]
            self._save()

    # --- admin enrolment ------------------------------------------------------------------------------------
    def enrol(self, mac: str) -> tuple[Device, str, float]:
        """The admin adds a device by MAC: a one-time verification code for ``*55*<code>`` on the device."""
        now = self.now()
        lines = self.lines(mac)
        if not lines:
            lines = [self.devices.put(Device(key=mac, mac=mac, pair_state=PairState.ONBOARDING, created=now))]
        paired = [d for d in lines if d.pair_state is PairState.PAIRED]
        if paired:
            raise SignInError(409, "already_signed_in", f"device {paired[0].key} is signed in as {paired[0].username}")
        with self._lock:
            enrol = self._state["enrol"]
            for c in [c for c, e in enrol.items() if e["mac"] == mac]:
                del enrol[c]
            code = f"{secrets.randbelow(10**6):06d}"
            while code in enrol:
                code = f"{secrets.randbelow(10**6):06d}"
            enrol[code] = {"mac": mac, "expires": now + self.enrol_ttl_s, "used": False}
            self._save()
        return lines[0], code, now + self.enrol_ttl_s

    def verify_enrolment(self, mac: str, code: str) -> Device:
        """The device dialled ``*55*<code>``: on a match every line of it is signed out and waiting for sign-in."""
        now = self.now()
        lines = self.lines(mac)
        if not lines:
            self._require_device(mac)
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
            for d in lines:
                rec = self._dev(d.key)
                rec["enrolled"] = True
                rec.setdefault("signed_out_at", now)
            self._save()
        out = []
        for device in lines:
            if device.pair_state is PairState.ONBOARDING:
                device = self.devices.put(replace(device, pair_state=PairState.UNPAIRED))
            out.append(device)
        log.info("event=enrolment_verified device=%s lines=%d", mac, len(out))
        return out[0]

    # --- remote and bulk sign-in -------------------------------------------------------------------------------
    def remote_sign_in(self, key: str, username: str) -> Device:
        user = self.directory.user(username)
        if user is None:
            raise SignInError(404, "unknown_user", f"no user {username!r} in the tenant", "username")
        if not user.common_area:
            raise SignInError(403, "personal_account",
                              f"{username} is a personal account: remote sign-in is only for common area phone "
                              "accounts; the user signs in on the device with a pairing code", "username")
        self.check_user_can_use_device(user)
        device = self._require_device(key)
        if device.pair_state is PairState.PAIRED:
            raise SignInError(409, "already_signed_in", f"device {key} is signed in as {device.username}", "key")
        saved = self.pair(key, user)
        log.info("event=signed_in device=%s user=%s how=remote", key, username)
        return saved

    def _bulk_key(self, mac: str, port: str | None) -> tuple[str | None, str | None]:
        """(line key, error) of a bulk sign-in hardware id: its MAC's device, and the port among its lines."""
        lines = self.lines(mac)
        if not lines:
            return None, ERR_DEVICE_NOT_FOUND
        first = lines[0]
        if port is not None and (port_error := _port_error(first, port)):
            return None, port_error
        n = int(port) if port is not None else 1
        for d in lines:
            if (split_key(d.key)[1] or 1) == n:
                return d.key, None
        return None, ERR_DEVICE_NOT_FOUND

    def bulk_sign_in(self, csv_text: str) -> BulkBatch:
        """Bulk sign-in from a ``Username,HardwareId`` CSV; every row gets a result, valid rows are signed in.

        A hardware id names one line: a MAC (``xx-xx-xx-xx-xx-xx``) for a single-line device, with ``:NNN`` for
        an ATA's port (a MAC alone is its port ``:001``), so one batch can sign each port of an ATA in to its own
        user. Refused as a whole (nothing signed in): a missing header, more than 100 rows, or a fourth batch
        while three are running (a batch runs until its devices fetched their signed-in configuration).
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
        parsed = [_HWID.match(hw) for _, _, hw in rows]
        counts: dict[tuple[str, int], int] = {}
        for m in parsed:  # the same line twice (a MAC alone and its :001 are the same line)
            if m:
                line_id = ("".join(m.groups()[:6]).lower(), int(m.group(7) or 1))
                counts[line_id] = counts.get(line_id, 0) + 1
        results: list[BulkRow] = []
        for (line, username, hw), m in zip(rows, parsed, strict=True):
            key, error = None, None
            if not m:
                error = ERR_HWID_FORMAT
            else:
                mac = "".join(m.groups()[:6]).lower()
                port = m.group(7)
                user = self.directory.user(username)
                if counts[(mac, int(port or 1))] > 1:
                    error = ERR_DUPLICATE
                elif user is None:
                    error = ERR_USER_NOT_FOUND
                elif not user.number:
                    error = ERR_NO_NUMBER
                else:
                    key, error = self._bulk_key(mac, port)
                    device = self.devices.get(key) if key else None
                    if error is None and (device is None or device.pair_state is PairState.OFFBOARDED):
                        error = ERR_DEVICE_NOT_FOUND
                    elif error is None and not self.is_online(key):
                        error = ERR_OFFLINE
                    elif error is None and not _within_deadline(device, self.record(key), now):
                        error = ERR_DEADLINE
                    elif error is None and not user.common_area:
                        error = "Remote sign-in is only for common area phone accounts."
                    elif error is None and not user.policy.allow_sip_devices_calling:
                        error = "User calling policy does not allow SIP devices."
                    elif error is None and device.pair_state is PairState.PAIRED:
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
        """Batches whose signed-in lines have not all fetched their signed-in configuration yet."""
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

    def signed_in_config_fetched(self, key: str) -> None:
        with self._lock:
            self._dev(key)["fetched_signed_in"] = self.now()
            self._save()

    # --- helpers -----------------------------------------------------------------------------------------
    def _require_device(self, key: str) -> Device:
        device = self.devices.get(key)
        if device is None:
            mac, port = split_key(key)
            lines = self.keys(mac) if port is None else []
            if lines:  # a multi-port ATA named by its MAC alone
                raise SignInError(404, "unknown_device", f"device {mac} is an ATA with one line per port; name the "
                                  f"port: {', '.join(lines)}", "key")
            raise SignInError(404, "unknown_device", f"no device {key!r}; it onboards when it first fetches its "
                              "configuration, or an admin enrols it by MAC", "key")
        return device


def _from_v1(old: dict[str, Any]) -> dict[str, Any]:
    """The ``signin.v1`` document (everything keyed by MAC) in the ``signin.v2`` shape: the device-level fields
    (state token, onboarding time, language, tenant) under ``macs``, the rest under the MAC as the line key (a
    multi-port ATA's record moves on to port ``:001`` in :meth:`SignInService._split_ports`). Nothing is dropped."""
    devices: dict[str, Any] = {}
    macs: dict[str, Any] = {}
    for mac, rec in (old.get("devices") or {}).items():
        macs[mac] = {k: rec[k] for k in ("token", "onboarded_at", "lang", "tenant") if k in rec}
        devices[mac] = {k: v for k, v in rec.items() if k not in ("token", "lang", "tenant")}
    pairing = {code: {"key": p.get("mac"), **{k: v for k, v in p.items() if k != "mac"}}
               for code, p in (old.get("pairing") or {}).items()}
    return {"devices": devices, "macs": macs, "pairing": pairing, "enrol": dict(old.get("enrol") or {}),
            "batches": list(old.get("batches") or [])}


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
