"""Spectralink (formerly KIRK) DECT firmware: PCS releases.

The IP-DECT servers (200/400/6500, Virtual IP-DECT Server One), base stations and the 72xx/75xx/76xx/77xx
and S3x handsets are released as ``PCS<number><letter>[<letter>]``: ``PCS22B``, ``PCS23Ca``, ``PCS22Ab``,
``PCS21Ea``, ``PCS24A``; Microsoft's newer table also lists ``PCS16E_`` for the TDM base, i.e. the same
name with a trailing underscore. The number is the release, the upper-case letter its revision and the
optional lower-case letter a maintenance drop of that revision. A bare number (``PCS24``) names the
release as a whole.

Devices and download files may append a build after the underscore (``PCS22Ab_1234``); that is accepted
and sorts after the plain release. Spectralink's public documentation does not show what the web GUI or
SNMP ``ipDectSoftwareVersion`` print beyond the PCS name, so dotted numbers (``22.2.3``) are rejected with
a reason rather than guessed at; the harness reads the PCS name from the server.

Order: ``PCS22A`` < ``PCS22Aa`` < ``PCS22Ab`` < ``PCS22B`` < ``PCS23Ca`` < ``PCS24`` < ``PCS24A``.
Requirement: a requirement without a build is met by every build of that release.
"""

from __future__ import annotations

import re
from typing import ClassVar

from device_profiles.firmware.base import (
    FirmwareScheme,
    FirmwareVersion,
    compare_release_and_build,
)

__all__ = ["SpectralinkScheme"]

PCS = "pcs"

_PCS_RE = re.compile(
    r"(?:PCS|pcs|Pcs)(?P<number>\d{1,3})(?:(?P<letter>[A-Z])(?P<sub>[a-z])?)?(?:_(?P<build>\d{1,6})?)?"
)


class SpectralinkScheme(FirmwareScheme):
    name = "spectralink"
    label = "Spectralink PCS"
    examples = ("PCS22B", "PCS23Ca", "PCS22Ab", "PCS16E_", "PCS22Ab_1234")
    families: ClassVar[dict[str, str]] = {PCS: PCS, "dect": PCS, "ip-dect": PCS}

    def _parse(self, raw: str, text: str, family: str | None) -> FirmwareVersion:
        m = _PCS_RE.fullmatch(text)
        if m is None:
            raise self.reject(text, _why(text))
        number = int(m["number"])
        letter, sub = m["letter"] or "", m["sub"] or ""
        build = (int(m["build"]),) if m["build"] is not None else ()
        canonical = f"PCS{number}{letter}{sub}" + (f"_{build[0]}" if build else "")
        return self.make(raw, ((number, letter, sub), build), PCS, canonical)

    def compare_to_requirement(self, found: FirmwareVersion, required: FirmwareVersion) -> int:
        (f_release, f_build), (r_release, r_build) = found.key, required.key
        return compare_release_and_build(f_release, f_build, r_release, r_build)


def _why(text: str) -> str:
    if re.fullmatch(r"\d+(?:\.\d+)+", text):
        return "Spectralink DECT releases are named PCS<number><letter>, not dotted numbers"
    if re.fullmatch(r"\d{1,3}[A-Z][a-z]?", text):
        return "the release name starts with 'PCS'"
    if re.fullmatch(r"(?i:pcs)\d{1,3}[A-Za-z]{2,}.*", text):
        return "the revision letter is upper case and the optional maintenance letter lower case (PCS22Ab)"
    if re.fullmatch(r"(?i:pcs)\d{1,3}[a-z].*", text):
        return "the revision letter after the release number is upper case (PCS22B)"
    return ""
