"""Writing a test's evidence files into ``reports/<run-id>/evidence/<device>/<feature>/<test>/``.

:class:`EvidenceWriter` puts each file in place and records its path, relative to the run directory, in an
:class:`~harness.reporting.model.Evidence` record for ``matrix.json``. Names from devices, features and test ids
become safe path components (no separators, no '..'); a name that had to be changed gets a short hash so two
different tests never share a folder.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from harness.reporting import ladder as ladders
from harness.reporting.model import Evidence, Step

EVIDENCE_DIR = "evidence"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_component(name: str, max_len: int = 80) -> str:
    """``name`` as one path component: letters, digits, '.', '_' and '-'; changed names get a hash suffix."""
    if not name:
        raise ValueError("empty name for an evidence folder")
    clean = _UNSAFE.sub("_", name).strip("._") or "_"
    if clean == name and len(clean) <= max_len:
        return clean
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return f"{clean[: max_len - 9]}-{digest}"


def cell_dir(device_id: str, feature: str) -> PurePosixPath:
    """The folder of a cell's evidence page, relative to the run directory."""
    return PurePosixPath(EVIDENCE_DIR, safe_component(device_id), safe_component(feature))


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-friendly copy of step arguments and results (dataclasses, enums, paths, bytes, anything else)."""
    if depth > 8:
        return repr(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)}
    if hasattr(value, "model_dump"):
        return jsonable(value.model_dump(mode="json"), depth + 1)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, depth + 1) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


def step_from_event(event: Any) -> Step:
    """A ``harness.steps.StepEvent`` (or a dict of its fields) as a matrix ``Step``."""
    if isinstance(event, Step):
        return event
    fields = ("name", "args", "result", "duration_s", "ok", "error", "device_id", "t")
    data = dict(event) if isinstance(event, Mapping) else {f: getattr(event, f, None) for f in fields}
    args = data.get("args")
    if args is None:
        args = {}
    elif not isinstance(args, Mapping):
        args = {"args": args}
    error = data.get("error")
    return Step(
        name=str(data.get("name") or "?"),
        args=jsonable(args),
        result=jsonable(data.get("result")),
        duration_s=max(float(data.get("duration_s") or 0.0), 0.0),
        ok=bool(data.get("ok", True)) if data.get("ok") is not None else error is None,
        error=None if error is None else (error if isinstance(error, str) else f"{type(error).__name__}: {error}"),
        device_id=data.get("device_id"),
        t=float(data.get("t") or 0.0),
    )


class EvidenceWriter:
    """Writes one test's evidence files and keeps the matching :class:`Evidence` record.

    >>> w = EvidenceWriter(run_dir, "poly-vvx450", "make_calls", "test_call_pstn[poly-vvx450]")
    >>> w.add_trace(entries, labels={"127.0.0.1:5071": "poly-vvx450"})
    >>> w.add_pcap(pcap_bytes); w.add_steps(events); w.add_media({"mos": 4.3})
    >>> w.evidence   # goes into the test's entry in matrix.json
    """

    def __init__(self, run_dir: str | Path, device_id: str, feature: str, test_name: str):
        self.run_dir = Path(run_dir)
        self.rel_dir = cell_dir(device_id, feature) / safe_component(test_name)
        self.dir = self.run_dir / self.rel_dir
        self.evidence = Evidence()

    def _write(self, name: str, data: bytes) -> str:
        name = safe_component(name)
        self.dir.mkdir(parents=True, exist_ok=True)
        target = self.dir / name
        tmp = target.with_name(f".{name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return str(self.rel_dir / name)

    def add_file(self, label: str, name: str, data: bytes | str) -> str:
        """Any other file (a screenshot, a recording, a config read back), listed under ``label``."""
        rel = self._write(name, data.encode("utf-8") if isinstance(data, str) else data)
        self.evidence.files[label] = rel
        return rel

    def add_trace(self, entries: Iterable[Any], labels: Mapping[str, str] | None = None, *, title: str = "",
                  notes: Iterable[Any] = ()) -> None:
        """Trace entries (``TraceEntry`` or ``as_dict()``): saved as JSON, and drawn as text and HTML ladders.

        ``notes`` are extra ladder rows by time, e.g. RTCP summaries: ``{"time": t, "text": "RTCP ← loss 0 %"}``.
        """
        rows = [e.as_dict() if hasattr(e, "as_dict") else dict(e) for e in entries]
        ladder = ladders.build_ladder(rows, labels, notes)
        saved_notes = [{"time": n.time, "text": n.text} for n in ladder.notes]
        self.evidence.trace = self._write("trace.json", (json.dumps(
            {"labels": dict(labels or {}), "notes": saved_notes, "entries": rows}, indent=1, ensure_ascii=False)
            + "\n").encode("utf-8"))
        self.evidence.ladder_txt = self._write("ladder.txt", ladders.render_text(ladder, title=title).encode("utf-8"))
        self.evidence.ladder_html = self._write("ladder.html",
                                                ladders.render_html(ladder, title=title or "SIP ladder").encode())
        for cid in ladder.call_ids:
            if cid not in self.evidence.sip_call_ids:
                self.evidence.sip_call_ids.append(cid)

    def add_pcap(self, data: bytes) -> None:
        if data[:4] not in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x0a\x0d\x0d\x0a"):
            raise ValueError("not a pcap or pcapng file (bad magic number)")
        self.evidence.pcap = self._write("trace.pcap", data)

    def add_steps(self, events: Iterable[Any]) -> None:
        self.evidence.steps.extend(step_from_event(e) for e in events)

    def add_media(self, figures: Mapping[str, Any]) -> None:
        self.evidence.media.update(jsonable(dict(figures)))

    def add_device_log(self, text: str | bytes) -> None:
        self.evidence.device_log = self._write("device.log", text.encode("utf-8") if isinstance(text, str) else text)


def read_trace_file(path: Path) -> tuple[list[dict], dict[str, str], list[Any]]:
    """What :meth:`EvidenceWriter.add_trace` saved: (entries, labels, notes). Also reads a bare list of entries."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ladders.LadderError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ladders.LadderError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ladders.LadderError(f"{path}:{exc.lineno}:{exc.colno}: JSON syntax: {exc.msg}") from None
    if isinstance(data, list):
        return data, {}, []
    if isinstance(data, dict) and isinstance(data.get("entries"), list):
        labels = data.get("labels") or {}
        if not isinstance(labels, dict):
            raise ladders.LadderError(f"{path}: 'labels' must map host:port to a name")
        notes = data.get("notes") or []
        if not isinstance(notes, list):
            raise ladders.LadderError(f"{path}: 'notes' must be a list of {{'time', 'text'}}")
        return data["entries"], {str(k): str(v) for k, v in labels.items()}, notes
    raise ladders.LadderError(f"{path}: expected a list of trace entries or {{'labels', 'entries'}}")
