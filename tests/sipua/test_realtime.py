"""pjmedia's clock and RTP threads run on SCHED_RR where the kernel allows it (sipua.realtime)."""

from __future__ import annotations

import os

import pytest

from sipua import realtime
from sipua.realtime import MediaThreadScheduling


def _policy_of(pid: int, thread_name: str) -> list[int]:
    policies = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as fh:
            if fh.read().strip() == thread_name:
                policies.append(os.sched_getscheduler(int(tid)))
    return policies


def _may_use_realtime() -> bool:
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
    except PermissionError:
        return False
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return True


@pytest.mark.skipif(not _may_use_realtime(), reason="this user may not use real-time scheduling")
def test_worker_media_threads_run_sched_rr_and_the_command_thread_does_not(spawn):
    w = spawn("rt", account=None)
    assert w.info["media_scheduling"].startswith("SCHED_RR 10 for ")
    pid = w.info["pid"]
    assert _policy_of(pid, "clock") == [os.SCHED_RR]
    assert _policy_of(pid, "media") and set(_policy_of(pid, "media")) == {os.SCHED_RR}
    assert os.sched_getscheduler(pid) == os.SCHED_OTHER  # the Python thread that runs commands


def test_worker_can_be_told_to_keep_normal_scheduling(spawn):
    w = spawn("plain", account=None, realtime_media=False)
    assert w.info["media_scheduling"] == "normal (real-time scheduling turned off)"
    assert set(_policy_of(w.info["pid"], "clock")) == {os.SCHED_OTHER}


def test_refusal_is_reported_and_not_retried(monkeypatch):
    calls = []

    def refuse(tid, policy, param):
        calls.append(tid)
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(realtime, "_threads", lambda: [(101, "clock"), (102, "media"), (103, "python")])
    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    sched = MediaThreadScheduling()
    sched.apply()
    sched.apply()
    assert calls == [101]
    assert sched.describe() == (
        "normal: real-time scheduling not permitted (Operation not permitted): needs root, CAP_SYS_NICE or "
        "RLIMIT_RTPRIO"
    )


def test_only_pjmedia_threads_are_raised_once_each(monkeypatch):
    raised = []
    threads = [(201, "clock"), (202, "python"), (203, "ev_thread")]
    monkeypatch.setattr(realtime, "_threads", lambda: list(threads))
    monkeypatch.setattr(os, "sched_setscheduler", lambda tid, policy, param: raised.append((tid, policy)))
    sched = MediaThreadScheduling(priority=5)
    sched.apply()
    threads.append((204, "media"))
    sched.apply()
    assert raised == [(201, os.SCHED_RR), (204, os.SCHED_RR)]
    assert sched.describe() == "SCHED_RR 5 for 2 pjmedia thread(s)"
    assert sched.complete
    monkeypatch.setattr(realtime, "_threads", lambda: pytest.fail("threads listed again after all were raised"))
    sched.apply()  # every media-state change calls it: nothing is read once both kinds are raised
