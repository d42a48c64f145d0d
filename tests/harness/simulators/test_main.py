from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx

from harness.simulators.__main__ import main
from tests.cli_usage import usage_error


def test_serves_a_fake_device_until_terminated():
    proc = subprocess.Popen([sys.executable, "-m", "harness.simulators", "poly", "--fake"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.poll() is not None else url
        r = httpx.get(url + "/api/v2/mgmt/device/info", auth=("Polycom", "456"), timeout=5)
        assert r.status_code == 404  # out of the box: REST off
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(10) == 0


def test_needs_a_gateway_or_fake(capsys):
    assert "--gateway HOST:PORT" in usage_error(main, ["poly"], capsys)
