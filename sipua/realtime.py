"""Real-time scheduling for pjmedia's own threads in a worker process.

A desk phone moves audio on a DSP that nothing else on the phone can delay. An emulated device
shares two cores with the gateway, the media node, pytest and every other device, and under that
load the kernel's fair scheduler can keep a process off the CPU for 200 ms. pjmedia's ``clock``
thread (the null sound device's tick that drives the conference bridge, players, tone generators
and recorders) and its ``media`` thread (the RTP socket loop) then stall: the sender emits nothing
for that long, the receiver's jitter buffer runs dry and then discards the late burst, and the
recording shows a gap that no device and no network caused.

Those two threads do a few microseconds of work every 20 ms, so giving them a low ``SCHED_RR``
priority costs the rest of the machine nothing measurable, and the kernel's real-time throttling
(``/proc/sys/kernel/sched_rt_runtime_us``) still keeps 5 % of each CPU for ordinary tasks. The
Python thread that runs commands stays an ordinary thread. Without the permission to do it (not
root, no ``CAP_SYS_NICE``, ``RLIMIT_RTPRIO`` 0) the threads stay as they are and the worker says so
in its ``ready`` information, where the run's evidence keeps it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

MEDIA_THREAD_NAMES = ("clock", "media")  # pjmedia's null-device clock and the RTP ioqueue thread
DEFAULT_PRIORITY = 10  # low among real-time priorities: kernel threads that need more keep it


@dataclass
class MediaThreadScheduling:
    """Puts pjmedia's threads of this process on ``SCHED_RR``; idempotent, and free once every kind is raised."""

    priority: int = DEFAULT_PRIORITY
    enabled: bool = True
    done: set[int] = field(default_factory=set)
    names: set[str] = field(default_factory=set)  # the pjmedia thread names raised so far
    refused: str | None = None  # why the last attempt was not allowed

    def apply_at_start(self, wait_s: float = 0.25) -> None:
        """``apply`` once every pjmedia thread has its name: pjlib names a thread just after starting it, so
        right after ``libStart`` one may still carry the process's name."""
        deadline = time.monotonic() + wait_s
        while True:
            self.apply()
            if not self.enabled or self.refused is not None or self.complete or time.monotonic() >= deadline:
                return
            time.sleep(0.005)

    @property
    def complete(self) -> bool:
        """Every kind of pjmedia thread has been raised (later calls need not list the threads again)."""
        return self.names >= set(MEDIA_THREAD_NAMES)

    def apply(self) -> None:
        """Raise every pjmedia thread not yet raised; remembers the reason if the kernel refuses."""
        if not self.enabled or self.refused is not None or self.complete:
            return
        for tid, name in _threads():
            if tid in self.done or name not in MEDIA_THREAD_NAMES:
                continue
            try:
                os.sched_setscheduler(tid, os.SCHED_RR, os.sched_param(self.priority))
            except PermissionError as exc:
                self.refused = f"not permitted ({exc.strerror}): needs root, CAP_SYS_NICE or RLIMIT_RTPRIO"
                return
            except (ProcessLookupError, OSError):
                continue  # the thread ended between listing and setting
            self.done.add(tid)
            self.names.add(name)

    def describe(self) -> str:
        """What the ready information reports: the policy the media threads run under, and why."""
        if not self.enabled:
            return "normal (real-time scheduling turned off)"
        if self.refused is not None:
            return f"normal: real-time scheduling {self.refused}"
        if not self.done:
            return "normal: no pjmedia thread found"
        return f"SCHED_RR {self.priority} for {len(self.done)} pjmedia thread(s)"


def _threads() -> list[tuple[int, str]]:
    found = []
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/comm", encoding="ascii", errors="replace") as fh:
                found.append((int(tid), fh.read().strip()))
        except (OSError, ValueError):
            continue
    return found
