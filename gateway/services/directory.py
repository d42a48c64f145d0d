"""The tenant directory: users by user name and by number, cached in memory over the store.

Reads (every REGISTER and INVITE) come from memory; writes go to the store first and then to the cache,
so the cache never holds what the database does not.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from gateway.services.model import CallingPolicy, Presence, PstnRange, User
from gateway.sip.auth import compute_ha1

#: Digest algorithms whose HA1 is kept for every user (RFC 8760).
HA1_ALGORITHMS = ("MD5", "SHA-256")


class UserStore(Protocol):
    def upsert_user(self, user: User) -> User: ...
    def users(self) -> list[User]: ...
    def delete_user(self, username: str) -> bool: ...
    def set_pstn_ranges(self, ranges: list[PstnRange]) -> None: ...
    def pstn_ranges(self) -> list[PstnRange]: ...


def number_key(number: str) -> str:
    """Numbers are compared without their leading '+' (devices dial both forms)."""
    return number.strip().lstrip("+")


class Directory:
    def __init__(self, store: UserStore, realm: str):
        self._store = store
        self.realm = realm
        self._lock = threading.Lock()
        self._by_name: dict[str, User] = {}
        self._by_number: dict[str, User] = {}
        self._pstn: list[PstnRange] = []
        #: Called after every write (the registrar workers of :mod:`gateway.shards` read the store again).
        self.listeners: list[Callable[[], None]] = []
        self.reload()

    def reload(self) -> None:
        with self._lock:
            users = self._store.users()
            self._by_name = {u.username: u for u in users}
            self._by_number = {number_key(u.number): u for u in users if u.number}
            self._pstn = self._store.pstn_ranges()

    # --- reads -------------------------------------------------------------------------------------------
    def user(self, username: str) -> User | None:
        return self._by_name.get(username)

    def by_number(self, number: str) -> User | None:
        return self._by_number.get(number_key(number))

    def users(self) -> list[User]:
        return sorted(self._by_name.values(), key=lambda u: u.username)

    def is_pstn(self, number: str) -> bool:
        if self.by_number(number) is not None:
            return False
        return any(r.matches(number) for r in self._pstn)

    def pstn_ranges(self) -> list[PstnRange]:
        return list(self._pstn)

    # --- writes ------------------------------------------------------------------------------------------
    def put_user(self, user: User, password: str | None = None) -> User:
        """Create or replace a user. A password is stored as HA1 digests for the gateway's realm only."""
        if password is not None:
            user = replace(user, ha1={a: compute_ha1(user.username, self.realm, password, a) for a in HA1_ALGORITHMS})
        elif not user.ha1 and (old := self.user(user.username)) is not None:
            user = replace(user, ha1=old.ha1)
        with self._lock:
            saved = self._store.upsert_user(user)
            old = self._by_name.get(saved.username)
            if old is not None and old.number:
                self._by_number.pop(number_key(old.number), None)
            self._by_name[saved.username] = saved
            if saved.number:
                self._by_number[number_key(saved.number)] = saved
        self._changed()
        return saved

    def delete_user(self, username: str) -> bool:
        with self._lock:
            found = self._store.delete_user(username)
            old = self._by_name.pop(username, None)
            if old is not None and old.number:
                self._by_number.pop(number_key(old.number), None)
        self._changed()
        return found

    def set_policy(self, username: str, policy: CallingPolicy) -> User:
        user = self._require(username)
        return self.put_user(replace(user, policy=policy))

    def set_presence(self, username: str, presence: Presence) -> User:
        user = self._require(username)
        return self.put_user(replace(user, presence=presence))

    def set_pstn_ranges(self, ranges: list[PstnRange]) -> None:
        with self._lock:
            self._store.set_pstn_ranges(ranges)
            self._pstn = list(ranges)
        self._changed()

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    def _require(self, username: str) -> User:
        user = self.user(username)
        if user is None:
            raise KeyError(f"no user {username!r}")
        return user
