"""SIP load benchmark: the embedded gateway against Kamailio, measured in the same run with the same scenarios.

    .venv/bin/python -m bench.sip_load            # both servers, REGISTER and calls, 3 searches each (≤ 8 min)
    .venv/bin/python -m bench.sip_load --quick    # one coarse search each (≤ 90 s)

Everything runs on loopback with SIPp over UDP (`bench/README.md` has the method). For each server and
scenario a rate search raises the target rate until a run fails, then narrows the step; a run passes when
fewer than 0.1 % of its calls failed and at least 97 % of the target rate was achieved. Each figure is the
median of the searches, with their spread. CPU time per operation is read from ``/proc/<pid>/stat`` for
every process (the server and all its children, the SIPp client, the SIPp callee). The table goes to stdout,
every run to ``reports/bench/sip_load.json``.

Every number printed is read back from what the processes did (SIPp's own counters, the kernel's CPU
accounting), never computed from the target.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
KAMAILIO_CFG = Path(__file__).resolve().parent / "kamailio.cfg"
DOMAIN = "sipgw.lab"
PASSWORD = "bench-Secret-42"
CALLEE_USER = "benchcallee"  # bench.gateway_proc creates the same user
CALLEE_NUMBER = "+14257999999"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# A run passes with fewer than 0.1 % failed calls and at least 97 % of the target rate achieved.
MAX_FAILED_FRACTION = 0.001
MIN_ACHIEVED_FRACTION = 0.97

SIPP_COMMON = ["-t", "u1", "-nostdin", "-aa", "-buff_size", "4194304", "-max_recv_loops", "10000",
               "-max_sched_loops", "10000", "-recv_timeout", "5000", "-max_log_size", "2000000"]


class BenchError(RuntimeError):
    """A step of the benchmark could not be carried out (what and why is in the message)."""


# --- processes -------------------------------------------------------------------------------------------

def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port free right now on ``host`` (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15 of stat)


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def udp_drops(port: int) -> int:
    """Datagrams the kernel dropped on the receive queue of the IPv4 UDP socket(s) bound to ``port``."""
    total = 0
    suffix = f":{port:04X}"
    with contextlib.suppress(OSError), open("/proc/net/udp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[1].endswith(suffix):
                total += int(parts[-1])
    return total


def _raise_nofile() -> None:
    """In the SIPp child: open-file limit up to the hard limit (SIPp wants more than its call limit)."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def stop_process(proc: subprocess.Popen, *, timeout: float = 5.0, extra_pids: list[int] | None = None) -> None:
    """SIGTERM the process we started, then SIGKILL it (and the children recorded for it) after ``timeout``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout)
    for pid in extra_pids or ():
        if pid != proc.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def wait_idle(pids: list[int], *, min_s: float, max_s: float, busy_fraction: float = 0.05) -> float:
    """Wait at least ``min_s`` and until the processes use under ``busy_fraction`` of a core over 0.25 s
    (retransmissions and timers of an overloaded run have drained), at most ``max_s``. Returns the wait."""
    t0 = time.monotonic()
    time.sleep(min_s)
    while time.monotonic() - t0 < max_s:
        a = sum(cpu_seconds(p) for p in pids)
        time.sleep(0.25)
        if (sum(cpu_seconds(p) for p in pids) - a) / 0.25 < busy_fraction:
            break
    return time.monotonic() - t0


# --- servers ---------------------------------------------------------------------------------------------

class Server:
    """A SIP server under test, in processes of its own that this script starts and stops by PID."""

    name = "server"

    def __init__(self, workdir: Path, users: int):
        self.workdir = workdir
        self.users = users
        self.proc: subprocess.Popen | None = None
        self.port = 0
        #: The SIPp client's port for every run against this server: the same Contact each time, so a
        #: REGISTER refreshes its binding instead of adding one per run.
        self.client_port = 0
        self._pids: list[int] = []
        self.log_path = workdir / f"{self.name}.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        return list(self._pids)

    def cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self._pids)

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, extra_pids=self._pids)
            self.proc = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class GatewayServer(Server):
    """``python -m bench.gateway_proc``: the embedded gateway with a tenant of bench users."""

    name = "gateway"

    def __init__(self, workdir: Path, users: int, *, profile: Path | None = None, startup_timeout: float = 90.0,
                 root: Path = ROOT, loop: str | None = None, gc_threshold: int | None = None,
                 registrar_processes: int = 1):
        super().__init__(workdir, users)
        self.registrar_processes = registrar_processes
        self.gc_threshold = gc_threshold
        self.loop = loop  # "uvloop" or "asyncio"; None: the gateway's default
        self.profile = profile
        self.startup_timeout = startup_timeout
        self.root = root  # the checkout whose gateway runs (another one for before/after comparisons)
        self.sip_core = "?"  # "compiled" or "python", as the gateway process says on its READY line

    def start(self) -> None:
        cmd = [sys.executable, "-m", "bench.gateway_proc", "--data-dir", str(self.workdir / "gateway-data"),
               "--users", str(self.users), "--password", PASSWORD]
        if self.profile is not None:
            cmd += ["--profile", str(self.profile)]
        if self.loop is not None:
            cmd += ["--loop", self.loop]
        if self.gc_threshold is not None:
            cmd += ["--gc-threshold", str(self.gc_threshold)]
        if self.registrar_processes != 1:
            cmd += ["--registrar-processes", str(self.registrar_processes)]
        log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(cmd, cwd=self.root, stdout=subprocess.PIPE, stderr=log,
                                     stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(self.root)})
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        buf = b""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"the gateway exited with status {self.proc.returncode} before it listened; "
                                 f"see {self.log_path}")
            chunk = self.proc.stdout.read()
            if chunk:
                buf += chunk
                if b"\n" in buf:
                    line = buf.split(b"\n", 1)[0].decode()
                    if not line.startswith("READY udp="):
                        raise BenchError(f"the gateway printed {line!r} instead of READY; see {self.log_path}")
                    fields = dict(word.split("=", 1) for word in line.split()[1:] if "=" in word)
                    self.port = int(fields["udp"].rsplit(":", 1)[1])
                    self.sip_core = fields.get("sip_core", "?")
                    # The gateway and its registrar workers (started before READY): all their CPU counts.
                    self._pids = descendants(self.proc.pid)
                    return
            time.sleep(0.05)
        self.stop()
        raise BenchError(f"the gateway did not listen within {self.startup_timeout} s; see {self.log_path}")


class KamailioServer(Server):
    """Kamailio with ``bench/kamailio.cfg``: registrar and stateful proxy, shared memory 1024 MiB."""

    name = "kamailio"

    def __init__(self, workdir: Path, users: int, *, children: int = 4, binary: str = "kamailio"):
        super().__init__(workdir, users)
        self.children = children
        self.binary = binary

    def start(self) -> None:
        exe = shutil.which(self.binary) or (f"/usr/sbin/{self.binary}"
                                           if os.path.exists(f"/usr/sbin/{self.binary}") else None)
        if exe is None:
            raise BenchError("kamailio is not installed (Debian package kamailio)")
        rundir = self.workdir / "kamailio-run"
        rundir.mkdir(parents=True, exist_ok=True)
        self.port = free_udp_port()
        cmd = [exe, "-f", str(KAMAILIO_CFG), "-DD", "-E", "-m", "1024", "-M", "16",
               "-l", f"udp:127.0.0.1:{self.port}", "-A", f'BENCH_PASSWORD="{PASSWORD}"',
               "-A", f"BENCH_CHILDREN={self.children}", "-Y", str(rundir), "-P", str(rundir / "kamailio.pid")]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        # Ready when the UDP socket is bound and the workers are forked (children + timers + main).
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"kamailio exited with status {self.proc.returncode}; see {self.log_path}")
            pids = descendants(self.proc.pid)
            if _udp_bound(self.port) and len(pids) > self.children:
                time.sleep(0.3)  # the last helpers fork right after the workers
                self._pids = descendants(self.proc.pid)
                return
            time.sleep(0.05)
        self.stop()
        raise BenchError(f"kamailio did not listen on 127.0.0.1:{self.port} within 20 s; see {self.log_path}")


def _udp_bound(port: int) -> bool:
    suffix = f"0100007F:{port:04X}"
    with contextlib.suppress(OSError), open("/proc/net/udp") as f:
        return any(line.split()[1] == suffix for line in list(f)[1:])
    return False


# --- SIPp ------------------------------------------------------------------------------------------------

def write_users_csv(path: Path, users: int) -> Path:
    """SIPp -inf file: digest user name; password; number (the bench users of bench.gateway_proc)."""
    from bench.gateway_proc import user_name, user_number

    with open(path, "w", newline="") as f:
        f.write("SEQUENTIAL\n")
        for i in range(users):
            f.write(f"{user_name(i)};{PASSWORD};{user_number(i)}\n")
    return path


def write_callee_csv(path: Path) -> Path:
    path.write_text(f"SEQUENTIAL\n{CALLEE_USER};{PASSWORD};{CALLEE_NUMBER}\n")
    return path


@dataclass
class SippStats:
    """SIPp's own counters at the end of a run (its -trace_stat file)."""

    created: int
    successful: int
    failed: int
    elapsed_s: float
    retransmissions: int
    exit_status: int
    errors: list[str] = field(default_factory=list)
    #: SIPp's own watchdog ("Overload warning: the minor watchdog timer … has been tripped"): SIPp was not
    #: scheduled in time (a loaded machine); kept apart from the errors of the scenario's messages.
    warnings: list[str] = field(default_factory=list)
    #: Requests outside every scenario call that SIPp answered by itself (``-aa``: 200 to an INFO, NOTIFY,
    #: OPTIONS or UPDATE), e.g. the gateway's unsolicited MWI NOTIFY after a registration: counted, not errors.
    auto_answered: int = 0


