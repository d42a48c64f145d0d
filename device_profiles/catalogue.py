"""The device catalogue: every model of the seed's vendor table, loaded once from ``catalogue/*.yaml``.

Model names are matched the way people write them (``VVX 450``, ``vvx450``, ``Poly VVX_450``,
``N870 IP PRO``); a name that matches nothing comes back with the closest catalogue names.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from device_profiles.schema import (
    CapabilitiesFile,
    Feature,
    ModelEntry,
    VendorFile,
    normalise_model_name,
)
from device_profiles.yamlio import DataFileError, DataProblem, Location, load_yaml, locate, validate_data

PACKAGE_DIR = Path(__file__).resolve().parent
CATALOGUE_DIR = PACKAGE_DIR / "catalogue"

#: Names vendors and people put in front of model names.
_VENDOR_PREFIXES = {
    "Cisco": ("cisco", "cp"),
    "Poly": ("poly", "polycom", "realpresence"),
    "Yealink": ("yealink", "sip"),
    "AudioCodes": ("audiocodes", "audc"),
    "Spectralink": ("spectralink",),
    "Ascom": ("ascom",),
    "Gigaset": ("gigaset",),
    "Algo": ("algo",),
    "Tango Extend": ("tango", "extend"),
}


@dataclass(frozen=True, eq=False)
class ModelProfile:
    """A catalogue model with the vendor-level facts that apply to it."""

    vendor: str
    entry: ModelEntry
    vendor_file: VendorFile = field(repr=False)

    @property
    def model(self) -> str:
        return self.entry.model

    @property
    def kind(self) -> str:
        return self.entry.kind

    @property
    def firmware_scheme(self) -> str:
        return self.vendor_file.firmware_scheme

    @property
    def required_family(self) -> str | None:
        return self.entry.required_family or self.vendor_file.required_family

    @property
    def ports_usable(self) -> int | None:
        return self.entry.ports_usable

    @property
    def ports_total(self) -> int | None:
        return self.entry.ports_total

    @property
    def notes(self) -> list[str]:
        """Vendor notes that concern this model (by kind, or by a model-name prefix)."""
        out = []
        for note in self.vendor_file.notes:
            if note.applies_to == "all" or self.kind in note.applies_to or any(
                self.model.startswith(prefix) for prefix in note.applies_to
            ):
                out.append(note.text)
        if self.entry.min_above_approved_reason:
            out.append(f"Minimum above the approved line: {self.entry.min_above_approved_reason}.")
        return out

    @property
    def slug(self) -> str:
        return f"{normalise_model_name(self.vendor)}-{normalise_model_name(self.model)}"

    def as_dict(self) -> dict:
        """The JSON shape of ``sipgw-lab catalogue --json`` (a contract other tools rely on)."""
        e = self.entry
        return {
            "vendor": self.vendor,
            "model": e.model,
            "kind": e.kind,
            "min_firmware": e.min_firmware,
            "approved_firmware": e.approved_firmware,
            "e911": e.e911,
            "ports_usable": e.ports_usable,
            "ports_total": e.ports_total,
            "notes": self.notes,
            "remarks": e.remarks,
            "firmware_scheme": self.firmware_scheme,
            "required_family": self.required_family,
            "min_above_approved_reason": e.min_above_approved_reason,
            "aliases": list(e.aliases),
            "source_row": e.source_row,
        }


@dataclass(frozen=True)
class Catalogue:
    vendors: dict[str, VendorFile]
    features: tuple[Feature, ...]
    capabilities: CapabilitiesFile
    digest: str
    _index: dict[str, list[ModelProfile]] = field(repr=False, default_factory=dict)

    def __iter__(self) -> Iterator[ModelProfile]:
        for vendor, vf in self.vendors.items():
            for entry in vf.models:
                yield ModelProfile(vendor, entry, vf)

    def __len__(self) -> int:
        return sum(len(vf.models) for vf in self.vendors.values())

    def vendor_name(self, name: str) -> str | None:
        """The catalogue's spelling of a vendor name given in any case or spacing."""
        key = normalise_model_name(name)
        for vendor in self.vendors:
            if normalise_model_name(vendor) == key:
                return vendor
        for vendor, prefixes in _VENDOR_PREFIXES.items():
            if key in prefixes and vendor in self.vendors:
                return vendor
        if key in {"ale", "alcatel", "alcatellucent"}:
            return "Alcatel-Lucent Enterprise"
        return None

    def models(self, vendor: str | None = None) -> list[ModelProfile]:
        if vendor is None:
            return list(self)
        name = self.vendor_name(vendor)
        return [m for m in self if m.vendor == name]

    def find(self, model: str, vendor: str | None = None) -> ModelProfile | None:
        """The model named ``model`` (written as people write it), optionally within one vendor."""
        vendor_name = self.vendor_name(vendor) if vendor else None
        if vendor and vendor_name is None:
            return None
        for key in self._keys(model, vendor_name):
            hits = [m for m in self._index.get(key, []) if vendor_name in (None, m.vendor)]
            if len(hits) == 1:
                return hits[0]
        return None

    def ambiguous(self, model: str) -> list[ModelProfile]:
        """Catalogue models of several vendors that share the name (none today, kept for safety)."""
        for key in self._keys(model, None):
            hits = self._index.get(key, [])
            if len(hits) > 1:
                return hits
        return []

    def closest(self, model: str, vendor: str | None = None, n: int = 3) -> list[str]:
        """The catalogue names closest to an unknown ``model``, as ``Vendor Model``."""
        vendor_name = self.vendor_name(vendor) if vendor else None
        pool = {
            normalise_model_name(name): m
            for m in self
            if vendor_name in (None, m.vendor)
            for name in (m.model, *m.entry.aliases)
        }
        key = self._keys(model, vendor_name)[-1]
        found = difflib.get_close_matches(key, list(pool), n=n * 3, cutoff=0.5)
        names: list[str] = []
        for k in found:
            label = f"{pool[k].vendor} {pool[k].model}"
            if label not in names:
                names.append(label)
        return names[:n]

    @staticmethod
    def _keys(model: str, vendor: str | None) -> list[str]:
        key = normalise_model_name(model)
        keys = [key]
        prefixes = _VENDOR_PREFIXES.get(vendor, ()) if vendor else tuple(
            p for ps in _VENDOR_PREFIXES.values() for p in ps
        )
        stripped = key
        changed = True
        while changed:
            changed = False
            for prefix in sorted(prefixes, key=len, reverse=True):
                if stripped.startswith(prefix) and len(stripped) > len(prefix):
                    stripped = stripped[len(prefix):]
                    changed = True
        if stripped != key:
            keys.append(stripped)
        # Cisco MPP phones report "-3PCC" after the model number.
        if stripped.endswith("3pcc"):
            keys.append(stripped[: -len("3pcc")])
        return keys

    def feature_ids(self) -> list[str]:
        return [f.id for f in self.features]


