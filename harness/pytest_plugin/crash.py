"""pytest-xdist worker crashes become cells: outcome ``error`` with the exit status and the worker's last output.

When an xdist worker process dies in the middle of a test (a segfault in a native library, ``os._exit``, the
kernel's OOM killer), pytest-xdist on its own reports a bare "worker crashed" failure that carries no sipgw
record, puts the crashed test back in the queue with the rest of the worker's group (``--dist loadgroup``) and
runs it again on the replacement worker — as often as the test crashes, until ``--max-worker-restart`` stops
the run. Here the controller instead:

- records the crashed test as outcome ``error`` (infrastructure), its reason naming the worker, its exit status
  (or the signal that killed it), the phase the test was in and the last lines the worker wrote;
- retries it only within the run's one rerun budget (:class:`~harness.pytest_plugin.outcomes.RerunBudget`); a
  retried test that passes becomes ``flaky`` with the crash as its first attempt, one that is not retried is
  taken out of the requeued group so it never runs again;
- lets xdist reschedule the remaining tests of the dead worker's group on a replacement worker;
- gives every device test that never reported (xdist gave up after too many crashed workers) an ``error`` cell
  saying so, so the matrix has no silent holes and the run ends in bounded time.

A lab test without a device (``sipgw_infrastructure``) is handled the same way (the budget, no rerun past it),
without a cell. What the controller knows about a worker comes from files the worker writes in the run's
``workers/`` directory (``<run dir>/workers``, or a temporary directory without ``--sipgw-report``):
``gwN.items.json`` (every test it collected: device, feature, name), ``gwN.current.json`` (the test and phase
running now) and ``gwN.log``: progress notes, what Python's faulthandler prints on a fatal signal and, with
``--sipgw-report``, the worker's standard error from its start (which would otherwise go to the controller's
terminal). Output a test writes while pytest captures it is held in pytest's capture buffer and dies with the
worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

#: Set by the controller for its workers: where each worker sends its stdout/stderr (``<dir>/gwN.log``).
OUTPUT_DIR_ENV = "SIPGW_XDIST_OUTPUT_DIR"
OUTPUT_TAIL_LINES = 12
OUTPUT_TAIL_CHARS = 1500


# --- worker side -----------------------------------------------------------------------------------------------

def redirect_worker_output() -> Path | None:
    """On an xdist worker of a sipgw run: point fd 2 at ``<dir>/<worker id>.log`` (append).

    Called before pytest's capture plugin saves the process's descriptors, so error output outside a test's
    capture (and faulthandler's traceback on a fatal signal) lands in the file; returns its path, or None. (fd 1
    of an xdist worker is /dev/null: execnet keeps the real one for its channel.)
    """
    wid = os.environ.get("PYTEST_XDIST_WORKER")
    folder = os.environ.get(OUTPUT_DIR_ENV)
    if not wid or not folder:
        return None
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        path = Path(folder) / f"{wid}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        return None
    os.dup2(fd, 2)
    os.close(fd)
    return path


class WorkerFiles:
    """What a worker writes for the controller: its collected device tests and the test it is running."""

    def __init__(self, folder: Path, worker_id: str):
        self.folder = folder
        self.worker_id = worker_id
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log_path = folder / f"{worker_id}.log"
        self._log = open(self.log_path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
        self._faulthandler = False

    def enable_faulthandler(self) -> None:
        import faulthandler

        with contextlib.suppress(Exception):
            faulthandler.enable(file=self._log, all_threads=True)
            self._faulthandler = True

    def write_items(self, items: dict[str, dict]) -> None:
        _write_json(self.folder / f"{self.worker_id}.items.json", items)

    def running(self, nodeid: str, phase: str, attempt: int) -> None:
        _write_json(self.folder / f"{self.worker_id}.current.json",
                    {"nodeid": nodeid, "phase": phase, "attempt": attempt, "pid": os.getpid(), "t": time.time()})
        self.note(f"sipgw: {nodeid}: {phase} (attempt {attempt})")

    def note(self, line: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._log.write(f"{time.strftime('%H:%M:%S')} {line}\n")

    def close(self) -> None:
        if self._faulthandler:
            import faulthandler

            with contextlib.suppress(Exception):
                faulthandler.disable()
        with contextlib.suppress(OSError):
            self._log.close()


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(OSError):
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)


# --- controller side ---------------------------------------------------------------------------------------------

def exit_status_of(node: Any, wait_s: float = 3.0) -> int | None:
    """The crashed worker process's exit status (negative: killed by that signal), from execnet's Popen."""
    popen = getattr(getattr(getattr(node, "gateway", None), "_io", None), "popen", None)
    if popen is None:
        return None
    try:
        return popen.wait(timeout=wait_s)
    except Exception:  # still running (it closed its channel but lingers), or already reaped elsewhere
        return popen.returncode


def describe_status(status: int | None) -> str:
    if status is None:
        return "exit status unknown"
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"killed by {name}"
    return f"exit status {status}"


def output_tail(path: Path | None, lines: int = OUTPUT_TAIL_LINES, chars: int = OUTPUT_TAIL_CHARS) -> str:
    """What a worker wrote since its last test phase began (its log file, after the plugin's last progress note):
    from a ``Fatal Python error`` on (faulthandler lists the innermost frames first), else the last lines."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    all_lines = text.splitlines()
    marks = [i for i, ln in enumerate(all_lines) if ln[9:].startswith("sipgw: ")]
    recent = [ln for ln in all_lines[marks[-1] + 1 if marks else 0:] if ln.strip()]
    fatal = next((i for i, ln in enumerate(recent) if ln.startswith("Fatal Python error")), None)
    if fatal is not None:  # the crashing thread's frames, innermost first, after the error line
        current = next((i for i, ln in enumerate(recent) if i > fatal and ln.startswith("Current thread")), None)
        kept = [recent[fatal], *recent[current:current + lines - 1]] if current is not None else \
            recent[fatal:fatal + lines]
    else:
        kept = recent[-lines:]
    return "\n".join(kept)[-chars:]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def first_pending(workload: dict[str, dict[str, bool]]) -> tuple[str, str] | None:
    """(scope, nodeid) of the first test of a worker's workload that did not complete: the one it crashed in
    (xdist hands a worker its tests in order and marks each complete when its report arrives)."""
    for scope, unit in workload.items():
        for nodeid, done in unit.items():
            if not done:
                return scope, nodeid
    return None


class CrashHandler:
    """Controller plugin (``sipgw-crash``): turns a crashed xdist worker's test into a cell; see the module doc."""

    def __init__(self, config: pytest.Config, state: Any, folder: Path, *, temporary: bool = False) -> None:
        self.config = config
        self.state = state
        self.folder = folder
        self.temporary = temporary
        self._env: dict[str, str | None] = {}
        self.started: dict[str, float] = {}
        #: worker node -> (crashed nodeid, record, retry): filled when xdist reports the worker down,
        #: used when xdist then reports its crash item
        self.expect: dict[Any, tuple[str, dict, bool]] = {}
        self.crashes = 0

    def set_env(self, name: str, value: str) -> None:
        """Set an environment variable for the workers xdist is about to start; put back by :meth:`close`."""
        self._env.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def close(self) -> None:
        for name, old in self._env.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        self._env.clear()
        if self.temporary:
            import shutil

            shutil.rmtree(self.folder, ignore_errors=True)

    # pytest_runtest_logstart reaches the controller for every test a worker starts
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.started[nodeid] = time.monotonic()

    def _item_info(self, nodeid: str) -> dict | None:
        for path in sorted(self.folder.glob("*.items.json")):
            items = _read_json(path) or {}
            if nodeid in items:
                return items[nodeid]
        return None

    def on_node_down(self, node: Any, error: Any) -> None:
        """Called from ``pytest_testnodedown`` before xdist takes the node out of its scheduler."""
        if error is None or error == "keyboard-interrupt":
            return
        dsession = self.config.pluginmanager.getplugin("dsession")
        sched = getattr(dsession, "sched", None)
        workload = getattr(sched, "assigned_work", {}).get(node) if sched is not None else None
        found = first_pending(workload) if workload else None
        if found is None:  # the worker had nothing left to run: no test is lost
            return
        scope, nodeid = found
        info = self._item_info(nodeid)
        if info is None:  # the worker died before writing its items: xdist's own report and rescheduling
            return
        self.crashes += 1
        wid = str(getattr(getattr(node, "gateway", None), "id", "?"))
        status = exit_status_of(node)
        current = _read_json(self.folder / f"{wid}.current.json") or {}
        phase = current.get("phase") if current.get("nodeid") == nodeid else None
        tail = output_tail(self.folder / f"{wid}.log")
        reason = (f"infrastructure: xdist worker {wid} crashed ({describe_status(status)}) while running this "
                  f"test{f' ({phase})' if phase else ''}; " + (f"last output:\n{tail}" if tail else
                                                                 "it wrote no output outside pytest's capture"))
        duration = time.monotonic() - self.started.get(nodeid, time.monotonic())
        attempt = {"outcome": "error", "duration_s": round(duration, 3), "error": reason}
        record = {"device_id": info["device_id"], "feature": info["feature"], "nodeid": info["nodeid"],
                  "name": info["name"], "outcome": "error", "duration_s": round(duration, 3), "reason": reason,
                  "attempts": [attempt], "evidence": {}}
        retry = self.state.budget.take()
        if not retry:
            # Taken out of the group xdist is about to requeue: it never runs again in this run.
            workload[scope][nodeid] = True
        self.expect[node] = (nodeid, record, retry)
        if not retry and first_pending(workload) is None:
            # xdist finds no crash item left in the workload and reports nothing: the report is ours to send.
            self.expect.pop(node)
            rep = self._report(nodeid, record, retry=False, worker=node)
            self.config.hook.pytest_runtest_logreport(report=rep)

    def _report(self, nodeid: str, record: dict, *, retry: bool, worker: Any) -> pytest.TestReport:
        rep = pytest.TestReport(nodeid=nodeid, location=(nodeid.split("::")[0], None, record["name"]),
                                keywords={}, outcome="failed", longrepr=record["reason"], when="call")
        rep.node = worker  # type: ignore[attr-defined]
        self._mark(rep, nodeid, record, retry)
        return rep

    def _mark(self, rep: pytest.TestReport, nodeid: str, record: dict, retry: bool) -> None:
        rep.sipgw_crash = "rerun" if retry else "error"  # type: ignore[attr-defined]
        rep.sipgw_outcome = "error"  # type: ignore[attr-defined]
        rep.sipgw_reason = record["reason"]  # type: ignore[attr-defined]
        rep.longrepr = record["reason"]
        if retry:
            rep.outcome = "rerun"  # type: ignore[assignment]
            self.state.crashed[record["nodeid"]] = record  # merged into the test's own record when it reports
        elif record.get("device_id"):  # a lab test without a device has no cell: the report says it all
            rep.sipgw = record  # type: ignore[attr-defined]

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """``--dist loadgroup`` with a guard for replacement workers (:func:`group_scheduling`)."""
        if config.getvalue("dist") != "loadgroup":
            return None
        return group_scheduling()(config, log)

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> bool | None:
        """xdist's report of the crash item: rewritten into the test that really crashed, with its record."""
        node = getattr(report, "node", None)
        expected = self.expect.pop(node, None)
        if expected is None:
            return None
        nodeid, record, retry = expected
        # Without a retry the crashed test was marked complete, so xdist names the next test of the group, which
        # was requeued and will run: the report is about the crashed one.
        report.nodeid = nodeid
        report.location = (nodeid.split("::")[0], None, record["name"])
        report.when = "call"  # type: ignore[assignment]
        self._mark(report, nodeid, record, retry)
        return True

    def merge(self, record: dict) -> dict:
        """A retried crashed test's own record, with the crash as its first attempt."""
        crashed = self.state.crashed.pop(record.get("nodeid"), None)
        if crashed is None:
            return record
        merged = dict(record)
        merged["attempts"] = [*crashed["attempts"], *(record.get("attempts") or [])]
        merged["duration_s"] = round(crashed["duration_s"] + float(record.get("duration_s") or 0.0), 3)
        if record.get("outcome") == "pass":
            merged["outcome"] = "flaky"
            merged["reason"] = (f"passed on attempt {len(merged['attempts'])} after: "
                                + "; ".join((a.get("error") or a.get("outcome") or "").splitlines()[0]
                                            for a in merged["attempts"][:-1]))
        return merged

    def unreported(self, reported: set[str]) -> list[dict]:
        """Records for device tests that never reported in a run where workers crashed: retried crash records
        whose retry never came, then tests xdist dropped when it stopped replacing crashed workers."""
        out = [r for r in self.state.crashed.values() if r.get("device_id")]
        self.state.crashed.clear()
        if not self.crashes:
            return out
        seen = reported | {r["nodeid"] for r in out}
        items: dict[str, dict] = {}
        for path in sorted(self.folder.glob("*.items.json")):
            items.update(_read_json(path) or {})
        for info in items.values():
            if not info.get("device_id") or info["nodeid"] in seen:
                continue
            seen.add(info["nodeid"])
            reason = (f"infrastructure: not run: {self.crashes} xdist worker(s) crashed and xdist stopped "
                      "before this test was run again")
            out.append({"device_id": info["device_id"], "feature": info["feature"], "nodeid": info["nodeid"],
                        "name": info["name"], "outcome": "error", "duration_s": 0.0, "reason": reason,
                        "attempts": [{"outcome": "error", "duration_s": 0.0, "error": reason}], "evidence": {}})
        return out


def group_scheduling() -> type:
    """pytest-xdist's ``LoadGroupScheduling`` that leaves a replacement worker alone until it has collected.

    When two workers crash close together, xdist starts two replacements; the first to finish collecting makes the
    scheduler hand work to every node, the second one included, whose collection is not registered yet, and xdist
    stops the whole run with an internal ``KeyError`` (``LoadScopeScheduling._assign_work_unit``). The second one
    gets its work when its own collection arrives (``schedule()`` runs again then).
    """
    from xdist.scheduler import LoadGroupScheduling

    class SipgwGroupScheduling(LoadGroupScheduling):
        def _reschedule(self, node: Any) -> None:
            if node not in self.registered_collections:
                return
            super()._reschedule(node)

    return SipgwGroupScheduling
