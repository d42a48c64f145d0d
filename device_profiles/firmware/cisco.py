"""Cisco IP phone and ATA firmware: multiplatform (MPP, "3PCC") and enterprise loads.

Forms seen in the seed table, in Cisco's release notes and load names, and in User-Agents:

* MPP releases: ``11.3.5MPP``, ``12-0-1MPP`` (dash and dot separators mean the same release).
* MPP builds: ``11-2-2MPP0101-013`` (ATA), ``11.3.7MPP0001-609``, and load names such as
  ``sip88xx.12-0-1MPP-3``, ``sipyyyy.11-2-1MPP-312.loads`` or ``cmterm-68xx.12-0-4MPP0001-195_REL.zip``.
* MPP service releases: Cisco writes release ``11.1(0)SR1`` as the load ``11-1-0MSR1-1`` (``MSR`` =
  multiplatform service release); the ATA191 reports ``Cisco-ATA191-MPP/11-1-0MSR3-9``.
* Enterprise loads: ``sip88xx.12-8-1-0001-455``, ``sip78xx.14-3-1-0201-246``, ``sip88xx.12-1-1SR1-4``:
  no ``MPP`` token, a plain ``SR`` tag, a dashed build.
* User-Agents carry only the release: ``Cisco-CP-8865-3PCC/12.0.3`` (MPP, as the ``-3PCC`` marker says)
  or ``Cisco-CP8851/12.1.1`` (enterprise). Such a bare release names no firmware line, so the caller
  passes ``family="mpp"`` or ``family="enterprise"``; without a hint it is rejected rather than guessed.
* Release-note spelling ``12.0(1)`` / ``11.1(0)SR1`` is read as well (family from the hint).

Order: enterprise loads sort below every MPP load (they never meet an MPP requirement; see
:meth:`CiscoScheme.compare_to_requirement`); within a line by release, then service release (``SR``/``MSR``
number, none = 0), then build, a version without a build sorting first (``11-2-2MPP`` <
``11-2-2MPP0101-013``). Builds compare as numbers (``0101-013`` = (101, 13)).
"""

from __future__ import annotations

import re
from typing import ClassVar

from device_profiles.firmware.base import (
    FirmwareScheme,
    FirmwareVersion,
    IncomparableFirmware,
    UnparseableFirmware,
    compare_release_and_build,
)

__all__ = ["CiscoScheme"]

MPP = "mpp"
ENTERPRISE = "enterprise"
_FAMILY_RANK = {ENTERPRISE: 0, MPP: 1}

# Load-name prefixes: sip88xx., sip8845_65., sip78xx., sipyyyy., cmterm-68xx., ATA19x.
_LOAD_PREFIX = re.compile(r"^(?P<load>(?:sip|cmterm-|ata)[0-9a-z_-]*?)\.(?=\d)", re.IGNORECASE)
_FILE_SUFFIX = re.compile(r"(?:\.loads|_rel\.zip|\.zip)$", re.IGNORECASE)

_VERSION = re.compile(
    r"""
    (?P<major>\d{1,3}) (?P<sep>[.-]) (?P<minor>\d{1,3})
    (?: (?P=sep) (?P<maint>\d{1,3}) | \( (?P<pmaint>\d{1,3}) \) )
    (?: (?P<msr>MSR) (?P<msrn>\d{1,3}) | SR (?P<srn>\d{1,3}) )?
    (?P<mpp>MPP)?
    (?: (?P<glued1>\d{1,6}) (?: - (?P<glued2>\d{1,6}) )?
      | - (?P<dash1>\d{1,6}) (?: - (?P<dash2>\d{1,6}) )?
    )?
    """,
    re.VERBOSE | re.IGNORECASE,
)
# A User-Agent sometimes abbreviates the release to two fields (Cisco-CP-8841-3PCC/11.0).
_SHORT = re.compile(r"(?P<major>\d{1,3})\.(?P<minor>\d{1,3})")


