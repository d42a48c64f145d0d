"""Schemes by name, the scheme of each catalogue vendor, and the module-level API built on them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from device_profiles.firmware.algo import AlgoScheme
from device_profiles.firmware.ascom import AscomScheme
from device_profiles.firmware.audiocodes import AudioCodesScheme
from device_profiles.firmware.base import (
    FirmwareScheme,
    FirmwareVersion,
    IncomparableFirmware,
    UnparseableFirmware,
)
from device_profiles.firmware.cisco import CiscoScheme
from device_profiles.firmware.generic import GenericScheme
from device_profiles.firmware.gigaset import GigasetScheme
from device_profiles.firmware.poly import PolyScheme
from device_profiles.firmware.spectralink import SpectralinkScheme
from device_profiles.firmware.yealink import YealinkScheme

__all__ = [
    "SCHEMES",
    "VENDOR_SCHEMES",
    "UnknownScheme",
    "UnknownVendor",
    "compare_to_requirement",
    "get_scheme",
    "parse_firmware",
    "scheme_for_vendor",
    "try_parse_firmware",
]

_REGISTRY: Mapping[str, FirmwareScheme] = MappingProxyType(
    {
        scheme.name: scheme
        for scheme in (
            CiscoScheme(),
            PolyScheme(),
            YealinkScheme(),
            AudioCodesScheme(),
            SpectralinkScheme(),
            AscomScheme(),
            GigasetScheme(),
            AlgoScheme(),
            GenericScheme(),
        )
    }
)

#: Every scheme name, in the order of the seed table's vendors, ``generic`` last.
SCHEMES: tuple[str, ...] = tuple(_REGISTRY)

#: The catalogue's vendor names (as the seed table spells them) and their schemes.
VENDOR_SCHEMES: Mapping[str, str] = MappingProxyType(
    {
        "Cisco": "cisco",
        "Poly": "poly",
        "Yealink": "yealink",
        "AudioCodes": "audiocodes",
        "Spectralink": "spectralink",
        "Ascom": "ascom",
        "Gigaset": "gigaset",
        "Algo": "algo",
        "Alcatel-Lucent Enterprise": "generic",
        "Tango Extend": "generic",
    }
)

# Other spellings met in User-Agents, product names and vendor documents.
_VENDOR_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "ciscosystems": "cisco",
        "polycom": "poly",
        "hppoly": "poly",
        "obihai": "poly",
        "audc": "audiocodes",
        "kirk": "spectralink",
        "gigasetpro": "gigaset",
        "algosolutions": "algo",
        "alcatellucent": "generic",
        "ale": "generic",
        "tango": "generic",
        "snom": "generic",
    }
)


def _fold(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.casefold())


_VENDOR_LOOKUP: Mapping[str, str] = MappingProxyType(
    {**{_fold(vendor): scheme for vendor, scheme in VENDOR_SCHEMES.items()}, **_VENDOR_ALIASES}
)


class UnknownScheme(LookupError):
    """A scheme name that is not registered."""

    def __init__(self, name: object) -> None:
        self.name = name
        self.reason = f"unknown firmware scheme {name!r}; the schemes are {', '.join(SCHEMES)}"
        super().__init__(self.reason)


class UnknownVendor(LookupError):
    """A vendor name the catalogue does not know."""

    def __init__(self, vendor: object) -> None:
        self.vendor = vendor
        self.reason = (
            f"no firmware scheme for vendor {vendor!r}; the catalogue's vendors are "
            f"{', '.join(VENDOR_SCHEMES)}"
        )
        super().__init__(self.reason)


def get_scheme(name: str) -> FirmwareScheme:
    """The scheme object registered under ``name`` (one of :data:`SCHEMES`)."""
    scheme = _REGISTRY.get(name) if isinstance(name, str) else None
    if scheme is None:
        raise UnknownScheme(name)
    return scheme


def scheme_for_vendor(vendor: str) -> str:
    """The scheme name for a catalogue vendor; case, spaces and hyphens do not matter.

    ``scheme_for_vendor("Alcatel-Lucent Enterprise") == "generic"``. Raises :class:`UnknownVendor`.
    """
    scheme = _VENDOR_LOOKUP.get(_fold(vendor)) if isinstance(vendor, str) else None
    if scheme is None:
        raise UnknownVendor(vendor)
    return scheme


def parse_firmware(scheme: str, text: str, *, family: str | None = None) -> FirmwareVersion:
    """Parse ``text`` under ``scheme``; raise :class:`UnparseableFirmware` and nothing else.

    ``family`` is what the caller already knows about the firmware line (the User-Agent layer passes
    ``"mpp"`` for a Cisco ``-3PCC`` User-Agent, ``"sip"`` for AudioCodes' generic-SIP User-Agent); a hint
    that contradicts a marker in the text is an error, not silently overridden.
    """
    try:
        impl = get_scheme(scheme)
    except UnknownScheme as exc:
        raise UnparseableFirmware(
            f"cannot read {text!r} as firmware: {exc.reason}", scheme=None, text=text
        ) from None
    return impl.parse(text, family=family)


def try_parse_firmware(
    scheme: str, text: str, *, family: str | None = None
) -> FirmwareVersion | UnparseableFirmware:
    """Like :func:`parse_firmware`, but returns the :class:`UnparseableFirmware` instead of raising it."""
    try:
        return parse_firmware(scheme, text, family=family)
    except UnparseableFirmware as exc:
        return exc


def compare_to_requirement(found: FirmwareVersion, required: FirmwareVersion) -> int:
    """Whether ``found`` meets ``required`` under the vendor's meaning of a requirement.

    Returns -1 when ``found`` is below the requirement (an upgrade is needed), 0 when it is the required
    release (or a build of it: Poly ``5.9.5.0614`` against ``5.9.5``; Yealink ``66.83.0.35`` against series
    ``83``), 1 when it is later. So "meets the requirement" is ``compare_to_requirement(...) >= 0``.

    Vendor meanings: a requirement without a build is met by every build of its release (Cisco, Poly,
    AudioCodes, Spectralink, Ascom); Yealink's bare series ``83`` means "series 83 or later"; Gigaset build
    metadata and Algo's missing trailing fields do not count.

    Raises :class:`IncomparableFirmware` (a ``TypeError``) when the two cannot be measured against each
    other: different schemes, or firmware lines of one vendor that do not replace each other (Cisco
    enterprise vs MPP: convert, do not upgrade; AudioCodes SIP vs Skype for Business line; a MediaPack
    load vs a phone load; Ascom TDM revisions vs dotted firmware; two different known Poly families).
    """
    for name, value in (("found", found), ("required", required)):
        if not isinstance(value, FirmwareVersion):
            raise TypeError(f"compare_to_requirement: {name} must be a FirmwareVersion, got {value!r}")
    if found.scheme != required.scheme:
        raise IncomparableFirmware(
            f"{found.scheme} firmware {str(found)!r} cannot be measured against the {required.scheme} "
            f"requirement {str(required)!r}: they use different version schemes"
        )
    return get_scheme(found.scheme).compare_to_requirement(found, required)
