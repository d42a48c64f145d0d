"""Yealink phone and DECT firmware: ``<hardware id>.<series>.<major>.<minor>``.

``66.86.0.15`` is hardware 66 (T4xS), firmware series 86, release 0.15; ``96.86.5.1`` a T5x;
``108.83.0.40`` a W75 DECT manager (User-Agents: ``Yealink SIP-T46S 66.86.0.15``, ``Yealink W75DM
108.83.0.40``).

The seed table's requirement ``83`` is a bare series meaning "series 83 or later" (Microsoft: firmware
``x.83.y.z``), so a bare series parses too, as does the placeholder form ``x.83.y.z``; both read as a
requirement and print as ``83``.

Order (a documented choice, since firmware of different hardware ids is for different phones): series
first, then the release fields, then the hardware id only as a final tie-break, a bare series sorting
before every release of that series: ``83`` < ``66.83.0.35`` < ``66.86.0.15`` < ``96.86.5.1``.
Requirement: against a bare series only the series counts (``66.86.0.15`` meets ``83``, ``66.82.0.20``
does not); against a full version the series and release count and the hardware id is ignored.

``family`` is the series as text (``"83"``); it is descriptive, series are ordered, not separate lines.
"""

from __future__ import annotations

import re

from device_profiles.firmware.base import (
    FirmwareScheme,
    FirmwareVersion,
    UnparseableFirmware,
    cmp,
)

__all__ = ["YealinkScheme"]

_FULL = re.compile(r"(?P<hw>\d{1,3})\.(?P<series>\d{1,3})\.(?P<major>\d{1,3})\.(?P<minor>\d{1,4})")
_SERIES = re.compile(r"(?P<series>\d{1,3})|[xX*]\.(?P<pseries>\d{1,3})\.[xXyY*]\.[xXzZ*]")

NO_HARDWARE = -1


class YealinkScheme(FirmwareScheme):
    name = "yealink"
    label = "Yealink"
    examples = ("66.86.0.15", "96.86.5.1", "108.83.0.40", "83 (series 83 or later)")

    def _normalise_family_hint(self, text: str, family: object) -> str | None:
        if family is None:
            return None
        if isinstance(family, str) and family.strip().isdigit():
            return str(int(family.strip()))
        raise UnparseableFirmware(
            f"cannot read {text!r} as Yealink firmware: the family hint {family!r} must be a firmware series "
            "number such as '83'",
            scheme=self.name,
            text=text,
        )

    def family_names(self) -> list[str]:
        return ["<series number, e.g. 83>"]

    def _parse(self, raw: str, text: str, family: str | None) -> FirmwareVersion:
        full = _FULL.fullmatch(text)
        if full is not None:
            series = int(full["series"])
            key = (series, (int(full["major"]), int(full["minor"])), int(full["hw"]))
            canonical = f"{int(full['hw'])}.{series}.{int(full['major'])}.{int(full['minor'])}"
        else:
            bare = _SERIES.fullmatch(text)
            if bare is None:
                raise self.reject(text, _why(text))
            series = int(bare["series"] or bare["pseries"])
            key = (series, (), NO_HARDWARE)
            canonical = str(series)
        if family is not None and family != str(series):
            raise self.conflict(text, f"firmware series {series}", family)
        return self.make(raw, key, str(series), canonical)

    def check_families(self, found: FirmwareVersion, required: FirmwareVersion) -> None:
        """Series are ordered releases of one product line, never separate lines."""

    def compare_to_requirement(self, found: FirmwareVersion, required: FirmwareVersion) -> int:
        f_series, f_release, _ = found.key
        r_series, r_release, _ = required.key
        if not r_release:
            return cmp(f_series, r_series)
        return cmp((f_series, f_release), (r_series, r_release))


def _why(text: str) -> str:
    fields = text.split(".")
    if all(f.isdigit() for f in fields) and len(fields) not in (1, 4):
        return (
            f"it has {len(fields)} fields; Yealink versions have four (hardware.series.major.minor) "
            "or are a bare series"
        )
    if re.search(r"\s", text):
        return "strip the model name or MAC address around the version first"
    return ""
