"""``sipgw-lab gateway serve`` as a process: ready line, OPTIONS, persistence across kill -9, clean stop, exit 2."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.control_api.client import ControlClient
from gateway.sip import Request, Response, parse_message
from tests.gateway.control_api.sipphone import UdpPhone

REPO = Path(__file__).resolve().parents[2]
TENANT = """\
users:
  - {username: avery, name: Avery Chen, password: pw-avery, number: "+14255550101"}
pstn: ["+1206555*"]
"""


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "gateway", "serve", *args]


def _start(data: Path, *extra: str, timeout: float = 30.0) -> tuple[subprocess.Popen, dict[str, str]]:
    proc = subprocess.Popen(_cmd("--sip", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data", str(data), *extra),
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or proc.poll() is not None:
                raise AssertionError(f"no ready line; exit {proc.poll()}; stderr:\n{_drain(proc)}")
            if sel.select(remaining):
                line = proc.stdout.readline()
                if line.startswith("event=ready "):
                    fields = dict(kv.split("=", 1) for kv in line.split()[1:])
                    return proc, fields
    except BaseException:
        _kill(proc)
        raise
    finally:
        sel.close()


def _drain(proc: subprocess.Popen) -> str:
    _kill(proc)
    return proc.stderr.read() if proc.stderr else ""


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _hostport(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def _options(udp: tuple[str, int]) -> Response:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5.0)
        port = s.getsockname()[1]
        req = Request.build("OPTIONS", f"sip:{udp[0]}:{udp[1]}", [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKserve-test1"),
            ("From", f"<sip:probe@127.0.0.1:{port}>;tag=p1"), ("To", f"<sip:{udp[0]}:{udp[1]}>"),
            ("Call-ID", "serve-test-options"), ("CSeq", "1 OPTIONS"),
        ])
        s.sendto(req.to_bytes(), udp)
        data, _ = s.recvfrom(65535)
        return parse_message(data)


@pytest.mark.slow
def test_data_survives_kill_9_and_sigterm_stops_cleanly(tmp_path):
    data = tmp_path / "gw"
    tenant = tmp_path / "tenant.yaml"
    tenant.write_text(TENANT)
    proc, ready = _start(data, "--tenant", str(tenant))
    try:
        assert ready["control_token"] == "-"  # loopback, no --control-token-file: the API is open
        resp = _options(_hostport(ready["udp"]))
        assert resp.status == 200 and "INVITE" in (resp.headers.get("Allow") or "")
        with ControlClient(ready["control"]) as api:
            assert [u["username"] for u in api.users()] == ["avery"]
            api.create_user("blake", "Blake Rivera", password="pw-blake", number="+14255550102",
                            allow_call_redirect=False)
            api.update_user("avery", allow_sip_devices_calling=False)
            api.create_device("00:04:f2:8e:5a:79", model="VVX 450", firmware="5.9.5.0614", username="blake")
            api.create_device("805ec012dc69", model="T57W", firmware="96.86.5.1", pair_state="offboarded")
            users_before, devices_before = api.users(), api.devices()
    finally:
        _kill(proc)  # kill -9: no shutdown code runs
    assert proc.returncode == -signal.SIGKILL

    proc, ready = _start(data)
    try:
        with ControlClient(ready["control"]) as api:
            assert api.users() == users_before
            assert api.devices() == devices_before
            assert api.user("avery")["policy"]["allow_sip_devices_calling"] is False
            assert api.device("805ec012dc69")["pair_state"] == "offboarded"
        # The SIP credentials came back too: blake registers with the password given before the kill.
        phone = UdpPhone(_hostport(ready["udp"]), "blake", "pw-blake")
        try:
            assert phone.register().status == 200
        finally:
            phone.close()
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(15) == 0
        err = proc.stderr.read()
        assert "event=stopping reason=signal" in err and "event=stopped" in err
        assert "event=self_check ok=true method=OPTIONS status=200" in err
    finally:
        _kill(proc)


def _run(capsys, *args: str) -> tuple[int, str]:
    """Bad input is refused before anything starts, so these run in-process: (exit status, stderr)."""
    from harness.cli import main

    try:
        status = main(["gateway", "serve", *args])
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    return status, capsys.readouterr().err


def test_bad_flags_and_files_exit_2_and_write_nothing(tmp_path, capsys):
    data = tmp_path / "never"
    bad_tenant = tmp_path / "tenant.yaml"
    bad_tenant.write_text("users:\n  - {username: avery, name: Avery, password: pw, number: 4255550101}\n")
    bad_config = tmp_path / "gateway.yaml"
    bad_config.write_text("sip: 127.0.0.1:0\nfirmware_policy: lenient\n")
    cases = [
        (["--sip", "127.0.0.1:99999"], "--sip 127.0.0.1:99999"),
        (["--http", "not a host:80"], "--http"),
        (["--tenant", str(bad_tenant)], f"{bad_tenant}:2:"),
        (["--tenant", str(tmp_path / "missing.yaml")], "file not found"),
        (["--config", str(bad_config)], f"{bad_config}:2:"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ]
    for args, expected in cases:
        status, err = _run(capsys, "--sip", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data", str(data), *args)
        assert status == 2, (args, err)
        assert expected in err, (args, err)
        assert not data.exists(), args
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    status, err = _run(capsys, "--sip", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data", str(not_a_dir))
    assert status == 2 and "not a directory" in err


def test_port_in_use_exits_2_naming_the_flag(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status, err = _run(capsys, "--sip", "127.0.0.1:0", "--http", f"127.0.0.1:{port}", "--data",
                           str(tmp_path / "gw"))
    assert status == 2
    assert f"--http 127.0.0.1:{port}: TCP port {port} is already in use" in err
    assert not (tmp_path / "gw").exists()


def test_log_lines_are_key_value_or_json():
    import json
    import logging

    from harness.cli_gateway import JsonFormatter, KeyValueFormatter

    rec = logging.LogRecord("sipgw.x", logging.INFO, __file__, 1, "event=ready udp=127.0.0.1:5 note=%s", ('"a b"',),
                            None)
    assert KeyValueFormatter().format(rec).endswith('logger=sipgw.x event=ready udp=127.0.0.1:5 note="a b"')
    doc = json.loads(JsonFormatter().format(rec))
    assert doc["event"] == "ready" and doc["udp"] == "127.0.0.1:5" and doc["note"] == "a b"
    plain = logging.LogRecord("sipgw.x", logging.WARNING, __file__, 1, "gateway up", (), None)
    assert KeyValueFormatter().format(plain).endswith('level=warning logger=sipgw.x msg="gateway up"')


def test_unusable_store_and_tenant_conflicts_exit_2(tmp_path, capsys):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "gateway.db").write_bytes(b"this is not a database" * 100)
    status, err = _run(capsys, "--sip", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data", str(corrupt))
    assert status == 2 and f"--data {corrupt}: cannot open the gateway's store" in err

    from gateway.services.model import User
    from gateway.store.sqlite import Store

    data = tmp_path / "gw"
    store = Store(data / "gateway.db")
    store.upsert_user(User("casey", "Casey Stored", "+14255550101"))
    store.close()
    tenant = tmp_path / "tenant.yaml"
    tenant.write_text(TENANT)
    status, err = _run(capsys, "--sip", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data", str(data),
                       "--tenant", str(tenant))
    assert status == 2
    assert "number +14255550101 of 'avery' belongs to user 'casey'" in err
    store = Store(data / "gateway.db")
    try:
        assert [u.username for u in store.users()] == ["casey"]
    finally:
        store.close()
