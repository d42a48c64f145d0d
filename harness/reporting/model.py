"""The compatibility matrix as data: ``reports/<run-id>/matrix.json``.

The matrix is data first and rendered second (``html.py``, ``junit.py``). This module owns its shape
(``schema: 1``), its validation, and loading and saving with located errors: a bad file is reported as
``matrix.json:LINE:COL: cells[3].outcome: ...`` for every problem found, and a save never leaves a half-written
file behind (it writes a temporary file and renames it over the old one).

Rows are devices (with the firmware they reported), columns are the seed feature ids of
``device_profiles/features.yaml``, and each cell holds the tests that decided it with their evidence. Paths in
evidence are relative to the run directory and may not leave it.
"""

from __future__ import annotations

import json
import os
import tempfile
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from json.decoder import scanstring
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from device_profiles.verdict import Verdict
from device_profiles.yamlio import DataFileError, DataProblem, Location

SCHEMA_VERSION = 1
MATRIX_FILE = "matrix.json"

# The values of ``harness.outcomes.Outcome`` (a StrEnum, whose members validate here as their values).
OUTCOMES: tuple[str, ...] = ("pass", "fail", "not_applicable", "blocked", "error", "flaky")
OutcomeName = Literal["pass", "fail", "not_applicable", "blocked", "error", "flaky"]
# Outcomes a person has to be told the reason for.
REASON_REQUIRED = frozenset({"fail", "not_applicable", "blocked", "error"})

VerdictName = Literal["supported", "newer_than_approved", "below_minimum", "wrong_family", "unknown_model",
                      "unparseable"]
ACCEPTABLE_VERDICTS = frozenset(v.value for v in Verdict if v.acceptable)


def _relative_path(value: str) -> str:
    """An evidence path: relative to the run directory, '/'-separated, never leaving it."""
    if not value:
        raise ValueError("empty path")
    if "\\" in value or "\0" in value:
        raise ValueError(f"{value!r}: use '/' as separator (no backslashes or NUL)")
    if ":" in value.split("/", 1)[0]:
        raise ValueError(f"{value!r}: must be a path relative to the run directory, not a URL or drive")
    p = PurePosixPath(value)
    if p.is_absolute():
        raise ValueError(f"{value!r}: must be relative to the run directory, not absolute")
    if ".." in p.parts:
        raise ValueError(f"{value!r}: must stay inside the run directory ('..' is not allowed)")
    return str(p)


RelPath = Annotated[str, AfterValidator(_relative_path)]
Identifier = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
FeatureId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ManifestDevice(_Model):
    id: Identifier
    vendor: str
    model: str
    kind: str
    firmware_declared: str | None = None
    firmware_read_back: str | None = Field(default=None, description="as the device reported it during the run")
    mac: str | None = None
    user_agent: str | None = None
    firmware_verdict: VerdictName
    verdict_reason: str = ""

    @property
    def acceptable(self) -> bool:
        return self.firmware_verdict in ACCEPTABLE_VERDICTS

    @property
    def firmware(self) -> str | None:
        """The firmware to show: what the device reported, else what the inventory declared."""
        return self.firmware_read_back or self.firmware_declared


class Manifest(_Model):
    run_id: Identifier
    sipgw_lab_version: str
    git_commit: str | None = None
    catalogue_digest: str
    inventory_digest: str
    inventory_path: str
    gateway_build: str
    command_line: str
    started_at: datetime
    ended_at: datetime | None = None
    host: str
    devices: list[ManifestDevice]


class Feature(_Model):
    id: FeatureId
    title: str
    seed: str = ""


class Attempt(_Model):
    outcome: OutcomeName
    duration_s: float = Field(ge=0)
    error: str | None = None


