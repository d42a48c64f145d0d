"""Algo speaker, intercom, visual alerter and paging adapter firmware: dotted numbers.

Algo releases read ``5.3``, ``5.3.4``, ``3.3.3`` (``GET /api/info/about`` reports ``Firmware Version``).
Missing fields are zero: ``5.3`` == ``5.3.0`` < ``5.3.4`` < ``5.4``. A requirement is compared the same
way; the seed table's ``5.3`` is met by ``5.3`` and everything after it.
"""

from __future__ import annotations

import re

from device_profiles.firmware.base import FirmwareScheme, FirmwareVersion

__all__ = ["AlgoScheme", "significant_fields"]

_VERSION = re.compile(r"[vV]?(?P<fields>\d{1,4}(?:\.\d{1,6}){0,3})")


def significant_fields(fields: tuple[int, ...]) -> tuple[int, ...]:
    """Drop trailing zero fields, so that ``5.3``, ``5.3.0`` and ``5.3.0.0`` have one key."""
    end = len(fields)
    while end > 1 and fields[end - 1] == 0:
        end -= 1
    return fields[:end]


class AlgoScheme(FirmwareScheme):
    name = "algo"
    label = "Algo"
    examples = ("5.3", "5.3.4", "3.3.3")

    def _parse(self, raw: str, text: str, family: str | None) -> FirmwareVersion:
        m = _VERSION.fullmatch(text)
        if m is None:
            raise self.reject(text, _why(text))
        fields = tuple(int(f) for f in m["fields"].split("."))
        canonical = ".".join(str(f) for f in fields)
        return self.make(raw, significant_fields(fields), None, canonical)


def _why(text: str) -> str:
    if re.search(r"\.[xX*]", text):
        return "wildcards such as 'x' name a range, not a version"
    if re.fullmatch(r"[vV]?\d+(?:\.\d+){4,}", text):
        return "Algo versions have at most four fields"
    return ""
