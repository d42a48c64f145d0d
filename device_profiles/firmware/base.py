"""The common shape of every firmware version scheme.

A scheme turns the text a vendor prints (in its release notes, in a User-Agent, in a file name) into a
:class:`FirmwareVersion` whose ``key`` is a tuple ordered exactly like the vendor's releases. Two versions
are equal when their scheme and key are equal, whatever the spelling (``12-0-1MPP`` == ``12.0.1MPP``);
``raw`` keeps the text exactly as it was given, for reports.

A scheme also says what a *requirement* means for its vendor (:meth:`FirmwareScheme.compare_to_requirement`):
the seed table's ``5.9.5`` for Poly is met by any ``5.9.5.x`` build, Yealink's ``83`` by any firmware of
series 83 or later, and a Cisco enterprise load never meets a multiplatform (MPP) requirement at all.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "FirmwareScheme",
    "FirmwareVersion",
    "IncomparableFirmware",
    "UnparseableFirmware",
    "cmp",
    "compare_release_and_build",
]


class UnparseableFirmware(ValueError):
    """A version string that does not follow its vendor's scheme.

    ``reason`` is a complete sentence for a lab engineer: what was given, why it does not fit, and what the
    scheme expects. ``scheme`` and ``text`` are kept for callers that build their own messages.
    """

    def __init__(self, reason: str, *, scheme: str | None = None, text: object = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.scheme = scheme
        self.text = text

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the keyword-only fields when the exception crosses a process boundary (pytest-xdist).
        return (_rebuild_unparseable, (self.reason, self.scheme, self.text))


def _rebuild_unparseable(reason: str, scheme: str | None, text: object) -> UnparseableFirmware:
    return UnparseableFirmware(reason, scheme=scheme, text=text)


class IncomparableFirmware(TypeError):
    """Two versions that cannot be measured against each other.

    Raised by ``compare_to_requirement`` when the versions belong to different schemes, or to firmware
    lines of one vendor that do not replace one another (Cisco enterprise vs multiplatform, an AudioCodes
    MediaPack load vs a phone load, an Ascom TDM base revision vs IP-DECT firmware). ``reason`` says which
    lines are involved and what an engineer has to do about it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, eq=False, slots=True)
class FirmwareVersion:
    """One parsed firmware version.

    ``key`` is the comparison key built by the scheme; only versions of the same scheme are ordered
    (``<`` between schemes raises ``TypeError``, ``==`` between schemes is simply ``False``). ``family``
    names the firmware line where a vendor has several (Cisco ``"mpp"``/``"enterprise"``, AudioCodes
    ``"sip"``/``"sfb"``, Yealink's series such as ``"83"``); whether it takes part in the order is the
    scheme's decision and is reflected in ``key``. ``str()`` gives the scheme's canonical spelling, which
    parses back to an equal version when the same family is passed as hint.
    """

    scheme: str
    raw: str
    key: tuple[Any, ...]
    family: str | None = None
    canonical: str = ""

    def __str__(self) -> str:
        return self.canonical or self.raw

    def __repr__(self) -> str:
        family = f", family={self.family!r}" if self.family is not None else ""
        return f"FirmwareVersion({self.scheme!r}, {self.raw!r}{family})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FirmwareVersion):
            return NotImplemented
        return self.scheme == other.scheme and self.key == other.key

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return hash((self.scheme, self.key))

    def _ordered_against(self, other: object) -> bool:
        if not isinstance(other, FirmwareVersion):
            return False
        if other.scheme != self.scheme:
            raise TypeError(
                f"cannot order {self.scheme} firmware {str(self)!r} against {other.scheme} firmware "
                f"{str(other)!r}: versions of different schemes have no common order"
            )
        return True

    def __lt__(self, other: object) -> bool:
        if not self._ordered_against(other):
            return NotImplemented
        assert isinstance(other, FirmwareVersion)
        return self.key < other.key

    def __le__(self, other: object) -> bool:
        if not self._ordered_against(other):
            return NotImplemented
        assert isinstance(other, FirmwareVersion)
        return self.key <= other.key

    def __gt__(self, other: object) -> bool:
        if not self._ordered_against(other):
            return NotImplemented
        assert isinstance(other, FirmwareVersion)
        return self.key > other.key

    def __ge__(self, other: object) -> bool:
        if not self._ordered_against(other):
            return NotImplemented
        assert isinstance(other, FirmwareVersion)
        return self.key >= other.key


def cmp(a: Any, b: Any) -> int:
    """-1, 0 or 1 as ``a`` is below, equal to or above ``b``."""
    return (a > b) - (a < b)


def compare_release_and_build(
    found_release: tuple[Any, ...],
    found_build: tuple[Any, ...],
    required_release: tuple[Any, ...],
    required_build: tuple[Any, ...],
) -> int:
    """The requirement rule shared by schemes whose versions are a release plus an optional build.

    A requirement that names only a release is met by every build of it: found ``5.9.5.0614`` against
    required ``5.9.5`` gives 0. A requirement that names a build is compared in full, and a found version
    without a build sorts below any build of its release (``11.2.2MPP`` < ``11.2.2MPP0101-013``).
    """
    if not required_build:
        return cmp(found_release, required_release)
    return cmp((found_release, found_build), (required_release, required_build))