#: What SIPp writes to its error file when its own main loop ran late (not about any message).
SIPP_WATCHDOG = "Overload warning: the minor watchdog timer"
#: SIPp's entry for a request it answered in its automatic response mode (``-aa``), and the Call-ID it names.
SIPP_AUTO_ANSWER = re.compile(r"Automatic response mode for an unexpected .* for call: (\S+?)\s*$", re.S)
#: The entry SIPp writes for every call still open when it exits, its automatic answers' calls included.
SIPP_ABORTED = re.compile(r"Aborted call with Call-ID '([^']*)'")
#: The start of each entry of SIPp's error file ("<date>\t<time>\t<epoch>: "); SIPp does not always end an
#: entry with a newline, so entries are split where the next one starts.
SIPP_ENTRY = re.compile(r"(?=\d{4}-\d\d-\d\d\t\d\d:\d\d:\d\d\.\d+\t\d+\.\d+: )")


def _epoch(text: str) -> float:
    # "2026-11-26\t12:07:01.662587\t1795694821.662587" in SIPp's statistics file: the last field is epoch time
    try:
        return float(text.split("\t")[-1])
    except ValueError:
        raise BenchError(f"unexpected time stamp {text!r} in SIPp statistics") from None


def read_sipp_stats(stat_file: Path, exit_status: int, error_file: Path | None) -> SippStats:
    try:
        with open(stat_file, newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
    except OSError as exc:
        raise BenchError(f"SIPp wrote no statistics ({stat_file}: {exc.strerror}); exit status {exit_status}") from None
    if len(rows) < 2:
        raise BenchError(f"SIPp statistics {stat_file} have no data row; exit status {exit_status}")
    head, last = rows[0], rows[-1]
    col = {name: i for i, name in enumerate(head)}

    def get(name: str) -> str:
        if name not in col:
            raise BenchError(f"SIPp statistics {stat_file} lack the column {name!r}")
        return last[col[name]]

    errors, warnings, auto_answered = read_sipp_errors(error_file)
    return SippStats(created=int(get("TotalCallCreated")), successful=int(get("SuccessfulCall(C)")),
                     failed=int(get("FailedCall(C)")), elapsed_s=_epoch(get("CurrentTime")) - _epoch(get("StartTime")),
                     retransmissions=int(get("Retransmissions(C)")), exit_status=exit_status, errors=errors,
                     warnings=warnings, auto_answered=auto_answered)


def read_sipp_errors(error_file: Path | None, keep: int = 5) -> tuple[list[str], list[str], int]:
    """SIPp's error file as (errors of the scenario's messages, SIPp's watchdog warnings, requests SIPp answered
    automatically); the first ``keep`` entries of each list. An automatic answer's call, which SIPp reports as
    aborted when it exits, is part of that answer and no error."""
    errors: list[str] = []
    warnings: list[str] = []
    if error_file is None or not error_file.exists():
        return errors, warnings, 0
    text = error_file.read_text(errors="replace")
    entries = [e.strip() for e in SIPP_ENTRY.split(text) if "\t" in e]
    answered: set[str] = set()
    others: list[str] = []
    for entry in entries:
        auto = SIPP_AUTO_ANSWER.search(entry)
        if auto is not None:
            answered.add(auto.group(1))
        else:
            others.append(entry)
    for entry in others:
        aborted = SIPP_ABORTED.search(entry)
        if aborted is not None and aborted.group(1) in answered:
            continue
        kept = warnings if SIPP_WATCHDOG in entry else errors
        if len(kept) < keep:
            kept.append(entry[:300])
    return errors, warnings, len(answered)


def sipp_command(scenario: str, *, target: str | None, port: int, csv_file: Path | None, rate: float | None,
                 calls: int | None, keys: dict[str, str], stat_file: Path, error_file: Path,
                 global_timeout_s: float | None) -> list[str]:
    exe = shutil.which("sipp")
    if exe is None:
        raise BenchError("SIPp is not installed (Debian package sip-tester)")
    cmd = [exe]
    if target:
        cmd.append(target)
    cmd += ["-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port), *SIPP_COMMON,
            "-l", "10000", "-trace_stat", "-stf", str(stat_file), "-fd", "1",
            "-trace_err", "-error_file", str(error_file)]
    if csv_file is not None:
        cmd += ["-inf", str(csv_file)]
    if rate is not None:
        cmd += ["-r", f"{rate:.3f}".rstrip("0").rstrip("."), "-rp", "1000"]
    if calls is not None:
        cmd += ["-m", str(calls)]
    if global_timeout_s is not None:
        cmd += ["-timeout", f"{math.ceil(global_timeout_s)}s", "-timeout_error"]
    for k, v in keys.items():
        cmd += ["-key", k, v]
    return cmd


def run_sipp(scenario: str, *, target: str, csv_file: Path, rate: float, calls: int, workdir: Path,
             keys: dict[str, str] | None = None, port: int | None = None, hard_timeout_s: float) -> tuple[
                 SippStats, float, int]:
    """One bounded SIPp client run. Returns its statistics, its CPU seconds and its PID."""
    port = port or free_udp_port()
    tag = f"{scenario.removesuffix('.xml')}-{port}-{time.monotonic_ns()}"
    stat_file, error_file = workdir / f"{tag}.csv", workdir / f"{tag}.errors.log"
    cmd = sipp_command(scenario, target=target, port=port, csv_file=csv_file, rate=rate, calls=calls,
                       keys={"domain": DOMAIN, **(keys or {})}, stat_file=stat_file, error_file=error_file,
                       global_timeout_s=hard_timeout_s)
    with open(workdir / f"{tag}.out", "wb") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=_raise_nofile)
    cpu = 0.0
    try:
        # Poll the CPU time while it runs: after the exit /proc has nothing left to read.
        deadline = time.monotonic() + hard_timeout_s + 10
        while proc.poll() is None:
            if time.monotonic() > deadline:
                stop_process(proc)
                raise BenchError(f"SIPp {scenario} did not finish within {hard_timeout_s + 10:.0f} s")
            cpu = max(cpu, cpu_seconds(proc.pid))
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            stop_process(proc)
    return read_sipp_stats(stat_file, proc.returncode, error_file), cpu, proc.pid


