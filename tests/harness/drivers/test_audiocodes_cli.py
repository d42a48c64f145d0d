"""The AudioCodes CLI client's parsers on recorded-style replies, the REST/CLI identity cross-check of the
audiocodes vendor module, and the inventory's ``ssh:`` entry with its located errors."""

from __future__ import annotations

from datetime import datetime

import pytest

from harness.drivers.vendors import Endpoint, VendorApiError, audiocodes
from harness.drivers.vendors.audiocodes_cli import (
    MASK,
    AudioCodesCli,
    CliCommandError,
    CliIdentity,
    CliParseError,
    SshEndpoint,
    Transcript,
    check_error,
    parse_log,
    parse_mac,
    parse_ports,
    parse_version,
)
from harness.inventory import InventoryError, load_inventory
from harness.protocols import NotApplicable
from tests.harness.drivers.recorded import Replay, reply

VERSION = """\
;Board: MP-1288
;HW Board Type: 69  FK Board Type: 72
;Serial Number: 11755940
;Slot Number: 1
;Software Version: 7.40A.250.440
;Ram size: 496M   Flash size: 64M   Core speed: 500Mhz
;;;Key features:;Board Type: MP-1288 ;Channel Type: RTP DspCh=288
"""

PORTS = """\
Port  Type  Number            Hook      State      Remote            Registration    Admin
----  ----  ----------------  --------  ---------  ----------------  --------------  --------
1     FXS   +14255550101      off-hook  connected  +14255550150      registered      unlocked
2     FXS   -                 on-hook   idle       -                 not-registered  locked
"""


def test_version_fields():
    v = parse_version(VERSION)
    assert (v.board, v.firmware, v.serial) == ("MP-1288", "7.40A.250.440", "11755940")
    assert v.fields["Slot Number"] == "1"


@pytest.mark.parametrize(("text", "line_no", "expect"), [
    (";Board: MP-1288\n;Software Version: 7.40A\n", 2, "a version such as"),
    (";Board: MP-1288\nBoard type: MP-1288, firmware 7.40A.250.440\n", 2, "';Name: value' lines"),
    (";Software Version: 7.40A.250.440\n", 0, ";Board"),
])
def test_version_garbled(text, line_no, expect):
    with pytest.raises(CliParseError, match=expect) as err:
        parse_version(text)
    assert err.value.command == "show system version" and err.value.line_no == line_no


def test_mac_from_the_first_interface():
    text = "  Name: GROUP_1\n  Hardware address is: 00-90-8F-4A-5B-6C\n  Name: O+M+C\n  Uptime: 0:00:01:05\n"
    assert parse_mac(text) == "00908f4a5b6c"
    with pytest.raises(CliParseError, match=r"line 2: '  Hardware address is: 00-90-8f': expected") as err:
        parse_mac("  Name: GROUP_1\n  Hardware address is: 00-90-8f\n")
    assert err.value.where == "show network interface:2"


def test_ports_table():
    p1, p2 = parse_ports(PORTS)
    assert (p1.port, p1.off_hook, p1.call_state, p1.remote, p1.registered, p1.locked) == (
        1, True, "connected", "+14255550150", True, False)
    assert (p2.number, p2.remote, p2.registered, p2.locked) == (None, None, False, True)


@pytest.mark.parametrize(("text", "line_no", "expect"), [
    ("Ports:\n1 FXS\n", 1, "the table header"),
    (PORTS + "3     FXS   +14255550103      on-hook   idle\n", 5, "8 columns"),
    (PORTS.replace("connected", "talking"), 3, "state one of idle, ringing, dialing, connected, hold, not 'talking'"),
    (PORTS.replace("\n1 ", "\nA "), 3, "a port number, not 'A'"),
])
def test_ports_garbled(text, line_no, expect):
    with pytest.raises(CliParseError, match=expect) as err:
        parse_ports(text)
    assert (err.value.command, err.value.line_no) == ("show voip ports", line_no)


def test_log_lines():
    entries = parse_log("26/11/2026 14:31:05 [CLI] Analog port 2 reset\n26/11/2026 14:31:06 Device reset\n")
    assert entries[0].at == datetime(2026, 11, 26, 14, 31, 5) and entries[1].text == "Device reset"
    assert parse_log("No log entries\n") == []
    with pytest.raises(CliParseError, match="line 1: '31/02/2026 10:00:00 x': expected a valid date"):
        parse_log("31/02/2026 10:00:00 x")
    with pytest.raises(CliParseError, match="'DD/MM/YYYY HH:MM:SS text' log lines"):
        parse_log("syslog: something")


