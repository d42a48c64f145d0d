"""Gigaset PRO DECT base station firmware (N610, N670, N870, N870E IP PRO).

Gigaset publishes ``major.minor.patch`` releases (``2.52.0`` in the seed table). The bases report them in
the User-Agent with a hardware/product prefix, a ``V`` and semver-style build metadata:
``Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605`` (the scheme receives
``83.V2.11.0+build.a546b91``). Provisioning tools pair such strings with releases of the same line
(``83.V2.48.0``, ``83.V2.49.1``, ``83.V2.62.1`` for N670/N870/N870E), so ``V2.11.0`` is release 2.11.0,
an older release than ``2.52.0``; the hardware prefix is ignored.

Build metadata after ``+`` does not take part in the order or in equality (as in Semantic Versioning
2.0.0, section 10): ``2.52.0+build.1`` == ``2.52.0``. ``raw`` and ``str()`` keep it.
"""

from __future__ import annotations

import re

from device_profiles.firmware.base import FirmwareScheme, FirmwareVersion

__all__ = ["GigasetScheme"]

_VERSION = re.compile(
    r"""
    (?: (?P<hw>\d{1,3}) \. (?=[Vv]) )? [Vv]?
    (?P<a>\d{1,3}) \. (?P<b>\d{1,3}) \. (?P<c>\d{1,3})
    (?: \+ (?P<meta>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*) )?
    """,
    re.VERBOSE,
)


class GigasetScheme(FirmwareScheme):
    name = "gigaset"
    label = "Gigaset"
    examples = ("2.52.0", "V2.52.0", "83.V2.11.0+build.a546b91")

    def _parse(self, raw: str, text: str, family: str | None) -> FirmwareVersion:
        m = _VERSION.fullmatch(text)
        if m is None:
            raise self.reject(text, _why(text))
        release = (int(m["a"]), int(m["b"]), int(m["c"]))
        canonical = ".".join(str(n) for n in release) + (f"+{m['meta']}" if m["meta"] else "")
        return self.make(raw, release, None, canonical)


def _why(text: str) -> str:
    if ";" in text or "/" in text:
        return "strip the product name and MAC address around the version first"
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return "Gigaset versions have three fields (major.minor.patch)"
    if "+" in text:
        return "build metadata after '+' must be dot-separated letters, digits and hyphens"
    return ""