class Callee:
    """The SIPp UAS that answers the calls: registered first from its own port, then listening there."""

    def __init__(self, server: Server, workdir: Path):
        self.server = server
        self.workdir = workdir
        self.port = free_udp_port()
        self.proc: subprocess.Popen | None = None

    def start(self, register: bool = True) -> None:
        if register:
            stats, _, _ = run_sipp("register.xml", target=self.server.address, port=self.port,
                                   csv_file=write_callee_csv(self.workdir / "callee.csv"), rate=10, calls=1,
                                   workdir=self.workdir, hard_timeout_s=10)
            if stats.successful != 1:
                raise BenchError(f"the callee could not register with {self.server.name}: {stats.errors[:1]}")
        stat_file = self.workdir / f"uas-{self.port}-{time.monotonic_ns()}.csv"
        cmd = sipp_command("uas.xml", target=None, port=self.port, csv_file=None, rate=None, calls=None, keys={},
                           stat_file=stat_file, error_file=self.workdir / f"uas-{self.port}.errors.log",
                           global_timeout_s=None)
        with open(self.workdir / f"uas-{self.port}.out", "wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, preexec_fn=_raise_nofile)
        deadline = time.monotonic() + 10
        while not _udp_bound(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BenchError(f"the SIPp callee did not listen on 127.0.0.1:{self.port}")
            time.sleep(0.02)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid) if self.proc is not None else 0.0

    def restart(self) -> None:
        """A new callee process on the same port (its registration stays valid)."""
        self.stop()
        self.start(register=False)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def __enter__(self) -> Callee:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# --- runs and the rate search ----------------------------------------------------------------------------

@dataclass
class RunResult:
    server: str
    scenario: str  # "register" or "call"
    target_rate: float
    duration_s: float
    created: int
    successful: int
    failed: int
    elapsed_s: float
    achieved_rate: float
    retransmissions: int
    server_udp_drops: int
    cpu_s: dict[str, float]
    cpu_us_per_op: dict[str, float | None]
    passed: bool
    reason: str
    errors: list[str]
    warnings: list[str] = field(default_factory=list)  # SIPp's watchdog: SIPp itself ran late
    auto_answered: int = 0  # requests outside the scenario that SIPp answered itself (the gateway's MWI NOTIFY)


def measure_run(server: Server, scenario: str, rate: float, duration_s: float, *, csv_file: Path, workdir: Path,
                callee: Callee | None = None) -> RunResult:
    """One run at a fixed target rate for ``duration_s`` seconds (SIPp stops after rate × duration calls)."""
    calls = max(1, round(rate * duration_s))
    keys = {"callee": CALLEE_NUMBER} if scenario == "call" else {}
    xml = "register.xml" if scenario == "register" else "uac.xml"
    drops0 = udp_drops(server.port)
    srv0 = server.cpu()
    uas0 = callee.cpu() if callee else 0.0
    stats, client_cpu, _ = run_sipp(xml, target=server.address, csv_file=csv_file, rate=rate, calls=calls,
                                    keys=keys, workdir=workdir, hard_timeout_s=duration_s + 5,
                                    port=server.client_port or None)
    cpu = {server.name: server.cpu() - srv0, "sipp_client": client_cpu}
    if callee is not None:
        cpu["sipp_callee"] = callee.cpu() - uas0
    drops = udp_drops(server.port) - drops0
    achieved = stats.successful / stats.elapsed_s if stats.elapsed_s > 0 else 0.0
    failed_fraction = stats.failed / max(stats.created, 1)
    reasons = []
    if stats.created < calls:
        reasons.append(f"only {stats.created} of {calls} calls were started")
    if failed_fraction >= MAX_FAILED_FRACTION:
        reasons.append(f"{stats.failed} of {stats.created} failed")
    if achieved < MIN_ACHIEVED_FRACTION * rate:
        reasons.append(f"achieved {achieved:.0f}/s of {rate:.0f}/s")
    per_op = {k: (v / stats.successful * 1e6 if stats.successful else None) for k, v in cpu.items()}
    return RunResult(server.name, scenario, rate, duration_s, stats.created, stats.successful, stats.failed,
                     stats.elapsed_s, achieved, stats.retransmissions, drops, cpu, per_op, not reasons,
                     "; ".join(reasons) or "pass", stats.errors, stats.warnings, stats.auto_answered)


def register_users(server: Server, csv_file: Path, workdir: Path) -> RunResult:
    """Register every bench user of ``csv_file`` once, slowly, before any measured run: every caller must be
    registered before it calls (the gateway answers 403 otherwise). Raises BenchError unless all succeed."""
    rate = min(200.0, server.users / 2)
    reg = measure_run(server, "register", rate, server.users / rate, csv_file=csv_file, workdir=workdir)
    if reg.successful < server.users or reg.failed:  # a user SIPp did not even start is not registered either
        raise BenchError(f"{server.name}: registering the bench users failed ({reg.reason}; {reg.errors[:1]})")
    return reg


@dataclass
class Search:
    best: RunResult | None
    runs: list[RunResult]
    complete: bool  # False when the time budget ended it early


def rate_search(run: Callable[[float], RunResult], *, start: float, hint: float | None, deadline: float,
                run_cost_s: float, ramp: float = 1.5, precision: float = 1.07, max_runs: int = 14) -> Search:
    """Highest passing target rate: ramp up by ``ramp`` until a run fails, then narrow (geometric bisection)
    until failing/passing ≤ ``precision``. With a ``hint`` (an earlier search's figure) start just below it
    and step by ``precision``. Stops early when the next run would end after ``deadline``."""
    runs: list[RunResult] = []
    best: RunResult | None = None
    lo, hi = 0.0, math.inf

    def attempt(rate: float) -> bool:
        nonlocal best, lo, hi
        r = run(rate)
        runs.append(r)
        if r.passed:
            lo = max(lo, rate)
            if best is None or r.achieved_rate > best.achieved_rate:
                best = r
        else:
            hi = min(hi, rate)
        return r.passed

    def time_left() -> bool:
        return time.monotonic() + run_cost_s <= deadline and len(runs) < max_runs

    rate = hint / precision if hint else start
    up = precision if hint else ramp
    down = precision * precision if hint else ramp
    while time_left():
        if lo > 0 and hi / lo <= precision:
            break
        if hi == math.inf:
            next_rate = rate  # ramping up
        elif lo == 0.0:
            next_rate = hi / down  # nothing passed yet: step down
        else:
            next_rate = math.sqrt(lo * hi)
        if next_rate < 1:
            break
        if attempt(next_rate) and hi == math.inf:
            rate = next_rate * up
    return Search(best, runs, lo > 0 and hi / lo <= precision)


# --- the benchmark ---------------------------------------------------------------------------------------

@dataclass
class Figure:
    server: str
    scenario: str
    searches: list[Search]

    @property
    def values(self) -> list[float]:
        return [s.best.achieved_rate for s in self.searches if s.best is not None]

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    def cpu_us(self) -> dict[str, float]:
        """CPU µs per operation per process: median over the searches' best runs."""
        bests = [s.best for s in self.searches if s.best is not None]
        if not bests:
            return {}
        return {k: statistics.median(b.cpu_us_per_op[k] for b in bests) for k in bests[0].cpu_us_per_op}


@dataclass
class Plan:
    servers: tuple[str, ...] = ("kamailio", "gateway")
    scenarios: tuple[str, ...] = ("register", "call")
    searches: int = 3
    duration_s: float = 5.0
    budget_s: float = 450.0
    users: int = 1000
    confirm_s: float = 0.0
    ramp: float = 1.5
    precision: float = 1.07
    kamailio_children: int = 4
    start_rates: dict[str, float] = field(default_factory=lambda: {
        "gateway/register": 3000, "gateway/call": 800, "kamailio/register": 3000, "kamailio/call": 800})
    cooldown_s: dict[str, float] = field(default_factory=lambda: {
        "gateway/register": 0.5, "gateway/call": 1.0, "kamailio/register": 0.5, "kamailio/call": 6.0})
    profile: Path | None = None
    #: scenario -> rate: measure at this rate instead of searching (CPU per operation before/after a change)
    fixed: dict[str, float] = field(default_factory=dict)
    gateway_root: Path = ROOT
    gateway_loop: str | None = None
    gateway_gc_threshold: int | None = None
    #: The gateway's registrar_processes (gateway/shards): its process and registrar workers, one per CPU here.
    gateway_registrar_processes: int = 2


def run_benchmark(plan: Plan, workdir: Path, log: Callable[[str], None] = print) -> dict:
    t_start = time.monotonic()
    load_start = os.getloadavg()
    deadline_all = t_start + plan.budget_s
    csv_file = write_users_csv(workdir / "users.csv", plan.users)
    figures: list[Figure] = []
    confirmations: list[RunResult] = []
    sip_core = None  # the gateway's own word on its SIP core (compiled or python), from its READY line
    slots = len(plan.servers) * len(plan.scenarios)
    slot = 0
    for server_name in plan.servers:
        if server_name == "gateway":
            server: Server = GatewayServer(workdir, plan.users, profile=plan.profile, root=plan.gateway_root,
                                           loop=plan.gateway_loop, gc_threshold=plan.gateway_gc_threshold,
                                           registrar_processes=plan.gateway_registrar_processes)
        elif server_name == "kamailio":
            server = KamailioServer(workdir, plan.users, children=plan.kamailio_children)
        else:
            raise BenchError(f"unknown server {server_name!r}: expected gateway or kamailio")
        log(f"[{time.monotonic() - t_start:5.0f}s] starting {server_name}")
        with server:
            server.client_port = free_udp_port()
            if isinstance(server, GatewayServer):
                sip_core = server.sip_core
                log(f"[{time.monotonic() - t_start:5.0f}s] gateway SIP core: {sip_core}")
            register_users(server, csv_file, workdir)
            for scenario in plan.scenarios:
                key = f"{server_name}/{scenario}"
                # The remaining budget is shared by the remaining figures.
                slot_deadline = time.monotonic() + (deadline_all - time.monotonic()) / (slots - slot)
                slot += 1
                cost = plan.duration_s + plan.cooldown_s[key] + 1.5
                callee = Callee(server, workdir) if scenario == "call" else None
                with callee if callee is not None else contextlib.nullcontext():

                    def one(rate: float, scenario: str = scenario, callee: Callee | None = callee,
                            key: str = key, server: Server = server) -> RunResult:
                        r = measure_run(server, scenario, rate, plan.duration_s, csv_file=csv_file, workdir=workdir,
                                        callee=callee)
                        log(f"[{time.monotonic() - t_start:5.0f}s] {key:18s} target {rate:8.0f}/s achieved "
                            f"{r.achieved_rate:8.0f}/s  {'pass' if r.passed else 'FAIL: ' + r.reason}")
                        waited = [*server.pids(), *([callee.proc.pid] if callee and callee.proc else [])]
                        wait_idle(waited, min_s=plan.cooldown_s[key], max_s=plan.cooldown_s[key] + 8)
                        if callee is not None and not r.passed:
                            # A fresh callee for the next run: calls an overloaded run left half-done
                            # must not count against it (SIPp keeps them until they time out).
                            callee.restart()
                        return r

                    figure = Figure(server_name, scenario, [])
                    hint = None
                    for i in range(plan.searches):
                        remaining = plan.searches - i
                        # The first search ramps up from far below: it gets half the slot, the others share the rest.
                        share = 0.5 if i == 0 and remaining > 1 else 1 / remaining
                        search_deadline = time.monotonic() + (slot_deadline - time.monotonic()) * share
                        if scenario in plan.fixed:  # no search: one run at the given rate
                            r = one(plan.fixed[scenario])
                            s = Search(r, [r], True)
                        else:
                            s = rate_search(one, start=plan.start_rates[key], hint=hint, deadline=search_deadline,
                                            run_cost_s=cost, ramp=plan.ramp, precision=plan.precision)
                        figure.searches.append(s)
                        if s.best is not None:
                            hint = s.best.target_rate
                    figures.append(figure)
                    if plan.confirm_s > 0 and figure.median:
                        confirm = measure_run(server, scenario, 0.9 * figure.median, plan.confirm_s,
                                              csv_file=csv_file, workdir=workdir, callee=callee)
                        log(f"[{time.monotonic() - t_start:5.0f}s] {key:18s} confirmation {plan.confirm_s:.0f} s at "
                            f"{confirm.target_rate:.0f}/s: {'pass' if confirm.passed else 'FAIL: ' + confirm.reason}")
                        confirmations.append(confirm)
    return {
        "schema": 1,
        "host": {"node": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
                 # other work on the machine moves every figure: the 1-minute load average at start and end
                 "loadavg_1min": [round(load_start[0], 2), round(os.getloadavg()[0], 2)]},
        "gateway_sip_core": sip_core,
        "plan": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(plan).items()},
        "wall_s": round(time.monotonic() - t_start, 1),
        "figures": [_figure_json(f) for f in figures],
        "ratios": ratios(figures),
        "confirmations": [asdict(c) for c in confirmations],
    }


