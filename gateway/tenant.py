"""The tenant file: the users, policies and PSTN numbers a bench gateway starts with.

```yaml
users:
  - number: "+14255550101"      # E.164; omit for a user without a phone number
    name: Avery Chen            # display name
    username: avery             # SIP digest user name of the device signed in as this user
    password: s3cret            # its SIP password (stored only as digests)
    policy: {allow_sip_devices_calling: true, allow_call_redirect: true}
    teams_client: true          # the user also has a Teams client (an endpoint on the gateway)
    voicemail: true
    common_area: false
pstn:
  - "+12065550100"              # one number
  - "+1206555*"                 # a prefix
  - {prefix: "+44", length: 12} # a prefix with a total digit count
```

Errors name the file, line and column. Loading changes nothing until the whole file is valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from device_profiles.yamlio import DataFileError, DataProblem, load_yaml, locate, validate_data
from gateway.services.model import CallingPolicy, PstnRange, User

_NUMBER = re.compile(r"^\+?[0-9]{3,15}$")
_PREFIX = re.compile(r"^\+?[0-9]{1,15}\*?$")


class TenantError(DataFileError):
    pass


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class PolicyEntry(_Closed):
    allow_sip_devices_calling: bool = True
    allow_call_redirect: bool = True


class UserEntry(_Closed):
    username: str = Field(pattern=r"^[A-Za-z0-9._+-]{1,64}$")
    name: str = Field(min_length=1)
    password: str = Field(min_length=1)
    number: str | None = None
    policy: PolicyEntry = Field(default_factory=PolicyEntry)
    teams_client: bool = False
    voicemail: bool = True
    common_area: bool = False

    @field_validator("number", mode="before")
    @classmethod
    def _number(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError("write the number in quotes, e.g. \"+14255550101\"")
        if isinstance(value, str) and not _NUMBER.match(value.strip()):
            raise ValueError(f"{value!r} is not a phone number: digits with an optional leading +")
        return value


class PstnEntry(_Closed):
    prefix: str
    length: int | None = Field(default=None, ge=3, le=15)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _PREFIX.match(value):
            raise ValueError(f"{value!r} is not a number or prefix: digits with an optional leading + and trailing *")
        return value


class TenantFile(_Closed):
    users: list[UserEntry] = Field(default_factory=list)
    pstn: list[PstnEntry] = Field(default_factory=list)

    @field_validator("pstn", mode="before")
    @classmethod
    def _pstn_strings(cls, value: object) -> object:
        if isinstance(value, list):
            out = []
            for item in value:
                if isinstance(item, int) and not isinstance(item, bool):
                    raise ValueError(f"write the PSTN number {item} in quotes")
                if isinstance(item, str):
                    s = item.strip()
                    if not _PREFIX.match(s):
                        raise ValueError(f"{item!r} is not a number or prefix (e.g. \"+12065550100\" or \"+1206555*\")")
                    digits = len(s.lstrip("+").rstrip("*"))
                    item = {"prefix": s.rstrip("*"), "length": None if s.endswith("*") else digits}
                out.append(item)
            return out
        return value

    @model_validator(mode="after")
    def _unique(self) -> TenantFile:
        names: set[str] = set()
        numbers: set[str] = set()
        for u in self.users:
            if u.username in names:
                raise ValueError(f"username {u.username!r} is listed twice")
            names.add(u.username)
            if u.number:
                key = u.number.lstrip("+")
                if key in numbers:
                    raise ValueError(f"number {u.number} is assigned to two users")
                numbers.add(key)
        return self


@dataclass(frozen=True)
class Tenant:
    users: tuple[tuple[User, str], ...]  # (user, password)
    pstn: tuple[PstnRange, ...]


def load_tenant(path: str | Path, text: str | None = None) -> Tenant:
    """Read and validate a tenant file; raises :class:`TenantError` listing located problems."""
    path = str(path)
    try:
        root = load_yaml(path, text)
        if root is None:
            return Tenant((), ())
        if not isinstance(root, dict):
            problem = DataProblem(locate(root, [], path), "a tenant file is a mapping with users: and pstn:")
            raise DataFileError([problem])
        data: TenantFile = validate_data(TenantFile, root, path)
    except DataFileError as exc:
        raise TenantError(exc.problems) from None
    users = tuple(
        (
            User(username=u.username, name=u.name, number=u.number,
                 policy=CallingPolicy(u.policy.allow_sip_devices_calling, u.policy.allow_call_redirect),
                 teams_client=u.teams_client, voicemail=u.voicemail, common_area=u.common_area),
            u.password,
        )
        for u in data.users
    )
    return Tenant(users, tuple(PstnRange(p.prefix, p.length) for p in data.pstn))
