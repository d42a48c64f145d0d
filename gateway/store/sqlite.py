"""SQLite persistence for the tenant directory, devices, pair state and policies.

WAL journal with ``synchronous=NORMAL``: a committed change survives the gateway being killed (even with
``kill -9``); only an operating-system crash can lose the last transactions. Administrative changes
(users, policies, pair state) commit at once. A device's last-connected time changes on every REGISTER, so
those updates are gathered in memory and written in one transaction by :meth:`Store.flush`, which the
server calls every second and at shutdown; at most that second of last-seen times is lost to ``kill -9``.

This is the only module of the gateway that runs SQL.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from gateway.services.model import CallingPolicy, Device, PairState, Presence, PstnRange, User

SCHEMA_VERSION = 1

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        number TEXT UNIQUE,
        allow_sip_devices_calling INTEGER NOT NULL DEFAULT 1,
        allow_call_redirect INTEGER NOT NULL DEFAULT 1,
        teams_client INTEGER NOT NULL DEFAULT 0,
        voicemail INTEGER NOT NULL DEFAULT 1,
        common_area INTEGER NOT NULL DEFAULT 0,
        presence TEXT NOT NULL DEFAULT 'available',
        ha1 TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE devices (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        vendor TEXT, model TEXT, firmware TEXT, user_agent TEXT,
        verdict TEXT, verdict_reason TEXT,
        pair_state TEXT NOT NULL DEFAULT 'unpaired',
        username TEXT REFERENCES users(username) ON UPDATE CASCADE ON DELETE SET NULL,
        mac TEXT,
        last_connected REAL,
        created REAL
    );
    CREATE INDEX devices_username ON devices(username);
    CREATE TABLE pstn_ranges (
        prefix TEXT NOT NULL,
        length INTEGER,
        PRIMARY KEY (prefix, length)
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
}


class StoreError(Exception):
    pass


class Store:
    """The gateway's database. Thread-safe: one connection guarded by a lock (calls are short)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._pending_touch: dict[str, float] = {}
        self._settings: dict[str, str] | None = None  # loaded on first read (see setting)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._migrate()

    # --- schema -----------------------------------------------------------------------------------------
    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer sipgw-lab (schema {version}, this one knows {SCHEMA_VERSION})"
            )
        for v in range(version + 1, SCHEMA_VERSION + 1):
            script = f"BEGIN IMMEDIATE;\n{_MIGRATIONS[v]}\nPRAGMA user_version={v};\nCOMMIT;"
            try:
                self._db.executescript(script)
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self.flush()
            self._db.close()

    # --- users ------------------------------------------------------------------------------------------
    @staticmethod
    def _user(row: sqlite3.Row | None) -> User | None:
        if row is None:
            return None
        return User(
            id=row["id"], username=row["username"], name=row["name"], number=row["number"],
            policy=CallingPolicy(bool(row["allow_sip_devices_calling"]), bool(row["allow_call_redirect"])),
            teams_client=bool(row["teams_client"]), voicemail=bool(row["voicemail"]),
            common_area=bool(row["common_area"]), presence=Presence(row["presence"]), ha1=json.loads(row["ha1"]),
        )

    def upsert_user(self, user: User) -> User:
        with self._lock:
            self._db.execute(
                """INSERT INTO users (username, name, number, allow_sip_devices_calling, allow_call_redirect,
                       teams_client, voicemail, common_area, presence, ha1)
                   VALUES (?,?,?,?,?,?,?,?,?,?)
                   ON CONFLICT(username) DO UPDATE SET name=excluded.name, number=excluded.number,
                       allow_sip_devices_calling=excluded.allow_sip_devices_calling,
                       allow_call_redirect=excluded.allow_call_redirect, teams_client=excluded.teams_client,
                       voicemail=excluded.voicemail, common_area=excluded.common_area,
                       presence=excluded.presence, ha1=excluded.ha1""",
                (user.username, user.name, user.number, int(user.policy.allow_sip_devices_calling),
                 int(user.policy.allow_call_redirect), int(user.teams_client), int(user.voicemail),
                 int(user.common_area), user.presence.value, json.dumps(user.ha1, sort_keys=True)),
            )
            return self.user(user.username)  # type: ignore[return-value]

    def user(self, username: str) -> User | None:
        with self._lock:
            return self._user(self._db.execute("SELECT * FROM users WHERE username=?", (username,)).fetchone())

    def user_by_number(self, number: str) -> User | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM users WHERE number=? OR number=?",
                                   (number, "+" + number.lstrip("+"))).fetchone()
            return self._user(row)

    def users(self) -> list[User]:
        with self._lock:
            return [self._user(r) for r in self._db.execute("SELECT * FROM users ORDER BY username")]  # type: ignore[misc]

    def delete_user(self, username: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM users WHERE username=?", (username,)).rowcount > 0

    def set_presence(self, username: str, presence: Presence) -> None:
        with self._lock:
            self._db.execute("UPDATE users SET presence=? WHERE username=?", (presence.value, username))

    def set_policy(self, username: str, policy: CallingPolicy) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE users SET allow_sip_devices_calling=?, allow_call_redirect=? WHERE username=?",
                (int(policy.allow_sip_devices_calling), int(policy.allow_call_redirect), username),
            )

    # --- devices ----------------------------------------------------------------------------------------
    @staticmethod
    def _device(row: sqlite3.Row | None) -> Device | None:
        if row is None:
            return None
        return Device(
            id=row["id"], key=row["key"], vendor=row["vendor"], model=row["model"], firmware=row["firmware"],
            user_agent=row["user_agent"], verdict=row["verdict"], verdict_reason=row["verdict_reason"],
            pair_state=PairState(row["pair_state"]), username=row["username"], mac=row["mac"],
            last_connected=row["last_connected"], created=row["created"],
        )

    def upsert_device(self, device: Device) -> Device:
        with self._lock:
            self._db.execute(
                """INSERT INTO devices (key, vendor, model, firmware, user_agent, verdict, verdict_reason,
                       pair_state, username, mac, last_connected, created)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
                   ON CONFLICT(key) DO UPDATE SET vendor=excluded.vendor, model=excluded.model,
                       firmware=excluded.firmware, user_agent=excluded.user_agent, verdict=excluded.verdict,
                       verdict_reason=excluded.verdict_reason, pair_state=excluded.pair_state,
                       username=excluded.username, mac=excluded.mac, last_connected=excluded.last_connected""",
                (device.key, device.vendor, device.model, device.firmware, device.user_agent, device.verdict,
                 device.verdict_reason, device.pair_state.value, device.username, device.mac,
                 device.last_connected, device.created),
            )
            self._pending_touch.pop(device.key, None)
            return self.device(device.key)  # type: ignore[return-value]

    def device(self, key: str) -> Device | None:
        with self._lock:
            dev = self._device(self._db.execute("SELECT * FROM devices WHERE key=?", (key,)).fetchone())
            if dev is not None and key in self._pending_touch:
                dev = replace(dev, last_connected=self._pending_touch[key])
            return dev

    def devices(self, username: str | None = None) -> list[Device]:
        with self._lock:
            self.flush()
            if username is None:
                rows = self._db.execute("SELECT * FROM devices ORDER BY key")
            else:
                rows = self._db.execute("SELECT * FROM devices WHERE username=? ORDER BY key", (username,))
            return [self._device(r) for r in rows]  # type: ignore[misc]

    def delete_device(self, key: str) -> bool:
        with self._lock:
            self._pending_touch.pop(key, None)
            return self._db.execute("DELETE FROM devices WHERE key=?", (key,)).rowcount > 0

    def touch_device(self, key: str, when: float) -> None:
        """Record that a device was connected at ``when`` (written by the next :meth:`flush`)."""
        with self._lock:
            self._pending_touch[key] = when

    def flush(self) -> int:
        """Write the gathered last-connected times in one transaction; returns how many were written."""
        with self._lock:
            if not self._pending_touch:
                return 0
            items = list(self._pending_touch.items())
            self._db.execute("BEGIN")
            try:
                self._db.executemany("UPDATE devices SET last_connected=? WHERE key=?",
                                     [(when, key) for key, when in items])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._pending_touch.clear()
            return len(items)

    # --- PSTN -------------------------------------------------------------------------------------------
    def set_pstn_ranges(self, ranges: Iterable[PstnRange]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute("DELETE FROM pstn_ranges")
                self._db.executemany("INSERT OR IGNORE INTO pstn_ranges (prefix, length) VALUES (?, ?)",
                                     [(r.prefix, r.length) for r in ranges])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def pstn_ranges(self) -> list[PstnRange]:
        with self._lock:
            return [PstnRange(r["prefix"], r["length"])
                    for r in self._db.execute("SELECT * FROM pstn_ranges ORDER BY prefix")]

    # --- settings ---------------------------------------------------------------------------------------
    def setting(self, key: str, default: str | None = None) -> str | None:
        """A setting's value. Settings are read on hot paths (voicemail counts on every REGISTER), and only this
        store writes them, so they are read from the database once and then served from memory."""
        cache = self._settings
        if cache is None:
            with self._lock:
                cache = self._settings = {r["key"]: r["value"]
                                          for r in self._db.execute("SELECT key, value FROM settings")}
        return cache.get(key, default)

    def set_setting(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )
            if self._settings is not None:
                self._settings[key] = value  # after the commit: a failed write leaves the cache as stored
