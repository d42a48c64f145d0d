"""Poly (Polycom) firmware: UC Software (VVX, Trio, Edge E), Rove DECT, OBi and Poly ATA.

All of them print ``major.minor.patch`` optionally followed by a fourth field that is a *build*:
``5.9.5`` vs ``5.9.5.0614`` (VVX, ``PolycomVVX-VVX_400-UA/5.9.5.0614``), ``6.4.3.5814``, Trio ``7.2.2.1094``,
Rove ``8.0.5.0002``, Edge E ``8.1.0.12774``, OBi ``3.2.4.8441`` (``OBIHAI/OBi202-3.2.2.5921``, the model
prefix may stay on). A two-field release (``7.2``) means ``7.2.0``.

Order: by release, then build, a release without a build first: ``5.9.5`` < ``5.9.5.0614`` < ``5.9.6``.
Requirement: a requirement without a build is met by every build of its release (the seed table's
``5.9.5`` is met by ``5.9.5.0614``: :func:`compare_to_requirement` gives 0).

Families are descriptive and only known from a hint, the ``OBi`` model prefix or a ``UCS`` tag:
``"ucs"`` (VVX, Trio, Edge E), ``"rove"``, ``"obi"``, ``"ata"`` (Poly ATA 400). Two known, different
families do not compare.
"""

from __future__ import annotations

import re
from typing import ClassVar

from device_profiles.firmware.base import (
    FirmwareScheme,
    FirmwareVersion,
    compare_release_and_build,
)

__all__ = ["PolyScheme"]

_VERSION = re.compile(
    r"""
    (?: (?P<obi>OBi\d{3}[A-Za-z]*) - | (?P<ucs> UCS | UC[ ]?Software ) [ ]? | v )?
    (?P<a>\d{1,3}) \. (?P<b>\d{1,3}) (?: \. (?P<c>\d{1,3}) )? (?: \. (?P<build>\d{1,6}) )?
    """,
    re.VERBOSE | re.IGNORECASE,
)


class PolyScheme(FirmwareScheme):
    name = "poly"
    label = "Poly UC Software"
    examples = ("5.9.5", "5.9.5.0614", "6.4.3.5814", "8.0.5.0002", "OBi302-3.2.4.8441")
    families: ClassVar[dict[str, str]] = {
        "ucs": "ucs",
        "uc software": "ucs",
        "vvx": "ucs",
        "trio": "ucs",
        "edge": "ucs",
        "rove": "rove",
        "obi": "obi",
        "ata": "ata",
    }

    def _parse(self, raw: str, text: str, family: str | None) -> FirmwareVersion:
        m = _VERSION.fullmatch(text)
        if m is None:
            raise self.reject(text, _why(text))
        if m["obi"]:
            if family not in (None, "obi"):
                raise self.conflict(text, f"the OBi model prefix {m['obi']!r}", family or "")
            family = "obi"
        elif m["ucs"]:
            if family not in (None, "ucs"):
                raise self.conflict(text, f"the UC Software tag {m['ucs']!r}", family or "")
            family = "ucs"
        release = (int(m["a"]), int(m["b"]), int(m["c"] or 0))
        build = (int(m["build"]),) if m["build"] is not None else ()
        canonical = ".".join(str(n) for n in release) + (f".{build[0]:04d}" if build else "")
        return self.make(raw, (release, build), family, canonical)

    def compare_to_requirement(self, found: FirmwareVersion, required: FirmwareVersion) -> int:
        self.check_families(found, required)
        (f_release, f_build), (r_release, r_build) = found.key, required.key
        return compare_release_and_build(f_release, f_build, r_release, r_build)


def _why(text: str) -> str:
    if re.search(r"\.[xX*]", text):
        return "wildcards such as 'x' name a range, not a version"
    if text.count(".") > 3:
        return "it has more than four fields (release major.minor.patch plus one build)"
    if "_" in text:
        return "strip the MAC address or other User-Agent text after the version first"
    return ""
