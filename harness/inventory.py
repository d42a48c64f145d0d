"""The lab inventory: ``lab_inventory.yaml`` → validated devices with their catalogue profile and verdict.

Every problem is reported with file, line and column and what to do about it; all problems of a file are
collected before giving up, so a lab engineer fixes them in one pass. Nothing is written on error.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from device_profiles.capabilities import line_source
from device_profiles.catalogue import Catalogue, ModelProfile, default_catalogue
from device_profiles.firmware import UnparseableFirmware, try_parse_firmware
from device_profiles.schema import HANDSET_HOSTS
from device_profiles.verdict import FirmwareVerdict, verdict_for_profile
from device_profiles.yamlio import DataFileError, DataProblem, load_yaml, locate, validate_data
from harness.drivers.registry import is_known, known_drivers
from harness.resources import DeviceEntry, InventoryFile, Line

DEFAULT_INVENTORY = "lab_inventory.yaml"


class InventoryError(DataFileError):
    """The inventory cannot be used; ``problems`` lists each located problem."""


@dataclass(frozen=True)
class LineSpec:
    """A line of a device as the harness uses it."""

    device_id: str
    index: int
    number: str
    name: str
    username: str
    port: int | None = None
    handset: ModelProfile | None = None
    handset_model: str | None = None
    handset_firmware: str | None = None
    handset_verdict: FirmwareVerdict | None = None

    @property
    def id(self) -> str:
        return f"{self.device_id}/{self.index + 1}"


@dataclass(frozen=True)
class DeviceSpec:
    entry: DeviceEntry
    profile: ModelProfile
    verdict: FirmwareVerdict
    transport: str
    lines: tuple[LineSpec, ...]

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def vendor(self) -> str:
        return self.profile.vendor

    @property
    def model(self) -> str:
        return self.profile.model

    @property
    def firmware(self) -> str | None:
        return self.entry.firmware

    @property
    def driver(self) -> str:
        return self.entry.driver

    @property
    def test_id(self) -> str:
        """How pytest ids and reports name this device: vendor-model-id."""
        return f"{self.profile.slug}-{self.id}"


@dataclass(frozen=True)
class Inventory:
    path: str
    data: InventoryFile
    devices: tuple[DeviceSpec, ...]
    digest: str = field(default="")

    def device(self, device_id: str) -> DeviceSpec:
        for d in self.devices:
            if d.id == device_id:
                return d
        raise KeyError(f"no device {device_id!r} in {self.path}; devices: {', '.join(d.id for d in self.devices)}")

    def select(self, *, ids: list[str] | None = None, vendors: list[str] | None = None,
               models: list[str] | None = None) -> list[DeviceSpec]:
        out = list(self.devices)
        if ids:
            out = [d for d in out if d.id in ids]
        if vendors:
            keys = {v.casefold() for v in vendors}
            out = [d for d in out if d.vendor.casefold() in keys]
        if models:
            keys = {m.casefold().replace(" ", "") for m in models}
            out = [d for d in out if d.model.casefold().replace(" ", "") in keys]
        return out


def load_inventory(
    path: str | Path = DEFAULT_INVENTORY,
    *,
    catalogue: Catalogue | None = None,
    environ: Mapping[str, str] | None = None,
    text: str | None = None,
) -> Inventory:
    """Read, validate and resolve an inventory. Raises :class:`InventoryError` listing every problem."""
    path = str(path)
    cat = catalogue or default_catalogue()
    env = os.environ if environ is None else environ
    try:
        root = load_yaml(path, text)
    except DataFileError as exc:
        raise InventoryError(exc.problems) from None
    if root is None:
        raise InventoryError(
            [DataProblem(locate(None, [], path), "the inventory is empty: it needs a 'devices:' list")]
        )
    if not isinstance(root, Mapping):
        raise InventoryError([DataProblem(locate(root, [], path),
                                          "the inventory must be a mapping with 'gateway:' and 'devices:'")])
    try:
        data: InventoryFile = validate_data(InventoryFile, root, path)
    except DataFileError as exc:
        raise InventoryError(exc.problems) from None

    problems: list[DataProblem] = []

    def problem(loc: list, message: str) -> None:
        problems.append(DataProblem(locate(root, loc, path), message))

    devices: list[DeviceSpec] = []
    seen_ids: dict[str, int] = {}
    seen_numbers: dict[str, str] = {}
    seen_usernames: dict[str, str] = {}
    for i, dev in enumerate(data.devices):
        base = ["devices", i]
        if dev.id in seen_ids:
            problem([*base, "id"], f"duplicate device id {dev.id!r} (first used by device #{seen_ids[dev.id] + 1})")
        seen_ids.setdefault(dev.id, i)
        if not is_known(dev.driver):
            problem([*base, "driver"], f"unknown driver {dev.driver!r}; known drivers: {', '.join(known_drivers())}")
        if dev.credentials:
            for key, var in dev.credentials.references().items():
                if var not in env:
                    problem([*base, "credentials", key],
                            f"environment variable {var} (credentials.{key} of {dev.id}) is not set; "
                            f"export it before running the lab")
        if dev.ssh is not None:
            _check_ssh(dev, base, env, problem)
        profile = cat.find(dev.model, dev.vendor)
        if profile is None:
            vendor_name = cat.vendor_name(dev.vendor)
            if vendor_name is None:
                problem([*base, "vendor"], f"unknown vendor {dev.vendor!r}; known vendors: {', '.join(cat.vendors)}")
            else:
                closest = cat.closest(dev.model, vendor_name)
                hint = f"; closest catalogue names: {', '.join(closest)}" if closest else ""
                problem([*base, "model"], f"model {dev.model!r} is not in the {vendor_name} catalogue{hint}")
            continue
        if dev.firmware is not None:
            parsed = try_parse_firmware(profile.firmware_scheme, dev.firmware)
            if isinstance(parsed, UnparseableFirmware):
                problem([*base, "firmware"], f"{profile.vendor} {profile.model}: {parsed.reason}")
                continue
        lines = _resolve_lines(dev, profile, cat, base, problem)
        for j, line in enumerate(lines):
            owner = f"{dev.id} line {j + 1}"
            if line.number in seen_numbers:
                problem([*base, "lines", j, "number"],
                        f"duplicate number {line.number} (already assigned to {seen_numbers[line.number]})")
            seen_numbers.setdefault(line.number, owner)
            if line.username in seen_usernames:
                problem([*base, "lines", j, "username"],
                        f"duplicate username {line.username!r} (already used by {seen_usernames[line.username]})")
            seen_usernames.setdefault(line.username, owner)
        verdict = verdict_for_profile(profile, dev.firmware)
        devices.append(DeviceSpec(dev, profile, verdict, dev.transport or data.defaults.transport, tuple(lines)))

    if problems:
        raise InventoryError(problems)
    raw = Path(path).read_bytes() if text is None else text.encode()
    return Inventory(path, data, tuple(devices), hashlib.sha256(raw).hexdigest())


SSH_DRIVERS = ("audiocodes-mp",)


def _check_ssh(dev: DeviceEntry, base: list, env: Mapping[str, str], problem) -> None:
    """The ``ssh:`` entry: a driver that uses it, a host to reach, and credential variables that are set."""
    ssh = dev.ssh
    assert ssh is not None
    if dev.driver not in SSH_DRIVERS:
        problem([*base, "ssh"], f"ssh: is used by the {', '.join(SSH_DRIVERS)} driver only; {dev.id} uses "
                                f"{dev.driver!r}")
        return
    simulated = dev.connection is not None and dev.connection.protocol == "simulator"
    if simulated:
        if ssh.host or ssh.references():
            problem([*base, "ssh"], "a simulated device's SSH server is the simulator's own: write 'ssh: {}' "
                                    "without host or credentials")
        return
    if not ssh.host and not (dev.connection is not None and dev.connection.host):
        problem([*base, "ssh", "host"], "ssh: needs a host (or a connection host to default to)")
    for key in ("username", "password"):
        if getattr(ssh, key) is None:
            problem([*base, "ssh"], f"ssh.{key} is missing: add {key}: {{env: VARIABLE}}")
    for key, var in ssh.references().items():
        if var not in env:
            problem([*base, "ssh", key], f"environment variable {var} (ssh.{key} of {dev.id}) is not set; "
                                         "export it before running the lab")


def _resolve_lines(dev: DeviceEntry, profile: ModelProfile, cat: Catalogue, base: list, problem) -> list[LineSpec]:
    source = line_source(profile, cat)
    out: list[LineSpec] = []
    if source == "usable_ports":
        usable = profile.ports_usable or 0
        if len(dev.lines) > usable:
            problem([*base, "lines"],
                    f"{profile.vendor} {profile.model} has {usable} usable port(s) of {profile.ports_total} "
                    f"but {len(dev.lines)} lines are declared; remove {len(dev.lines) - usable}")
        ports_seen: set[int] = set()
        for j, line in enumerate(dev.lines):
            port = line.port if line.port is not None else j + 1
            if port > usable:
                problem([*base, "lines", j, "port"],
                        f"port {port} is not usable on {profile.model} (usable ports: 1-{usable})")
            if port in ports_seen:
                problem([*base, "lines", j, "port"], f"port {port} is declared twice")
            ports_seen.add(port)
            if line.handset is not None:
                problem([*base, "lines", j, "handset"], "an ATA port has no DECT handset")
            out.append(_line(dev, j, line, port=port))
        return out
    for j, line in enumerate(dev.lines):
        if line.port is not None:
            problem([*base, "lines", j, "port"], f"'port' is only for ATAs, not for a {profile.kind}")
        if profile.kind in HANDSET_HOSTS:
            if line.handset is None:
                problem([*base, "lines", j],
                        f"each line of a {profile.kind.replace('_', ' ')} is a DECT handset: add "
                        "'handset: {model: ..., firmware: ...}'")
                continue
            out.append(_handset_line(dev, j, line, profile, cat, base, problem))
        else:
            if line.handset is not None:
                problem([*base, "lines", j, "handset"], f"a {profile.kind.replace('_', ' ')} has no DECT handsets")
            out.append(_line(dev, j, line))
    return out


def _line(dev: DeviceEntry, j: int, line: Line, **extra) -> LineSpec:
    return LineSpec(
        device_id=dev.id,
        index=j,
        number=line.number,
        name=line.name or f"{dev.id} {j + 1}",
        username=line.username or line.number.lstrip("+"),
        **extra,
    )


def _handset_line(dev: DeviceEntry, j: int, line: Line, base_profile: ModelProfile, cat: Catalogue,
                  base: list, problem) -> LineSpec:
    hs = line.handset
    assert hs is not None
    hprofile = cat.find(hs.model, base_profile.vendor)
    verdict = None
    if hprofile is None:
        if not base_profile.vendor_file.open_handset_models:
            closest = cat.closest(hs.model, base_profile.vendor)
            hint = f"; closest catalogue names: {', '.join(closest)}" if closest else ""
            problem([*base, "lines", j, "handset", "model"],
                    f"handset model {hs.model!r} is not in the {base_profile.vendor} catalogue{hint}")
    elif hprofile.kind not in {"dect_handset", "wireless_handset"}:
        problem([*base, "lines", j, "handset", "model"],
                f"{hprofile.vendor} {hprofile.model} is a {hprofile.kind.replace('_', ' ')}, not a DECT handset")
    elif hs.firmware is not None:
        parsed = try_parse_firmware(hprofile.firmware_scheme, hs.firmware)
        if isinstance(parsed, UnparseableFirmware):
            problem([*base, "lines", j, "handset", "firmware"], f"{hprofile.model}: {parsed.reason}")
        else:
            verdict = verdict_for_profile(hprofile, hs.firmware)
    return replace(_line(dev, j, line), handset=hprofile, handset_model=hs.model,
                   handset_firmware=hs.firmware, handset_verdict=verdict)
