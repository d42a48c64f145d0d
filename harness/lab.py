"""The ``Lab`` facade: inventory + gateway + drivers, for the CLI, the pytest plugin and plain scripts.

    with Lab.from_inventory("lab_inventory.yaml", gateway="embedded", data_dir="/tmp/lab") as lab:
        alice, bob = lab.device("poly-vvx450"), lab.device("yealink-t46s")
        call = alice[CallControl].dial(bob.number)
        ...

``start()`` starts the gateway (the embedded one in a thread on loopback with ephemeral ports, or points
at an external ``HOST:PORT``), creates every line's tenant user with generated SIP credentials, and (unless
``lazy``) brings every selected device to ``registered``: firmware verdict first — a device whose verdict
is not ``supported``/``newer_than_approved`` is ``blocked`` and never started — then driver activation,
registration of each line, and the identity read back. With ``lazy=True`` a device is started on its first
``lab.device(id)``, so each pytest-xdist worker starts only the devices its tests use. ``stop()`` closes
every worker process and the gateway; nothing is left running.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from device_profiles.capabilities import applicability
from device_profiles.ua_format import default_mac
from harness import steps
from harness.drivers.base import DriverContext, GatewayTarget, LineAccount
from harness.drivers.registry import driver_class
from harness.inventory import DeviceSpec, Inventory, load_inventory
from harness.protocols import (
    CallControl,
    Capability,
    Console,
    DeviceBroken,
    DeviceIdentity,
    HarnessError,
    Identity,
    NotApplicable,
    Power,
    Provisioning,
    RegistrationInfo,
    SignIn,
    capability_of,
)
from harness.strategies import DeviceState, DeviceStrategy

log = logging.getLogger(__name__)

C = TypeVar("C", bound=Capability)

TEAMS_ONLY_USER = ("teams.only", "Teams Only User", "+14255559001")
PSTN_PREFIX = "+1206555"
PSTN_NUMBER = "+12065550100"


class LabError(HarnessError):
    """The lab cannot start as asked (bad gateway choice, unknown device id)."""


class RegistrationRefused(HarnessError):
    def __init__(self, device_id: str, info: RegistrationInfo) -> None:
        self.info = info
        super().__init__(f"{device_id}: line {info.line} REGISTER answered {info.status_code} {info.reason}")


@dataclass(frozen=True)
class Party:
    """A gateway-side party (Teams user or PSTN number) the media node hosts."""

    kind: str
    username: str | None
    number: str


class Parties:
    """Helpers to get a Teams user (without a SIP device) and a PSTN party, served by the media node."""

    def __init__(self, lab: Lab) -> None:
        self._lab = lab

    def teams_user(self) -> Party | None:
        if not self._lab.has_media:
            return None
        return Party("teams", TEAMS_ONLY_USER[0], TEAMS_ONLY_USER[2])

    def pstn_party(self) -> Party | None:
        if not self._lab.has_media:
            return None
        return Party("pstn", None, PSTN_NUMBER)

    @property
    def media(self) -> Any:
        return getattr(self._lab.control, "media", None)


class LabDevice:
    """A device of the lab: ``device[CallControl]`` gives its capability (or raises)."""

    def __init__(self, spec: DeviceSpec, lines: tuple[LineAccount, ...], blocked: str | None) -> None:
        self.spec = spec
        self.lines = lines
        self.blocked_reason = blocked
        self.driver: Any = None
        self.strategy: DeviceStrategy | None = None
        self.identity: DeviceIdentity | None = None
        self.registrations: tuple[RegistrationInfo, ...] = ()
        self.lock = threading.RLock()
        self.labgrid: Any = None  # the lab's LabgridSession: Power and Console of labgrid resources

    id = property(lambda self: self.spec.id)
    profile = property(lambda self: self.spec.profile)
    verdict = property(lambda self: self.spec.verdict)

    @property
    def number(self) -> str:
        return self.lines[0].number

    @property
    def state(self) -> str:
        if self.blocked_reason is not None:
            return "blocked"
        if self.strategy is None:
            return "not_started"
        return self.strategy.state.value

    @property
    def blocked(self) -> bool:
        return self.blocked_reason is not None

    def applicable(self, feature: str) -> bool:
        return bool(applicability(self.spec.profile, feature))

    def require(self, feature: str) -> None:
        a = applicability(self.spec.profile, feature)
        if not a:
            raise NotApplicable(a.reason or feature, feature=feature, device_id=self.id)

    def check(self) -> None:
        if self.blocked_reason is not None:
            raise DeviceBroken(f"blocked: {self.blocked_reason}", device_id=self.id, state="blocked")
        if self.strategy is not None:
            self.strategy.check()
        if self.driver is None:
            raise DeviceBroken("the device was not started (lab.device(id) starts it)", device_id=self.id)

    def __getitem__(self, protocol: type[C]) -> C:
        self.check()
        if protocol in (Power, Console):  # the inventory's labgrid resources first (harness.labgrid_support)
            from harness.labgrid_support import device_capability

            return device_capability(self, protocol)
        return capability_of(self.driver, protocol, device_id=self.id)

    def has(self, protocol: type[Capability]) -> bool:
        return self.driver is not None and isinstance(self.driver, protocol)

    def __repr__(self) -> str:
        return f"LabDevice({self.id!r}, {self.spec.vendor} {self.spec.model}, {self.state})"


class Lab:
    def __init__(self, inventory: Inventory, *, gateway: str | None = None, data_dir: str | Path | None = None,
                 devices: Iterable[str] | None = None, lazy: bool = False, media: str | None = None,
                 allocator: Any = None, gateway_config: Any = None, driver_options: dict[str, dict] | None = None,
                 control_api: bool = True, slowness: float | None = None):
        self.inventory = inventory
        self.slowness = slowness  # the run's --slowness factor, handed to every driver (option "slowness")
        mode = gateway or inventory.data.gateway.mode
        if mode == "external":
            ext = inventory.data.gateway.external
            mode = f"{ext.host}:{ext.port}" if ext is not None else mode
        self.gateway_mode = mode
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="sipgw-lab-"))
        self.lazy = lazy
        self.media_mode = media
        self.allocator = allocator
        self.gateway_config = gateway_config
        self.driver_options = driver_options or {}
        self.control_api = control_api
        wanted = list(devices) if devices is not None else None
        if wanted is not None:
            known = {d.id for d in inventory.devices}
            missing = [w for w in wanted if w not in known]
            if missing:
                raise LabError(f"device id(s) {', '.join(missing)} are not in {inventory.path}; "
                               f"devices: {', '.join(sorted(known))}")
        self.specs = [d for d in inventory.devices if wanted is None or d.id in wanted]
        self.gateway: Any = None
        self.gateway_address: str | None = None
        self.control: Any = None
        self.target: GatewayTarget | None = None
        self.parties = Parties(self)
        self.devices: dict[str, LabDevice] = {}
        self.started = False
        self._lock = threading.RLock()
        self.labgrid: Any = None  # harness.labgrid_support.LabgridSession when the inventory has labgrid:

    @classmethod
    def from_inventory(cls, path: str | Path, gateway: str | None = None, data_dir: str | Path | None = None,
                       **kw: Any) -> Lab:
        """Load and validate ``path`` (``InventoryError`` lists every problem) and build an unstarted lab."""
        kw.setdefault("lazy", True)
        kw.setdefault("media", "node")
        return cls(load_inventory(path), gateway=gateway, data_dir=data_dir, **kw)

    @property
    def has_media(self) -> bool:
        return self.gateway is not None and self.media_mode == "node" and self.control is not None

    # ------------------------------------------------------------------------------------------ start/stop
    def start(self) -> Lab:
        with self._lock:
            if self.started:
                return self
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if self.allocator is None and any(s.driver == "emulated" for s in self.specs):
                from sipua import PortAllocator

                self.allocator = PortAllocator()
            try:
                self._acquire_labgrid()
                self._start_gateway()
                self._provision_users()
                if not self.lazy:
                    for dev in self.devices.values():
                        self._start_device(dev)
            except BaseException:
                self.stop()
                raise
            self.started = True
            return self

    def _acquire_labgrid(self) -> None:
        """Acquire the inventory's labgrid place (when a coordinator is configured) before any device is used."""
        from harness.labgrid_support import LabgridSession

        self.labgrid = LabgridSession.from_inventory(self.inventory)
        if self.labgrid is not None:
            self.labgrid.acquire()
            steps.record("lab.labgrid_acquire", args={"place": self.inventory.data.labgrid.place}, device_id=None)

    def _start_gateway(self) -> None:
        mode = self.gateway_mode
        if mode in ("none", "fake"):
            return
        if mode == "embedded":
            from gateway.config import GatewayConfig
            from gateway.server import EmbeddedGateway

            cfg = self.gateway_config or GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0")
            has_api = self.control_api and importlib.util.find_spec("gateway.control_api.app") is not None
            for attempt in range(3):
                self.gateway = EmbeddedGateway(self.data_dir / "gateway", cfg, media=self.media_mode,
                                               control_api=has_api)
                try:
                    eps = self.gateway.start_in_thread()
                    break
                except OSError as exc:
                    # The TCP listener takes the UDP port the kernel picked; another process may hold it.
                    with contextlib.suppress(Exception):
                        self.gateway.stop_thread()
                    self.gateway = None
                    if exc.errno != errno.EADDRINUSE or attempt == 2:
                        raise
            self.target = GatewayTarget(eps.udp[0], eps.udp[1], eps.tcp[1], eps.tls[1], cfg.domain,
                                        str(self.gateway.pki.ca_cert) if self.gateway.pki else None)
            self.gateway_address = f"{eps.udp[0]}:{eps.udp[1]}"
            if eps.control_url:
                secret = getattr(cfg, "control_token", None)
                self.control = _control_client(eps.control_url,
                                               secret.get_secret_value() if secret is not None else None)
            return
        host, sep, port = mode.rpartition(":")
        if not sep or not port.isdigit():
            raise LabError(f"gateway {mode!r}: expected 'embedded' or HOST:PORT (for example 192.0.2.5:5061)")
        p = int(port)
        ext = self.inventory.data.gateway.external
        self.target = GatewayTarget(host, p, p, p, getattr(ext, "domain", None) or "sipgw.lab", None)
        self.gateway_address = mode
        url = os.environ.get("SIPGW_CONTROL_URL")
        if url:  # a gateway with a control token (not on loopback): SIPGW_CONTROL_TOKEN holds it
            self.control = _control_client(url, os.environ.get("SIPGW_CONTROL_TOKEN") or None)

    def _provision_users(self) -> None:
        for spec in self.specs:
            lines = tuple(LineAccount(index=ls.index, number=ls.number, name=ls.name, username=ls.username,
                                      password=secrets.token_urlsafe(12), port=ls.port,
                                      handset_model=ls.handset_model, handset_firmware=ls.handset_firmware)
                          for ls in spec.lines)
            blocked = None if spec.verdict.acceptable else f"firmware verdict {spec.verdict.verdict.value}: " \
                                                           f"{spec.verdict.reason}"
            self.devices[spec.id] = LabDevice(spec, lines, blocked)
            if blocked is None:
                for acc in lines:
                    self._put_user(acc)
        if self.gateway is not None and self.media_mode == "node":
            from gateway.services.model import PstnRange, User

            self.gateway.directory.put_user(User(TEAMS_ONLY_USER[0], TEAMS_ONLY_USER[1], TEAMS_ONLY_USER[2],
                                                 teams_client=True), password=secrets.token_urlsafe(12))
            ranges = list(self.gateway.directory.pstn_ranges())
            self.gateway.directory.set_pstn_ranges([*ranges, PstnRange(PSTN_PREFIX, None)])

    def _put_user(self, acc: LineAccount) -> None:
        if self.gateway is not None:
            from gateway.services.model import User

            # No Teams client for device users: an auto-answering client would win the fork (RFC 3261 §16.7)
            # before the device under test could answer. Suites that need forking enable it per user.
            self.gateway.directory.put_user(User(acc.username, acc.name, acc.number, teams_client=False),
                                            password=acc.password)
        elif self.control is not None:
            self.control.create_user(acc.username, acc.name, password=acc.password, number=acc.number)

    def device(self, device_id: str) -> LabDevice:
        """The handle of ``device_id``, started (to ``registered``) on first use in a lazy lab."""
        try:
            dev = self.devices[device_id]
        except KeyError:
            raise LabError(f"device {device_id!r} is not part of this lab; devices: "
                           f"{', '.join(self.devices) or 'none'}") from None
        if self.started and dev.strategy is None and not dev.blocked:
            self._start_device(dev)
        return dev

    def _start_device(self, dev: LabDevice) -> None:
        with dev.lock:
            if dev.strategy is not None or dev.blocked:
                return
            spec = dev.spec
            opts = dict(self.driver_options.get(spec.id, {}))
            opts.setdefault("index", [s.id for s in self.specs].index(spec.id))
            if self.slowness is not None:
                opts.setdefault("slowness", self.slowness)
            # Physical/vendor drivers: how to reach the device, its credential references, the gateway's API.
            opts.setdefault("connection", spec.entry.connection)
            opts.setdefault("credentials", spec.entry.credentials)
            opts.setdefault("ssh", spec.entry.ssh)  # the device's CLI over SSH (audiocodes-mp)
            dev.labgrid = self.labgrid
            opts.setdefault("control", self.control)
            opts.setdefault("network", spec.entry.network)  # dynamic E911 (lab header)
            ctx = DriverContext(
                device_id=spec.id, vendor=spec.vendor, model=spec.model, firmware=spec.firmware, profile=spec.profile,
                lines=dev.lines, transport=spec.transport,
                mac=(spec.entry.mac or default_mac(spec.vendor, spec.id)),
                gateway=self.target, work_dir=self.data_dir / "devices" / spec.id, allocator=self.allocator,
                options=opts)
            try:
                dev.driver = driver_class(spec.driver)(ctx)
            except NotApplicable as exc:
                dev.blocked_reason = f"cannot be driven: {exc.reason}"
                return
            dev.strategy = DeviceStrategy(spec.id, self._actions(dev))
            # A worker that dies or hangs breaks the device for good: later operations get DeviceBroken
            # with that first cause instead of a fresh failure each.
            dev.driver.on_failure = dev.strategy.mark_broken
            try:
                dev.strategy.transition(DeviceState.REGISTERED)
                if isinstance(dev.driver, Identity):
                    dev.identity = dev.driver.identity()
                    # Physical drivers: the firmware the device reports decides its verdict, not the inventory's.
                    refusal = getattr(dev.driver, "read_back_refusal", lambda: None)()
                    if refusal:
                        dev.blocked_reason = refusal
            except (DeviceBroken, NotApplicable) as exc:
                log.warning("%s did not reach registered: %s", spec.id, exc)

    def _actions(self, dev: LabDevice) -> dict:
        drv = dev.driver

        def factory_reset() -> None:
            if not drv.active:
                drv.activate()
            if isinstance(drv, Provisioning):
                with contextlib.suppress(NotApplicable):  # no factory reset of its own: a fresh start is one
                    drv.factory_reset()

        def provision() -> None:
            if isinstance(drv, Provisioning):
                try:
                    drv.provision()
                except NotApplicable as exc:
                    # Not provisioned by the gateway's provisioning server (e.g. Tango Extend, configured by its
                    # own platform): the lab gives it its SIP account directly, and registration decides.
                    steps.record("lab.provision.skipped", args={"reason": exc.reason}, device_id=dev.id)

        def register() -> None:
            infos = []
            for i in range(len(dev.lines)):
                info = drv.register(i)
                infos.append(info)
                if not info.ok:
                    dev.registrations = tuple(infos)
                    raise RegistrationRefused(dev.id, info)
            dev.registrations = tuple(infos)

        def unregister() -> None:
            for i in range(len(dev.lines)):
                drv.unregister(i)

        actions = {"factory_reset": factory_reset, "provision": provision}
        if isinstance(drv, CallControl):
            actions.update(register=register, unregister=unregister)
        if isinstance(drv, SignIn):
            actions.update(sign_in=lambda: drv.start_sign_in(), sign_out=lambda: drv.sign_out())
        return actions

    def stop(self) -> None:
        """Close every device (worker processes included) and the gateway. Safe to call twice."""
        with self._lock:
            for dev in self.devices.values():
                if dev.driver is not None:
                    try:
                        dev.driver.deactivate()
                    except Exception:
                        log.exception("stopping %s failed", dev.id)
            if self.control is not None:
                with contextlib.suppress(Exception):
                    self.control.close()
                self.control = None
            if self.gateway is not None:
                try:
                    self.gateway.stop_thread()
                except Exception:
                    log.exception("stopping the embedded gateway failed")
            if self.labgrid is not None:
                try:
                    self.labgrid.close()
                    self.labgrid.release()
                except Exception:
                    log.exception("releasing the labgrid place failed")
                self.labgrid = None
            self.started = False
            steps.record("lab.stop", args={"devices": list(self.devices)}, device_id=None)

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Lab({self.inventory.path!r}, gateway={self.gateway_mode}, devices={len(self.devices)})"


def _control_client(url: str, token: str | None = None) -> Any:
    """The control API's client; ``token``: the gateway's control token (sent as ``Authorization: Bearer``)."""
    try:
        from gateway.control_api.client import ControlClient
    except ImportError:
        return None
    return ControlClient(url, token=token)
