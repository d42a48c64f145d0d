"""Gateway configuration: listening addresses, policies and limits, from flags and an optional YAML file.

```yaml
sip: 127.0.0.1:5060          # UDP and TCP; TLS on port + 1 unless tls: is given
tls: 127.0.0.1:5061
ipv6: false                  # also listen on [::1] with the same ports
http: 127.0.0.1:8080         # control API
domain: sipgw.lab            # SIP domain and digest realm
firmware_policy: enforce     # or warn
registration: {min_expires: 60, default_expires: 3600, max_expires: 7200}
digest_algorithms: [SHA-256, MD5]
trace_entries: 200000
max_message_size: 65535
sip_t1: 0.5                  # RFC 3261 T1 in seconds; a closed lab network may lower it (§17.1.1.1)
registrar_processes: 1       # >1: UDP REGISTERs shared with registrar worker processes (gateway/shards)
```

The control token (``control_token``) is not a key of the file: ``gateway serve`` sets it from
``--control-token-file FILE`` or from the token it makes in ``<data dir>/control-token`` when ``http`` is not on
loopback (see :mod:`gateway.control_api.auth`); Python callers give ``GatewayConfig(control_token=...)``.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from device_profiles.yamlio import DataFileError, DataProblem, load_yaml, locate, validate_data

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT``, ``HOST`` → (host, port); raises ValueError saying what is wrong."""
    text = text.strip()
    if not text:
        raise ValueError("empty address")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"{text!r}: missing ']' after an IPv6 address")
        host, rest = text[1:end], text[end + 1:]
        port_text = rest[1:] if rest.startswith(":") else ("" if not rest else None)
        if port_text is None:
            raise ValueError(f"{text!r}: expected ':PORT' after ']'")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.count(":") > 1:
        host, port_text = text, ""
    else:
        host, port_text = text, ""
    if port_text:
        if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise ValueError(f"{text!r}: port {port_text!r} is not a number from 0 to 65535")
        port = int(port_text)
    else:
        port = default_port
    if not host:
        raise ValueError(f"{text!r}: missing host")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.match(host):
            raise ValueError(f"{text!r}: {host!r} is not an IP address or host name") from None
    return host, port


class RegistrationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_expires: int = Field(default=60, ge=1)
    default_expires: int = Field(default=3600, ge=1)
    max_expires: int = Field(default=7200, ge=1)

    @model_validator(mode="after")
    def _order(self) -> RegistrationConfig:
        if not self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError("need min_expires <= default_expires <= max_expires")
        return self


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sip: str = "127.0.0.1:5060"
    tls: str | None = None
    ipv6: bool = False
    http: str = "127.0.0.1:8080"
    domain: str = "sipgw.lab"
    firmware_policy: Literal["enforce", "warn"] = "enforce"
    registration: RegistrationConfig = Field(default_factory=RegistrationConfig)
    digest_algorithms: list[Literal["SHA-256", "MD5", "SHA-512-256"]] = Field(
        default_factory=lambda: ["SHA-256", "MD5"], min_length=1)
    trace_entries: int = Field(default=200_000, ge=0)
    max_message_size: int = Field(default=65535, ge=1024, le=1 << 20)
    auth_throttle_failures: int = Field(default=20, ge=1)
    media_workers_max: int = Field(default=16, ge=1, le=256)
    #: RFC 3261 T1 (round-trip estimate). Timers B, F and H are 64*T1: a smaller T1 on a closed lab
    #: network makes an unreachable device fail in 64*T1 instead of 32 s (§17.1.1.1 allows it).
    sip_t1: float = Field(default=0.5, ge=0.01, le=5.0)
    #: Processes that answer UDP REGISTERs, the gateway's own included: above 1, registrar workers share them by
    #: address of record (:mod:`gateway.shards`), for benches with more REGISTERs than one CPU takes.
    registrar_processes: int = Field(default=1, ge=1, le=16)
    media: Literal["none", "node"] = "none"  # "node": Teams clients and PSTN parties on pjsua2 workers
    #: The control token: when set, the control API and the provisioning server's /admin pages need
    #: ``Authorization: Bearer <token>`` (:mod:`gateway.control_api.auth`). Not read from the file.
    control_token: SecretStr | None = Field(default=None, exclude=True)

    @field_validator("sip", "http", "tls")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            parse_hostport(value, 0)
        return value

    @property
    def sip_address(self) -> tuple[str, int]:
        return parse_hostport(self.sip, 5060)

    @property
    def tls_address(self) -> tuple[str, int]:
        if self.tls:
            return parse_hostport(self.tls, 5061)
        host, port = self.sip_address
        return host, (port + 1 if port else 0)

    @property
    def http_address(self) -> tuple[str, int]:
        return parse_hostport(self.http, 8080)


def load_config(path: str | Path | None, **overrides: object) -> GatewayConfig:
    """The configuration file (if any) with command-line overrides on top; errors are located."""
    data: dict = {}
    if path is not None:
        root = load_yaml(path)
        if isinstance(root, dict) and "control_token" in root:
            raise DataFileError([DataProblem(locate(root, ["control_token"], str(path)),
                                             "control_token: not a key of the configuration file; give the token "
                                             "with --control-token-file FILE (a file only you can read)")])
        if root is not None:
            cfg = validate_data(GatewayConfig, root, str(path))
            data = cfg.model_dump(exclude_unset=True)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return GatewayConfig.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError from command-line values
        from device_profiles.yamlio import Location

        raise DataFileError([DataProblem(Location("command line", 1, 1), str(exc))]) from None