def _figure_json(f: Figure) -> dict:
    return {"server": f.server, "scenario": f.scenario, "median_per_s": f.median, "searches": f.values,
            "spread": [min(f.values), max(f.values)] if f.values else None, "cpu_us_per_op": f.cpu_us(),
            "complete": [s.complete for s in f.searches],
            "runs": [asdict(r) for s in f.searches for r in s.runs]}


def ratios(figures: list[Figure]) -> dict[str, float | None]:
    by = {(f.server, f.scenario): f.median for f in figures}
    out = {}
    for scenario in ("register", "call"):
        g, k = by.get(("gateway", scenario)), by.get(("kamailio", scenario))
        out[scenario] = (g / k) if g and k else None
    return out


def table(result: dict) -> str:
    rows = [f"{'server':9s} {'REGISTER/s':>10s} {'spread':>13s} {'µs/REG (server, sipp)':>24s} "
            f"{'calls/s':>8s} {'spread':>11s} {'µs/call (server, uac, uas)':>30s}"]
    by = {(f["server"], f["scenario"]): f for f in result["figures"]}
    for server in dict.fromkeys(f["server"] for f in result["figures"]):
        cells = []
        for scenario in ("register", "call"):
            f = by.get((server, scenario))
            if f is None or f["median_per_s"] is None:
                cells.append(("—", "—", "—"))
                continue
            lo, hi = f["spread"]
            cpu = f["cpu_us_per_op"]
            cpu_txt = ", ".join(f"{cpu[k]:.0f}" for k in (server, "sipp_client", "sipp_callee") if k in cpu)
            cells.append((f"{f['median_per_s']:.0f}", f"{lo:.0f}–{hi:.0f}", cpu_txt))
        (r1, s1, c1), (r2, s2, c2) = cells
        rows.append(f"{server:9s} {r1:>10s} {s1:>13s} {c1:>24s} {r2:>8s} {s2:>11s} {c2:>30s}")
    if result.get("gateway_sip_core"):
        rows.append(f"gateway SIP core: {result['gateway_sip_core']}")
    rat = result["ratios"]
    txt = [f"{k}: {v:.1%}" for k, v in rat.items() if v is not None]
    if txt:
        rows.append("gateway as a share of Kamailio — " + ", ".join(txt))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sip_load", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one coarse search per figure, 3 s runs (≤ 90 s)")
    p.add_argument("--servers", default="kamailio,gateway", help="comma-separated: kamailio,gateway")
    p.add_argument("--scenarios", default="register,call", help="comma-separated: register,call")
    p.add_argument("--searches", type=int, help="rate searches per figure (default 3; --quick 1)")
    p.add_argument("--duration", type=float, help="seconds per run, 1 to 10 (default 5; --quick 3)")
    p.add_argument("--budget", type=float, help="seconds for the whole benchmark (default 450; --quick 80)")
    p.add_argument("--confirm", type=float, default=0.0, metavar="SECONDS",
                   help="after each figure, one confirmation run of SECONDS (≥ 32) at 90 %% of the median")
    p.add_argument("--users", type=int, default=1000, help="tenant users (default 1000)")
    p.add_argument("--kamailio-children", type=int, default=4, help="Kamailio UDP workers, 2 to 4 (default 4)")
    p.add_argument("--start", action="append", default=[], metavar="SERVER/SCENARIO=RATE",
                   help="first target rate of a search, e.g. gateway/call=200")
    p.add_argument("--fixed", action="append", default=[], metavar="SCENARIO=RATE",
                   help="no rate search for SCENARIO: each search is one run at RATE (to compare CPU per operation)")
    p.add_argument("--profile", type=Path, help="cProfile the gateway process into this file")
    p.add_argument("--gateway-loop", choices=("uvloop", "asyncio"),
                   help="the gateway's event loop (default: uvloop when installed)")
    p.add_argument("--gateway-gc-threshold", type=int, metavar="N",
                   help="the gateway's generation-0 GC threshold (bench.gateway_proc's default 50000 with the "
                        "start-up objects frozen; 0: Python's defaults)")
    p.add_argument("--gateway-registrar-processes", type=int, default=2, metavar="N",
                   help="processes that answer the gateway's UDP REGISTERs, its own included (default 2, one per CPU "
                        "of the bench machine, as Kamailio's UDP workers; 1: the gateway's process alone)")
    p.add_argument("--gateway-root", type=Path, default=ROOT,
                   help="run the gateway from this checkout (e.g. an exported older commit, for before/after)")
    p.add_argument("--json", type=Path, default=ROOT / "reports" / "bench" / "sip_load.json",
                   help="where to write the JSON (default reports/bench/sip_load.json)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (SIPp logs, server logs)")
    args = p.parse_args(argv)

    plan = Plan()
    if args.quick:
        plan = Plan(searches=1, duration_s=3.0, budget_s=75.0, ramp=1.6, precision=1.15)
    plan.servers = tuple(s.strip() for s in args.servers.split(",") if s.strip())
    plan.scenarios = tuple(s.strip() for s in args.scenarios.split(",") if s.strip())
    for name in plan.servers:
        if name not in ("gateway", "kamailio"):
            p.error(f"--servers: unknown server {name!r} (expected gateway, kamailio)")
    for name in plan.scenarios:
        if name not in ("register", "call"):
            p.error(f"--scenarios: unknown scenario {name!r} (expected register, call)")
    if args.searches is not None:
        if not 1 <= args.searches <= 9:
            p.error(f"--searches {args.searches}: expected 1 to 9")
        plan.searches = args.searches
    if args.duration is not None:
        if not 1 <= args.duration <= 10:
            p.error(f"--duration {args.duration}: a run lasts 1 to 10 s (use --confirm for longer runs)")
        plan.duration_s = args.duration
    if args.budget is not None:
        if args.budget < 20:
            p.error(f"--budget {args.budget}: at least 20 s")
        plan.budget_s = args.budget
    if args.confirm and args.confirm < 32:
        p.error(f"--confirm {args.confirm}: confirmation runs last at least 32 s")
    plan.confirm_s = args.confirm
    if not 1 <= args.users <= 9999:
        p.error(f"--users {args.users}: expected 1 to 9999")
    plan.users = args.users
    if not 2 <= args.kamailio_children <= 4:
        p.error(f"--kamailio-children {args.kamailio_children}: expected 2 to 4")
    plan.kamailio_children = args.kamailio_children
    for item in args.start:
        key, _, value = item.partition("=")
        if key not in plan.start_rates:
            p.error(f"--start {item!r}: expected one of {', '.join(plan.start_rates)} followed by =RATE")
        try:
            plan.start_rates[key] = float(value)
        except ValueError:
            p.error(f"--start {item!r}: {value!r} is not a rate")
        if plan.start_rates[key] <= 0:
            p.error(f"--start {item!r}: the rate must be positive")
    for item in args.fixed:
        key, _, value = item.partition("=")
        if key not in ("register", "call"):
            p.error(f"--fixed {item!r}: expected register=RATE or call=RATE")
        try:
            plan.fixed[key] = float(value)
        except ValueError:
            p.error(f"--fixed {item!r}: {value!r} is not a rate")
        if plan.fixed[key] <= 0:
            p.error(f"--fixed {item!r}: the rate must be positive")
    plan.profile = args.profile.resolve() if args.profile else None
    if not (args.gateway_root / "gateway" / "server.py").is_file():
        p.error(f"--gateway-root {args.gateway_root}: no gateway/server.py there")
    plan.gateway_root = args.gateway_root.resolve()
    plan.gateway_loop = args.gateway_loop
    if args.gateway_gc_threshold is not None and args.gateway_gc_threshold < 0:
        p.error(f"--gateway-gc-threshold {args.gateway_gc_threshold}: expected a positive number")
    plan.gateway_gc_threshold = args.gateway_gc_threshold
    if not 1 <= args.gateway_registrar_processes <= 16:
        p.error(f"--gateway-registrar-processes {args.gateway_registrar_processes}: expected 1 to 16")
    plan.gateway_registrar_processes = args.gateway_registrar_processes

    with _workdir(args.keep) as workdir:
        try:
            result = run_benchmark(plan, workdir, log=lambda m: print(m, file=sys.stderr, flush=True))
        except BenchError as exc:
            print(f"sip_load: {exc}", file=sys.stderr)
            return 1
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, default=_json_default) + "\n")
    tmp.replace(args.json)
    print(table(result))
    load = result["host"]["loadavg_1min"]
    print(f"wall time {result['wall_s']:.0f} s; load average {load[0]:.1f} at start, {load[1]:.1f} at end "
          f"({result['host']['cpus']} CPUs); runs in {args.json}")
    return 0


def _json_default(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sipgw-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"work directory kept: {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