class CiscoScheme(FirmwareScheme):
    name = "cisco"
    label = "Cisco MPP"
    examples = ("11.3.5MPP", "12-0-1MPP", "11-2-2MPP0101-013")
    families: ClassVar[dict[str, str]] = {
        "mpp": MPP,
        "3pcc": MPP,
        "multiplatform": MPP,
        "enterprise": ENTERPRISE,
        "cisco-enterprise": ENTERPRISE,
    }

    def _parse(self, raw: str, text: str, family: str | None) -> FirmwareVersion:
        body = _FILE_SUFFIX.sub("", text)
        load = _LOAD_PREFIX.match(body)
        if load:
            body = body[load.end() :]

        short = _SHORT.fullmatch(body)
        m = None if short else _VERSION.fullmatch(body)
        if short is None and m is None:
            raise self.reject(text, _why(body))

        if short is not None:
            release = (int(short["major"]), int(short["minor"]), 0)
            sr, build, mpp_marker, enterprise_marker = 0, (), None, None
        else:
            assert m is not None
            maint = m["maint"] if m["maint"] is not None else m["pmaint"]
            release = (int(m["major"]), int(m["minor"]), int(maint))
            sr = int(m["msrn"] or m["srn"] or 0)
            if m["glued1"] is not None and not m["mpp"]:
                raise self.reject(text, "a build glued to the release needs the MPP token before it")
            b1, b2 = (m["glued1"], m["glued2"]) if m["glued1"] is not None else (m["dash1"], m["dash2"])
            build = tuple(int(b) for b in (b1, b2) if b is not None)
            mpp_marker = None
            if m["mpp"]:
                mpp_marker = "the MPP token"
            elif m["msr"]:
                mpp_marker = "the MSR (multiplatform service release) tag"
            enterprise_marker = None
            if mpp_marker is None:
                # Release notes write "11.1(0)SR1" for both lines; only the load form "12-1-1SR1-4" is
                # enterprise-only (MPP loads say MSR).
                if m["srn"] is not None and m["pmaint"] is None:
                    enterprise_marker = "an enterprise SR tag"
                elif build:
                    enterprise_marker = "an enterprise build suffix"
                elif load:
                    enterprise_marker = f"the load name {load['load']!r} without MPP"

        if mpp_marker and family == ENTERPRISE:
            raise self.conflict(text, mpp_marker, "enterprise")
        if enterprise_marker and family == MPP:
            raise self.conflict(text, enterprise_marker, "mpp")
        resolved = MPP if mpp_marker else ENTERPRISE if enterprise_marker else family
        if resolved is None:
            raise UnparseableFirmware(
                f"{text!r} names a Cisco release but not its firmware line: it carries neither the MPP token "
                "nor an enterprise build; pass family='mpp' (the User-Agent says -3PCC or -MPP) or "
                "family='enterprise' (e.g. Cisco-CP8851/12.1.1)",
                scheme=self.name,
                text=raw,
            )
        key = (_FAMILY_RANK[resolved], release, sr, build)
        return self.make(raw, key, resolved, _canonical(resolved, release, sr, build))

    def compare_to_requirement(self, found: FirmwareVersion, required: FirmwareVersion) -> int:
        """Enterprise firmware never meets an MPP requirement (and vice versa): that raises
        :class:`IncomparableFirmware`, since the fix is a conversion, not an upgrade. Otherwise a
        requirement without a build (``11.1.1MPP``) is met by every build of that release."""
        if found.family != required.family:
            if found.family == ENTERPRISE:
                raise IncomparableFirmware(
                    f"Cisco enterprise firmware {str(found)!r} cannot meet the multiplatform requirement "
                    f"{str(required)!r}: the device must be converted to multiplatform (MPP) firmware first"
                )
            raise IncomparableFirmware(
                f"Cisco multiplatform firmware {str(found)!r} cannot be measured against the enterprise "
                f"requirement {str(required)!r}"
            )
        _, f_release, f_sr, f_build = found.key
        _, r_release, r_sr, r_build = required.key
        return compare_release_and_build((f_release, f_sr), f_build, (r_release, r_sr), r_build)


def _canonical(family: str, release: tuple[int, int, int], sr: int, build: tuple[int, ...]) -> str:
    text = ".".join(str(n) for n in release)
    dashed = "".join(f"-{b}" for b in build) if len(build) < 2 else f"-{build[0]:04d}-{build[1]:03d}"
    if family == MPP:
        if sr:
            return f"{text}MSR{sr}{dashed}"
        if len(build) == 2:
            return f"{text}MPP{build[0]:04d}-{build[1]:03d}"
        return f"{text}MPP{dashed}"
    return f"{text}{f'SR{sr}' if sr else ''}{dashed}"


def _why(body: str) -> str:
    if re.search(r"[xX*]", re.sub(r"(?i)^(?:sip|cmterm-|ata)[0-9a-z_-]*?\.|MPP|MSR|SR", "", body)):
        return "wildcards such as 'x' name a range, not a version"
    if re.search(r"\d\.\d+-\d", body) or re.search(r"\d-\d+\.\d", body):
        return "it mixes '.' and '-' between the release numbers"
    if not re.match(r"\d", body):
        return "it does not start with the release number"
    return ""
