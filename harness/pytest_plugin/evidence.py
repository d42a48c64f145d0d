"""What a test leaves behind: steps, the SIP ladder and pcap slice of its calls, media figures, device logs.

A test (or a fixture) adds to its :class:`EvidenceCollector` as it goes; the plugin finalises it right after the
test's call phase, while the gateway's trace still holds the test's messages (the next test's reset clears it).
Files go to ``<run dir>/evidence/<test>/`` and the matrix refers to them by paths relative to the run directory.
Collecting evidence never changes a test's outcome: a problem is recorded as a note in the evidence instead.
"""

from __future__ import annotations

import json
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

    def label(self, address: str, name: str) -> None:
        """Name a ladder column (``host:port`` → ``poly-vvx450``)."""
        self.labels[address] = name

    def note(self, text: str) -> None:
        with self._lock:
            self.notes.append(text)

    # --- finalisation ------------------------------------------------------------------------------------

    def finalise(self, run_dir: Path | None, control: Any = None, *, device_log: str | None = None) -> dict[str, Any]:
        """Write the files and return the matrix's ``evidence`` object (paths relative to ``run_dir``)."""
        if self.finalised is not None:
            return self.finalised
        self.stop()
        out: dict[str, Any] = {"steps": list(self.steps), "media": dict(self.media),
                               "sip_call_ids": list(self.sip_call_ids)}
        if self.notes:
            out["media"].setdefault("notes", list(self.notes))
        if run_dir is not None:
            rel = Path("evidence") / safe_name(self.nodeid)
            folder = run_dir / rel
            try:
                folder.mkdir(parents=True, exist_ok=True)
                files = {}
                if self.sip_call_ids and control is not None:
                    out.update(self._write_trace(folder, rel, control))
                if device_log:
                    (folder / "device.log").write_text(device_log, encoding="utf-8")
                    out["device_log"] = str(rel / "device.log")
                for label, path in self.files.items():
                    p = Path(path)
                    if p.exists():
                        target = folder / _SAFE.sub("_", f"{label}-{p.name}")
                        target.write_bytes(p.read_bytes())
                        files[label] = str(target.relative_to(run_dir))
                if files:
                    out["files"] = files
            except Exception as exc:  # evidence must never change the outcome
                out["media"].setdefault("notes", []).append(f"evidence not written: {type(exc).__name__}: {exc}")
        self.finalised = out
        return out

    def _write_trace(self, folder: Path, rel: Path, control: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        entries = fetch_trace(control, self.sip_call_ids)
        (folder / "trace.json").write_text(json.dumps(entries, indent=1), encoding="utf-8")
        out["trace"] = str(rel / "trace.json")
        if entries:
            from harness.reporting import ladder as ladder_mod

            lad = ladder_mod.build_ladder(entries, labels=self.labels or None)
            (folder / "ladder.txt").write_text(ladder_mod.render_text(lad, title=self.nodeid), encoding="utf-8")
            (folder / "ladder.html").write_text(ladder_mod.render_html(lad, title=self.nodeid), encoding="utf-8")
            out["ladder_txt"] = str(rel / "ladder.txt")
            out["ladder_html"] = str(rel / "ladder.html")
        pcap = fetch_pcap(control, self.sip_call_ids)
        if pcap:
            (folder / "calls.pcap").write_bytes(pcap)
            out["pcap"] = str(rel / "calls.pcap")
        return out


def _http(control: Any):
    http = getattr(control, "_http", None) or getattr(control, "http", None)
    if http is None:
        raise RuntimeError(f"{type(control).__name__} has no HTTP session to read the trace with")
    return http


def fetch_trace(control: Any, call_ids: list[str]) -> list[dict]:
    """The gateway's trace entries (JSON dicts) for these Call-IDs (``GET /api/v1/trace``)."""
    r = _http(control).get("/api/v1/trace", params=[("call_id", c) for c in call_ids])
    r.raise_for_status()
    return list(r.json().get("entries", []))


def fetch_pcap(control: Any, call_ids: list[str]) -> bytes:
    r = _http(control).get("/api/v1/trace.pcap", params=[("call_id", c) for c in call_ids])
    r.raise_for_status()
    return r.content
