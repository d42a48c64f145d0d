"""Voicemail boxes: the messages each user has, new or heard, stored durably; the counts MWI reports.

A message is a WAV file under ``<data dir>/voicemail/<username>/<id>.wav`` plus one row of the box's index in
the store (the ``settings`` table, key ``voicemail.box.<username>``, a JSON list), so messages and their
new/heard state survive a gateway restart and a ``kill -9`` (the file is written and synced before the index
names it; an index entry whose file has gone is dropped when the box is read).

The media node (:mod:`gateway.media_node.voicemail`) records what the caller says and plays messages back;
this module only keeps the boxes. Every change calls the listeners with the username, so the MWI service
(:mod:`gateway.services.mwi`) can notify the user's devices.

Per-user settings (``voicemail.settings.<username>``): ``no_answer_s``, the seconds an unanswered call rings
before it goes to voicemail (default :data:`DEFAULT_NO_ANSWER_S`, 5–120).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

DEFAULT_NO_ANSWER_S = 20.0
NO_ANSWER_RANGE = (1.0, 120.0)
_SAFE = re.compile(r"^[A-Za-z0-9_.@+-]{1,128}$")


class SettingsStore(Protocol):
    def setting(self, key: str, default: str | None = None) -> str | None: ...
    def set_setting(self, key: str, value: str) -> None: ...


class VoicemailError(ValueError):
    """Bad input to a voicemail operation; ``where`` names the part at fault."""

    def __init__(self, message: str, where: str = "body") -> None:
        super().__init__(message)
        self.where = where


@dataclass(frozen=True)
class Message:
    id: str
    username: str
    caller: str
    created: float
    duration_s: float
    heard: bool = False

    def to_json(self) -> dict:
        return asdict(self)


class VoicemailBoxes:
    """Every user's box over a settings store and a directory of WAV files."""

    def __init__(self, store: SettingsStore, root: str | Path, *, wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.wall = wall
        self._lock = threading.RLock()
        #: Called with the username after every change of a box (deposit, heard, deleted).
        self.listeners: list[Callable[[str], None]] = []
        #: (new, old) of each box as its last full read found it; dropped whenever the box is written. MWI asks
        #: for the counts on every REGISTER refresh, which would otherwise be a store query and a file check per
        #: message each time. A WAV file removed behind the gateway's back shows in the counts at the box's next
        #: full read (listing it, a deposit, a change).
        self._counts: dict[str, tuple[int, int]] = {}

    # --- reading -------------------------------------------------------------------------------------------
    def _key(self, username: str) -> str:
        if not _SAFE.match(username or ""):
            raise VoicemailError(f"{username!r} is not a valid user name", "path.username")
        return f"voicemail.box.{username}"

    def messages(self, username: str) -> list[Message]:
        """The user's messages, oldest first (entries whose file has gone are dropped)."""
        with self._lock:
            raw = self.store.setting(self._key(username))
            items = [Message(**m) for m in json.loads(raw)] if raw else []
            alive = [m for m in items if self.path(m).exists()]
            if len(alive) != len(items):
                self._save(username, alive)
            new = sum(1 for m in alive if not m.heard)
            self._counts[username] = (new, len(alive) - new)
            return alive

    def message(self, username: str, message_id: str) -> Message:
        for m in self.messages(username):
            if m.id == message_id:
                return m
        raise KeyError(f"{username} has no voicemail message {message_id!r}")

    def counts(self, username: str) -> tuple[int, int]:
        """(new, old): RFC 3842 ``Voice-Message: new/old``."""
        counts = self._counts.get(username)
        if counts is None:
            with self._lock:
                self.messages(username)
                counts = self._counts[username]
        return counts

    def path(self, m: Message) -> Path:
        return self.root / m.username / f"{m.id}.wav"

    # --- changing ------------------------------------------------------------------------------------------
    def deposit(self, username: str, caller: str, wav: str | Path | bytes, duration_s: float) -> Message:
        """Store a new message (copied from a WAV file or bytes) and index it."""
        self._key(username)
        m = Message(id=f"{int(self.wall())}-{secrets.token_hex(4)}", username=username, caller=str(caller)[:128],
                    created=self.wall(), duration_s=round(float(duration_s), 3))
        dest = self.path(m)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".part")
        if isinstance(wav, bytes):
            tmp.write_bytes(wav)
        else:
            shutil.copyfile(wav, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
        with self._lock:
            self._save(username, [*self.messages(username), m])
        self._changed(username)
        return m

    def mark_heard(self, username: str, message_id: str, heard: bool = True) -> Message:
        with self._lock:
            ms = self.messages(username)
            out, found = [], None
            for m in ms:
                if m.id == message_id:
                    m = found = Message(**{**m.to_json(), "heard": heard})
                out.append(m)
            if found is None:
                raise KeyError(f"{username} has no voicemail message {message_id!r}")
            self._save(username, out)
        self._changed(username)
        return found

    def delete(self, username: str, message_id: str) -> bool:
        with self._lock:
            ms = self.messages(username)
            keep = [m for m in ms if m.id != message_id]
            if len(keep) == len(ms):
                return False
            self._save(username, keep)
            gone = next(m for m in ms if m.id == message_id)
            try:
                self.path(gone).unlink()
            except OSError:
                pass
        self._changed(username)
        return True

    def clear(self, username: str) -> int:
        ms = self.messages(username)
        for m in ms:
            self.delete(username, m.id)
        return len(ms)

    # --- settings --------------------------------------------------------------------------------------------
    def no_answer_s(self, username: str) -> float:
        raw = self.store.setting(f"voicemail.settings.{username}")
        if raw:
            try:
                return float(json.loads(raw).get("no_answer_s", DEFAULT_NO_ANSWER_S))
            except (ValueError, AttributeError):
                pass
        return DEFAULT_NO_ANSWER_S

    def set_no_answer_s(self, username: str, seconds: float) -> float:
        self._key(username)
        lo, hi = NO_ANSWER_RANGE
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not lo <= seconds <= hi:
            raise VoicemailError(f"no_answer_s must be a number of seconds from {lo:g} to {hi:g}, got {seconds!r}",
                                 "body.no_answer_s")
        self.store.set_setting(f"voicemail.settings.{username}", json.dumps({"no_answer_s": float(seconds)}))
        return float(seconds)

    # --- helpers ---------------------------------------------------------------------------------------------
    def _save(self, username: str, ms: list[Message]) -> None:
        self._counts.pop(username, None)
        self.store.set_setting(self._key(username), json.dumps([m.to_json() for m in ms]))

    def _changed(self, username: str) -> None:
        for fn in list(self.listeners):
            fn(username)


__all__ = ["DEFAULT_NO_ANSWER_S", "Message", "VoicemailBoxes", "VoicemailError"]
