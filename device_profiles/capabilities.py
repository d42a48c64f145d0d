"""Which seed features apply to a catalogue model, with the reason wherever one does not.

The data is ``capabilities.yaml`` (per device kind) plus model-level exceptions in the vendor files.
Keys are feature ids (``call_transfer``) or ``feature.aspect`` for one case of a feature
(``sign_in_out.local``, ``teams_meetings.dial_out``). These results drive the "not applicable" outcome in
every suite and report.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_profiles.catalogue import Catalogue, ModelProfile, default_catalogue


@dataclass(frozen=True)
class Applicability:
    feature: str
    applicable: bool
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.applicable


class UnknownFeature(KeyError):
    def __init__(self, feature: str, known: list[str]):
        self.feature = feature
        self.known = known
        super().__init__(f"unknown feature {feature!r}; known features: {', '.join(known)}")


def applicability(
    profile: ModelProfile, feature: str, catalogue: Catalogue | None = None
) -> Applicability:
    """Whether ``feature`` (``id`` or ``id.aspect``) applies to ``profile``, and why not when it does not."""
    cat = catalogue or default_catalogue()
    base, _, aspect = feature.partition(".")
    if base not in cat.feature_ids():
        raise UnknownFeature(feature, cat.feature_ids())
    kind_caps = cat.capabilities.kinds.get(profile.kind)
    kind_na = kind_caps.not_applicable if kind_caps else {}
    keys = [feature, base] if aspect else [base]
    for table in (profile.entry.not_applicable, kind_na):
        for key in keys:
            if key in table:
                return Applicability(feature, False, table[key])
    if base == "dynamic_e911" and not profile.entry.e911:
        return Applicability(
            feature,
            False,
            f"{profile.vendor} {profile.model} is not marked for dynamic emergency calling (footnote 1 of the "
            "vendor table); its emergency calls use the static emergency address",
        )
    return Applicability(feature, True)


def feature_matrix(profile: ModelProfile, catalogue: Catalogue | None = None) -> dict[str, Applicability]:
    """Every seed feature for one model, in the seed's order."""
    cat = catalogue or default_catalogue()
    return {f: applicability(profile, f, cat) for f in cat.feature_ids()}


def line_source(profile: ModelProfile, catalogue: Catalogue | None = None) -> str | None:
    """How a device of this kind exposes lines: ``usable_ports`` (ATAs), ``handsets`` (DECT systems), or None."""
    cat = catalogue or default_catalogue()
    caps = cat.capabilities.kinds.get(profile.kind)
    return caps.lines_from if caps else None


def kind_notes(profile: ModelProfile) -> list[str]:
    """Facts about the model's kind that reports should show next to its capabilities."""
    notes = []
    vf = profile.vendor_file
    if profile.kind == "dect_handset" and vf.handset_firmware_over_the_air:
        notes.append("Handset firmware is delivered over the air by its base or IP-DECT server.")
    if vf.e911_location_discovery == "lldp-only" and profile.entry.e911:
        notes.append("Location for dynamic E911 is discovered over LLDP only.")
    if vf.firmware_auto_install:
        notes.append("The device reboots by itself to install the firmware the gateway selects.")
    return notes
