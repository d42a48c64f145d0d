"""netmiko (``audiocode_72``) against the AudioCodes SSH simulator, for real: login, enable, paging off, the
commands the CLI client sends, errors, and the device state the SSH and REST sides share."""

from __future__ import annotations

import os

import httpx
import pytest

from harness.drivers.vendors import DeviceUnreachable
from harness.drivers.vendors.audiocodes_cli import (
    MASK,
    AudioCodesCli,
    CliAuthError,
    CliCommandError,
    CliParseError,
    SshEndpoint,
)
from harness.simulators.audiocodes_mp import AudioCodesMpSimulator
from harness.simulators.audiocodes_ssh import AudioCodesSshSimulator
from tests.harness.simulators.conftest import fake_identity, wait_until

pytest.importorskip("netmiko", reason="the physical extra (netmiko) is part of the dev dependencies")

SLOW = float(os.environ.get("SIPGW_SLOWNESS", "1") or 1)
PASSWORD, ENABLE = "lab-Pass_7", "en-Secret_9"
REST_AUTH = ("Admin", "Admin")


@pytest.fixture(scope="module")
def device():
    from harness.simulators import FakeBackend

    backend = FakeBackend(fake_identity("AudioCodes", "MP114", "7.24A.256.468", "Audiocodes-Sip-Gateway-MP-114",
                                        lines=3))
    rest = AudioCodesMpSimulator(backend, restart_s=0.3)
    rest.start()
    ssh = AudioCodesSshSimulator(rest, username="Admin", password=PASSWORD, enable_password=ENABLE)
    ssh.start()
    yield rest, ssh
    ssh.stop()
    rest.stop()


def endpoint(ssh, **kw) -> SshEndpoint:
    args = {"username": "Admin", "password": PASSWORD, "enable_password": ENABLE, "timeout": 5.0 * SLOW,
            "read_timeout": 5.0 * SLOW, **kw}
    return SshEndpoint(ssh.host, ssh.port, **args)


@pytest.fixture(scope="module")
def cli(device):
    client = AudioCodesCli(endpoint(device[1]))
    yield client
    client.close()


@pytest.fixture
def rest_http(device):
    with httpx.Client(base_url=device[0].url, auth=REST_AUTH, timeout=5) as c:
        yield c


def test_login_enable_and_paging_off(device, cli):
    _rest, ssh = device
    cli.connect()
    assert ("Admin", True) in ssh.logins
    assert ssh.commands[:6] == ["enable", "config system", "cli-settings", "window-height 0", "exit", "exit"]
    assert 0 in ssh.window_heights


def test_identity_matches_the_rest_api(device, cli, rest_http):
    ident = cli.identity()
    st = rest_http.get("/api/v1/status").json()
    assert (ident.model, ident.firmware, ident.mac, ident.serial) == ("MP114", "7.24A.256.468", "0004f28e5a79",
                                                                      "SN123")
    assert (st["productType"], st["versionID"], st["macAddress"]) == (ident.model, ident.firmware, ident.mac)


def test_port_status_follows_the_analog_side(device, cli, rest_http):
    rest, _ssh = device
    assert [(p.port, p.call_state, p.off_hook) for p in cli.ports()] == [(1, "idle", False), (2, "idle", False),
                                                                          (3, "idle", False)]
    call = rest.backend.inject_incoming("+14255550150", line=2)
    assert cli.port(2).call_state == "ringing"
    assert rest_http.post("/_sim/ports/2/offhook").json() == {"answered": call.id}
    p2 = cli.port(2)
    assert (p2.call_state, p2.off_hook, p2.remote, p2.registered) == ("connected", True, "+14255550150", True)
    # a port reset over SSH releases the call; REST (the same device) sees it idle and on-hook
    assert cli.reset_port(2).call_state == "idle"
    port2 = rest_http.get("/api/v1/status/ports/2").json()
    assert (port2["callState"], port2["hookState"]) == ("idle", "onHook")
    assert rest.backend.call(call.id).phase.value == "ended" and rest.port_resets[-1] == 2


def test_lock_and_unlock_read_back(device, cli, rest_http):
    assert cli.lock_port(3).locked
    assert rest_http.get("/api/v1/status/ports/3").json()["adminState"] == "locked"
    assert not cli.unlock_port(3).locked
    assert rest_http.get("/api/v1/status/ports/3").json()["adminState"] == "unlocked"
    texts = [e.text for e in cli.device_log()]
    assert "[CLI] Analog port 3 locked" in texts and "[CLI] Analog port 3 unlocked" in texts


def test_unknown_command_and_bad_port_are_the_devices_errors(device, cli):
    with pytest.raises(CliCommandError, match="refused 'show voip portz': 'Invalid command'") as err:
        cli.command("show voip portz")
    assert err.value.command == "show voip portz"
    with pytest.raises(CliCommandError, match=r"Invalid parameter: port 9 \(ports: 1-3\)"):
        cli.reset_port(9)
    assert cli.port(1).port == 1  # the session is still usable


