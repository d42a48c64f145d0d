"""Firmware verdicts for (model, firmware) and for User-Agent strings.

A verdict is one of ``supported``, ``below_minimum``, ``newer_than_approved`` (allowed, flagged as not yet
approved), ``wrong_family`` (e.g. Cisco enterprise firmware on an MPP model, or the AudioCodes Skype for
Business line where the SIP line is required), ``unknown_model`` (with the closest catalogue names) or
``unparseable``. Every verdict carries a reason a person can act on, naming the model, the version found
and the version required. Nothing here raises on odd input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum

from device_profiles.catalogue import Catalogue, ModelProfile, default_catalogue
from device_profiles.firmware import (
    FirmwareVersion,
    UnparseableFirmware,
    compare_to_requirement,
    try_parse_firmware,
)
from device_profiles.user_agent import UAMatch, parse_user_agent


class Verdict(StrEnum):
    SUPPORTED = "supported"
    BELOW_MINIMUM = "below_minimum"
    NEWER_THAN_APPROVED = "newer_than_approved"
    WRONG_FAMILY = "wrong_family"
    UNKNOWN_MODEL = "unknown_model"
    UNPARSEABLE = "unparseable"

    @property
    def acceptable(self) -> bool:
        """Whether a device with this verdict may go on to feature tests."""
        return self in (Verdict.SUPPORTED, Verdict.NEWER_THAN_APPROVED)


#: Family tags of the User-Agent rules, as the firmware schemes name families.
_UA_FAMILY_TO_FIRMWARE_FAMILY = {
    "cisco-mpp": "mpp",
    "cisco-enterprise": "enterprise",
    "audiocodes-sip": "sip",
    "audiocodes-sfb": "sfb",
}

_FAMILY_NAMES = {
    "mpp": "multiplatform (MPP) firmware",
    "enterprise": "enterprise firmware",
    "sip": "the 2.x SIP firmware line",
    "sfb": "the 3.x Skype for Business firmware line",
}

_FAMILY_ACTIONS = {
    ("Cisco", "enterprise"): "convert it to multiplatform firmware with Cisco's firmware conversion guide",
    ("AudioCodes", "sfb"): (
        "SIP Gateway moves it to the 2.x SIP line when it provisions the phone; load the SIP firmware from "
        "AudioCodes if the move does not happen"
    ),
}


@dataclass(frozen=True)
class FirmwareVerdict:
    verdict: Verdict
    reason: str
    vendor: str | None = None
    model: str | None = None
    kind: str | None = None
    found: str | None = None
    required: str | None = None
    approved: str | None = None
    family: str | None = None
    closest: tuple[str, ...] = ()
    user_agent: str | None = None
    mac: str | None = None
    rule: str | None = None

    @property
    def acceptable(self) -> bool:
        return self.verdict.acceptable

    def as_dict(self) -> dict:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        data["firmware"] = self.found  # the version as the device reported it (CLI contract key)
        data["closest"] = list(self.closest)
        return data


def _describe(profile: ModelProfile) -> str:
    return f"{profile.vendor} {profile.model}"


def _requirement(profile: ModelProfile, text: str | None) -> str | None:
    """A requirement as a person reads it: Yealink's bare "83" is a firmware series."""
    if text and profile.firmware_scheme == "yealink" and text.isdigit():
        return f"firmware series {text} (versions x.{text}.y.z)"
    return text


def _family_name(family: str | None) -> str:
    return _FAMILY_NAMES.get(family or "", f"the {family} firmware family")


def check_firmware(
    model: str,
    version: str | None,
    *,
    vendor: str | None = None,
    family: str | None = None,
    catalogue: Catalogue | None = None,
) -> FirmwareVerdict:
    """The verdict for a device of ``model`` running ``version``.

    ``family`` is a hint from whoever read the version (the User-Agent layer knows that ``-3PCC`` means MPP
    even when the version string does not say so).
    """
    cat = catalogue or default_catalogue()
    profile = cat.find(model, vendor) if model else None
    if profile is None:
        return _unknown_model(cat, model, vendor, version)
    return verdict_for_profile(profile, version, family=family)


def _unknown_model(cat: Catalogue, model: str | None, vendor: str | None, version: str | None) -> FirmwareVerdict:
    vendor_name = cat.vendor_name(vendor) if vendor else None
    closest = tuple(cat.closest(model or "", vendor_name)) if model else ()
    if vendor and vendor_name is None:
        known = ", ".join(cat.vendors)
        reason = f"vendor {vendor!r} is not in the vendor table (known vendors: {known})"
    elif vendor_name == "Alcatel-Lucent Enterprise":
        reason = f"{vendor_name} is listed in the vendor table without models, so {model!r} cannot be verified"
    else:
        where = f"{vendor_name} models" if vendor_name else "the vendor table"
        reason = f"model {model!r} is not among {where}"
        if closest:
            reason += f"; closest catalogue names: {', '.join(closest)}"
    return FirmwareVerdict(Verdict.UNKNOWN_MODEL, reason, vendor=vendor_name or vendor, model=model,
                           found=version, closest=closest)


