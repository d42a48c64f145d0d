"""``CallControl`` over a vendor control API module (:mod:`harness.drivers.vendors`).

Calls are observed, never assumed: a background poller reads the device's call list through its API (and
the vendor's event feed where it has one: Yealink Action URLs, Cisco Remote SDK events) every
``poll_interval`` seconds and records each change in a :class:`~harness.drivers.base.CallBook`; operations
return the call as read back after the device reports the change (or raise ``OperationTimeout`` saying what
was last seen). A control API that stops answering is an :class:`InfrastructureError` within about a
second, and breaks the device for the rest of the run.

A call that ends before a poll lists it live (a feature code such as ``*30*`` answered at once with a final
response, RFC 3261 §13.2.2.4) is read back from what the API reports of ended calls (the vendor module's
``ended_calls``: Yealink ``call_terminated``, Cisco Remote SDK events, Poly's placed call log, an FXS port
left off-hook) and enters the call list already ended. The final status of an ended call comes from the API
when it reports one, else from the final response to the device's INVITE in the gateway's trace; a handle
the API reuses for another call ends the old call. Nothing waits out a deadline to decide that a call ended.

``MessageWaiting`` is the vendor's read-back of the lamp (``mwi`` of the vendor module), polled until it
shows the state awaited.

Identity is read back from the device before anything else and compared with the inventory
(:attr:`ApiDriver.identity_check`); the firmware verdict is recomputed from what the device reports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from device_profiles.verdict import check_firmware
from harness import steps
from harness.drivers.base import CallBook, Driver, DriverContext, requires_active, user_part
from harness.drivers.vendors import DeviceUnreachable, Endpoint, VendorApiError, VendorCall, module_for
from harness.protocols import (
    AudioProbe,
    CallControl,
    CallDirection,
    CallEvent,
    CallInfo,
    CallState,
    DeviceIdentity,
    EventKind,
    Forwarding,
    ForwardingKind,
    ForwardingRule,
    Identity,
    InfrastructureError,
    MediaDirection,
    MessageWaiting,
    MwiState,
    NotApplicable,
    OperationFailed,
    OperationTimeout,
    Provisioning,
    ProvisioningInfo,
    RegistrationInfo,
)
from harness.steps import step

log = logging.getLogger(__name__)
T = TypeVar("T")

OP_TIMEOUT = 8.0  # how long an operation waits for the device to report its effect (times the slowness factor)
FAILURES_BEFORE_DEAD = 3


class CredentialError(ValueError):
    """A credential's environment variable is missing; the message names it (never a value)."""


def resolve_credentials(device_id: str, credentials: Any) -> tuple[str | None, str | None]:
    """(username, password) from the inventory's ``{env: NAME}`` references."""
    if credentials is None:
        return None, None
    out = []
    for key in ("username", "password"):
        ref = getattr(credentials, key, None)
        if ref is None:
            out.append(None)
            continue
        value = os.environ.get(ref.env)
        if value is None:
            raise CredentialError(f"{device_id}: credentials.{key} refers to the environment variable {ref.env}, "
                                  f"which is not set; export {ref.env} before running")
        out.append(value)
    return out[0], out[1]


def harness_ip(ctx: DriverContext) -> str:
    """The harness's address on the lab network, which devices call back (driver option ``harness_ip``,
    else ``SIPGW_HARNESS_IP``, else loopback for simulated devices)."""
    return str(ctx.options.get("harness_ip") or os.environ.get("SIPGW_HARNESS_IP") or "127.0.0.1")


def endpoint_from(ctx: DriverContext, connection: Any, credentials: Any, **options: Any) -> Endpoint:
    """The control endpoint of a physical device from its inventory ``connection`` and ``credentials``."""
    user, password = resolve_credentials(ctx.device_id, credentials)
    scheme = {"https": "https", "http": "http", "websocket": "http"}.get(connection.protocol)
    if scheme is None:
        raise ValueError(f"{ctx.device_id}: connection.protocol {connection.protocol!r} is not an HTTP API; "
                         "use http, https or simulator")
    host = f"[{connection.host}]" if connection.host and ":" in connection.host else connection.host
    port = f":{connection.port}" if connection.port else ""
    verify: bool | str = bool(connection.verify_tls)
    ca = ctx.options.get("ca_file") or os.environ.get("SIPGW_DEVICE_CA")
    if connection.verify_tls and ca:
        verify = str(ca)
    return Endpoint(f"{scheme}://{host}{port}{connection.path or ''}", user, password, verify,
                    float(ctx.options.get("http_timeout", 5.0)), {**ctx.options.get("api_options", {}), **options})


