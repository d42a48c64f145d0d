"""Compare two runs' matrices: cells that regressed or were fixed, and firmware that drifted.

A cell *regressed* when it passed (or passed on retry) in the baseline and now fails or is blocked; it is
*fixed* the other way round. Other differences (pass → error, n/a → pass, a cell no longer run) are listed as
changes without failing anything. Firmware drift compares what each device reported in both runs, ordered by
the vendor's own version scheme (an upgrade, a downgrade, or just "changed" when a version cannot be parsed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from harness.reporting.model import ManifestDevice, Matrix

GOOD = frozenset({"pass", "flaky"})
BAD = frozenset({"fail", "blocked"})

ChangeKind = Literal["regression", "fixed", "changed", "new", "not_run"]


@dataclass(frozen=True)
class CellChange:
    device_id: str
    feature: str
    before: str | None
    after: str | None
    kind: ChangeKind
    reason: str = ""


@dataclass(frozen=True)
class FirmwareChange:
    device_id: str
    before: str | None
    after: str | None
    kind: Literal["upgrade", "downgrade", "changed"]
    verdict_before: str
    verdict_after: str


@dataclass
class RunDiff:
    baseline_run_id: str
    run_id: str
    cells: list[CellChange] = field(default_factory=list)
    firmware: list[FirmwareChange] = field(default_factory=list)

    @property
    def regressions(self) -> list[CellChange]:
        return [c for c in self.cells if c.kind == "regression"]

    def change(self, device_id: str, feature: str) -> CellChange | None:
        for c in self.cells:
            if (c.device_id, c.feature) == (device_id, feature):
                return c
        return None

    def firmware_change(self, device_id: str) -> FirmwareChange | None:
        return next((f for f in self.firmware if f.device_id == device_id), None)

    def as_dict(self) -> dict:
        return {"baseline_run_id": self.baseline_run_id, "run_id": self.run_id,
                "regressions": len(self.regressions), "cells": [asdict(c) for c in self.cells],
                "firmware": [asdict(f) for f in self.firmware]}


def _kind(before: str | None, after: str | None) -> ChangeKind | None:
    if before == after:
        return None
    if before is None:
        return "new"
    if after is None:
        return "not_run"
    if before in GOOD and after in BAD:
        return "regression"
    if before in BAD | {"error"} and after in GOOD:
        return "fixed"
    return "changed"


def _firmware_kind(old: ManifestDevice, new: ManifestDevice) -> Literal["upgrade", "downgrade", "changed"]:
    from device_profiles.catalogue import default_catalogue
    from device_profiles.firmware import UnparseableFirmware, try_parse_firmware

    profile = default_catalogue().find(new.model, vendor=new.vendor)
    if profile is None or not old.firmware or not new.firmware:
        return "changed"
    a = try_parse_firmware(profile.firmware_scheme, old.firmware)
    b = try_parse_firmware(profile.firmware_scheme, new.firmware)
    if isinstance(a, UnparseableFirmware) or isinstance(b, UnparseableFirmware):
        return "changed"
    try:
        return "upgrade" if b > a else "downgrade" if b < a else "changed"
    except TypeError:  # different families of one scheme are not ordered against each other
        return "changed"


def diff_matrices(baseline: Matrix, current: Matrix) -> RunDiff:
    out = RunDiff(baseline.manifest.run_id, current.manifest.run_id)
    before = {(c.device_id, c.feature): c for c in baseline.cells}
    after = {(c.device_id, c.feature): c for c in current.cells}
    devices = [d.id for d in current.manifest.devices]
    features = [f.id for f in current.features]
    for key in sorted(before.keys() | after.keys(), key=lambda k: (
            devices.index(k[0]) if k[0] in devices else len(devices), features.index(k[1]) if k[1] in features
            else len(features), k)):
        b, a = before.get(key), after.get(key)
        kind = _kind(b.outcome if b else None, a.outcome if a else None)
        if kind is not None:
            out.cells.append(CellChange(key[0], key[1], b.outcome if b else None, a.outcome if a else None, kind,
                                        a.reason if a else ""))
    old_devices = {d.id: d for d in baseline.manifest.devices}
    for d in current.manifest.devices:
        old = old_devices.get(d.id)
        if old is not None and old.firmware != d.firmware:
            out.firmware.append(FirmwareChange(d.id, old.firmware, d.firmware, _firmware_kind(old, d),
                                               old.firmware_verdict, d.firmware_verdict))
    return out