def test_device_errors():
    with pytest.raises(CliCommandError, match="refused 'shw': 'Invalid command'"):
        check_error("shw", "      ^\nInvalid command\n")
    check_error("show logging", "26/11/2026 14:31:05 Invalid commands are logged\n")  # a log line is not an error


def test_secrets_masked_as_words_and_hidden_from_repr():
    t = Transcript(("en", "s3cret!"))
    assert t.mask("enable; pw en; s3cret!") == f"enable; pw {MASK}; {MASK}"
    ep = SshEndpoint("192.0.2.40", 22, "Admin", "s3cret!", "en")
    assert "s3cret!" not in repr(ep) and "'en'" not in repr(ep)
    with pytest.raises(ValueError, match="not a netmiko AudioCodes type"):
        AudioCodesCli(SshEndpoint("192.0.2.40", device_type="audiocodes_72"))


class _Cli:
    where = "192.0.2.40:22"

    def __init__(self, ident: CliIdentity) -> None:
        self.ident = ident

    def identity(self) -> CliIdentity:
        return self.ident

    def close(self) -> None:
        pass


def _session(cli_ident: CliIdentity | None):
    rp = Replay({("GET", "/api/v1/status"): (200, reply("audiocodes", "status.json"))})
    s = audiocodes.connect(Endpoint("https://192.0.2.40", "Admin", "pw", True, 2.0, {"transport": rp.transport}))
    s.cli = _Cli(cli_ident) if cli_ident else None
    return s


def test_identity_cross_checked_between_rest_and_cli():
    same = CliIdentity("MP114", "6.60A.367.001", "00908f4a5b6c", "5017834")
    assert audiocodes.identity(_session(same)).source == "http-api+ssh-cli"
    other = CliIdentity("MP114", "6.60A.367.001", "00908f000001", "5017834")
    with pytest.raises(VendorApiError, match=r"report different devices .*MAC: REST '00908f4a5b6c', CLI "
                                             r"'00908f000001'") as err:
        audiocodes.identity(_session(other))
    assert err.value.where == "ssh.host"


def test_cli_operations_need_an_ssh_entry():
    s = _session(None)
    for fn in (audiocodes.reset_port, audiocodes.lock_port, audiocodes.unlock_port):
        with pytest.raises(NotApplicable, match="ssh: endpoint"):
            fn(s, 1)
    with pytest.raises(NotApplicable, match="read the device's log"):
        audiocodes.device_log(s)


ATA = """\
devices:
  - id: ata
    vendor: AudioCodes
    model: MP114
    firmware: 6.60A.367.001
    driver: audiocodes-mp
    connection: {{protocol: https, host: 192.0.2.40}}
    ssh: {ssh}
    lines:
      - {{number: "+14255550151", port: 1}}
"""


def test_inventory_ssh_entry():
    env = {"AC_USER": "Admin", "AC_PASS": "x"}
    inv = load_inventory("lab.yaml", text=ATA.format(
        ssh="{port: 2222, username: {env: AC_USER}, password: {env: AC_PASS}}"), environ=env)
    ssh = inv.devices[0].entry.ssh
    assert (ssh.host, ssh.port, ssh.device_type, ssh.references()) == (
        None, 2222, "audiocode_72", {"username": "AC_USER", "password": "AC_PASS"})


@pytest.mark.parametrize(("ssh", "expect"), [
    ("{username: {env: AC_USER}, password: hunter2}", "ssh.password: write a reference to an environment"),
    ("{username: {env: AC_USER}, password: {env: AC_MISSING}}", "environment variable AC_MISSING"),
    ("{username: {env: AC_USER}}", "ssh.password is missing"),
    ("{port: 70000, username: {env: AC_USER}, password: {env: AC_PASS}}", "less than or equal to 65535"),
    ("{device_type: audiocodes_72, username: {env: AC_USER}, password: {env: AC_PASS}}", "audiocode_72"),
])
def test_inventory_ssh_errors_are_located(ssh, expect):
    with pytest.raises(InventoryError) as err:
        load_inventory("lab.yaml", text=ATA.format(ssh=ssh), environ={"AC_USER": "Admin", "AC_PASS": "x"})
    text = str(err.value)
    assert expect in text and "lab.yaml:8:" in text
