"""YAML loading that keeps line and column numbers, so every data error can point at its place.

Used for the catalogue files and, by the harness, for lab inventories and tenant files. Validation errors
from pydantic are mapped back to the YAML node they concern (``file:line:col: what is wrong``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError


@dataclass(frozen=True)
class Location:
    path: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class DataProblem:
    """One thing wrong with a data file, with where it is and what to do."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class DataFileError(Exception):
    """A data file could not be used. Carries every problem found, each located."""

    def __init__(self, problems: Sequence[DataProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def load_yaml(path: str | Path, text: str | None = None) -> Any:
    """Parse YAML keeping positions. Raises :class:`DataFileError` on syntax errors and duplicate keys."""
    path = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataFileError([DataProblem(Location(path, 1, 1), "file not found")]) from None
        except UnicodeDecodeError as exc:
            raise DataFileError(
                [DataProblem(Location(path, 1, 1), f"not UTF-8 text (byte {exc.start})")]
            ) from None
        except OSError as exc:
            raise DataFileError([DataProblem(Location(path, 1, 1), f"cannot read: {exc.strerror}")]) from None
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        raise DataFileError([DataProblem(Location(path, line, col), f"YAML syntax: {what}")]) from None
    except YAMLError as exc:
        raise DataFileError([DataProblem(Location(path, 1, 1), f"YAML syntax: {exc}")]) from None


def locate(root: Any, loc: Iterable[str | int], path: str) -> Location:
    """The position of the deepest node along ``loc`` (a pydantic error location) in a ruamel tree."""
    node = root
    line, col = 1, 1
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            try:
                vl, vc = node.lc.value(key)
            except (KeyError, TypeError, AttributeError):
                vl, vc = node.lc.key(key)
            line, col = vl + 1, vc + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            il, ic = node.lc.item(key)
            line, col = il + 1, ic + 1
            node = node[key]
        else:
            break
    return Location(path, line, col)


def describe_validation_error(exc: ValidationError, root: Any, path: str) -> list[DataProblem]:
    """Turn a pydantic error into located, readable problems."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        where = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}" if loc else "unknown key"
        elif err["type"] == "missing":
            msg = f"missing required key {loc[-1]!r}" if loc else "missing required key"
            loc = loc[:-1]
        elif err["type"] == "literal_error":
            msg = f"{msg} (got {err.get('input')!r})"
        problems.append(DataProblem(locate(root, loc, path), f"{where}: {msg}"))
    return problems


def validate_data(model: type[BaseModel], root: Any, path: str, context: dict | None = None) -> Any:
    """Validate a loaded YAML tree against a pydantic model, raising located :class:`DataFileError`."""
    try:
        return model.model_validate(to_plain(root), context=context)
    except ValidationError as exc:
        raise DataFileError(describe_validation_error(exc, root, path)) from None


def to_plain(node: Any) -> Any:
    """ruamel's commented containers as plain dicts and lists (pydantic handles them faster)."""
    if isinstance(node, dict):
        return {k: to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    return node