def test_garbled_reply_is_a_parse_error_naming_command_and_line(device, cli):
    _rest, ssh = device
    ssh.override_reply("show voip ports", "Port  Type  Number  Hook  State  Remote  Registration  Admin\n"
                                          "1     FXS   +14255550101  on-hook  idle  -  registered  unlocked\n"
                                          "2     FXS   +14255550102  sideways  idle  -  registered  unlocked")
    try:
        with pytest.raises(CliParseError) as err:
            cli.ports()
    finally:
        ssh.override_reply("show voip ports", None)
    e = err.value
    assert (e.command, e.line_no) == ("show voip ports", 3) and "sideways" in e.line
    assert "hook one of on-hook, off-hook, not 'sideways'" in str(e)


def test_wrong_login_password(device):
    _rest, ssh = device
    bad = AudioCodesCli(endpoint(ssh, password="not-the-password"))
    with pytest.raises(CliAuthError, match="refused the SSH login") as err:
        bad.ports()
    assert err.value.where == "ssh.password" and ("Admin", False) in ssh.logins
    assert "not-the-password" not in bad.transcript.text() + str(err.value)


def test_wrong_enable_password(device):
    _rest, ssh = device
    bad = AudioCodesCli(endpoint(ssh, enable_password="not-the-secret", read_timeout=1.5 * SLOW))
    with pytest.raises(CliAuthError, match="refused the enable password") as err:
        bad.version()
    assert err.value.where == "ssh.enable_password"
    assert "not-the-secret" not in bad.transcript.text() + str(err.value)
    bad.close()


def test_reload_restarts_the_device_and_the_next_command_opens_a_new_session(device, rest_http):
    rest, ssh = device
    client = AudioCodesCli(endpoint(ssh))
    try:
        client.version()
        resets = len(rest.resets)
        client.reload(save=False)
        assert rest.resets[resets:] == [{"saveConfiguration": False, "gracefulTimeout": 0, "via": "CLI"}]
        wait_until(lambda: not rest.restarting, timeout=5 * SLOW, what="the simulated device to restart")
        assert client.version().firmware == "7.24A.256.468"
        transcript = client.transcript.text()
        assert ">>> reload without-saving" in transcript and "session dropped: the device restarts" in transcript
        assert transcript.count("connecting") == 2
    finally:
        client.close()


def test_a_restarting_device_is_unreachable(device):
    rest, ssh = device
    rest.restart_s = 60.0  # held restarting until end_restart(), whatever the machine's load
    rest.reset_device(True, 0, "test")
    client = AudioCodesCli(endpoint(ssh, timeout=2.0 * SLOW))
    try:
        with pytest.raises(DeviceUnreachable, match="no SSH session"):
            client.version()
    finally:
        client.close()
        rest.restart_s = 0.3
        rest.end_restart()
    assert client.version().firmware == "7.24A.256.468"  # back: a new session
    client.close()


def test_transcript_has_commands_and_replies_without_passwords(device, cli):
    cli.transcript.take_since_mark()
    cli.ports()
    part = cli.transcript.take_since_mark()
    assert ">>> show voip ports" in part and "+14255550101" in part
    whole = cli.transcript.text()
    assert PASSWORD not in whole and ENABLE not in whole and "logged in, enable mode" in whole
    assert cli.transcript.mask(f"pw {PASSWORD}, secret {ENABLE}.") == f"pw {MASK}, secret {MASK}."
    assert cli.transcript.take_since_mark() == ""


def test_the_simulator_runner_serves_the_cli_too():
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "harness.simulators", "audiocodes", "--fake"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url, ssh_url = proc.stdout.readline().strip(), proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and ssh_url.startswith("ssh://127.0.0.1:"), (
            proc.stderr.read() if proc.poll() is not None else (url, ssh_url))
        host, port = ssh_url.removeprefix("ssh://").rsplit(":", 1)
        client = AudioCodesCli(SshEndpoint(host, int(port), "Admin", "Admin", timeout=5.0 * SLOW,
                                           read_timeout=5.0 * SLOW))
        try:
            assert client.version().firmware == "6.60A.367.001"
        finally:
            client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10 * SLOW) == 0


def test_paging_is_on_until_the_client_turns_it_off(device, cli):
    import paramiko

    rest, ssh = device
    for i in range(30):
        rest.log_event(f"paging probe {i}")
    assert len([e for e in cli.device_log() if e.text.startswith("paging probe")]) == 30  # netmiko: paging off
    raw = paramiko.SSHClient()
    raw.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    raw.connect(ssh.host, ssh.port, username="Admin", password=PASSWORD, look_for_keys=False, allow_agent=False,
                timeout=5 * SLOW)
    try:
        chan = raw.invoke_shell()
        chan.settimeout(5 * SLOW)
        chan.send(b"show logging\r")
        seen = b""
        while b"--MORE--" not in seen:  # a plain session pages at the default window height
            chunk = chan.recv(4096)
            assert chunk, seen
            seen += chunk
        chan.send(b"q")
        while not seen.rstrip().endswith(b">"):
            seen += chan.recv(4096)
        assert seen.count(b"paging probe") < 30
    finally:
        raw.close()
