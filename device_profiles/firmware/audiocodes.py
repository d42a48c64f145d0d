"""AudioCodes firmware: 400HD-series IP phones and MediaPack analog gateways.

IP phones print ``major.minor.patch`` with an optional fourth build field: ``3.2.1``, ``2.2.16.681``,
``3.4.8.808``. The seed table's note: the 2.x line is the generic SIP firmware and the 3.x line the Skype
for Business firmware, which is why some minimums (3.2.1) exceed the approved 2.x version. Families:

* ``"sfb"`` when the text carries the UC marker (``UC_3.4.6.604``, ``C450HD_UC_3.4.6.604`` as in
  ``AUDC-IPPhone-C450HD_UC_3.4.6.604/1``), or from the hint;
* ``"sip"`` from a ``SIP_`` marker (firmware file names such as ``420HD_SIP_2.2.16.704``) or the hint;
* otherwise by the Microsoft table's convention: major 2 is ``"sip"``, major 3 is ``"sfb"``, any other
  major has no family. AudioCodes has since also shipped generic-SIP releases numbered 3.x (manuals for
  "Ver. 3.5.1 - Generic SIP"), so the User-Agent layer should pass ``family="sip"`` for the generic
  ``AUDC-IPPhone/<version> (<model>; <MAC>)`` form.

Phone order: by release, then build (none first), then line (no family < sip < sfb) as a tie-break, so
the same number on two lines is two different versions. Requirement: a requirement without a build is
met by every build of it; a found version on the other line (sip vs sfb) raises
:class:`IncomparableFirmware`, because the SIP Gateway moves phones from the SfB line to the SIP line.

MediaPack gateways print ``major.minor<letter>.build.patch``: ``6.60A.367.001``, ``7.40A.400.063``,
``7.26A.356.075``, ``7.20A.258.459``; also with ``v.`` (``AudioCodes-Sip-Gateway-MP-112 FXS/v.6.60A.367.001``)
or ``F`` (``MP11x_SIP_F6.60A.367.001.cmp``) in front; ``6.60A`` alone names the release. Families:
``"mediapack-6.60A"``, ``"mediapack-7.x"`` (the 7.2 software line: 7.20A, 7.26A, 7.40A, ...), otherwise
``"mediapack-<major>.<minor><letter>"``. MediaPack loads sort after every phone load; among themselves by
major, minor, letter, build, patch, and any two MediaPack loads compare. A phone load never compares with
a MediaPack load.
"""

from __future__ import annotations

import re
from typing import ClassVar

from device_profiles.firmware.base import (
    FirmwareScheme,
    FirmwareVersion,
    IncomparableFirmware,
    compare_release_and_build,
)

__all__ = ["AudioCodesScheme"]

SIP = "sip"
SFB = "sfb"
MEDIAPACK = "mediapack"
_PHONE, _GATEWAY = 0, 1
_LINE_RANK = {None: 0, SIP: 1, SFB: 2}

