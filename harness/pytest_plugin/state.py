"""Per-process plugin state, kept in ``config.stash`` (never in module globals)."""

from __future__ import annotations

import os
import secrets
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.pytest_plugin.options import Settings
from harness.pytest_plugin.outcomes import RerunBudget

STATE = pytest.StashKey["PluginState"]()


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


@dataclass
class PluginState:
    settings: Settings
    run_id: str
    started_at: datetime
    budget: RerunBudget
    is_worker: bool
    command_line: str = ""
    host: str = field(default_factory=socket.gethostname)
    _inventory: Any = None
    #: device id -> (nodeid, reason) of the first test in which the device broke (this process only)
    broken: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: device id -> DeviceIdentity as a dict, as read back from the device during the run
    identities: dict[str, dict] = field(default_factory=dict)
    gateway_build: str | None = None
    #: the session's lab (set by the ``lab`` fixture) and the devices other tests use as helpers
    lab: Any = None
    helpers: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: controller: crash records of tests retried after their xdist worker crashed, by node id (until the retry
    #: reports); worker: the files it keeps for the controller (``harness.pytest_plugin.crash.WorkerFiles``)
    crashed: dict[str, dict] = field(default_factory=dict)
    worker_files: Any = None

    @property
    def run_dir(self) -> Path | None:
        if self.settings.report_dir is None:
            return None
        return self.settings.report_dir / self.run_id

    def inventory(self):
        """The inventory, loaded on first use (so runs that use no device never read it)."""
        if self._inventory is None:
            from harness.inventory import load_inventory

            self._inventory = load_inventory(self.settings.inventory)
        return self._inventory

    def selected_devices(self) -> list:
        s = self.settings
        inv = self.inventory()
        if s.devices:
            known = {d.id for d in inv.devices}
            unknown = [d for d in s.devices if d not in known]
            if unknown:
                raise LookupError(f"--device {', '.join(unknown)}: not in {inv.path}; "
                                  f"devices: {', '.join(sorted(known))}")
        return inv.select(ids=list(s.devices) or None, vendors=list(s.vendors) or None,
                          models=list(s.models) or None)


def budget_path_for(run_id: str) -> Path:
    base = Path(os.environ.get("TMPDIR", "/tmp"))
    return base / f"sipgw-lab-rerun-budget-{run_id}-{os.getpid()}"
