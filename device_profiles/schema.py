"""Closed schemas for the device catalogue data files.

One vendor file per section of the vendor table (``catalogue/<vendor>.yaml``). Unknown keys are errors
(``extra="forbid"``), and the rules a JSON schema cannot say well are validators here: ATA port counts,
firmware strings that must parse under the vendor's scheme, and a reason wherever a minimum is greater
than the approved version.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DeviceKind = Literal[
    "desk_phone",
    "conference_phone",
    "ata",
    "dect_base",
    "dect_handset",
    "ip_dect_server",
    "dect_access_point",
    "dect_gateway",
    "vowifi_handset",
    "wireless_handset",
    "speaker",
    "intercom",
    "visual_alerter",
    "paging_adapter",
    "display_speaker",
    "esim_endpoint",
]

DEVICE_KINDS: tuple[str, ...] = DeviceKind.__args__  # type: ignore[attr-defined]

#: Kinds whose lines are the DECT handsets registered through them.
HANDSET_HOSTS = frozenset({"dect_base", "ip_dect_server", "dect_gateway"})


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class VendorNote(_Closed):
    """A vendor-level note from the table's remarks or the notes below it."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    text: str = Field(min_length=1)
    #: ``"all"``, or a list of device kinds and/or model-name prefixes the note concerns.
    applies_to: Literal["all"] | list[str] = "all"


class EsimProfile(_Closed):
    """The Tango Extend eSIM notes: the seed's supported and unsupported feature lists, verbatim."""

    supported_features: list[str]
    unsupported_features: list[str]
    emergency_calling: str


class ModelEntry(_Closed):
    """One model of the vendor table."""

    model: str = Field(min_length=1)
    kind: DeviceKind
    min_firmware: str | None = None
    approved_firmware: str | None = None
    #: Footnote 1 of the table: supports dynamic emergency calling (E911) with SIP Gateway.
    e911: bool
    ports_total: int | None = Field(default=None, ge=1)
    ports_usable: int | None = Field(default=None, ge=1)
    remarks: str | None = None
    #: The row exactly as printed in the seed table (footnote glyphs included); None for models the
    #: seed describes only in its notes (Tango Extend).
    source_row: str | None
    #: How many times the row appears in the table (the copy repeats one AudioCodes row).
    table_occurrences: int = Field(default=1, ge=1)
    aliases: list[str] = Field(default_factory=list)
    #: The firmware family a device must run (e.g. ``mpp`` for Cisco, ``sip`` for AudioCodes phones);
    #: overrides the vendor's ``required_family``.
    required_family: str | None = None
    #: The family the listed minimum is expressed in when it differs from the required one (AudioCodes:
    #: the minimum 3.2.1 is on the Skype for Business line).
    min_firmware_family: str | None = None
    #: Why the listed minimum is greater than the approved (or installed) version.
    min_above_approved_reason: str | None = None
    #: Model-level exceptions to the kind's capabilities: feature id (or ``feature.aspect``) → reason.
    not_applicable: dict[str, str] = Field(default_factory=dict)

    @field_validator("min_firmware", "approved_firmware", mode="before")
    @classmethod
    def _versions_are_text(cls, value: object) -> object:
        # YAML reads 5.3 as a float and 83 as an int; the catalogue keeps versions as written.
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f"write the version {value!r} as a quoted string so it is kept as written")
        return value

    @model_validator(mode="after")
    def _ports(self) -> ModelEntry:
        if self.kind == "ata":
            if self.ports_total is None or self.ports_usable is None:
                raise ValueError(f"ATA {self.model}: ports_total and ports_usable are required")
            if self.ports_usable > self.ports_total:
                raise ValueError(
                    f"ATA {self.model}: ports_usable ({self.ports_usable}) exceeds ports_total ({self.ports_total})"
                )
        elif self.ports_total is not None or self.ports_usable is not None:
            raise ValueError(f"{self.model}: port counts are only for ATAs, not for a {self.kind}")
        if self.approved_firmware is not None and self.min_firmware is None:
            raise ValueError(f"{self.model}: an approved firmware without a minimum")
        if self.min_firmware_family is not None and self.min_above_approved_reason is None:
            raise ValueError(
                f"{self.model}: the minimum is on another firmware line ({self.min_firmware_family}); "
                "say why in min_above_approved_reason"
            )
        return self


class VendorFile(_Closed):
    """One ``catalogue/<vendor>.yaml`` file."""

    vendor: str = Field(min_length=1)
    firmware_scheme: str
    required_family: str | None = None
    support: str | None = None
    notes: list[VendorNote] = Field(default_factory=list)
    #: Cisco: location for dynamic E911 is discovered over LLDP only.
    e911_location_discovery: Literal["lldp-only", "any"] = "any"
    #: Poly: the device reboots by itself to install the firmware the gateway selects.
    firmware_auto_install: bool = False
    #: DECT handsets get firmware over the air from their base or server.
    handset_firmware_over_the_air: bool = False
    #: Yealink: DECT bases need region-specific firmware.
    dect_region_specific_firmware: bool = False
    #: AudioCodes: some devices need a provisioning URL setting.
    provisioning_url_required: bool = False
    management_tools: list[str] = Field(default_factory=list)
    #: Gigaset: every PRO DECT handset model works behind a listed base, so handset models are not listed.
    open_handset_models: bool = False
    esim: EsimProfile | None = None
    models: list[ModelEntry]

    @model_validator(mode="after")
    def _unique_models(self) -> VendorFile:
        seen: dict[str, str] = {}
        for entry in self.models:
            for name in (entry.model, *entry.aliases):
                key = normalise_model_name(name)
                if key in seen and seen[key] != entry.model:
                    raise ValueError(f"{self.vendor}: name {name!r} is used by both {seen[key]} and {entry.model}")
                seen[key] = entry.model
            if entry.model in {m.model for m in self.models if m is not entry}:
                raise ValueError(f"{self.vendor}: model {entry.model} is listed twice; use table_occurrences")
        return self


class KindCapabilities(_Closed):
    lines_from: Literal["usable_ports", "handsets"] | None = None
    not_applicable: dict[str, str] = Field(default_factory=dict)


class CapabilitiesFile(_Closed):
    kinds: dict[DeviceKind, KindCapabilities]


class Feature(_Closed):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    seed: str


def normalise_model_name(name: str) -> str:
    """The key used to match model names the way people write them (``VVX 450``, ``vvx450``, ``VVX_450``)."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())