def verdict_for_profile(profile: ModelProfile, version: str | None, *, family: str | None = None) -> FirmwareVerdict:
    entry = profile.entry
    base = dict(vendor=profile.vendor, model=profile.model, kind=profile.kind, found=version,
                required=entry.min_firmware, approved=entry.approved_firmware)
    name = _describe(profile)
    if version is None or not str(version).strip():
        if entry.min_firmware is None:
            return FirmwareVerdict(
                Verdict.SUPPORTED,
                f"{name}: no firmware version is known, and the vendor table lists no minimum for this model",
                **base,
            )
        return FirmwareVerdict(
            Verdict.UNPARSEABLE,
            f"{name}: no firmware version was reported, so the minimum {entry.min_firmware} cannot be checked",
            **base,
        )
    found = try_parse_firmware(profile.firmware_scheme, str(version).strip(), family=family)
    if isinstance(found, UnparseableFirmware):
        return FirmwareVerdict(Verdict.UNPARSEABLE, f"{name}: {found.reason}", **base)
    base["family"] = found.family
    if entry.min_firmware is None:
        return FirmwareVerdict(
            Verdict.SUPPORTED,
            f"{name} runs {version}; the vendor table lists no minimum firmware for this model",
            **base,
        )

    required_family = profile.required_family
    min_family = entry.min_firmware_family
    minimum = _parse_requirement(profile, entry.min_firmware, min_family)
    if found.family and required_family and found.family != required_family:
        # Wrong firmware line. Where the table's minimum is itself on that line (AudioCodes 4xxHD: 3.2.1 on
        # the Skype for Business line), a version below it is reported as below the minimum first.
        if min_family == found.family and compare_to_requirement(found, minimum) < 0:
            return FirmwareVerdict(
                Verdict.BELOW_MINIMUM,
                f"{name} runs {version} ({_family_name(found.family)}), below the minimum {entry.min_firmware}; "
                f"upgrade to {entry.min_firmware} or later so SIP Gateway can move it to "
                f"{_family_name(required_family)}",
                **base,
            )
        action = _FAMILY_ACTIONS.get((profile.vendor, found.family), f"install {_family_name(required_family)}")
        return FirmwareVerdict(
            Verdict.WRONG_FAMILY,
            f"{name} runs {version}, which is {_family_name(found.family)}; SIP Gateway requires "
            f"{_family_name(required_family)} (minimum {entry.min_firmware}): {action}",
            **base,
        )
    if min_family and found.family != min_family:
        # The listed minimum belongs to another line than the one the device correctly runs.
        return FirmwareVerdict(
            Verdict.SUPPORTED,
            f"{name} runs {version} on {_family_name(found.family)}, the line SIP Gateway requires; the listed "
            f"minimum {entry.min_firmware} is on {_family_name(min_family)} "
            f"({entry.min_above_approved_reason})",
            **base,
        )
    try:
        below = compare_to_requirement(found, minimum) < 0
    except TypeError:
        return FirmwareVerdict(
            Verdict.UNPARSEABLE,
            f"{name}: {version} cannot be compared with the minimum {entry.min_firmware}",
            **base,
        )
    if below:
        return FirmwareVerdict(
            Verdict.BELOW_MINIMUM,
            f"{name} runs {version}, below the minimum {_requirement(profile, entry.min_firmware)} in the vendor "
            f"table; upgrade it to {_requirement(profile, entry.min_firmware)} or later"
            + (f" (approved: {entry.approved_firmware})" if entry.approved_firmware else ""),
            **base,
        )
    if entry.approved_firmware:
        approved = _parse_requirement(profile, entry.approved_firmware, None)
        if compare_to_requirement(found, approved) > 0:
            return FirmwareVerdict(
                Verdict.NEWER_THAN_APPROVED,
                f"{name} runs {version}, newer than the approved {entry.approved_firmware}: allowed "
                f"(minimum {entry.min_firmware}), but not yet approved for SIP Gateway",
                **base,
            )
    return FirmwareVerdict(
        Verdict.SUPPORTED,
        f"{name} runs {version}, which meets the minimum {_requirement(profile, entry.min_firmware)}"
        + (f" and is within the approved {entry.approved_firmware}" if entry.approved_firmware else ""),
        **base,
    )


def _parse_requirement(profile: ModelProfile, text: str, family: str | None) -> FirmwareVersion:
    parsed = try_parse_firmware(profile.firmware_scheme, text, family=family)
    if isinstance(parsed, UnparseableFirmware):  # the catalogue loader rejects this; kept as a guard
        raise ValueError(f"catalogue version {text!r} of {_describe(profile)} does not parse: {parsed.reason}")
    return parsed


def check_user_agent(
    user_agent: str, *, source: str = "sip", catalogue: Catalogue | None = None
) -> FirmwareVerdict:
    """The verdict for a device identified only by its SIP ``User-Agent``/``Server`` or HTTP User-Agent."""
    cat = catalogue or default_catalogue()
    text = user_agent if isinstance(user_agent, str) else ""
    match: UAMatch | None = parse_user_agent(text, source=source)
    if match is None:
        shown = text if len(text) <= 120 else text[:117] + "..."
        return FirmwareVerdict(
            Verdict.UNKNOWN_MODEL,
            f"User-Agent {shown!r} matches no vendor format sipgw-lab knows",
            user_agent=text,
        )
    family = _UA_FAMILY_TO_FIRMWARE_FAMILY.get(match.family or "")
    profile = cat.find(match.model, match.vendor)
    extra = dict(user_agent=text, mac=match.mac, rule=match.rule)
    if profile is None:
        v = _unknown_model(cat, match.model, match.vendor, match.firmware)
    else:
        v = verdict_for_profile(profile, match.firmware, family=family)
    return replace(v, **extra)
