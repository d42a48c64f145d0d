"""Command-line options of the sipgw-lab pytest plugin, and the settings they resolve to.

Precedence: command-line option, then environment variable, then default. Every bad value is a
``pytest.UsageError`` that names the option and says what is expected.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DEFAULT_INVENTORY = "lab_inventory.yaml"
DEFAULT_RERUN_BUDGET = 3
SLOWNESS_ENV = "SIPGW_SLOWNESS"

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class Settings:
    """What the plugin was asked to do, resolved once per process."""

    inventory: Path
    gateway: str = "embedded"  # "embedded" or "HOST:PORT"
    devices: tuple[str, ...] = ()
    vendors: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    repeat: int = 1
    report_dir: Path | None = None
    slowness: float = 1.0
    rerun_budget: int = DEFAULT_RERUN_BUDGET
    live: bool = False
    extra: dict = field(default_factory=dict, compare=False)

    def deadline(self, seconds: float) -> float:
        """``seconds`` scaled by the slowness factor: the one knob for every deadline a test waits on."""
        return seconds * self.slowness

    @property
    def embedded(self) -> bool:
        return self.gateway == "embedded"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sipgw-lab", "sipgw-lab device compatibility lab")
    group.addoption("--inventory", default=None, metavar="FILE",
                    help=f"lab inventory (default: {DEFAULT_INVENTORY})")
    group.addoption("--gateway", default="embedded", metavar="embedded|HOST:PORT",
                    help="the embedded reference gateway on loopback (default), or an external gateway")
    group.addoption("--device", action="append", default=[], metavar="ID", dest="sipgw_devices",
                    help="only this inventory device (repeatable)")
    group.addoption("--vendor", action="append", default=[], metavar="VENDOR", dest="sipgw_vendors",
                    help="only devices of this vendor (repeatable)")
    group.addoption("--model", action="append", default=[], metavar="MODEL", dest="sipgw_models",
                    help="only devices of this model (repeatable)")
    group.addoption("--feature", action="append", default=[], metavar="F", dest="sipgw_features",
                    help="only tests marked with this seed feature id (repeatable)")
    group.addoption("--repeat", type=int, default=1, metavar="N", dest="sipgw_repeat",
                    help="stability mode: run every device test N times; a cell passes only if all N pass")
    group.addoption("--sipgw-report", default=None, metavar="DIR",
                    help="write reports/<run-id>/ (matrix.json, matrix.html, junit.xml, evidence) under DIR")
    group.addoption("--slowness", type=float, default=None, metavar="FACTOR", dest="sipgw_slowness",
                    help=f"scale every deadline by FACTOR (default: ${SLOWNESS_ENV} or 1.0)")
    group.addoption("--rerun-budget", type=int, default=DEFAULT_RERUN_BUDGET, metavar="N", dest="sipgw_rerun_budget",
                    help="how many infrastructure errors may be retried in this whole run "
                         f"(default {DEFAULT_RERUN_BUDGET}); protocol failures are never retried")
    group.addoption("--sipgw-command-line", default=None, dest="sipgw_command_line",
                    help="the command line to record in the run manifest (set by 'sipgw-lab run')")
    group.addoption("--sipgw-run-id", default=None, dest="sipgw_run_id", metavar="ID",
                    help="the run id (directory name under --sipgw-report); default: UTC time and a random suffix")
    group.addoption("--sipgw-live", action="store_true", default=False,
                    help="show a live device x feature view instead of pytest's progress line")


def check_gateway(value: str) -> str:
    """``embedded`` or ``HOST:PORT``; raises ``ValueError`` saying what is wrong."""
    value = value.strip()
    if value == "embedded":
        return value
    m = _HOST_PORT.match(value)
    if not m:
        raise ValueError(f"--gateway {value!r}: expected 'embedded' or HOST:PORT (e.g. 127.0.0.1:5061)")
    port = int(m["port"])
    if not 1 <= port <= 65535:
        raise ValueError(f"--gateway {value!r}: port {port} is outside 1..65535")
    return value


def settings_from_config(config: pytest.Config) -> Settings:
    """Resolve and check the options; ``pytest.UsageError`` on a bad value."""
    opt = config.option
    try:
        gateway = check_gateway(opt.gateway)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    slowness = opt.sipgw_slowness
    if slowness is None:
        env = os.environ.get(SLOWNESS_ENV, "").strip()
        if env:
            try:
                slowness = float(env)
            except ValueError:
                raise pytest.UsageError(f"${SLOWNESS_ENV}={env!r}: expected a number such as 1.5") from None
        else:
            slowness = 1.0
    if not slowness > 0 or slowness > 100:
        raise pytest.UsageError(f"--slowness {slowness}: expected a factor above 0 and at most 100")
    if opt.sipgw_repeat < 1 or opt.sipgw_repeat > 1000:
        raise pytest.UsageError(f"--repeat {opt.sipgw_repeat}: expected a count from 1 to 1000")
    if opt.sipgw_rerun_budget < 0:
        raise pytest.UsageError(f"--rerun-budget {opt.sipgw_rerun_budget}: expected 0 or more")
    features = tuple(dict.fromkeys(f.strip() for f in opt.sipgw_features if f.strip()))
    if features:
        from device_profiles.catalogue import default_catalogue

        known = default_catalogue().feature_ids()
        unknown = [f for f in features if f not in known]
        if unknown:
            raise pytest.UsageError(f"--feature {', '.join(unknown)}: unknown feature id; known: {', '.join(known)}")
    if opt.sipgw_run_id is not None and not _RUN_ID.match(opt.sipgw_run_id):
        raise pytest.UsageError(f"--sipgw-run-id {opt.sipgw_run_id!r}: use letters, digits, '.', '_' and '-' "
                                "(it names a directory)")
    inventory = Path(opt.inventory or DEFAULT_INVENTORY)
    if not inventory.is_absolute():
        inventory = Path(config.invocation_params.dir) / inventory
    report = opt.sipgw_report
    report_dir = None
    if report:
        report_dir = Path(report)
        if not report_dir.is_absolute():
            report_dir = Path(config.invocation_params.dir) / report_dir
    return Settings(
        inventory=inventory,
        gateway=gateway,
        devices=tuple(opt.sipgw_devices),
        vendors=tuple(opt.sipgw_vendors),
        models=tuple(opt.sipgw_models),
        features=features,
        repeat=opt.sipgw_repeat,
        report_dir=report_dir,
        slowness=float(slowness),
        rerun_budget=opt.sipgw_rerun_budget,
        live=bool(opt.sipgw_live),
    )
