"""The worker process: one pjsua2 Endpoint, one thread, commands and events over a Pipe.

``worker_main`` is the ``multiprocessing`` target.  It

1. points file descriptors 1 and 2 at the worker's log file *before* pjsua2 starts (pjlib prints to
   stdout during ``libCreate``, so stdout can never be the IPC channel; the Pipe is);
2. brings the SIP stack up through ``sipua.agent.UserAgent`` and sends ``ready`` (or ``fatal``);
3. loops: ``libHandleEvents(10)``, then the commands waiting on the Pipe, due timers, commands waiting
   to complete, and a heartbeat every ``heartbeat_interval_s`` so the parent can tell a stuck worker
   from a busy one;
4. on ``shutdown`` hangs up, waits for DISCONNECTED, destroys the library and exits; if the parent
   disappears (EOF on the Pipe) it does the same within a short deadline.

The process always leaves through ``os._exit`` so that no pjsua2 object is finalised by the
interpreter after ``libDestroy``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import IO, Any

import pjsua2 as pj

from sipua import protocol as p
from sipua.agent import CommandFailure, Pending, UserAgent
from sipua.errors import InvalidArgument, ProtocolError
from sipua.protocol import ErrorCode, EventType

log = logging.getLogger("sipua.worker")

EXIT_OK = 0
EXIT_STARTUP_FAILED = 3
EXIT_PARENT_GONE = 4
EXIT_INTERNAL = 5
ORPHAN_SHUTDOWN_S = 2.0
POLL_MS = 10  # while anything is going on: commands arriving, calls up, timers due, replies pending
IDLE_POLL_MS = 50  # after IDLE_AFTER_S of nothing: SIP still wakes the poll at once, a command waits <= 50 ms
IDLE_AFTER_S = 2.0


def worker_main(conn: Connection, config_wire: dict[str, Any]) -> None:
    """Process entry point; never returns."""
    code = EXIT_INTERNAL
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        config = p.from_wire(p.WorkerConfig, config_wire)
        stream = _redirect_output(config.log_path)
        _setup_logging(stream, config.name)
        code = _Worker(conn, config, stream).run()
    except BaseException:
        try:
            sys.stderr.write(traceback.format_exc())
            sys.stderr.flush()
        except Exception:
            pass
    finally:
        try:
            conn.close()
        except Exception:
            pass
        logging.shutdown()
        os._exit(code)


def _redirect_output(path: str) -> IO[str]:
    """Send fds 1 and 2 (pjlib's printf, Python's stderr) to the log file, line-buffered."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    stream = open(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    sys.stdout = stream
    sys.stderr = stream
    return stream