_PHONE_RE = re.compile(
    r"""
    (?: (?P<uc> (?:[A-Za-z0-9]+)? _? UC_ ) | (?P<sip> (?:[A-Za-z0-9]+_)? SIP_ ) | v\.? )?
    (?P<a>\d{1,2}) \. (?P<b>\d{1,2}) \. (?P<c>\d{1,3}) (?: \. (?P<build>\d{1,5}) )?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_GATEWAY_RE = re.compile(
    r"""
    (?: [A-Za-z0-9-]+ _ (?:SIP_)? )? (?: F | v\.? )?
    (?P<major>\d{1,2}) \. (?P<minor>\d{2}) (?P<letter>[A-Za-z])
    (?: \. (?P<build>\d{1,4}) \. (?P<patch>\d{1,4}) )?
    (?: \.cmp )?
    """,
    re.VERBOSE | re.IGNORECASE,
)

_GATEWAY_FAMILY_RE = re.compile(r"mediapack-(?P<major>\d{1,2})\.(?P<release>\d{2}[A-Z]|x)", re.IGNORECASE)


def _gateway_family(major: int, minor: int, letter: str) -> str:
    if major == 7:
        return "mediapack-7.x"
    return f"mediapack-{major}.{minor:02d}{letter}"


class AudioCodesScheme(FirmwareScheme):
    name = "audiocodes"
    label = "AudioCodes"
    examples = ("3.2.1", "2.2.16.681", "UC_3.4.6.604", "6.60A.367.001", "7.40A.400.063")
    families: ClassVar[dict[str, str]] = {
        SIP: SIP,
        "generic": SIP,
        "generic-sip": SIP,
        SFB: SFB,
        "uc": SFB,
        "skype-for-business": SFB,
        "lync": SFB,
        MEDIAPACK: MEDIAPACK,
    }

    def _normalise_family_hint(self, text: str, family: object) -> str | None:
        # Every MediaPack family this scheme reports is accepted back as a hint (mediapack-6.40A too).
        named = _GATEWAY_FAMILY_RE.fullmatch(family.strip()) if isinstance(family, str) else None
        if named is None:
            return super()._normalise_family_hint(text, family)
        return f"mediapack-{named['major']}.{named['release'].upper().replace('X', 'x')}"

    def family_names(self) -> list[str]:
        return [SIP, SFB, MEDIAPACK, "mediapack-6.60A", "mediapack-7.x"]

    def _parse(self, raw: str, text: str, family: str | None) -> FirmwareVersion:
        phone = _PHONE_RE.fullmatch(text)
        if phone is not None:
            return self._phone(raw, text, phone, family)
        gateway = _GATEWAY_RE.fullmatch(text)
        if gateway is not None:
            return self._gateway(raw, text, gateway, family)
        raise self.reject(text, _why(text))

    def _phone(self, raw: str, text: str, m: re.Match[str], hint: str | None) -> FirmwareVersion:
        if hint is not None and hint.startswith(MEDIAPACK):
            raise self.conflict(text, "an IP phone version number", hint)
        release = (int(m["a"]), int(m["b"]), int(m["c"]))
        build = (int(m["build"]),) if m["build"] is not None else ()
        if m["uc"]:
            if hint == SIP:
                raise self.conflict(text, "the UC (Skype for Business) marker", hint)
            family: str | None = SFB
        elif m["sip"]:
            if hint == SFB:
                raise self.conflict(text, "the SIP firmware marker", hint)
            family = SIP
        elif hint is not None:
            family = hint
        else:
            family = {2: SIP, 3: SFB}.get(release[0])
        key = (_PHONE, release, build, _LINE_RANK[family])
        canonical = ".".join(str(n) for n in release) + (f".{build[0]}" if build else "")
        return self.make(raw, key, family, canonical)

    def _gateway(self, raw: str, text: str, m: re.Match[str], hint: str | None) -> FirmwareVersion:
        major, minor, letter = int(m["major"]), int(m["minor"]), m["letter"].upper()
        family = _gateway_family(major, minor, letter)
        if hint is not None and hint not in (MEDIAPACK, family):
            raise self.conflict(text, f"a MediaPack version of the {family!r} line", hint)
        build = (int(m["build"]), int(m["patch"])) if m["build"] is not None else ()
        key = (_GATEWAY, (major, minor, letter), build)
        canonical = f"{major}.{minor:02d}{letter}" + (f".{build[0]:03d}.{build[1]:03d}" if build else "")
        return self.make(raw, key, family, canonical)

    def check_families(self, found: FirmwareVersion, required: FirmwareVersion) -> None:
        f_product, r_product = found.key[0], required.key[0]
        if f_product != r_product:
            kinds = {_PHONE: "IP phone", _GATEWAY: "MediaPack gateway"}
            raise IncomparableFirmware(
                f"AudioCodes {kinds[f_product]} firmware {str(found)!r} cannot be measured against the "
                f"{kinds[r_product]} requirement {str(required)!r}"
            )
        families = (found.family, required.family)
        if f_product == _PHONE and None not in families and found.family != required.family:
            names = {SIP: "generic SIP (2.x) line", SFB: "Skype for Business (3.x, UC) line"}
            raise IncomparableFirmware(
                f"AudioCodes firmware {str(found)!r} is on the {names[str(found.family)]} and the "
                f"requirement {str(required)!r} is on the {names[str(required.family)]}; the two lines are "
                "numbered independently (SIP Gateway moves phones from the Skype for Business line to the "
                "SIP line), so compare against the version listed for the device's own line"
            )

    def compare_to_requirement(self, found: FirmwareVersion, required: FirmwareVersion) -> int:
        self.check_families(found, required)
        return compare_release_and_build(found.key[1], found.key[2], required.key[1], required.key[2])


def _why(text: str) -> str:
    if re.fullmatch(r"\d+\.\d+[A-Za-z]\.\d+", text):
        return "a MediaPack version needs both the build and the patch (e.g. 6.60A.367.001)"
    if re.search(r"\.[xX*]", text):
        return "wildcards such as 'x' name a range, not a version"
    if re.search(r"[\s;(/]", text):
        return "strip the product name, model or MAC address around the version first"
    return ""