def _load_vendor_file(path: Path) -> VendorFile:
    root = load_yaml(path)
    return validate_data(VendorFile, root, str(path))


def _check_firmware_strings(vf: VendorFile, path: Path, root_loader) -> list[DataProblem]:
    """Every version in the file must parse under the vendor's scheme."""
    from device_profiles.firmware import UnparseableFirmware, try_parse_firmware

    problems = []
    root = None
    for i, entry in enumerate(vf.models):
        for key in ("min_firmware", "approved_firmware"):
            text = getattr(entry, key)
            if text is None:
                continue
            family = entry.min_firmware_family if key == "min_firmware" else None
            parsed = try_parse_firmware(vf.firmware_scheme, text, family=family)
            if isinstance(parsed, UnparseableFirmware):
                root = root if root is not None else root_loader()
                problems.append(
                    DataProblem(locate(root, ["models", i, key], str(path)), f"{entry.model}: {parsed.reason}")
                )
    return problems


@functools.cache
def load_catalogue(directory: str | Path | None = None) -> Catalogue:
    """Load and validate every vendor file, the feature list and the capability table.

    Raises :class:`DataFileError` with every located problem when the data is wrong.
    """
    base = Path(directory) if directory else CATALOGUE_DIR
    files = sorted(base.glob("*.yaml"))
    if not files:
        raise DataFileError([DataProblem(Location(str(base), 1, 1), "no vendor files (*.yaml) found")])
    problems: list[DataProblem] = []
    vendors: dict[str, VendorFile] = {}
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
        try:
            vf = _load_vendor_file(path)
        except DataFileError as exc:
            problems.extend(exc.problems)
            continue
        if vf.vendor in vendors:
            problems.append(DataProblem(Location(str(path), 1, 1), f"vendor {vf.vendor!r} is defined twice"))
            continue
        problems.extend(_check_firmware_strings(vf, path, lambda p=path: load_yaml(p)))
        vendors[vf.vendor] = vf

    features_path = PACKAGE_DIR / "features.yaml"
    caps_path = PACKAGE_DIR / "capabilities.yaml"
    for extra in (features_path, caps_path):
        digest.update(extra.name.encode() + b"\0" + extra.read_bytes())
    features: tuple[Feature, ...] = ()
    capabilities = CapabilitiesFile(kinds={})
    try:
        froot = load_yaml(features_path)
        features = tuple(validate_data(Feature, item, str(features_path)) for item in froot)
        croot = load_yaml(caps_path)
        capabilities = validate_data(CapabilitiesFile, croot, str(caps_path))
    except DataFileError as exc:
        problems.extend(exc.problems)
    feature_ids = {f.id for f in features}
    for kind, caps in capabilities.kinds.items():
        for key in caps.not_applicable:
            if key.split(".", 1)[0] not in feature_ids:
                problems.append(
                    DataProblem(Location(str(caps_path), 1, 1), f"kind {kind}: unknown feature {key!r}")
                )
    for vf in vendors.values():
        for entry in vf.models:
            for key in entry.not_applicable:
                if key.split(".", 1)[0] not in feature_ids:
                    problems.append(
                        DataProblem(Location(vf.vendor, 1, 1), f"{entry.model}: unknown feature {key!r}")
                    )
    if problems:
        raise DataFileError(problems)

    index: dict[str, list[ModelProfile]] = {}
    for vendor, vf in vendors.items():
        for entry in vf.models:
            profile = ModelProfile(vendor, entry, vf)
            for name in (entry.model, *entry.aliases):
                bucket = index.setdefault(normalise_model_name(name), [])
                if profile not in bucket:
                    bucket.append(profile)
    return Catalogue(vendors, features, capabilities, digest.hexdigest(), index)


def default_catalogue() -> Catalogue:
    return load_catalogue(None)
