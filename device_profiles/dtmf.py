"""Each vendor's (and device kind's) default DTMF method, from ``dtmf.yaml``.

The gateway falls back to this for a registered device when nothing in the call says how the device carries
digits (its SDP answer is not known before the INVITE is forked). Each row names the vendor setting it comes from.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from device_profiles.yamlio import DataFileError, DataProblem, load_yaml, locate, validate_data

DtmfMethodName = Literal["rfc4733", "info"]
DATA_FILE = Path(__file__).with_name("dtmf.yaml")


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: DtmfMethodName
    source: str = Field(min_length=10)


class _VendorRow(_Row):
    kinds: dict[str, _Row] = Field(default_factory=dict)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vendors: dict[str, _VendorRow]


@dataclass(frozen=True)
class DtmfDefault:
    """A vendor's (or kind's) default DTMF method and where that default is documented."""

    vendor: str
    kind: str | None
    method: str  # "rfc4733" | "info"
    source: str


@dataclass(frozen=True)
class DtmfDefaults:
    rows: dict[str, _VendorRow]

    def lookup(self, vendor: str, kind: str | None = None) -> DtmfDefault | None:
        row = self.rows.get(vendor)
        if row is None:
            return None
        if kind is not None and kind in row.kinds:
            k = row.kinds[kind]
            return DtmfDefault(vendor, kind, k.method, k.source)
        return DtmfDefault(vendor, None, row.method, row.source)


def load_dtmf_defaults(path: str | Path = DATA_FILE, text: str | None = None) -> DtmfDefaults:
    """Load and validate the file; every problem is located (``file:line:column``) and nothing half-read is used.
    Vendors and kinds must be the catalogue's."""
    from device_profiles.catalogue import default_catalogue
    from device_profiles.schema import DeviceKind

    root = load_yaml(path, text)
    data: _File = validate_data(_File, root, str(path))
    cat = default_catalogue()
    kinds = set(DeviceKind.__args__)
    problems = []
    for vendor, row in data.vendors.items():
        if vendor not in cat.vendors:
            problems.append(DataProblem(locate(root, ["vendors", vendor], str(path)),
                                        f"vendor {vendor!r} is not in the catalogue (known: {sorted(cat.vendors)})"))
        for kind in row.kinds:
            if kind not in kinds:
                problems.append(DataProblem(locate(root, ["vendors", vendor, "kinds", kind], str(path)),
                                            f"{vendor}: {kind!r} is not a device kind (known: {sorted(kinds)})"))
    if problems:
        raise DataFileError(problems)
    return DtmfDefaults(dict(data.vendors))


@functools.lru_cache(maxsize=1)
def default_dtmf_defaults() -> DtmfDefaults:
    return load_dtmf_defaults()


@functools.lru_cache(maxsize=1024)
def dtmf_default_for_user_agent(user_agent: str | None) -> DtmfDefault | None:
    """The catalogue's default DTMF method for the device a SIP User-Agent names (None: not recognised)."""
    if not user_agent:
        return None
    from device_profiles.catalogue import default_catalogue
    from device_profiles.user_agent import parse_user_agent

    match = parse_user_agent(user_agent)
    if match is None:
        return None
    profile = default_catalogue().find(match.model, match.vendor)
    return default_dtmf_defaults().lookup(match.vendor, profile.kind if profile is not None else None)


__all__ = ["DtmfDefault", "DtmfDefaults", "default_dtmf_defaults", "dtmf_default_for_user_agent",
           "load_dtmf_defaults"]
