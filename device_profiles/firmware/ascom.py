"""Ascom firmware: dotted releases for handsets and IP-DECT, revision codes for TDM base stations.

* Handsets (d43/d63/d81/d83, i63, Myco 3) and the IP-DECT infrastructure (IPBS access points, IPBL
  gateway, IPVM virtual appliance) print ``major.minor.patch``: ``2.11.4``, ``3.0.8``, ``4.13.1``,
  ``11.8.8``, ``11.9.11``. The IP-DECT software descends from innovaphone, whose info page prints a
  product tag with the version in brackets, so ``IPBS[11.8.8]``, ``IPBL 11.9.11`` and a trailing build
  (``11.8.8 build 108`` or ``11.8.8-108``) are read too; the product tag sets family ``"ip-dect"``.
* TDM base stations carry a hardware/software revision ``R<number><letter>``: ``R3N`` < ``R4A`` < ``R4B``;
  family ``"tdm"``.

Order: dotted versions by release, then build (none first); all dotted versions sort before every TDM
revision (an arbitrary but fixed choice: the two never compare in a requirement). Requirement: a TDM
revision never compares with dotted firmware, nor an ``"ip-dect"`` version with a ``"handset"`` one
(:class:`IncomparableFirmware`); a requirement without a build is met by every build of its release.
Families of dotted versions are descriptive: they come from the product tag or the hint and do not take
part in the order.
"""

from __future__ import annotations

import re
from typing import ClassVar

from device_profiles.firmware.base import (
    FirmwareScheme,
    FirmwareVersion,
    IncomparableFirmware,
    cmp,
    compare_release_and_build,
)

__all__ = ["AscomScheme"]

IP_DECT = "ip-dect"
HANDSET = "handset"
TDM = "tdm"
_DOTTED, _REVISION = 0, 1

_DOTTED_RE = re.compile(
    r"""
    (?: (?P<product> IPBS\d?x? | IPBL | IPVM ) (?: [ ]* (?P<open>\[) | [ ]+ ) )?
    (?P<a>\d{1,3}) \. (?P<b>\d{1,3}) (?: \. (?P<c>\d{1,3}) )?
    (?(open)\])
    (?: [ ]+ build [ ]* (?P<build>\d{1,6}) | - (?P<dbuild>\d{1,6}) )?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_REVISION_RE = re.compile(r"R(?P<number>\d{1,2})(?P<letter>[A-Z])", re.IGNORECASE)


class AscomScheme(FirmwareScheme):
    name = "ascom"
    label = "Ascom"
    examples = ("2.11.4", "11.8.8", "IPBS[11.9.11]", "R4B")
    families: ClassVar[dict[str, str]] = {
        IP_DECT: IP_DECT,
        "ipdect": IP_DECT,
        "ipbs": IP_DECT,
        "ipbl": IP_DECT,
        "ipvm": IP_DECT,
        HANDSET: HANDSET,
        TDM: TDM,
    }

    def _parse(self, raw: str, text: str, family: str | None) -> FirmwareVersion:
        revision = _REVISION_RE.fullmatch(text)
        if revision is not None:
            if family not in (None, TDM):
                raise self.conflict(text, "a TDM base station revision code", family or "")
            number, letter = int(revision["number"]), revision["letter"].upper()
            return self.make(raw, (_REVISION, number, letter), TDM, f"R{number}{letter}")

        m = _DOTTED_RE.fullmatch(text)
        if m is None:
            raise self.reject(text, _why(text))
        if family == TDM:
            raise self.conflict(text, "a dotted (handset or IP-DECT) version", TDM)
        if m["product"]:
            if family not in (None, IP_DECT):
                raise self.conflict(text, f"the IP-DECT product tag {m['product']!r}", family or "")
            family = IP_DECT
        release = (int(m["a"]), int(m["b"]), int(m["c"] or 0))
        build_text = m["build"] or m["dbuild"]
        build = (int(build_text),) if build_text is not None else ()
        canonical = ".".join(str(n) for n in release) + (f" build {build[0]}" if build else "")
        return self.make(raw, (_DOTTED, release, build), family, canonical)

    def check_families(self, found: FirmwareVersion, required: FirmwareVersion) -> None:
        if found.key[0] != required.key[0]:
            raise IncomparableFirmware(
                f"Ascom firmware {str(found)!r} and the requirement {str(required)!r} belong to different "
                "products: TDM base station revisions (R3N, R4B) do not compare with handset or IP-DECT "
                "firmware numbers"
            )
        super().check_families(found, required)

    def compare_to_requirement(self, found: FirmwareVersion, required: FirmwareVersion) -> int:
        self.check_families(found, required)
        if found.key[0] == _REVISION:
            return cmp(found.key, required.key)
        return compare_release_and_build(found.key[1], found.key[2], required.key[1], required.key[2])


def _why(text: str) -> str:
    if re.fullmatch(r"R\d+", text, re.IGNORECASE):
        return "a TDM revision code ends with its letter (R4B)"
    if re.search(r"\.[xX*]", text):
        return "wildcards such as 'x' name a range, not a version"
    if "[" in text or "]" in text:
        return "the bracketed form needs both brackets around the version (IPBS[11.8.8])"
    return ""
