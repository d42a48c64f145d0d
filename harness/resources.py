"""Inventory entries as data: where a device is and how to reach it (no behaviour here).

The lab inventory (``lab_inventory.yaml``) is validated against these closed models. Credentials are
only ever references to environment variables, never values.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Transport = Literal["udp", "tcp", "tls"]

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
_NUMBER = re.compile(r"^\+?[0-9]{3,15}$")
_MAC = re.compile(r"^[0-9a-f]{12}$")
_ENV = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class EnvRef(_Closed):
    """A secret kept in an environment variable: ``{env: POLY_ADMIN_PASSWORD}``."""

    env: str = Field(pattern=_ENV)


class Credentials(_Closed):
    username: EnvRef | None = None
    password: EnvRef | None = None
    token: EnvRef | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_literals(cls, data: object) -> object:
        if isinstance(data, dict):
            for key, value in data.items():
                if isinstance(value, str | int | float):
                    raise ValueError(
                        f"credentials.{key}: write a reference to an environment variable, e.g. "
                        f"{{env: {key.upper()}_VAR}}, never the value itself"
                    )
        return data

    def references(self) -> dict[str, str]:
        return {k: v.env for k, v in (("username", self.username), ("password", self.password),
                                      ("token", self.token)) if v is not None}


class Connection(_Closed):
    """How the harness reaches a physical device's control path."""

    # ``simulator``: the vendor's API simulator in front of an emulated device (harness.drivers.physical.simulated)
    protocol: Literal["http", "https", "ssh", "telnet", "serial", "websocket", "sip", "simulator"] = "https"
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    path: str | None = None
    serial_port: str | None = None
    baudrate: int | None = Field(default=None, ge=300)
    verify_tls: bool = False
    labgrid_place: str | None = None

    @model_validator(mode="after")
    def _needs_target(self) -> Connection:
        if self.protocol == "serial" and not self.serial_port:
            raise ValueError("a serial connection needs serial_port")
        if self.protocol not in ("serial", "simulator") and not self.host and not self.labgrid_place:
            raise ValueError(f"a {self.protocol} connection needs host (or labgrid_place)")
        return self


class SshCli(_Closed):
    """A device's CLI over SSH (the ``audiocodes-mp`` driver's port status and resets): ``ssh: {host, port,
    username: {env: V}, password: {env: V}, enable_password: {env: V}, device_type: audiocode_72}``.
    ``host`` defaults to the connection's host; on a simulated device (``connection: {protocol: simulator}``)
    the simulator's own SSH server is used and host and credentials are not given."""

    host: str | None = None
    port: int = Field(default=22, ge=1, le=65535)
    username: EnvRef | None = None
    password: EnvRef | None = None
    enable_password: EnvRef | None = None
    device_type: Literal["audiocode_72", "audiocode_66", "audiocode_shell"] = "audiocode_72"

    @model_validator(mode="before")
    @classmethod
    def _no_literals(cls, data: object) -> object:
        if isinstance(data, dict):
            for key in ("username", "password", "enable_password"):
                if isinstance(data.get(key), str | int | float):
                    raise ValueError(f"ssh.{key}: write a reference to an environment variable, e.g. "
                                     f"{{env: AUDIOCODES_SSH_{key.upper()}}}, never the value itself")
        return data

    def references(self) -> dict[str, str]:
        return {k: v.env for k, v in (("username", self.username), ("password", self.password),
                                      ("enable_password", self.enable_password)) if v is not None}


class Lldp(_Closed):
    chassis: str
    port: str


class Network(_Closed):
    """Network attributes a device presents (used for dynamic E911 location)."""

    subnet: str | None = None
    lldp: Lldp | None = None

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"{value!r} is not a subnet such as 10.1.20.0/24") from None
        return value


class Handset(_Closed):
    """A DECT handset registered through a base or IP-DECT server; it is that line's device."""

    model: str
    firmware: str | None = None


