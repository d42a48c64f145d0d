"""What a test leaves behind: steps, the SIP ladder and pcap slice of its calls, media figures, device logs.

A test (or a fixture) adds to its :class:`EvidenceCollector` as it goes; the plugin finalises it right after the
test's call phase, while the gateway's trace still holds the test's messages (the next test's reset clears it).
Files go to ``<run dir>/evidence/<test>/`` and the matrix refers to them by paths relative to the run directory.
Collecting evidence never changes a test's outcome: a problem is recorded as a note in the evidence instead.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness import steps as harness_steps

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_STEP_KEYS = ("name", "args", "result", "duration_s", "ok", "error", "device_id", "t")


def safe_name(nodeid: str, limit: int = 120) -> str:
    """A file-system-safe directory name for a test node id."""
    name = nodeid.split("::", 1)[-1]
    name = _SAFE.sub("_", name).strip("._") or "test"
    return name[:limit]


class EvidenceCollector:
    """Evidence of one test. Thread-safe: steps may finish on driver threads."""

    def __init__(self, nodeid: str, *, device_id: str | None = None):
        self.nodeid = nodeid
        self.device_id = device_id
        self.steps: list[dict[str, Any]] = []
        self.sip_call_ids: list[str] = []
        self.media: dict[str, Any] = {}
        self.files: dict[str, Path] = {}
        self.blobs: dict[str, tuple[str, bytes]] = {}
        self.labels: dict[str, str] = {}
        self.notes: list[str] = []
        self._lock = threading.Lock()
        self._unsubscribe = None
        self.finalised: dict[str, Any] | None = None

    # --- collection ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = harness_steps.subscribe(self._on_step)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_step(self, ev: harness_steps.StepEvent) -> None:
        d = ev.to_dict()
        with self._lock:
            self.steps.append({k: d.get(k) for k in _STEP_KEYS})
        # A driver step that returned a call (dial, answer, wait_for_incoming...) names its SIP Call-ID.
        results = ev.result if isinstance(ev.result, tuple | list) else (ev.result,)
        for r in results:
            if getattr(r, "sip_call_id", None):
                self.add_call(r)

    def add_call(self, call: Any) -> None:
        """Remember a call (a ``CallInfo``, a media-node call dict or a SIP Call-ID) for the ladder and pcap."""
        cid = None
        if isinstance(call, str):
            cid = call
        elif isinstance(call, Mapping):
            cid = call.get("sip_call_id")
        else:
            cid = getattr(call, "sip_call_id", None)
        if cid:
            with self._lock:
                if cid not in self.sip_call_ids:
                    self.sip_call_ids.append(cid)

    def add_media(self, name: str, figures: Any) -> None:
        """Media figures (a ``MediaVerdict`` or a dict) under ``name``."""
        to_dict = getattr(figures, "to_dict", None)
        with self._lock:
            self.media[name] = to_dict() if callable(to_dict) else figures

    def add_file(self, label: str, path: str | Path) -> None:
        with self._lock:
            self.files[label] = Path(path)

    def add_bytes(self, label: str, name: str, data: bytes) -> None:
        """A file given by its content (a recording fetched over HTTP)."""
        with self._lock:
            self.blobs[label] = (name, data)

    def label(self, address: str, name: str) -> None:
        """Name a ladder column (``host:port`` → ``poly-vvx450``)."""
        self.labels[address] = name

    def note(self, text: str) -> None:
        with self._lock:
            self.notes.append(text)

    # --- finalisation ------------------------------------------------------------------------------------

    def finalise(self, run_dir: Path | None, control: Any = None, *, feature: str | None = None,
                 device_log: str | None = None) -> dict[str, Any]:
        """Write the files (``harness.reporting.evidence.EvidenceWriter``) and return the matrix's ``evidence``.

        Without a run directory nothing is written and the record holds the steps, Call-IDs and media figures.
        """
        if self.finalised is not None:
            return self.finalised
        self.stop()
        from harness.reporting.evidence import EvidenceWriter, jsonable, step_from_event
        from harness.reporting.model import Evidence

        media = dict(self.media)
        if self.notes:
            media["notes"] = list(self.notes)
        if run_dir is None:
            ev = Evidence(steps=[step_from_event(s) for s in self.steps], media=jsonable(media),
                          sip_call_ids=list(self.sip_call_ids))
            self.finalised = ev.model_dump(mode="json")
            return self.finalised
        writer = EvidenceWriter(run_dir, self.device_id or "lab", feature or "unmarked", safe_name(self.nodeid))
        writer.add_steps(self.steps)
        problems: list[str] = []
        if self.sip_call_ids and control is not None:
            try:
                get_notes = getattr(control, "trace_notes", None)  # service decisions shown in the ladder
                notes = get_notes(call_id=list(self.sip_call_ids)) if get_notes is not None else []
                writer.add_trace(control.trace(call_id=list(self.sip_call_ids)), self.labels or None,
                                 title=self.nodeid, notes=[{"time": n["time"], "text": n["text"]} for n in notes])
                pcap = control.trace_pcap(call_id=list(self.sip_call_ids))
                if pcap:
                    writer.add_pcap(pcap)
            except Exception as exc:  # evidence must never change the outcome
                problems.append(f"SIP trace not written: {type(exc).__name__}: {exc}")
        for cid in self.sip_call_ids:
            if cid not in writer.evidence.sip_call_ids:
                writer.evidence.sip_call_ids.append(cid)
        if device_log:
            writer.add_device_log(device_log)
        for label, path in self.files.items():
            try:
                writer.add_file(label, Path(path).name, Path(path).read_bytes())
            except OSError as exc:
                problems.append(f"{label}: {path} not copied: {exc}")
        for label, (name, data) in self.blobs.items():
            writer.add_file(label, name, data)
        if problems:
            media.setdefault("notes", []).extend(problems)
        writer.add_media(media)
        self.finalised = writer.evidence.model_dump(mode="json")
        return self.finalised
