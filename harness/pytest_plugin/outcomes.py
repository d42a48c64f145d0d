"""How a pytest report becomes a sipgw-lab outcome, and the run's rerun budget.

- ``not_applicable``: :class:`harness.protocols.NotApplicable` (the catalogue says the feature does not apply);
- ``blocked``: :class:`Blocked` (firmware verdict, or a device that broke earlier) or
  :class:`harness.protocols.DeviceBroken` raised before the feature was exercised;
- ``error``: an infrastructure failure (:func:`is_infrastructure`): a worker died, a port clash, the gateway's
  control API unreachable; only these are retried, within one budget for the whole run;
- ``fail``: everything else that went wrong — an observed event contradicted the test;
- ``flaky``: passed on a retry after an infrastructure error.

pytest itself only knows passed/failed/skipped: not-applicable and blocked tests are pytest "skipped" reports
with their own category and status letter (``pytest_report_teststatus``), so they are neither failures nor
plain skips in the reports.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from harness.outcomes import Outcome
from harness.protocols import DeviceBroken, InfrastructureError, NotApplicable

#: (category, short letter, verbose word) for pytest_report_teststatus.
STATUS = {
    Outcome.NOT_APPLICABLE: ("not_applicable", "n", "N/A"),
    Outcome.BLOCKED: ("blocked", "b", "BLOCKED"),
    Outcome.FLAKY: ("flaky", "~", "FLAKY"),
    Outcome.ERROR: ("error", "E", "ERROR"),
}

_INFRA_ERRNOS = {errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.ECONNREFUSED, errno.ECONNRESET, errno.EPIPE}


class Blocked(Exception):
    """The test cannot observe its feature: the firmware verdict refuses the device, or the device broke earlier."""

    def __init__(self, reason: str, *, device_id: str | None = None):
        self.reason = reason
        self.device_id = device_id
        super().__init__(reason)


def is_infrastructure(exc: BaseException) -> bool:
    """True for failures of the lab rather than of the device or the gateway under test."""
    if isinstance(exc, InfrastructureError):
        return True
    try:
        from sipua.errors import ProtocolError, RequestTimeout, WorkerDied

        if isinstance(exc, WorkerDied | ProtocolError | RequestTimeout):
            return True
        from sipua import errors as sipua_errors

        gone = getattr(sipua_errors, "_WorkerGone", None)
        if gone is not None and isinstance(exc, gone):
            return True
    except ImportError:  # pragma: no cover - sipua is part of the package
        pass
    if isinstance(exc, OSError) and not isinstance(exc, TimeoutError) and exc.errno in _INFRA_ERRNOS:
        return True
    try:
        import httpx

        if isinstance(exc, httpx.TransportError):  # the control API did not answer at all
            return True
    except ImportError:  # pragma: no cover
        pass
    return False


def classify(exc: BaseException, when: str) -> tuple[Outcome, str]:
    """The outcome of a test whose ``when`` phase raised ``exc``, and the reason to report."""
    if isinstance(exc, NotApplicable):
        return Outcome.NOT_APPLICABLE, exc.reason
    if isinstance(exc, Blocked):
        return Outcome.BLOCKED, exc.reason
    if isinstance(exc, DeviceBroken) and when == "setup":
        return Outcome.BLOCKED, str(exc)
    text = _describe(exc)
    if is_infrastructure(exc):
        return Outcome.ERROR, f"infrastructure: {text}"
    if when != "call" and not isinstance(exc, AssertionError | DeviceBroken | TimeoutError):
        # A fixture or teardown that crashed for a reason other than an observation: the lab's fault.
        return Outcome.ERROR, f"{when}: {text}"
    return Outcome.FAIL, text


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    if not text:
        return name
    first = text.splitlines()[0]
    return first if isinstance(exc, AssertionError) else f"{name}: {first}"


class RerunBudget:
    """How many infrastructure errors this run may still retry, shared by every xdist worker.

    In one process the count lives in memory; with a ``path`` it lives in a file that each worker decrements
    under an exclusive ``flock``, so the budget is one per run, not one per worker.
    """

    def __init__(self, total: int, path: str | os.PathLike | None = None):
        self.total = total
        self.path = Path(path) if path else None
        self._left = total
        if self.path is not None and not self.path.exists():
            self.path.write_text(str(total))

    def take(self) -> bool:
        """Use one retry; False when the budget is spent."""
        if self.path is None:
            if self._left <= 0:
                return False
            self._left -= 1
            return True
        with open(self.path, "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                left = int(f.read().strip() or 0)
                if left <= 0:
                    return False
                f.seek(0)
                f.truncate()
                f.write(str(left - 1))
                return True
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @property
    def left(self) -> int:
        if self.path is None:
            return self._left
        return int(self.path.read_text().strip() or 0)
