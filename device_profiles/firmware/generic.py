"""The fallback scheme: dotted numbers with an optional suffix.

Used for vendors without a scheme of their own (Alcatel-Lucent Enterprise ``2.14.03.000.2345``, Snom
``10.1.141.13``; Tango Extend eSIMs report no firmware). A leading ``v``/``V`` is ignored.

Order: the numbers first, missing fields being zero (``1.2`` == ``1.2.0``); then the suffix, a version
without a suffix sorting first. The scheme cannot know whether a vendor's suffix marks a pre-release
(``-rc1``) or a later patch (``b``); it treats every suffix as later, which is right for the firmware
labels seen in the table and documented here for the others. Suffixes compare in natural order, digit
runs as numbers and letters case-insensitively (``1.0-rc2`` < ``1.0-rc10``). Spelling is kept in
``str()`` (``2.14.03.000.2345`` stays as written).
"""

from __future__ import annotations

import re
from typing import Any

from device_profiles.firmware.algo import significant_fields
from device_profiles.firmware.base import FirmwareScheme, FirmwareVersion

__all__ = ["GenericScheme", "natural_key"]

# The numbers are matched possessively and a suffix starts with a letter, or with one of "-_+~" before a
# digit, so every string has one reading ("1.2.34-" is rejected, not read as 1.2.3 plus "4-").
_VERSION = re.compile(
    r"[vV]?(?P<numbers>\d{1,18}+(?:\.\d{1,18}+)*+)(?P<suffix>(?:[-_+~.]?[A-Za-z]|[-_+~][0-9])[0-9A-Za-z.\-_+~]*)?"
)
_TOKEN = re.compile(r"\d+|[A-Za-z]+")


def natural_key(text: str) -> tuple[tuple[int, Any], ...]:
    """Digit runs as numbers, letter runs case-folded; punctuation only separates."""
    return tuple((0, int(t)) if t.isdigit() else (1, t.casefold()) for t in _TOKEN.findall(text))


class GenericScheme(FirmwareScheme):
    name = "generic"
    label = "dotted numeric"
    examples = ("2.14.03.000.2345", "10.1.141.13", "1.2.3-rc1")

    def _parse(self, raw: str, text: str, family: str | None) -> FirmwareVersion:
        m = _VERSION.fullmatch(text)
        if m is None:
            raise self.reject(text, _why(text))
        numbers = tuple(int(n) for n in m["numbers"].split("."))
        suffix = m["suffix"] or ""
        key = (significant_fields(numbers), natural_key(suffix))
        return self.make(raw, key, None, m["numbers"] + suffix)


def _why(text: str) -> str:
    if not re.match(r"[vV]?\d", text):
        return "it does not start with a number"
    if re.search(r"\s", text):
        return "it contains spaces"
    return ""
