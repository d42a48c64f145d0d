"""The results history on a real PostgreSQL server: a private cluster (Debian's postgresql binaries) started in
a temporary directory on a loopback port for this module, and stopped by PID at its end."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness.history.db import record_run
from tests.harness.history.test_history_db import check_history, three_runs

pytestmark = pytest.mark.slow
BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def _as_cluster_user(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: as root, run it as the Debian package's postgres user.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def pg_url():
    if not BIN:
        pytest.skip("Debian postgresql is not installed (make debs installs it)")
    bindir = Path(BIN[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="sipgw-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(_as_cluster_user([str(bindir / "initdb"), "-D", str(data), "--auth=trust", "-U", "sipgw",
                                     "--no-sync"]), check=True, capture_output=True, timeout=120)
    proc = subprocess.Popen(_as_cluster_user([
        str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sock), "-c",
        "listen_addresses=127.0.0.1", "-c", "fsync=off"]), stdout=subprocess.DEVNULL,
        stderr=(log := (root / "postgres.log").open("wb")))
    url = f"postgresql+psycopg://sipgw@127.0.0.1:{port}/postgres"
    try:
        deadline = time.monotonic() + 60
        while True:  # wait for the server to accept connections (an event, with a deadline)
            ready = subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                                   capture_output=True, timeout=10)
            if ready.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start: {(root / 'postgres.log').read_text()[-800:]}")
            time.sleep(0.2)
        yield url
    finally:
        pid_file = data / "postmaster.pid"
        pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else proc.pid
        os.kill(pid, signal.SIGINT)  # fast shutdown of the postmaster we started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_history_drift_regressions(pg_url):
    check_history(pg_url)
    res = record_run(three_runs()[0], pg_url)  # recording through the run's entry point
    assert res.ok and "postgresql+psycopg://sipgw@127.0.0.1" in res.message
