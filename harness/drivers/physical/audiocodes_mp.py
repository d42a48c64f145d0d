"""The ``audiocodes-mp`` driver: AudioCodes MediaPack REST status and reset; calls on FXS ports through an analog
line simulator (:mod:`harness.drivers.vendors`); with an ``ssh:`` inventory entry, the CLI over SSH (netmiko)
for port status, port reset and lock, the device's log, and an identity cross-checked between REST and CLI.

Each test's evidence gets ``ssh.log`` (:meth:`AudioCodesMpDriver.add_evidence`): the CLI session's transcript
during the test (commands and replies, passwords masked) and the device's log as read over SSH at its end.
On a simulated device (``connection: {protocol: simulator}``) ``ssh: {}`` starts the simulator's SSH server
(:mod:`harness.simulators.audiocodes_ssh`) in front of the same simulated device, with fresh passwords.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import secrets
from typing import Any

from harness.drivers.base import DriverContext, requires_active
from harness.drivers.physical.api_driver import ApiDriver, CredentialError
from harness.drivers.physical.sip_side import RemoteHoldObserver
from harness.drivers.registry import register_driver
from harness.drivers.vendors import VendorCall
from harness.drivers.vendors.audiocodes_cli import LogEntry, PortStatus, SshEndpoint
from harness.protocols import CallDirection, CallInfo, CallState, NotApplicable
from harness.steps import step

log = logging.getLogger(__name__)


@register_driver("audiocodes-mp")
class AudioCodesMpDriver(ApiDriver):
    driver_name = "audiocodes-mp"

    def __init__(self, ctx: DriverContext) -> None:
        super().__init__(ctx)
        self.ssh = ctx.options.get("ssh")  # harness.resources.SshCli from the inventory, or None
        self.ssh_simulator: Any = None
        self._log_seen: LogEntry | None = None  # the last device log entry put in a test's evidence
        self._remote_hold: RemoteHoldObserver | None = None  # hold by the far end, read from the gateway

    # ------------------------------------------------------------------------------------------ SSH endpoint
    def _endpoint_options(self) -> dict[str, Any]:
        if self.ssh is None:
            return {}
        return {"ssh": self._ssh_simulated() if self.simulated is not None else self._ssh_physical()}

    def _env(self, key: str) -> str | None:
        ref = getattr(self.ssh, key)
        if ref is None:
            return None
        value = os.environ.get(ref.env)
        if value is None:
            raise CredentialError(f"{self.device_id}: ssh.{key} refers to the environment variable {ref.env}, "
                                  f"which is not set; export {ref.env} before running")
        return value

    def _timeouts(self) -> dict[str, float]:
        return {"timeout": float(self.ctx.options.get("ssh_timeout", 10.0)),
                "read_timeout": float(self.ctx.options.get("ssh_read_timeout", 10.0))}

    def _ssh_physical(self) -> SshEndpoint:
        host = self.ssh.host or (self.connection.host if self.connection is not None else None)
        if not host:
            raise ValueError(f"{self.device_id}: ssh: needs a host (or a connection host to default to)")
        return SshEndpoint(host, self.ssh.port, self._env("username") or "", self._env("password") or "",
                           self._env("enable_password"), self.ssh.device_type, **self._timeouts())

    def _ssh_simulated(self) -> SshEndpoint:
        from harness.simulators.audiocodes_ssh import AudioCodesSshSimulator

        password, enable = secrets.token_urlsafe(9), secrets.token_urlsafe(9)
        sim = AudioCodesSshSimulator(self.simulated.sim, username="Admin", password=password,
                                     enable_password=enable)
        host, port = sim.start()
        self.ssh_simulator = sim
        return SshEndpoint(host, port, "Admin", password, enable, self.ssh.device_type, **self._timeouts())

    def _stop_ssh_simulator(self) -> None:
        sim, self.ssh_simulator = self.ssh_simulator, None
        if sim is not None:
            with contextlib.suppress(Exception):
                sim.stop()

    def deactivate(self) -> None:
        try:
            if self.session is not None and getattr(self.session, "cli", None) is not None:
                with contextlib.suppress(Exception):
                    self.session.cli.close()
        finally:
            self._stop_ssh_simulator()
            super().deactivate()

    def kill_simulated(self) -> None:
        self._stop_ssh_simulator()
        super().kill_simulated()

    # ------------------------------------------------------------------------------------------ calls
    def _sync(self, calls: list[VendorCall], ended: list[VendorCall] | None = None) -> None:
        """The port status says nothing of a hold by the far end (an analogue phone cannot tell): it is read from
        the gateway, the SDP direction of the last re-INVITE it sent to the port that the port accepted
        (:class:`~harness.drivers.physical.sip_side.RemoteHoldObserver`, RFC 3264 §8.4)."""
        if self.control is not None:
            calls = [self._with_remote_hold(vc) for vc in calls]
        super()._sync(calls, ended)

    def _with_remote_hold(self, vc: VendorCall) -> VendorCall:
        if vc.state is not CallState.CONFIRMED:
            return vc
        cid = self._ids.get(vc.handle)
        leg = vc.sip_call_id or (self._legs.get(cid) if cid else None)
        if not leg:
            return vc
        if self._remote_hold is None:
            self._remote_hold = RemoteHoldObserver(self.control)
        try:
            held = self._remote_hold.held(leg)
        except Exception as exc:  # the gateway is an extra source here; the call itself was read back
            log.debug("%s: remote hold of %s not read: %s", self.device_id, leg, exc)
            return vc
        return dataclasses.replace(vc, remote_hold=bool(held)) if held is not None else vc

    @requires_active
    def wait_for_incoming(self, *, line: int | None = None, timeout: float = 10.0) -> CallInfo:
        """A second call to a busy FXS port is call waiting: the analogue phone hears a call-waiting tone and takes
        the call with a hook flash. Neither the MediaPack REST API nor its CLI can press one (an analogue action),
        the line simulator only goes off-hook, on-hook and dials, and the port status lists one call per port."""
        wanted = [acc.index for acc in self.ctx.lines] if line is None else [self.line(line).index]
        busy = {c.line for c in self.book.calls()  # a call in progress on the port, not one ringing on it
                if c.active and (c.state is CallState.CONFIRMED or c.direction is CallDirection.OUTGOING)}
        if wanted and all(w in busy for w in wanted):
            which = ", ".join(str(w + 1) for w in wanted)
            raise NotApplicable(f"{self.device_id}: a second call to a busy FXS port (line {which}) is call waiting, "
                                "taken with a hook flash on the analogue line; the MediaPack REST API and CLI offer "
                                "no hook flash and its port status lists one call per port",
                                device_id=self.device_id)
        return super().wait_for_incoming(line=line, timeout=timeout)

    # ------------------------------------------------------------------------------------------ CLI operations
    @property
    def cli(self) -> Any:
        return getattr(self.session, "cli", None)

    @requires_active
    @step("audiocodes.port_status")
    def port_status(self) -> list[PortStatus]:
        """Every analog port as the device reports it (CLI over SSH when configured, else REST)."""
        return self._api(self.api.port_status)

    @requires_active
    @step("audiocodes.reset_port")
    def reset_port(self, port: int) -> PortStatus:
        """Reset an analog port; returns it as read back idle and on-hook."""
        return self._api(self.api.reset_port, port)

    @requires_active
    @step("audiocodes.lock_port")
    def lock_port(self, port: int) -> PortStatus:
        return self._api(self.api.lock_port, port)

    @requires_active
    @step("audiocodes.unlock_port")
    def unlock_port(self, port: int) -> PortStatus:
        return self._api(self.api.unlock_port, port)

    @requires_active
    @step("audiocodes.device_log")
    def device_log(self) -> list[LogEntry]:
        return self._api(self.api.device_log)

    def add_evidence(self, collector: Any) -> None:
        """Put this test's share of the SSH session in ``ssh.log``, with the device's log entries written since
        the previous test (read over SSH now; that read is not part of the next test's share).

        Evidence never changes a test's outcome: a log that cannot be read is said so in the file instead.
        """
        cli = self.cli
        if cli is None:
            return
        session = cli.transcript.take_since_mark()
        try:
            if self._dead is not None:  # the device broke: no new SSH session (it would wait for its timeout)
                raise self._dead
            entries = cli.device_log()
            cli.transcript.take_since_mark()
            new = _after(entries, self._log_seen)
            self._log_seen = entries[-1] if entries else self._log_seen
            device_log = "".join(f"{e.at:%d/%m/%Y %H:%M:%S} {e.text}\n" for e in new) or "(no new entries)\n"
        except Exception as exc:
            device_log = f"[sipgw-lab: device log not read over SSH: {type(exc).__name__}: {exc}]\n"
        text = (f"# {self.device_id}: AudioCodes CLI over SSH at {cli.where} ({cli.ep.device_type}); "
                "passwords masked\n\n## session during the test\n" + (session or "(no commands)\n")
                + "\n## device log since the previous test (show logging, read at the end of the test)\n"
                + cli.transcript.mask(device_log))
        collector.add_bytes("ssh_log", "ssh.log", text.encode())


def _after(entries: list[LogEntry], seen: LogEntry | None) -> list[LogEntry]:
    """The entries after the last one already reported (all of them when it rolled out of the buffer)."""
    if seen is None:
        return entries
    for i in range(len(entries) - 1, -1, -1):
        if entries[i] == seen:
            return entries[i + 1:]
    return entries