def _setup_logging(stream: IO[str], name: str) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(f"%(asctime)s.%(msecs)03d sipua[{name}] %(levelname)s %(message)s",
                                           "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


class _ParentGone(Exception):
    pass


class _Worker:
    def __init__(self, conn: Connection, config: p.WorkerConfig, stream: IO[str]) -> None:
        self.conn = conn
        self.config = config
        self.stream = stream
        self.seq = 0
        self.agent = UserAgent(config, self._emit, self._pj_log)
        self.pending: list[tuple[int, str, Pending]] = []
        self.shutdown_request: tuple[int, Pending] | None = None
        self.parent_gone = False
        self.active_until = 0.0  # fast polling until then (see POLL_MS / IDLE_POLL_MS)

    # ------------------------------------------------------------------ output

    def _send(self, kind: str, **body: Any) -> None:
        if self.parent_gone:
            return
        try:
            self.conn.send_bytes(p.encode_frame(kind, **body))
        except (OSError, ValueError):
            self.parent_gone = True

    def _emit(self, etype: EventType, data: dict[str, Any]) -> None:
        self.seq += 1
        ts = time.monotonic()
        self.active_until = ts + IDLE_AFTER_S
        shown = {k: v for k, v in data.items() if k not in ("raw", "traceback", "body")}
        log.info("event #%d %s %s", self.seq, etype.value, shown)
        self._send("event", event={"type": etype.value, "seq": self.seq, "ts": ts, "data": data})

    def _pj_log(self, msg: str) -> None:
        self.stream.write(msg if msg.endswith("\n") else msg + "\n")

    def _reply_ok(self, request_id: int, result: dict[str, Any]) -> None:
        self._send("response", id=request_id, ok=True, result=result)

    def _reply_error(self, request_id: int, failure: CommandFailure) -> None:
        self._send("response", id=request_id, ok=False, error=failure.to_wire())

    # ------------------------------------------------------------------ main loop

    def run(self) -> int:
        t0 = time.monotonic()
        try:
            info = self.agent.start()
        except pj.Error as exc:
            log.error("start-up failed: %s", exc.info())
            self._send("fatal", error={"message": f"{exc.title}: {exc.reason}", "pj_info": exc.info()})
            return EXIT_STARTUP_FAILED
        except Exception as exc:
            log.error("start-up failed:\n%s", traceback.format_exc())
            self._send("fatal", error={"message": f"{type(exc).__name__}: {exc}", "pj_info": ""})
            return EXIT_STARTUP_FAILED
        info["startup_s"] = round(time.monotonic() - t0, 4)
        log.info("ready: %s", info)
        self._send("ready", info=info)

        interval = self.config.heartbeat_interval_s
        next_beat = time.monotonic() + interval
        orphan_deadline: float | None = None
        while True:
            self.agent.handle_events(self._poll_ms())
            now = time.monotonic()
            if not self.parent_gone:
                self._read_commands()
            if self.parent_gone and orphan_deadline is None:
                log.warning("parent gone: shutting down")
                orphan_deadline = now + ORPHAN_SHUTDOWN_S
                if self.shutdown_request is None:
                    self.shutdown_request = (-1, self.agent.begin_shutdown(p.Shutdown(timeout_s=ORPHAN_SHUTDOWN_S)))
            self.agent.tick(now)
            self._poll_pending(now)
            if self.shutdown_request is not None:
                request_id, pending = self.shutdown_request
                result = pending.poll()
                if result is not None or now >= pending.deadline:
                    return self._finish_shutdown(request_id, result)
            if now >= next_beat:
                self._send("heartbeat", ts=now, calls=self.agent.live_calls())
                next_beat = now + interval

    def _finish_shutdown(self, request_id: int, waited: dict[str, Any] | None) -> int:
        for rid, _, _ in self.pending:
            self._reply_error(rid, CommandFailure(ErrorCode.SHUTTING_DOWN, "the worker shut down first"))
        self.pending.clear()
        result = dict(waited or {"calls_ended_in_s": None, "timed_out": True})
        result.update(self.agent.destroy())
        log.info("shut down: %s", result)
        if request_id >= 0:
            self._reply_ok(request_id, result)
        return EXIT_PARENT_GONE if request_id < 0 else EXIT_OK

    def _poll_ms(self) -> int:
        """How long pjsua may block waiting for SIP. An idle worker polls its command pipe less often: about
        30 of them idle through a lab run, and at 100 polls a second each cost 2 % of a CPU."""
        now = time.monotonic()
        if (now < self.active_until or self.pending or self.shutdown_request is not None
                or self.agent.live_calls() or self.agent.next_timer_in(now) < IDLE_POLL_MS / 1000):
            return POLL_MS
        return IDLE_POLL_MS

    def _read_commands(self) -> None:
        try:
            while self.conn.poll():
                raw = self.conn.recv_bytes()
                self.active_until = time.monotonic() + IDLE_AFTER_S
                self._dispatch(raw)
        except (EOFError, OSError):
            self.parent_gone = True

    def _dispatch(self, raw: bytes) -> None:
        request_id = -1
        try:
            frame = p.decode_frame(raw)
            if frame.get("kind") != "request" or not isinstance(frame.get("id"), int):
                raise ProtocolError(f"expected a request frame with an integer id, got {frame!r:.200}")
            request_id = frame["id"]
            cmd = p.decode_command(frame.get("cmd"), frame.get("args"))
        except (ProtocolError, InvalidArgument) as exc:
            log.warning("bad request: %s", exc)
            if request_id >= 0:
                self._reply_error(request_id, CommandFailure(ErrorCode.BAD_REQUEST, str(exc)))
            return
        log.info("command #%d %s %s", request_id, cmd.NAME, p.to_wire(cmd))
        if isinstance(cmd, p.Shutdown):
            if self.shutdown_request is None:
                self.shutdown_request = (request_id, self.agent.begin_shutdown(cmd))
            else:
                self._reply_error(request_id, CommandFailure(ErrorCode.SHUTTING_DOWN, "already shutting down"))
            return
        try:
            result = self.agent.execute(cmd)
        except CommandFailure as failure:
            log.info("command #%d %s failed: %s %s", request_id, cmd.NAME, failure.message, failure.pj_info)
            self._reply_error(request_id, failure)
            return
        except Exception as exc:
            log.error("command #%d %s raised:\n%s", request_id, cmd.NAME, traceback.format_exc())
            self._reply_error(request_id, CommandFailure(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}"))
            return
        if isinstance(result, Pending):
            self.pending.append((request_id, cmd.NAME, result))
        else:
            self._reply_ok(request_id, result)

    def _poll_pending(self, now: float) -> None:
        if not self.pending:
            return
        still: list[tuple[int, str, Pending]] = []
        for request_id, name, pending in self.pending:
            try:
                result = pending.poll()
            except CommandFailure as failure:
                self._reply_error(request_id, failure)
                continue
            except Exception as exc:
                log.error("%s raised while completing:\n%s", name, traceback.format_exc())
                self._reply_error(request_id, CommandFailure(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}"))
                continue
            if result is not None:
                self._reply_ok(request_id, result)
            elif now >= pending.deadline:
                self._reply_error(request_id, CommandFailure(ErrorCode.TIMEOUT, f"{name}: gave up {pending.what}"))
            else:
                still.append((request_id, name, pending))
        self.pending = still