class Line(_Closed):
    """One line of a device: a phone number with its user. ATAs name their port, DECT systems the handset."""

    number: str
    name: str | None = None
    username: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._+-]{1,64}$")
    port: int | None = Field(default=None, ge=1)
    handset: Handset | None = None

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        if not _NUMBER.match(value):
            raise ValueError(f"{value!r} is not a phone number: write digits, optionally with a leading +")
        return value


class LabgridSection(_Closed):
    """A shared lab through labgrid (extra ``labgrid``): ``labgrid: {env: FILE, place: NAME, coordinator: HOST:PORT}``.

    ``env`` is a labgrid environment file whose targets hold the power and console resources; with a
    ``coordinator`` and ``place`` the harness acquires the place before the run and releases it after.
    """

    env: str | None = None
    place: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    coordinator: str | None = Field(default=None, pattern=r"^[^\s:/]+:[0-9]{1,5}$")

    @model_validator(mode="after")
    def _complete(self) -> LabgridSection:
        if self.coordinator and not self.place:
            raise ValueError("a labgrid coordinator needs the place to acquire: add place: NAME")
        if not self.env and not self.place:
            raise ValueError("name a labgrid environment file (env: FILE) or a place (place: NAME)")
        return self


class LabgridRef(_Closed):
    """A device's power or console through labgrid: the target in the environment and, if it has several,
    the driver's name (``power: {labgrid: {target: desk-1, driver: outlet}}``)."""

    target: str
    driver: str | None = None


class PowerRef(_Closed):
    labgrid: LabgridRef


class ConsoleRef(_Closed):
    labgrid: LabgridRef


class DeviceEntry(_Closed):
    id: str = Field(pattern=_ID)
    vendor: str
    model: str
    firmware: str | None = None
    driver: str = "emulated"
    transport: Transport | None = None
    mac: str | None = None
    connection: Connection | None = None
    credentials: Credentials | None = None
    lines: list[Line] = Field(min_length=1)
    network: Network | None = None
    tags: list[str] = Field(default_factory=list)
    power: PowerRef | None = None
    console: ConsoleRef | None = None
    ssh: SshCli | None = None

    @field_validator("firmware", mode="before")
    @classmethod
    def _firmware_text(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f"write the firmware {value!r} in quotes so it is kept exactly as written")
        return value

    @field_validator("mac")
    @classmethod
    def _mac(cls, value: str | None) -> str | None:
        if value is None:
            return None
        compact = re.sub(r"[:.-]", "", value).lower()
        if not _MAC.match(compact):
            raise ValueError(f"{value!r} is not a MAC address such as 00:04:f2:8e:5a:79")
        return compact


class ExternalGateway(_Closed):
    host: str
    port: int = Field(default=5061, ge=1, le=65535)
    transport: Transport = "tls"
    control_api: str | None = None


class GatewaySection(_Closed):
    mode: Literal["embedded", "external"] = "embedded"
    external: ExternalGateway | None = None

    @model_validator(mode="after")
    def _external(self) -> GatewaySection:
        if self.mode == "external" and self.external is None:
            raise ValueError("mode external needs an 'external:' section with host, port and transport")
        if self.mode == "embedded" and self.external is not None:
            raise ValueError("an 'external:' section is only for mode external")
        return self


class Defaults(_Closed):
    transport: Transport = "tls"


class InventoryFile(_Closed):
    gateway: GatewaySection = Field(default_factory=GatewaySection)
    defaults: Defaults = Field(default_factory=Defaults)
    devices: list[DeviceEntry] = Field(min_length=1)
    labgrid: LabgridSection | None = None

    @model_validator(mode="after")
    def _labgrid_env(self) -> InventoryFile:
        uses = [d.id for d in self.devices if d.power is not None or d.console is not None]
        if uses and (self.labgrid is None or not self.labgrid.env):
            raise ValueError(f"device(s) {', '.join(uses)} name labgrid power/console resources: add "
                             "'labgrid: {env: FILE}' naming the labgrid environment file that defines them")
        return self