_SPACE_RE = re.compile(r"\s+")
#: Longer text is not a version (a whole User-Agent or a file listing was passed by mistake).
MAX_VERSION_LENGTH = 120


class FirmwareScheme(abc.ABC):
    """One vendor's version grammar, order and requirement semantics.

    Subclasses set ``name`` (the registry key), ``label`` (how reports name the scheme), ``examples``
    (forms quoted in error messages) and ``families`` (accepted values of the ``family`` hint, mapped to
    the canonical family name), and implement :meth:`_parse`.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    examples: ClassVar[Sequence[str]]
    families: ClassVar[dict[str, str]] = {}

    # -- parsing -----------------------------------------------------------------------------------

    def parse(self, text: object, *, family: str | None = None) -> FirmwareVersion:
        """Parse ``text``; raise :class:`UnparseableFirmware` (and nothing else) when it does not fit."""
        if not isinstance(text, str):
            raise UnparseableFirmware(
                f"{self.label} firmware version must be text, got {type(text).__name__} {text!r}",
                scheme=self.name,
                text=text,
            )
        hint = self._normalise_family_hint(text, family)
        stripped = text.strip()
        if not stripped:
            raise self.reject(text, "the version is empty")
        if any(not ch.isprintable() for ch in stripped):
            raise self.reject(text, "it contains control characters")
        if not stripped.isascii():
            raise self.reject(text, "it contains non-ASCII characters")
        if len(stripped) > MAX_VERSION_LENGTH:
            raise UnparseableFirmware(
                f"a {self.label} firmware version of {len(stripped)} characters is not plausible (at most "
                f"{MAX_VERSION_LENGTH}); it starts {stripped[:40]!r}",
                scheme=self.name,
                text=text,
            )
        return self._parse(text, stripped, hint)

    @abc.abstractmethod
    def _parse(self, raw: str, text: str, family: str | None) -> FirmwareVersion:
        """Parse the stripped ``text``; ``raw`` is the original, ``family`` the canonical hint or None."""

    def _normalise_family_hint(self, text: str, family: object) -> str | None:
        if family is None:
            return None
        if not isinstance(family, str):
            raise UnparseableFirmware(
                f"the family hint for {self.label} firmware {text!r} must be text, got "
                f"{type(family).__name__} {family!r}",
                scheme=self.name,
                text=text,
            )
        canonical = self.families.get(family.strip().lower())
        if canonical is None:
            if not self.families:
                why = f"{self.label} versions have no firmware families, yet the hint {family!r} was given"
            else:
                known = _join(self.family_names())
                why = f"unknown family hint {family!r}; {self.label} families are {known}"
            raise UnparseableFirmware(
                f"cannot read {text!r} as {self.label} firmware: {why}", scheme=self.name, text=text
            )
        return canonical

    def family_names(self) -> list[str]:
        """The canonical family names this scheme reports."""
        return sorted(set(self.families.values()))

    def reject(self, text: str, why: str = "") -> UnparseableFirmware:
        """An :class:`UnparseableFirmware` in the house style.

        ``'12.0.x' is not a Cisco MPP version: wildcards such as 'x' name a range, not a version;
        expected forms like 11.3.5MPP, 12-0-1MPP or 11-2-2MPP0101-013``
        """
        shown = _SPACE_RE.sub(" ", text.strip()) or text
        article = "an" if self.label[:1].lower() in "aeiou" else "a"
        head = f"{shown!r} is not {article} {self.label} version"
        expected = f"expected forms like {_join(self.examples, last='or')}"
        reason = f"{head}: {why}; {expected}" if why else f"{head}: {expected}"
        return UnparseableFirmware(reason, scheme=self.name, text=text)

    def conflict(self, text: str, marker: str, hint: str) -> UnparseableFirmware:
        """The hint and a marker in the text disagree about the firmware family."""
        return UnparseableFirmware(
            f"{text.strip()!r} carries {marker}, which contradicts the family hint {hint!r}; "
            f"check which firmware line the device really runs",
            scheme=self.name,
            text=text,
        )

    def make(self, raw: str, key: tuple[Any, ...], family: str | None, canonical: str) -> FirmwareVersion:
        return FirmwareVersion(scheme=self.name, raw=raw, key=key, family=family, canonical=canonical)

    # -- requirements ------------------------------------------------------------------------------

    def compare_to_requirement(self, found: FirmwareVersion, required: FirmwareVersion) -> int:
        """-1 when ``found`` does not reach ``required``, 0 when it is the required release, 1 when later.

        The default compares the keys; schemes with builds or series override this with their vendor's
        meaning of a requirement. Raises :class:`IncomparableFirmware` for lines that do not compare.
        """
        self.check_families(found, required)
        return cmp(found.key, required.key)

    def check_families(self, found: FirmwareVersion, required: FirmwareVersion) -> None:
        """Raise :class:`IncomparableFirmware` when the two firmware lines do not replace each other.

        The default: two known families that differ do not compare. Schemes whose families are only
        descriptive (Yealink series) override this.
        """
        if found.family is not None and required.family is not None and found.family != required.family:
            raise IncomparableFirmware(
                f"{self.label} firmware {str(found)!r} is on the {found.family!r} line and the requirement "
                f"{str(required)!r} is on the {required.family!r} line; versions of different lines "
                "do not compare"
            )


def _join(items: Iterable[str], last: str = "and") -> str:
    words = list(items)
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"
