"""``sipgw-lab gateway serve --registrar-processes 2`` as a process: the worker's REGISTERs, its log lines in the
gateway's log, and no worker left behind after SIGTERM or after the gateway is killed."""

from __future__ import annotations

import os
import signal
import time

from gateway.control_api.client import ControlClient
from gateway.shards.dispatch import shard_of
from tests.gateway.control_api.sipphone import UdpPhone
from tests.gateway.test_serve import _hostport, _kill, _run, _start

WORKER_USER = next(f"w{i}" for i in range(100) if shard_of(f"w{i}", 2) == 1)
TENANT = f"""\
users:
  - {{username: {WORKER_USER}, name: Worker User, password: pw-worker, number: "+14255550111"}}
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie has exited
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _worker_pid(control: str) -> int:
    with ControlClient(control) as api:
        workers = api.health()["registrar_workers"]
    assert workers["processes"] == 2 and workers["workers"][0]["alive"]
    return int(workers["workers"][0]["pid"])


def _serve_with_a_worker(tmp_path):
    """``gateway serve --registrar-processes 2`` with the tenant: (process, ready fields, the worker's pid)."""
    tenant = tmp_path / "tenant.yaml"
    tenant.write_text(TENANT)
    proc, ready = _start(tmp_path / "gw", "--tenant", str(tenant), "--registrar-processes", "2")
    try:
        return proc, ready, _worker_pid(ready["control"])
    except BaseException:
        _kill(proc)
        raise


def test_a_worker_registers_logs_through_the_gateway_and_stops_with_it(tmp_path):
    proc, ready, pid = _serve_with_a_worker(tmp_path)
    try:
        phone = UdpPhone(_hostport(ready["udp"]), WORKER_USER, "pw-worker", answers_notify=True)
        try:
            resp = phone.register()
            assert resp.status == 200
        finally:
            phone.close()
        with ControlClient(ready["control"]) as api:
            assert api.health()["registrar_workers"]["workers"][0]["forwarded"] >= 2
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(20) == 0
        err = proc.stderr.read()
        assert "event=registrar_workers_ready processes=2" in err
        # The worker's own lines come out of the gateway's log handler, in its format, naming the worker.
        assert "logger=sipgw.shards.worker event=worker_ready index=1" in err and "worker=1" in err
        assert _wait_gone(pid, 5)
    finally:
        _kill(proc)


def test_a_worker_does_not_outlive_a_killed_gateway(tmp_path):
    proc, _, pid = _serve_with_a_worker(tmp_path)
    _kill(proc)  # kill -9: the worker sees its channel close
    assert _wait_gone(pid, 10), f"registrar worker {pid} still runs after the gateway was killed"


def test_a_bad_process_count_exits_2(tmp_path, capsys):
    for value, problem in (("0", "0 is not between 1 and 16"), ("17", "17 is not between 1 and 16"),
                           ("two", "'two' is not a whole number")):
        status, err = _run(capsys, "--sip", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data", str(tmp_path / "d"),
                           "--registrar-processes", value)
        assert status == 2 and problem in err, (value, err)
        assert not (tmp_path / "d").exists()
