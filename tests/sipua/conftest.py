from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sipua import UAWorker, WorkerConfig


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., UAWorker]]:
    """Spawn workers whose logs land in the test's tmp_path; all are closed after the test."""
    workers: list[UAWorker] = []

    def _spawn(name: str, *, account: str | None = "a", user: str | None = None, **config) -> UAWorker:
        config.setdefault("user_agent", f"sipgw-lab-test {name}/1.0")
        worker = UAWorker.spawn(WorkerConfig(name=name, log_path=str(tmp_path / f"{name}.log"), **config))
        workers.append(worker)
        if account is not None:
            worker.add_account(account, worker.uri(user or name))
        return worker

    yield _spawn
    for w in workers:
        w.close()