class Step(_Model):
    """One ``harness.steps.StepEvent`` as recorded."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    duration_s: float = Field(default=0.0, ge=0)
    ok: bool = True
    error: str | None = None
    device_id: str | None = None
    t: float = 0.0


class Evidence(_Model):
    steps: list[Step] = Field(default_factory=list)
    ladder_txt: RelPath | None = None
    ladder_html: RelPath | None = None
    pcap: RelPath | None = None
    trace: RelPath | None = Field(default=None, description="the SIP trace entries (TraceEntry.as_dict()) as JSON")
    media: dict[str, Any] = Field(default_factory=dict)
    device_log: RelPath | None = None
    sip_call_ids: list[str] = Field(default_factory=list)
    files: dict[str, RelPath] = Field(default_factory=dict, description="other files by label")

    def paths(self) -> list[str]:
        out = [p for p in (self.ladder_txt, self.ladder_html, self.pcap, self.trace, self.device_log) if p]
        return out + list(self.files.values())


class TestResult(_Model):
    __test__ = False  # not a pytest test class

    nodeid: str = Field(min_length=1)
    name: str = Field(min_length=1)
    outcome: OutcomeName
    duration_s: float = Field(ge=0)
    reason: str = ""
    attempts: list[Attempt] = Field(default_factory=list)
    evidence: Evidence = Field(default_factory=Evidence)

    @model_validator(mode="after")
    def _flaky_means_retried(self) -> TestResult:
        retried = (len(self.attempts) >= 2 and self.attempts[-1].outcome == "pass"
                   and any(a.outcome != "pass" for a in self.attempts))
        if self.outcome == "flaky" and not retried:
            raise ValueError("a flaky test must list its attempts: at least one that did not pass, "
                             "then a last one that passed")
        return self


class Cell(_Model):
    device_id: str
    feature: str
    outcome: OutcomeName
    reason: str = ""
    tests: list[TestResult] = Field(default_factory=list)

    @model_validator(mode="after")
    def _reason_when_needed(self) -> Cell:
        if self.outcome in REASON_REQUIRED and not self.reason.strip():
            raise ValueError(f"a {self.outcome!r} cell needs a reason a person can read")
        return self


class Summary(_Model):
    counts: dict[OutcomeName, Annotated[int, Field(ge=0)]]
    duration_s: float = Field(ge=0)


class Matrix(_Model):
    schema_version: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")
    manifest: Manifest
    features: list[Feature]
    cells: list[Cell]
    summary: Summary

    @model_validator(mode="after")
    def _consistent(self) -> Matrix:
        problems = consistency_problems(self)
        if problems:
            raise MatrixConsistencyError(problems)
        return self

    # --- building and lookups -------------------------------------------------------------------------

    @classmethod
    def build(cls, manifest: Manifest | dict, features: Iterable[Feature | dict], cells: Iterable[Cell | dict],
              duration_s: float | None = None) -> Matrix:
        """A matrix whose summary is counted from its cells."""
        manifest = Manifest.model_validate(manifest)
        cells = [Cell.model_validate(c) for c in cells]
        if duration_s is None:
            duration_s = (manifest.ended_at - manifest.started_at).total_seconds() if manifest.ended_at else 0.0
        return cls(manifest=manifest, features=[Feature.model_validate(f) for f in features], cells=cells,
                   summary=Summary(counts=count_outcomes(cells), duration_s=max(duration_s, 0.0)))

    def device(self, device_id: str) -> ManifestDevice:
        for d in self.manifest.devices:
            if d.id == device_id:
                return d
        raise KeyError(device_id)

    def cell(self, device_id: str, feature: str) -> Cell | None:
        for c in self.cells:
            if c.device_id == device_id and c.feature == feature:
                return c
        return None

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), indent=2, ensure_ascii=False) + "\n"


def count_outcomes(cells: Iterable[Cell]) -> dict[str, int]:
    counts = Counter(c.outcome for c in cells)
    return {o: counts.get(o, 0) for o in OUTCOMES}


def features_from_catalogue() -> list[Feature]:
    """The seed features, in the seed's order, as matrix columns."""
    from device_profiles.catalogue import default_catalogue

    return [Feature(id=f.id, title=f.title, seed=f.seed) for f in default_catalogue().features]


# --- consistency across the file ---------------------------------------------------------------------------

