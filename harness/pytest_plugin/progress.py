"""A live device × feature view of the run (rich), on the controller only.

Rows are the selected devices, columns the features that have results; each cell shows the outcome letters of
its tests as they arrive (``.`` pass, ``F`` fail, ``E`` error, ``~`` flaky, ``b`` blocked, ``n`` not applicable).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from harness.outcomes import Outcome, combine
from harness.pytest_plugin.state import PluginState

LETTER = {"pass": ".", "fail": "F", "error": "E", "flaky": "~", "blocked": "b", "not_applicable": "n"}
STYLE = {"pass": "green", "fail": "bold red", "error": "red", "flaky": "yellow", "blocked": "magenta",
         "not_applicable": "dim"}


def matrix_table(devices: list[str], cells: dict[tuple[str, str], list[str]], *, title: str = "",
                 caption: str = "") -> Table:
    features = []
    for (_, f) in cells:
        if f not in features:
            features.append(f)
    table = Table(title=title or None, caption=caption or None)
    table.add_column("device")
    for f in features:
        table.add_column(f)
    for d in devices:
        row: list[Any] = [d]
        for f in features:
            outs = cells.get((d, f), [])
            if not outs:
                row.append("")
                continue
            folded = combine(outs).value
            row.append(Text("".join(LETTER[o] for o in outs[-12:]), style=STYLE[folded]))
        table.add_row(*row)
    return table


class LiveProgress:
    def __init__(self, config: pytest.Config, state: PluginState, stream=None):
        self.config = config
        self.state = state
        self.console = Console(file=stream or sys.stdout, highlight=False)
        self.cells: dict[tuple[str, str], list[str]] = {}
        self.devices: list[str] = []
        self.running: dict[str, float] = {}
        self.live: Live | None = None

    def _render(self) -> Table:
        counts: dict[str, int] = {}
        for outs in self.cells.values():
            for o in outs:
                counts[o] = counts.get(o, 0) + 1
        summary = "  ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "waiting for results"
        return matrix_table(self.devices, self.cells, title=f"sipgw-lab run {self.state.run_id}",
                            caption=f"{summary}; {len(self.running)} running")

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        try:
            self.devices = [d.id for d in self.state.selected_devices()]
        except Exception:
            self.devices = []
        self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.running[nodeid] = time.monotonic()
        if self.live:
            self.live.update(self._render())

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, "sipgw", None)
        if report.when == "teardown":
            self.running.pop(report.nodeid, None)
        if isinstance(record, dict) and record.get("feature"):
            key = (record["device_id"], record["feature"])
            self.cells.setdefault(key, []).append(Outcome(record["outcome"]).value)
            if record["device_id"] not in self.devices:
                self.devices.append(record["device_id"])
        if self.live:
            self.live.update(self._render())

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.live:
            self.live.update(self._render())
            self.live.stop()
            self.live = None
            self.console.line()