def media_of(vc: VendorCall) -> MediaDirection:
    if vc.state is not CallState.CONFIRMED:
        return MediaDirection.NONE
    if vc.local_hold and vc.remote_hold:
        return MediaDirection.INACTIVE
    if vc.local_hold:
        return MediaDirection.SENDONLY
    if vc.remote_hold:
        return MediaDirection.RECVONLY
    return MediaDirection.SENDRECV


class ApiDriver(Driver, CallControl, Identity, Provisioning, AudioProbe, MessageWaiting, Forwarding):
    """Base of the vendor API drivers; subclasses set ``driver_name`` (a key of ``VENDOR_MODULES``).

    ``AudioProbe`` works on simulated devices (their SIP stack sends the tone and records); a physical
    device's handset has no audio path to the harness, so there it is ``NotApplicable`` and audio is
    judged at the far end.
    """

    driver_name = ""
    poll_interval = 0.1
    reports_dtmf_received = False  # no vendor control API reads back the digits a device received

    def __init__(self, ctx: DriverContext) -> None:
        super().__init__(ctx)
        self.api = module_for(self.driver_name)
        if ctx.vendor != self.api.VENDOR:
            raise NotApplicable(f"the {self.driver_name} driver drives {self.api.VENDOR} devices; "
                                f"{ctx.device_id} is a {ctx.vendor} {ctx.model}", device_id=ctx.device_id)
        self.connection = ctx.options.get("connection")
        self.credentials = ctx.options.get("credentials")
        self.control = ctx.options.get("control")  # the gateway's ControlClient, when there is one
        self.book = CallBook(ctx.device_id, liveness=self._liveness)
        self.session: Any = None
        self.simulated: Any = None  # harness.drivers.physical.simulated.SimulatedDevice
        self.device_side: Any = None  # who applies settings at the device (provisioning file / a person)
        self.identity_check: list[str] = []
        self.read_back: DeviceIdentity | None = None
        self.bootstrap_steps: list[str] = []
        self._dead: InfrastructureError | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._polling = threading.Event()  # set once bootstrap made the API usable
        self._failures = 0
        self._ids: dict[str, str] = {}
        self._legs: dict[str, str] = {}  # call id -> the device leg's Call-ID, from the gateway
        self._began: dict[str, float] = {}  # call id -> when the API says the call began (where it says)
        self._gen = 0
        self._sync_lock = threading.RLock()

    # ------------------------------------------------------------------------------------------ lifecycle
    @property
    def simulated_connection(self) -> bool:
        return self.connection is not None and self.connection.protocol == "simulator"

    def _endpoint_options(self) -> dict[str, Any]:
        return {}

    @step("api.activate")
    def activate(self) -> None:
        if self.active:
            return
        if self.connection is None:
            raise ValueError(f"{self.device_id}: the {self.driver_name} driver needs a connection (for example "
                             "connection: {protocol: https, host: 192.0.2.10}, or {protocol: simulator})")
        if self.simulated_connection:
            from harness.drivers.physical.simulated import start_simulated

            self.simulated = start_simulated(self)
            endpoint = self.simulated.endpoint(self._endpoint_options())
            self.device_side = self.simulated.device_side
        else:
            from harness.drivers.physical.manual import ManualDeviceSide

            endpoint = endpoint_from(self.ctx, self.connection, self.credentials, **self._endpoint_options())
            self.device_side = ManualDeviceSide.from_options(self.device_id, self.ctx.options)
        self.session = self.api.connect(endpoint)
        super().activate()
        self._poller = threading.Thread(target=self._poll_loop, name=f"poll-{self.device_id}", daemon=True)
        self._poller.start()

    @step("api.deactivate")
    def deactivate(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(5)
        if self.simulated is not None:  # the device first: its connections to the session end with it
            self.simulated.stop()
        if self.session is not None:
            with contextlib.suppress(Exception):
                self.api.close(self.session)
        super().deactivate()

    def kill_simulated(self) -> None:
        """Make a simulated device die (its API server and SIP worker stop), as a power cut would."""
        if self.simulated is None:
            raise ValueError(f"{self.device_id} is not simulated")
        self.simulated.stop()

    # ------------------------------------------------------------------------------------------ plumbing
    def _liveness(self) -> None:
        if self._dead is not None:
            raise self._dead

    def _api(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        self._liveness()
        try:
            return fn(self.session, *args, **kw)
        except DeviceUnreachable as exc:
            raise self._infra(exc) from exc

    def _infra(self, exc: BaseException) -> InfrastructureError:
        if self._dead is None:
            self._dead = InfrastructureError(f"{self.device_id}: the {self.api.API} stopped answering: {exc}",
                                             device_id=self.device_id)
            getattr(self, "failed", lambda exc: exc)(self._dead)  # tells the Lab to break the device
            self.book.poke()
        return self._dead

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            if not self._polling.is_set() or self._dead is not None:
                continue
            try:
                calls = self.api.calls(self.session)
                self._failures = 0
            except DeviceUnreachable as exc:
                self._failures += 1
                if self._failures >= FAILURES_BEFORE_DEAD:
                    self._infra(exc)
                continue
            except (VendorApiError, NotApplicable) as exc:  # e.g. 503 while it restarts: keep the last view
                log.debug("%s: poll: %s", self.device_id, exc)
                continue
            except Exception:  # never let the poller die silently
                log.exception("%s: poll failed", self.device_id)
                continue
            ended = self._ended_calls()
            self._sync(calls, ended)

    def _ended_calls(self) -> list[VendorCall]:
        """Calls that ended before a poll of the live call list saw them (a feature code's final response, a
        rejected call), as the vendor API reports them: its event feed (Yealink Action URL, Cisco Remote SDK
        events) or its call log (Poly). Each is reported once."""
        fn = getattr(self.api, "ended_calls", None)
        if fn is None:
            return []
        try:
            return list(fn(self.session))
        except (VendorApiError, NotApplicable, DeviceUnreachable) as exc:
            log.debug("%s: ended calls: %s", self.device_id, exc)
            return []

    def _id_for(self, handle: str) -> str:
        """The driver's call id for a vendor handle: handles are reused (pjsua2 slots, Cisco callIds count
        from 0 per line), so a handle seen again after its call ended gets a new id."""
        cid = self._ids.get(handle)
        if cid is not None:
            try:
                if self.book.call(cid).active:
                    return cid
            except LookupError:
                return cid
        self._gen += 1
        cid = self._ids[handle] = f"{handle}~{self._gen}"
        return cid

    @staticmethod
    def handle_of(call_id: str) -> str:
        return call_id.rsplit("~", 1)[0]

    def _sync(self, calls: list[VendorCall], ended: list[VendorCall] | None = None) -> None:
        seen: set[str] = set()
        with self._sync_lock:
            self._sync_locked(calls, seen)
            for vc in ended or ():
                self._sync_ended(vc)

    def _gateway_leg(self, vc: VendorCall) -> str | None:
        """The Call-ID of the device's leg as the gateway's B2BUA recorded it (for APIs that report none):
        the A leg of a call the device placed, the B leg of one it answered."""
        if self.control is None or vc.state is not CallState.CONFIRMED:
            return None
        mine = {a.username for a in self.ctx.lines} | {a.number for a in self.ctx.lines}
        try:
            records = self.control.calls()
        except Exception:  # the gateway's API is an extra source here; the call itself was read back
            return None
        for rec in records:
            if rec.get("state") != "confirmed":
                continue
            caller, callee = user_part(str(rec.get("caller", ""))), user_part(str(rec.get("callee", "")))
            if vc.direction == "out" and caller in mine and (not vc.remote or vc.remote == callee):
                return rec.get("a_call_id")
            answered_by = str(rec.get("answered_by") or "")
            if vc.direction == "in" and callee in mine and (not vc.remote or vc.remote == caller) and (
                    not answered_by or answered_by.startswith("device ")):  # not the caller's call a DTMF relay
                # answered: the relay places its own call on to the device (gateway/services/dtmf_interworking.py)
                legs = rec.get("b_call_ids") or []
                return legs[-1] if len(legs) == 1 else None
        return None

    def _sync_locked(self, calls: list[VendorCall], seen: set[str]) -> None:
        for vc in calls:
            cid = self._id_for(vc.handle)
            seen.add(cid)
            if vc.sip_call_id is None:
                known = self._legs.get(cid)
                if known is None:
                    known = self._gateway_leg(vc)
                    if known:
                        self._legs[cid] = known
                if known:
                    vc = dataclasses.replace(vc, sip_call_id=known)
            info = CallInfo(id=cid, state=vc.state, remote=vc.remote,
                            direction=CallDirection.INCOMING if vc.direction == "in" else CallDirection.OUTGOING,
                            media_direction=media_of(vc), sip_call_id=vc.sip_call_id, line=max(vc.line - 1, 0),
                            status_code=vc.status_code, local_hold=vc.local_hold, remote_hold=vc.remote_hold,
                            muted=vc.muted, started=time.time())
            try:
                old = self.book.call(cid)
            except LookupError:
                old = None
            began = self._began.get(cid)
            if old is not None and old.active and (_new_call_under_old_handle(old, info) or (
                    vc.started is not None and began is not None and vc.started != began)):
                # The handle was reused (Cisco callIds, pjsua slots) before a poll saw the old call end.
                status = self._final_status(old)
                self.book.update_call(old.id, EventKind.STATE, {"read_back": "its handle now names another call",
                                                                "status_from": status[2]},
                                      state=CallState.DISCONNECTED, ended=time.time(),
                                      status_code=old.status_code or status[0],
                                      sip_call_id=old.sip_call_id or status[1])
                self._gen += 1
                cid = self._ids[vc.handle] = f"{vc.handle}~{self._gen}"
                info = dataclasses.replace(info, id=cid)
                seen.add(cid)
                old = None
            if old is None:
                if vc.started is not None:  # when the API says the call began: a later call under the handle differs
                    self._began[cid] = vc.started
                kind = EventKind.INCOMING if info.direction is CallDirection.INCOMING else EventKind.STATE
                if info.state is CallState.CONFIRMED:  # answered before a poll listed it ringing
                    info = dataclasses.replace(info, answered=time.time())
                self.book.put_call(info, kind)
                if info.state is CallState.CONFIRMED:
                    self._own_tone(cid)
                continue
            changes: dict[str, Any] = {}
            for name in ("state", "media_direction", "local_hold", "remote_hold", "muted", "remote", "sip_call_id",
                         "status_code"):
                new_v, old_v = getattr(info, name), getattr(old, name)
                if new_v != old_v and not (name in ("remote", "sip_call_id", "status_code") and not new_v):
                    changes[name] = new_v
            if not changes:
                continue
            if "state" in changes and info.state is CallState.CONFIRMED and old.answered is None:
                changes["answered"] = time.time()
                self._own_tone(cid)
            kind = EventKind.STATE if "state" in changes else EventKind.MEDIA
            self.book.update_call(cid, kind, {"read_back": self.api.API}, **changes)
        for old in self.book.calls():
            if old.active and old.id not in seen:
                status = self._final_status(old)
                self.book.update_call(old.id, EventKind.STATE, {"read_back": "gone from the call list",
                                                                "status_from": status[2]},
                                      state=CallState.DISCONNECTED, ended=time.time(),
                                      status_code=old.status_code or status[0],
                                      sip_call_id=old.sip_call_id or status[1])

    def _sync_ended(self, vc: VendorCall) -> None:
        """A call the API reports ended that no poll saw live: it enters the book already ended, with its final
        status (the API's, else the final response in the gateway's trace)."""
        now = time.time()
        self._gen += 1
        cid = f"{vc.handle}~{self._gen}"
        info = CallInfo(id=cid, state=CallState.DISCONNECTED, remote=vc.remote,
                        direction=CallDirection.INCOMING if vc.direction == "in" else CallDirection.OUTGOING,
                        sip_call_id=vc.sip_call_id, line=max(vc.line - 1, 0), status_code=vc.status_code,
                        started=vc.started or now, ended=now)
        code, sip_call_id, source = (vc.status_code, vc.sip_call_id, self.api.API) if vc.status_code \
            else self._final_status(info)
        info = dataclasses.replace(info, status_code=code, sip_call_id=info.sip_call_id or sip_call_id)
        kind = EventKind.INCOMING if info.direction is CallDirection.INCOMING else EventKind.STATE
        self.book.put_call(info, kind, read_back=f"ended call reported by the {self.api.API}", status_from=source)

    def _final_status(self, info: CallInfo) -> tuple[int | None, str | None, str | None]:
        """(final status, Call-ID, where it was read) of a call that ended: the last final response to the
        device's INVITE (RFC 3261 §13.2.2.4; a 401/407 challenge is not final for the call, §22.2) in the gateway's
        trace, for vendor APIs that report no status. Outgoing calls are found by the device's INVITE to the
        number dialled (escaped or not, with or without '+') since the call started."""
        if self.control is None:
            return None, None, None
        try:
            call_id = info.sip_call_id
            if call_id is None and info.direction is CallDirection.OUTGOING:
                call_id = self._invite_call_id(info)
            if call_id is None:
                return None, None, None
            entries = self.control.trace(call_id=call_id)
        except Exception as exc:  # the gateway is an extra source here; the end itself was read back
            log.debug("%s: final status of %s: %s", self.device_id, info.id, exc)
            return None, None, None
        finals = [int(e["first_line"].split()[1]) for e in entries
                  if e["first_line"].startswith("SIP/2.0 ") and _cseq_method(e["message"]) == "INVITE"
                  and int(e["first_line"].split()[1]) >= 200]
        code = next((c for c in reversed(finals) if c not in (401, 407)), finals[-1] if finals else None)
        return code, call_id, "the gateway's trace" if code else None

    def _invite_call_id(self, info: CallInfo) -> str | None:
        mine = {a.username for a in self.ctx.lines} | {a.number.lstrip("+") for a in self.ctx.lines if a.number}
        want = _dialled(info.remote)
        since = (info.started or time.time()) - 5.0
        taken = {c.sip_call_id for c in self.book.calls() if c.sip_call_id and c.id != info.id}
        for e in self.control.trace(since=since):  # the oldest INVITE no other call of the device owns
            line = e["first_line"]
            if e["direction"] != "in" or not line.startswith("INVITE ") or e["call_id"] in taken:
                continue
            m = _FROM_USER.search(e["message"])
            if m is None or m.group(1).lstrip("+") not in mine:
                continue
            if want and _dialled(user_part(line.split()[1])) != want:
                continue
            return e["call_id"]
        return None

    @property
    def op_timeout(self) -> float:
        """How long an operation waits for its effect in the read-back: driver option ``op_timeout_s``, else
        ``OP_TIMEOUT`` scaled by the lab's slowness factor for loaded machines (driver option ``slowness``, which
        the lab sets from ``--slowness``; else ``$SIPGW_SLOWNESS``)."""
        if self.ctx.options.get("op_timeout_s") is not None:
            return float(self.ctx.options["op_timeout_s"])
        try:
            factor = float(self.ctx.options.get("slowness") or os.environ.get("SIPGW_SLOWNESS") or 1.0)
        except ValueError:
            factor = 1.0
        return OP_TIMEOUT * min(max(factor, 1.0), 100.0)

    def _wait_call(self, call_id: str, test: Callable[[CallInfo], bool], what: str,
                   timeout: float | None = None) -> CallInfo:
        def check() -> CallInfo | None:
            info = self.book.call(call_id)
            return info if test(info) else None

        return self.book.wait_for(check, f"{what} of call {call_id} (read back over the {self.api.API})",
                                  timeout or self.op_timeout)

    def start_polling(self) -> None:
        self._polling.set()

    # ------------------------------------------------------------------------------------------ audio
    @property
    def tone_hz(self) -> float:
        from harness.emulated.profiles import tone_for

        return float(self.ctx.options.get("tone_hz", tone_for(int(self.ctx.options.get("index", 0)))))

    def _backend_call(self, call_id: str) -> Any:
        if self.simulated is None:
            raise NotApplicable(f"{self.device_id}: no audio path to a physical device's handset; audio is judged "
                                "at the far end (the media node's recording)", device_id=self.device_id)
        info = self.book.call(call_id)
        live = [c for c in self.simulated.backend.calls() if c.active]
        same = [c for c in live if c.remote == info.remote] or live
        if len(same) != 1:
            raise OperationFailed(f"{self.device_id}: call {call_id} matches {len(same)} calls of the simulated "
                                  f"device ({[c.id for c in live]})")
        return same[0]

    def _own_tone(self, call_id: str) -> None:
        """A simulated device transmits its own tone on every call, as a phone's microphone would pick up
        the room (as emulated devices do); option ``transmit_tone: false`` keeps it silent."""
        if self.simulated is None or not self.ctx.options.get("transmit_tone", True):
            return
        try:
            bc = self._backend_call(call_id)
            self.simulated.backend.worker.play_tone(self.tone_hz, call=bc.id)
        except Exception as exc:  # the call may have ended meanwhile; a test that needs the tone plays it
            log.debug("%s: own tone on %s not started: %s", self.device_id, call_id, exc)

    @requires_active
    @step("api.play_tone")
    def play_tone(self, call_id: str, hz: float | None = None) -> None:
        bc = self._backend_call(call_id)
        self.simulated.backend.worker.play_tone(float(hz or self.tone_hz), call=bc.id)

    @requires_active
    @step("api.stop_tone")
    def stop_tone(self, call_id: str) -> None:
        bc = self._backend_call(call_id)
        self.simulated.backend.worker.stop_tone(call=bc.id)

    @requires_active
    @step("api.record")
    def record(self, call_id: str, duration_s: float) -> Path:
        if not 0.02 <= duration_s <= 600:
            raise ValueError(f"record duration {duration_s!r} s must be between 0.02 and 600")
        bc = self._backend_call(call_id)
        worker = self.simulated.backend.worker
        path = self.ctx.work_dir / f"{self.device_id}-call{bc.id}-{time.time_ns()}.wav"
        mark = worker.mark()
        worker.record(bc.id, str(path), int(duration_s * 1000))
        ev = worker.wait_event("record_complete", timeout=duration_s + 5.0, since=mark, call=bc.id)
        return Path(ev.data.get("path") or path)

    # ------------------------------------------------------------------------------------------ identity
    @requires_active
    @step("api.identity")
    def identity(self) -> DeviceIdentity:
        vi = self._api(self.api.identity)
        ua = ""
        if self.control is not None and self.ctx.lines:
            with contextlib.suppress(Exception):
                reg = self.control.registration(self.ctx.lines[0].username)
                ua = str(((reg.get("contacts") or [{}])[0]).get("user_agent") or "")
        ident = DeviceIdentity(vendor=vi.vendor, model=vi.model, firmware=vi.firmware, mac=vi.mac, user_agent=ua,
                               serial=vi.serial, source=vi.source)
        self.read_back = ident
        self.identity_check = compare_identity(self.ctx, ident)
        if self.identity_check:  # reported with the evidence; verdicts use what the device reports
            steps.record("identity.mismatch", args={"inventory_firmware": self.ctx.firmware},
                         result={"mismatches": self.identity_check, "firmware_read_back": ident.firmware},
                         device_id=self.device_id)
        return ident

    def read_back_refusal(self) -> str | None:
        """Why the device must be blocked by the firmware it reports (when that differs from the inventory's
        and its verdict is not acceptable), else None. The Lab asks this right after the identity read-back."""
        ident = self.read_back
        if ident is None or not ident.firmware or ident.firmware == self.ctx.firmware:
            return None
        v = self.read_back_verdict()
        if v.acceptable:
            return None
        return (f"firmware verdict {v.verdict.value} for what the device reports (inventory says "
                f"{self.ctx.firmware}, the device reports {ident.firmware}): {v.reason}")

    def read_back_verdict(self) -> Any:
        """The firmware verdict of what the device reports (the catalogue verdict uses it, not the inventory)."""
        ident = self.read_back or self.identity()
        return check_firmware(self.ctx.model, ident.firmware, vendor=self.ctx.vendor)

    # ------------------------------------------------------------------------------------------ provisioning
    @requires_active
    @step("api.factory_reset")
    def factory_reset(self) -> ProvisioningInfo:
        if not self.ctx.options.get("factory_reset", False):
            return ProvisioningInfo(None, "not_reset", detail="left as found (driver option factory_reset: true "
                                                             "resets it and bootstraps the control path again)")
        self._polling.clear()
        self._api(self.api.factory_reset)
        return ProvisioningInfo(None, "factory_default", detail=f"{self.api.API} factory reset sent")

    @property
    def mac(self) -> str | None:
        """The MAC the device reported (read back), else the inventory's."""
        return self.read_back.mac if self.read_back is not None and self.read_back.mac else self.ctx.mac

    @requires_active
    @step("api.provision")
    def provision(self, url: str | None = None) -> ProvisioningInfo:
        """Bootstrap the control path (the state machine's ``provision`` step). Pointing the device at a
        provisioning URL is the lab's DHCP (options 66/160), not something this driver does."""
        from harness.bootstrap import bootstrap

        if url is not None:
            raise NotApplicable(f"the {self.driver_name} driver does not point {self.device_id} at a provisioning "
                                "URL; the lab's DHCP options 66/160 do", device_id=self.device_id)

        info = bootstrap(self)
        self.start_polling()
        return info

    def provisioning(self) -> ProvisioningInfo:
        return ProvisioningInfo(None, "applied" if self._polling.is_set() else "factory_default",
                                detail="; ".join(self.bootstrap_steps) or None)

    # ------------------------------------------------------------------------------------------ registration
    @requires_active
    @step("api.register")
    def register(self, line: int = 0, *, timeout: float = 10.0) -> RegistrationInfo:
        """The device registers by itself: wait until its API reports the line registered (the gateway's
        2xx, RFC 3261 §10.3, as the device saw it)."""
        self.line(line)
        deadline = time.monotonic() + timeout
        last = None
        while True:
            statuses = {ls.line: ls for ls in self._api(self.api.lines)}
            last = statuses.get(line + 1)
            if last is not None and last.registered:
                info = RegistrationInfo(line, last.status_code or 200, "OK", last.expires, registered=True,
                                        aor=last.address, diagnostic=f"read back: {last.detail}")
                self.book.put_registration(info)
                return info
            if time.monotonic() > deadline:
                seen = last.detail if last is not None else f"no line {line + 1} in the read-back"
                info = RegistrationInfo(line, last.status_code or 0 if last else 0, "not registered", 0,
                                        registered=False, diagnostic=f"after {timeout} s: {seen}")
                self.book.put_registration(info)
                return info
            self._stop.wait(0.2)

    def unregister(self, line: int = 0, *, timeout: float = 10.0) -> RegistrationInfo:
        raise NotApplicable(f"the {self.api.API} cannot make the device unregister")

    def registration(self, line: int = 0) -> RegistrationInfo:
        reg = self.book.registration(line)
        if reg is None:
            return RegistrationInfo(line, 0, "not read yet", 0)
        return reg

    # ------------------------------------------------------------------------------------------ calls
    @requires_active
    @step("api.dial")
    def dial(self, target: str, *, line: int = 0) -> CallInfo:
        self.require("make_calls")
        self.line(line)
        before = {c.id for c in self.book.calls()}
        mark = self.book.last_seq
        self._api(self.api.dial, target, line + 1)

        def new_outgoing() -> CallInfo | None:
            for e in self.book.events(mark):
                if e.call is not None and e.call.id not in before and e.call.direction is CallDirection.OUTGOING:
                    return self.book.call(e.call.id)
            return None

        return self.book.wait_for(new_outgoing, f"the call to {target} in the {self.api.API} read-back",
                                  self.op_timeout)

    def _op(self, call_id: str, fn: Callable[..., Any], *args: Any) -> None:
        self.book.call(call_id)  # UnknownCall names the calls there are
        self._api(fn, self.handle_of(call_id), *args)

    @requires_active
    @step("api.answer")
    def answer(self, call_id: str, *, code: int = 200) -> CallInfo:
        self._op(call_id, self.api.answer)
        return self._wait_call(call_id, lambda c: c.state is CallState.CONFIRMED or not c.active, "connected")

    @requires_active
    @step("api.reject")
    def reject(self, call_id: str, *, code: int = 486) -> CallInfo:
        self._op(call_id, self.api.reject, code)
        return self._wait_call(call_id, lambda c: not c.active, "end")

    @requires_active
    @step("api.hangup")
    def hangup(self, call_id: str) -> CallInfo:
        if not self.book.call(call_id).active:
            return self.book.call(call_id)
        self._op(call_id, self.api.hangup)
        return self._wait_call(call_id, lambda c: not c.active, "end")

    @requires_active
    @step("api.hold")
    def hold(self, call_id: str) -> CallInfo:
        self.require("hold_resume")
        self._op(call_id, self.api.hold)
        return self._wait_call(call_id, lambda c: c.local_hold, "local hold")

    @requires_active
    @step("api.resume")
    def resume(self, call_id: str) -> CallInfo:
        self.require("hold_resume")
        self._op(call_id, self.api.resume)
        return self._wait_call(call_id, lambda c: not c.local_hold and c.media_direction is MediaDirection.SENDRECV,
                               "resume (sendrecv)")

    @requires_active
    @step("api.mute")
    def mute(self, call_id: str) -> CallInfo:
        self.require("mute_unmute")
        self._op(call_id, self.api.set_mute, True)
        return self._wait_call(call_id, lambda c: c.muted, "mute")

    @requires_active
    @step("api.unmute")
    def unmute(self, call_id: str) -> CallInfo:
        self.require("mute_unmute")
        self._op(call_id, self.api.set_mute, False)
        return self._wait_call(call_id, lambda c: not c.muted, "unmute")

    @requires_active
    @step("api.send_dtmf")
    def send_dtmf(self, call_id: str, digits: str) -> CallInfo:
        self.require("dtmf")
        self._op(call_id, self.api.send_dtmf, digits)
        return self.book.call(call_id)

    @requires_active
    @step("api.blind_transfer")
    def blind_transfer(self, call_id: str, target: str) -> CallInfo:
        self.require("call_transfer")
        self._op(call_id, self.api.transfer, target)
        # The REFER's outcome comes later (NOTIFY sipfrag, RFC 3515 §2.4.5): the call ends when the transfer
        # succeeds and stays (held) when the target refuses, so the read-back right after the API's answer is
        # returned; callers wait for the state they expect.
        return self.book.call(call_id)

    def consultative_transfer(self, call_id: str, consult_call_id: str) -> CallInfo:
        raise NotApplicable(f"the {self.api.API} offers only blind transfer")

    def conference(self, call_id: str, other_call_id: str) -> tuple[CallInfo, CallInfo]:
        raise NotApplicable(f"the {self.api.API} offers no local conference")

    def calls(self) -> tuple[CallInfo, ...]:
        return self.book.calls()

    def call(self, call_id: str) -> CallInfo:
        return self.book.call(call_id)

    def last_seq(self) -> int:
        return self.book.last_seq

    def wait_for_event(self, kinds: set[EventKind] | EventKind | None = None, *, call_id: str | None = None,
                       after_seq: int = 0, timeout: float = 10.0) -> CallEvent:
        if isinstance(kinds, EventKind):
            kinds = {kinds}
        return self.book.wait_event(kinds, call_id, after_seq, timeout)

    def wait_for_incoming(self, *, line: int | None = None, timeout: float = 10.0) -> CallInfo:
        return self.book.wait_incoming(line, timeout)

    def wait_for_state(self, call_id: str, states: set[CallState] | CallState, *, timeout: float = 10.0) -> CallInfo:
        if isinstance(states, CallState):
            states = {states}
        return self.book.wait_state(call_id, states, timeout)

    # ------------------------------------------------------------------------------------------ Forwarding
    # The device's own forwarding, set through its configuration over the API and read back from it; the device
    # answers INVITEs with 302 and a Contact naming the target (RFC 3261 §8.3, §21.3.3).
    def _fwd(self, name: str) -> Callable[..., Any]:
        self.require("local_call_forwarding")
        fn = getattr(self.api, name, None)
        if fn is None:
            raise NotApplicable(f"sipgw-lab does not set the device's own forwarding over the {self.api.API}",
                                device_id=self.device_id)
        return fn

    @requires_active
    @step("api.set_forwarding")
    def set_forwarding(self, rule: ForwardingRule) -> ForwardingRule:
        fn = self._fwd("set_forwarding")
        self.line(rule.line)
        if rule.kind is ForwardingKind.TIMEOUT and rule.timeout_s is not None and not 1 <= rule.timeout_s <= 600:
            raise ValueError(f"forwarding timeout {rule.timeout_s!r} s must be between 1 and 600")
        self._api(fn, rule.line + 1, rule)
        read = [r for r in self.forwarding(rule.line) if r.kind is rule.kind]
        if rule.enabled and (not read or _dialled(read[0].target) != _dialled(rule.target)):
            raise OperationFailed(f"{self.device_id}: {rule.kind.value} forwarding to {rule.target} was set, but the "
                                  f"{self.api.API} reads back {read or 'none'}")
        return read[0] if read else rule

    @requires_active
    @step("api.clear_forwarding")
    def clear_forwarding(self, kind: ForwardingKind | None = None, *, line: int = 0) -> None:
        fn = getattr(self.api, "clear_forwarding", None)
        if fn is None:  # nothing can have been set over this API
            return
        self.line(line)
        self._api(fn, line + 1, kind)

    @requires_active
    def forwarding(self, line: int = 0) -> tuple[ForwardingRule, ...]:
        fn = self._fwd("forwarding")
        self.line(line)
        return tuple(self._api(fn, line + 1))

    # ------------------------------------------------------------------------------------------ MessageWaiting
    def _mwi_read(self, line: int) -> MwiState:
        self.require("message_waiting")
        self.line(line)
        fn = getattr(self.api, "mwi", None)
        if fn is None:
            raise NotApplicable(f"the {self.api.API} reports no message-waiting state", device_id=self.device_id)
        state = self._api(fn, line + 1)
        last = self.book.mwi(line)
        if last is None or (last.waiting, last.new, last.old) != (state.waiting, state.new, state.old):
            self.book.put_mwi(state)
        return state

    @requires_active
    @step("api.mwi")
    def mwi(self, line: int = 0) -> MwiState:
        """The message-waiting state the device shows, read back over its API (the lamp; counts where the API
        reports them)."""
        return self._mwi_read(line)

    @requires_active
    @step("api.wait_for_mwi")
    def wait_for_mwi(self, waiting: bool, *, line: int = 0, timeout: float = 10.0) -> MwiState:
        deadline = time.monotonic() + timeout
        while True:
            state = self._mwi_read(line)
            if state.waiting == waiting:
                return state
            if time.monotonic() >= deadline:
                raise OperationTimeout(f"{self.device_id}: message-waiting {'on' if waiting else 'off'} on line "
                                       f"{line} not read back over the {self.api.API} within {timeout} s "
                                       f"(last: {state.raw or state})")
            self._stop.wait(0.2)


_FROM_USER = re.compile(r"^(?:From|f)\s*:[^\r\n]*?<?sips?:([^@;>\s]+)", re.M | re.I)
_CSEQ = re.compile(r"^CSeq\s*:\s*\d+\s+(\S+)", re.M | re.I)


def _new_call_under_old_handle(old: CallInfo, new: CallInfo) -> bool:
    """A read-back that cannot be the same call: the other direction or party, or back to ringing/dialling once
    connected (RFC 3261 §12: a confirmed dialog does not return to an early state)."""
    if old.direction is not new.direction:
        return True
    if old.remote and new.remote and _dialled(user_part(old.remote)) != _dialled(user_part(new.remote)):
        return True
    return old.state is CallState.CONFIRMED and new.state in (CallState.CALLING, CallState.INCOMING, CallState.EARLY)


def _cseq_method(message: str) -> str | None:
    m = _CSEQ.search(message)
    return m.group(1).upper() if m else None


def _dialled(user: str) -> str:
    """A dialled string compared the way the gateway does: '%2A'/'%23' unescaped, without a leading '+'."""
    return urllib.parse.unquote(user or "").strip().lstrip("+")


def compare_identity(ctx: DriverContext, ident: DeviceIdentity) -> list[str]:
    """Differences between the inventory and what the device reports, as sentences for the report."""
    out = []
    if ctx.firmware and ident.firmware and ident.firmware != ctx.firmware:
        out.append(f"inventory says firmware {ctx.firmware}, the device reports {ident.firmware}")
    if ident.model and _norm(ident.model) != _norm(ctx.model):
        out.append(f"inventory says model {ctx.model}, the device reports {ident.model}")
    if ctx.mac and ident.mac and _norm(ident.mac) != _norm(ctx.mac):
        out.append(f"inventory says MAC {ctx.mac}, the device reports {ident.mac}")
    return out


def _norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())
