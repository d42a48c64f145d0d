"""Exceptions raised by the parent side of sipua.

Every error that concerns a worker process names the worker, and the ones about a dead or stuck
process carry the tail of that worker's log file, so a failing test shows what the SIP stack was
doing when it went wrong.
"""

from __future__ import annotations


class SipUaError(Exception):
    """Base class of every error sipua raises."""


class InvalidArgument(SipUaError, ValueError):
    """A configuration value or command argument is malformed; the message says which and why."""


class ProtocolError(SipUaError):
    """A message on the parent/worker channel is malformed or of another protocol version."""


class CommandError(SipUaError):
    """A worker refused or failed a command.

    ``code`` is a short machine-readable category (see ``protocol.ErrorCode``); ``pj_info`` is the text
    of pjsua2's ``Error.info()`` when the failure came from the SIP stack, otherwise empty.
    """

    def __init__(self, worker: str, command: str, code: str, message: str, pj_info: str = "",
                 pj_status: int | None = None) -> None:
        self.worker = worker
        self.command = command
        self.code = code
        self.message = message
        self.pj_info = pj_info
        self.pj_status = pj_status
        detail = f" [{pj_info}]" if pj_info else ""
        super().__init__(f"{worker}: {command} failed ({code}): {message}{detail}")


class RequestTimeout(SipUaError, TimeoutError):
    """A worker did not answer a command before its deadline (the worker itself still looked alive)."""


class EventTimeout(SipUaError, TimeoutError):
    """``wait_event`` reached its deadline; the message lists what was awaited and the latest events."""


class _WorkerGone(SipUaError):
    def __init__(self, worker: str, summary: str, log_path: str, log_tail: str) -> None:
        self.worker = worker
        self.log_path = log_path
        self.log_tail = log_tail
        tail = log_tail if log_tail else "(log file empty or missing)"
        super().__init__(f"{worker}: {summary}\n--- last lines of {log_path} ---\n{tail}")


class WorkerDied(_WorkerGone):
    """The worker process exited (crash, abort, SIGKILL) while it was expected to be alive."""

    def __init__(self, worker: str, exitcode: int | None, log_path: str, log_tail: str,
                 during: str = "") -> None:
        self.exitcode = exitcode
        how = _describe_exit(exitcode)
        when = f" during {during}" if during else ""
        super().__init__(worker, f"worker process {how}{when}", log_path, log_tail)


class WorkerHung(_WorkerGone):
    """The worker process is alive but has sent nothing (not even a heartbeat) for too long."""

    def __init__(self, worker: str, silent_for: float, log_path: str, log_tail: str) -> None:
        self.silent_for = silent_for
        super().__init__(worker, f"worker process silent for {silent_for:.1f} s (event loop stuck)",
                         log_path, log_tail)


class WorkerStartupError(_WorkerGone):
    """The worker process could not bring its SIP stack up (bad transport, port in use, bad TLS files)."""

    def __init__(self, worker: str, message: str, pj_info: str, log_path: str, log_tail: str) -> None:
        self.message = message
        self.pj_info = pj_info
        detail = f" [{pj_info}]" if pj_info else ""
        super().__init__(worker, f"start-up failed: {message}{detail}", log_path, log_tail)


def _describe_exit(exitcode: int | None) -> str:
    import signal

    if exitcode is None:
        return "vanished"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name}"
    return f"exited with code {exitcode}"