Path_ = tuple[str | int, ...]


class MatrixConsistencyError(Exception):
    """The parts of a matrix contradict each other; ``problems`` holds (location path, message) pairs."""

    def __init__(self, problems: list[tuple[Path_, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{format_where(p)}: {m}" for p, m in problems))


def consistency_problems(m: Matrix) -> list[tuple[Path_, str]]:
    problems: list[tuple[Path_, str]] = []
    device_ids: dict[str, int] = {}
    for i, d in enumerate(m.manifest.devices):
        if d.id in device_ids:
            problems.append((("manifest", "devices", i, "id"),
                             f"device id {d.id!r} appears twice (first at manifest.devices[{device_ids[d.id]}])"))
        device_ids.setdefault(d.id, i)
    feature_ids: dict[str, int] = {}
    for i, f in enumerate(m.features):
        if f.id in feature_ids:
            problems.append((("features", i, "id"), f"feature id {f.id!r} appears twice"))
        feature_ids.setdefault(f.id, i)
    seen: dict[tuple[str, str], int] = {}
    for i, c in enumerate(m.cells):
        if c.device_id not in device_ids:
            problems.append((("cells", i, "device_id"),
                             f"device {c.device_id!r} is not in manifest.devices "
                             f"(known: {', '.join(device_ids) or 'none'})"))
        if c.feature not in feature_ids:
            problems.append((("cells", i, "feature"),
                             f"feature {c.feature!r} is not in features (known: {', '.join(feature_ids) or 'none'})"))
        key = (c.device_id, c.feature)
        if key in seen:
            problems.append((("cells", i), f"a second cell for device {c.device_id!r} and feature {c.feature!r} "
                                           f"(first at cells[{seen[key]}])"))
        seen.setdefault(key, i)
    counted = count_outcomes(m.cells)
    for outcome in OUTCOMES:
        stated = m.summary.counts.get(outcome, 0)
        if stated != counted[outcome]:
            problems.append((("summary", "counts", outcome),
                             f"says {stated} {outcome} cell(s) but the cells hold {counted[outcome]}"))
    return problems


# --- loading and saving ----------------------------------------------------------------------------------


class MatrixFileError(DataFileError):
    """A matrix file cannot be used; ``problems`` lists each located problem."""


def format_where(path: Iterable[str | int]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def load_matrix(path: str | Path) -> Matrix:
    """Read and validate ``matrix.json``; raises :class:`MatrixFileError` naming file, line and column."""
    path = Path(path)
    name = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise MatrixFileError([DataProblem(Location(name, 1, 1), "file not found")]) from None
    except IsADirectoryError:
        raise MatrixFileError([DataProblem(Location(name, 1, 1), "is a directory, not a matrix.json file")]) from None
    except OSError as exc:
        raise MatrixFileError([DataProblem(Location(name, 1, 1), f"cannot read: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise MatrixFileError([DataProblem(Location(name, line, 1), f"not UTF-8 text (byte {exc.start})")]) from None
    return parse_matrix(text, name)


def parse_matrix(text: str, name: str = MATRIX_FILE) -> Matrix:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MatrixFileError([DataProblem(Location(name, exc.lineno, exc.colno), f"JSON syntax: {exc.msg}")]) \
            from None
    locator = _JsonLocator(text)
    if not isinstance(data, dict):
        raise MatrixFileError([DataProblem(locator.location(name, ()), "the top level must be a JSON object")])
    version = data.get("schema")
    if version != SCHEMA_VERSION:
        msg = ("missing 'schema' (this sipgw-lab reads schema 1)" if version is None
               else f"schema {version!r} is not supported; this sipgw-lab reads schema {SCHEMA_VERSION}")
        raise MatrixFileError([DataProblem(locator.location(name, ("schema",) if version is not None else ()), msg)])
    try:
        return Matrix.model_validate(data)
    except ValidationError as exc:
        raise MatrixFileError(_describe(exc, locator, name)) from None
    except MatrixConsistencyError as exc:
        raise MatrixFileError([DataProblem(locator.location(name, p), f"{format_where(p)}: {m}")
                               for p, m in exc.problems]) from None


def _describe(exc: ValidationError, locator: _JsonLocator, name: str) -> list[DataProblem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}" if loc else "unknown key"
        elif err["type"] == "missing":
            msg = f"missing required key {loc[-1]!r}"
            where = format_where(loc)
            loc = loc[:-1]
            problems.append(DataProblem(locator.location(name, loc), f"{where}: {msg}"))
            continue
        elif err["type"] == "literal_error":
            msg = f"{msg} (got {err.get('input')!r})"
        problems.append(DataProblem(locator.location(name, loc), f"{format_where(loc)}: {msg}"))
    return problems


def save_matrix(matrix: Matrix, path: str | Path) -> Path:
    """Write ``matrix.json`` atomically (a reader sees the old file or the new one, never half of one).

    The matrix is validated again first, so a model changed in place after it was built cannot store a file
    that :func:`load_matrix` would refuse.
    """
    path = Path(path)
    data = matrix.model_dump(mode="json", by_alias=True)
    try:
        Matrix.model_validate(data)
    except ValidationError as exc:
        raise MatrixFileError(_describe(exc, _JsonLocator(json.dumps(data, indent=2)), str(path))) from None
    except MatrixConsistencyError as exc:
        raise MatrixFileError([DataProblem(Location(str(path), 1, 1), f"{format_where(p)}: {m}")
                               for p, m in exc.problems]) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".matrix-", suffix=".json.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def matrix_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``matrix.json`` (kept in ``harness/reporting/matrix.schema.json``)."""
    schema = Matrix.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://sipgw-lab.invalid/schema/matrix-1.json"
    schema["title"] = "sipgw-lab compatibility matrix (matrix.json, schema 1)"
    return schema


SCHEMA_PATH = Path(__file__).with_name("matrix.schema.json")


def write_json_schema(path: str | Path = SCHEMA_PATH) -> Path:
    path = Path(path)
    path.write_text(json.dumps(matrix_json_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


# --- where a JSON value starts ------------------------------------------------------------------------------


class _JsonLocator:
    """Maps a location path (keys and indices) to the line and column where that value starts in the text.

    Only used once a file has parsed as JSON, so the scanner may assume well-formed input.
    """

    _WS = " \t\r\n"

    def __init__(self, text: str):
        self.text = text
        self.offsets: dict[Path_, int] = {}
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
        try:
            self._value(self._ws(0), ())
        except (IndexError, ValueError, RecursionError):  # pragma: no cover - text already parsed as JSON
            pass

    def location(self, name: str, path: Iterable[str | int]) -> Location:
        path = tuple(path)
        while path and path not in self.offsets:
            path = path[:-1]
        offset = self.offsets.get(path, 0)
        line = bisect_right(self._line_starts, offset)
        return Location(name, line, offset - self._line_starts[line - 1] + 1)

    def _ws(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in self._WS:
            i += 1
        return i

    def _value(self, i: int, path: Path_) -> int:
        self.offsets[path] = i
        ch = self.text[i]
        if ch == "{":
            i = self._ws(i + 1)
            if self.text[i] == "}":
                return i + 1
            while True:
                key, i = scanstring(self.text, i + 1)
                i = self._ws(self._ws(i) + 1)  # the ':'
                i = self._ws(self._value(i, (*path, key)))
                if self.text[i] == "}":
                    return i + 1
                i = self._ws(i + 1)  # the ','
        if ch == "[":
            i = self._ws(i + 1)
            if self.text[i] == "]":
                return i + 1
            index = 0
            while True:
                i = self._ws(self._value(i, (*path, index)))
                index += 1
                if self.text[i] == "]":
                    return i + 1
                i = self._ws(i + 1)
        if ch == '"':
            return scanstring(self.text, i + 1)[1]
        while i < len(self.text) and self.text[i] not in ",]}" + self._WS:
            i += 1
        return i
