"""``sipgw-lab gateway serve --provisioning HOST:PORT`` and ``provisioning=URL`` in the ready line."""

from __future__ import annotations

import os
import signal
import socket

import httpx

from gateway.control_api.client import ControlClient
from tests.gateway.test_serve import _kill, _run, _start


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    try:
        assert proc.wait(20) == 0
    finally:
        _kill(proc)


def test_ready_line_names_the_provisioning_server_default_and_fixed(tmp_path):
    proc, fields = _start(tmp_path / "gw")
    try:
        url = fields["provisioning"]
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        with ControlClient(fields["control"]) as api:
            assert api.signin.provisioning_url() == url  # the same server the control API reports
        assert "Sign in a SIP device" in httpx.get(f"{url}/signin", timeout=10).text
    finally:
        _stop(proc)
    port = _free_tcp_port()
    proc, fields = _start(tmp_path / "gw", "--provisioning", f"127.0.0.1:{port}")
    try:
        assert fields["provisioning"] == f"http://127.0.0.1:{port}"
        assert httpx.get(f"http://127.0.0.1:{port}/signin", timeout=10).status_code == 200
        # the other endpoints stay as they were
        assert {"udp", "tcp", "tls", "control", "data", "pid"} <= set(fields)
    finally:
        _stop(proc)


def test_bad_or_busy_provisioning_address_exits_2_naming_the_flag(tmp_path, capsys):
    data = tmp_path / "never"
    status, err = _run(capsys, "--sip", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data", str(data),
                       "--provisioning", "127.0.0.1:70000")
    assert status == 2 and "--provisioning 127.0.0.1:70000" in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status, err = _run(capsys, "--sip", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data", str(data),
                           "--provisioning", f"127.0.0.1:{port}")
    assert status == 2 and f"--provisioning 127.0.0.1:{port}: TCP port {port} is already in use" in err
    http_port = _free_tcp_port()
    status, err = _run(capsys, "--sip", "127.0.0.1:0", "--http", f"127.0.0.1:{http_port}", "--data", str(data),
                       "--provisioning", f"127.0.0.1:{http_port}")
    assert status == 2 and "the control API (--http) already uses" in err
    assert not data.exists()
