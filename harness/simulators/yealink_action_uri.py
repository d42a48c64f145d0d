"""Yealink Action URI simulator (T2x/T3x/T4x/T5x), with the Action URL client that reports events.

Action URI (vendor admin guides, vendor-control-apis.md §4): ``GET /servlet?key=VALUE`` presses a key or
runs a call operation: ``OK``/``ENTER``, ``SPEAKER``, ``F_HOLD``/``HOLD``, ``F_TRANSFER``,
``F_CONFERENCE``, ``MUTE``, ``CANCEL``/``X``/``CALLEND``, digits ``0``-``9``, ``*``, ``#``
(``STAR``/``POUND`` too), and per call ``ASW:<id>``, ``CANCEL:<id>``, ``HOLD:<id>``, ``UNHOLD:<id>``;
``key=Reboot``/``key=AutoP``; ``number=<n>[&outgoing_uri=...]`` dials. Read-back:
``GET /servlet?phonecfg=get&accounts=1&dnd=1&fw=1``; ``phonecfg=set&<param>=<value>`` writes config.

Restrictions modelled: requests are refused (HTTP 403) unless the caller's address is in
``features.action_uri_limit_ip`` (empty by default: nobody); the first allowed request shows the
"Allow Remote Control?" prompt and is not carried out until someone accepts it on the phone
(``confirm_remote_control()`` or ``POST /_sim/confirm``), unless ``features.show_action_uri_option`` is
``0``. Auth: HTTP Basic or the ``p=login&q=login&username=..&pwd=..&jumpto=..`` prefix (``admin``/``admin``).

Action URL: for each event configured as ``action_url.<event>`` the phone GETs the URL with its
variables (``$mac``, ``$ip``, ``$model``, ``$firmware``, ``$call_id``, ``$local``, ``$remote``,
``$display_local``, ``$display_remote``, ``$active_user``) filled in. Events: ``incoming_call``,
``outgoing_call``, ``call_established``, ``call_terminated``, ``hold``, ``unhold``, ``held``, ``unheld`` (the
other party holds or resumes), ``mute``, ``unmute``, ``registered``, ``unregistered``.
[INFERRED, not seen on a device]: the read-back response format (``key=value`` lines: the format is
not documented; ``account.<n>.mwi`` and ``account.<n>.voice_mail.new|old`` stand for the message-waiting
lamp and counts the phone shows for the account; with ``fw=1`` the forward configuration
``account.<n>.always_fwd.enable|target`` and ``account.<n>.timeout_fwd.enable|target|timeout`` (seconds), which
``phonecfg=set`` writes and the phone applies by answering INVITEs with 302), the 403 for a refused or unconfirmed
request, HTTP 400 for an unknown key.
"""

from __future__ import annotations

import asyncio
import collections
import time
import urllib.parse
from typing import Any

import aiohttp
from aiohttp import web

from harness.simulators.backend import (
    BackendCall,
    BackendError,
    BackendEvent,
    CallPhase,
    DeviceBackend,
    Divert,
    EventKind,
    check_number,
)
from harness.simulators.base import OutboundRecord, SimulatorServer, basic_credentials

ACTION_URL_EVENTS = ("incoming_call", "outgoing_call", "call_established", "call_terminated", "hold", "unhold",
                     "held", "unheld", "mute", "unmute", "registered", "unregistered")
_DIGIT_KEYS = {**{str(d): str(d) for d in range(10)}, "*": "*", "#": "#", "STAR": "*", "POUND": "#"}


class YealinkActionUriSimulator(SimulatorServer):
    vendor = "Yealink"

    def __init__(self, backend: DeviceBackend, *, allowed_ips: tuple[str, ...] = (), confirm_prompt: bool = True,
                 admin_password: str = "admin", **kwargs: Any) -> None:
        super().__init__(backend, **kwargs)
        self.config: dict[str, str] = {
            "features.action_uri.enable": "1",
            "features.action_uri_limit_ip": ",".join(allowed_ips),
            "features.show_action_uri_option": "1" if confirm_prompt else "0",
            "features.dnd.enable": "0",
            "static.security.user_password": f"admin:{admin_password}",
        }
        for ev in ACTION_URL_EVENTS:
            self.config[f"action_url.{ev}"] = ""
        self._confirmed: set[str] = set()
        self.prompt_shown_for: str | None = None
        self._dial_buffer = ""
        self._transfer_from: int | None = None
        self.boots = 1
        self.autop_count = 0
        self._conf_from: int | None = None
        self._queue: asyncio.Queue[tuple[str, str]] | None = None
        self._announced: set[int] = set()  # outgoing calls whose outgoing_call Action URL went out
        self._hold_state: dict[int, tuple[bool, bool]] = {}  # call -> (held, remote held) last reported
        self._terminated: collections.deque[tuple[int, float]] = collections.deque(maxlen=64)  # (id, started)

    # ------------------------------------------------------------------ device side

    def provision(self, params: dict[str, str]) -> None:
        for k, v in params.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise ValueError(f"provision: {k!r}={v!r}: parameters and values must be strings")
        diverts = self._diverts({**self.config, **params}, params)  # checked before anything is stored
        self.config.update(params)
        for line, divert in diverts.items():
            self.backend.set_divert(line, divert)

    def _diverts(self, config: dict[str, str], changed: dict[str, str]) -> dict[int, Divert]:
        """The lines whose forwarding (``account.<n>.always_fwd.*``, ``account.<n>.timeout_fwd.*``) changed, and
        what it is now."""
        out = {}
        for ln in self.backend.identity().lines:
            pre = f"account.{ln.index}."
            if not any(k.startswith((pre + "always_fwd.", pre + "timeout_fwd.")) for k in changed):
                continue
            always = config.get(pre + "always_fwd.target", "") if config.get(pre + "always_fwd.enable") == "1" else ""
            no_answer = config.get(pre + "timeout_fwd.target", "") \
                if config.get(pre + "timeout_fwd.enable") == "1" else ""
            raw = config.get(pre + "timeout_fwd.timeout", "20") or "20"
            if not raw.isdigit() or not 1 <= int(raw) <= 600:
                raise ValueError(f"{pre}timeout_fwd.timeout: {raw!r} is not a number of seconds (1-600)")
            for name, target in (("always_fwd.target", always), ("timeout_fwd.target", no_answer)):
                if target:
                    check_number(target, pre + name)
            out[ln.index] = Divert(always or None, no_answer or None, float(raw))
        return out

    def confirm_remote_control(self) -> None:
        """Someone pressed OK on the "Allow Remote Control?" prompt."""
        if self.prompt_shown_for is not None:
            self._confirmed.add(self.prompt_shown_for)
            self.prompt_shown_for = None

    def _allowed_ips(self) -> set[str]:
        return {x.strip() for x in self.config["features.action_uri_limit_ip"].split(",") if x.strip()}

    # ------------------------------------------------------------------ HTTP

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/servlet", self._servlet), web.get("/cgi-bin/ConfigManApp.com", self._servlet),
                web.post("/_sim/confirm", self._sim_confirm), web.post("/_sim/provision", self._sim_provision)]

    def _refuse(self, status: int, detail: str, **headers: str) -> web.Response:
        return web.Response(status=status, text=f"{status}", headers={self.DETAIL_HEADER: detail, **headers})

    def _authenticated(self, request: web.Request, q: dict[str, str]) -> bool:
        user, password = self.config["static.security.user_password"].split(":", 1)
        creds = basic_credentials(request)
        if creds is not None:
            return creds == (user, password)
        login = q.get("p") == "login" and q.get("q") == "login"
        return login and q.get("username") == user and q.get("pwd") == password

    async def _servlet(self, request: web.Request) -> web.Response:
        q = {k: v for k, v in request.query.items()}
        if self.config["features.action_uri.enable"] != "1":
            return self._refuse(403, "features.action_uri.enable is 0")
        peer = request.remote or ""
        if peer not in self._allowed_ips() and "any" not in self._allowed_ips():
            return self._refuse(403, f"{peer} is not in features.action_uri_limit_ip "
                                     f"({self.config['features.action_uri_limit_ip'] or 'empty'})")
        if not self._authenticated(request, q):
            return self._refuse(401, "wrong or missing credentials (Basic, or p=login&q=login&username&pwd)",
                                **{"WWW-Authenticate": 'Basic realm="Yealink"'})
        if self.config["features.show_action_uri_option"] == "1" and peer not in self._confirmed:
            self.prompt_shown_for = peer
            return self._refuse(403, f"\"Allow Remote Control?\" is shown on the phone for {peer}: "
                                     "confirm it on the device")
        if "jumpto" in q and "key" not in q:  # the login prefix carries the real request in jumpto
            q.update(urllib.parse.parse_qsl(q.pop("jumpto").split("?", 1)[-1]))
        try:
            if q.get("phonecfg") == "get":
                return web.Response(text=self._readback(q), content_type="text/plain")
            if q.get("phonecfg") == "set":
                params = {k: v for k, v in q.items() if k not in ("phonecfg", "p", "q", "username", "pwd")}
                if not params:
                    return self._refuse(400, "phonecfg=set: no parameter given")
                try:
                    self.provision(params)
                except ValueError as exc:
                    return self._refuse(400, f"phonecfg=set: {exc}")
                return web.Response(text="OK")
            if "number" in q:
                call = await self.run_backend(self.backend.dial, q["number"], 1)
                if (call.id, call.started) not in self._terminated:  # else its ENDED event announced it
                    self._announce(call)  # admin guide: sent when the phone places a call
                return web.Response(text="OK")
            if "key" in q:
                for key in q["key"].split(";"):
                    await self._press(key.strip())
                return web.Response(text="OK")
        except _BadKey as exc:
            return self._refuse(400, str(exc))
        except BackendError as exc:
            return self._refuse(409 if exc.kind != "invalid_argument" else 400, str(exc))
        return self._refuse(400, "expected key=, number= or phonecfg=get|set")

    async def _sim_confirm(self, request: web.Request) -> web.Response:
        if self.prompt_shown_for is None:
            return web.json_response({"error": "no \"Allow Remote Control?\" prompt is shown"}, status=409)
        who = self.prompt_shown_for
        self.confirm_remote_control()
        return web.json_response({"confirmed": who})

    async def _sim_provision(self, request: web.Request) -> web.Response:
        try:
            params = await request.json()
            if not isinstance(params, dict):
                raise ValueError("expected a JSON object of parameter: value")
            self.provision(params)
        except ValueError as exc:
            return web.json_response({"error": f"body: {exc}"}, status=400)
        return web.json_response({"applied": sorted(params)})

    def _readback(self, q: dict[str, str]) -> str:
        ident = self.backend.identity()
        out = [f"model={ident.model}", f"mac={ident.mac_plain}"]
        if q.get("fw") == "1":
            out.append(f"fw={ident.firmware}")
            for ln in ident.lines:  # the forward configuration (admin guide: phonecfg=get ... fw)
                for key in ("always_fwd.enable", "always_fwd.target", "timeout_fwd.enable", "timeout_fwd.target",
                            "timeout_fwd.timeout"):
                    out.append(f"account.{ln.index}.{key}={self.config.get(f'account.{ln.index}.{key}', '')}")
        if q.get("accounts") == "1":
            regs = {r.line: r for r in self.backend.registrations()}
            for ln in ident.lines:
                r = regs.get(ln.index)
                mwi = self.backend.mwi(ln.index)
                out += [f"account.{ln.index}.user_name={ln.username}", f"account.{ln.index}.sip_server={ln.domain}",
                        f"account.{ln.index}.label={ln.display_name or ln.username}",
                        f"account.{ln.index}.status={'registered' if r and r.registered else 'unregistered'}",
                        f"account.{ln.index}.mwi={'1' if mwi.waiting else '0'}",
                        f"account.{ln.index}.voice_mail.new={mwi.new}", f"account.{ln.index}.voice_mail.old={mwi.old}"]
        if q.get("dnd") == "1":
            out.append(f"features.dnd.enable={self.config['features.dnd.enable']}")
        return "\n".join(out) + "\n"

    # ------------------------------------------------------------------ keys

    async def _active(self, phase: CallPhase | None = None) -> BackendCall | None:
        calls = await self.run_backend(self.backend.calls)
        for c in calls:
            if phase is None or c.phase is phase:
                return c
        return None

    async def _press(self, key: str) -> None:
        upper = key.upper()
        b = self.backend
        if ":" in key and upper.split(":", 1)[0] in ("ASW", "CANCEL", "HOLD", "UNHOLD"):
            op, _, arg = key.partition(":")
            try:
                cid = int(arg)
            except ValueError:
                raise _BadKey(f"key={key}: the call id after ':' must be a number ($call_id)") from None
            op = op.upper()
            call = await self.run_backend(b.call, cid)
            if op == "ASW":
                await self.run_backend(b.answer, cid)
            elif op == "CANCEL":
                if call.phase is CallPhase.INCOMING:
                    await self.run_backend(b.reject, cid, 486)
                else:
                    await self.run_backend(b.hangup, cid)
            elif op == "HOLD":
                await self.run_backend(b.hold, cid)
            else:
                await self.run_backend(b.resume, cid)
            return
        if upper in _DIGIT_KEYS:
            call = await self._active(CallPhase.CONNECTED)
            if call is not None and self._transfer_from is None and self._conf_from is None:
                await self.run_backend(b.send_dtmf, call.id, _DIGIT_KEYS[upper])
            else:
                self._dial_buffer += _DIGIT_KEYS[upper]
            return
        if upper in ("OK", "ENTER", "SEND"):
            ringing = await self._active(CallPhase.INCOMING)
            if ringing is not None:
                await self.run_backend(b.answer, ringing.id)
            elif self._conf_from is not None and self._dial_buffer:
                await self._conference_key(key)
            elif self._transfer_from is not None and self._dial_buffer:
                await self._complete_transfer()
            elif self._dial_buffer:
                number, self._dial_buffer = self._dial_buffer, ""
                await self.run_backend(b.dial, number, 1)
            return
        if upper == "SPEAKER":
            ringing = await self._active(CallPhase.INCOMING)
            current = await self._active()
            if ringing is not None:
                await self.run_backend(b.answer, ringing.id)
            elif current is not None:
                await self.run_backend(b.hangup, current.id)
            elif self._dial_buffer:
                number, self._dial_buffer = self._dial_buffer, ""
                await self.run_backend(b.dial, number, 1)
            return
        if upper in ("F_HOLD", "HOLD"):
            call = await self._active(CallPhase.CONNECTED)
            if call is None:
                raise _BadKey(f"key={key}: no connected call to hold")
            await self.run_backend(b.resume if call.held else b.hold, call.id)
            return
        if upper == "F_TRANSFER":
            if self._transfer_from is not None and self._dial_buffer:
                await self._complete_transfer()
                return
            call = await self._active(CallPhase.CONNECTED)
            if call is None:
                raise _BadKey(f"key={key}: no connected call to transfer")
            self._transfer_from, self._dial_buffer = call.id, ""
            return
        if upper == "MUTE":
            await self.run_backend(b.set_mute, not b.muted)
            self._action_url("mute" if b.muted else "unmute", None)
            return
        if upper in ("CANCEL", "X", "CALLEND"):
            self._dial_buffer, self._transfer_from, self._conf_from = "", None, None
            ringing = await self._active(CallPhase.INCOMING)
            current = await self._active()
            if ringing is not None:
                await self.run_backend(b.reject, ringing.id, 486)
            elif current is not None and upper == "CALLEND":
                await self.run_backend(b.hangup, current.id)
            return
        if upper == "F_CONFERENCE":
            await self._conference_key(key)
            return
        if upper == "REBOOT":
            self.boots += 1
            self.reset_uptime()
            await self.run_backend(b.restart)
            return
        if upper == "AUTOP":
            self.autop_count += 1
            await self.run_backend(b.restart)
            return
        raise _BadKey(f"key={key}: not a key this phone knows")

    async def _conference_key(self, key: str) -> None:
        """CONF with one call: hold it and collect the second party's number; CONF (or OK) with digits:
        dial them; CONF once the second call is connected: take the first off hold and bridge both."""
        b = self.backend
        calls = await self.run_backend(b.calls)
        if self._conf_from is None:
            first = next((c for c in calls if c.phase is CallPhase.CONNECTED and not c.held), None)
            if first is None:
                raise _BadKey(f"key={key}: no connected call to start a conference from")
            await self.run_backend(b.hold, first.id)
            self._conf_from, self._dial_buffer = first.id, ""
            return
        if self._dial_buffer:
            number, self._dial_buffer = self._dial_buffer, ""
            await self.run_backend(b.dial, number, 1)
            return
        second = next((c for c in calls if c.id != self._conf_from and c.phase is CallPhase.CONNECTED), None)
        if second is None:
            raise _BadKey(f"key={key}: the second party has not answered yet")
        first_id, self._conf_from = self._conf_from, None
        await self.run_backend(b.resume, first_id)
        await self._wait_resumed(first_id)
        await self.run_backend(b.conference, first_id, second.id)

    async def _wait_resumed(self, call_id: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while (await self.run_backend(self.backend.call, call_id)).held:
            if time.monotonic() > deadline:
                raise _BadKey(f"call {call_id} did not come off hold within {timeout} s")
            await asyncio.sleep(0.02)

    async def _complete_transfer(self) -> None:
        cid, target = self._transfer_from, self._dial_buffer
        self._transfer_from, self._dial_buffer = None, ""
        assert cid is not None
        await self.run_backend(self.backend.transfer, cid, target)  # blind transfer (REFER, RFC 3515)

    # ------------------------------------------------------------------ Action URL

    def _announce(self, call: BackendCall | None) -> None:
        """``outgoing_call`` once per placed call, before any later event of it: a call the gateway refuses at
        once (a feature code's final response) can end before the dial request returns."""
        if call is None or call.direction != "out" or call.id in self._announced:
            return
        self._announced.add(call.id)
        self._action_url("outgoing_call", call)

    def on_backend_event(self, event: BackendEvent):
        c = event.call
        if c is not None and event.kind is not EventKind.INCOMING:
            self._announce(c)
        if event.kind is EventKind.INCOMING:
            self._action_url("incoming_call", c)
        elif event.kind is EventKind.RINGBACK:
            pass  # announced above
        elif event.kind is EventKind.CONNECTED:
            self._action_url("call_established", c)
        elif event.kind is EventKind.ENDED:
            if self._transfer_from is not None and c is not None and c.id == self._transfer_from:
                self._transfer_from = None
            if self._conf_from is not None and c is not None and c.id == self._conf_from:
                self._conf_from = None
            self._action_url("call_terminated", c)
            if c is not None:
                self._announced.discard(c.id)  # call ids are reused
                self._hold_state.pop(c.id, None)
                self._terminated.append((c.id, c.started))
        elif event.kind in (EventKind.HELD, EventKind.RESUMED) and c is not None:
            was = self._hold_state.get(c.id, (False, False))
            if c.held != was[0]:
                self._action_url("hold" if c.held else "unhold", c)
            if c.remote_held != was[1]:  # the other party put the call on hold, or took it off
                self._action_url("held" if c.remote_held else "unheld", c)
            self._hold_state[c.id] = (c.held, c.remote_held)
        elif event.kind is EventKind.REGISTRATION:
            self._action_url("registered" if event.data.get("registered") else "unregistered", None)
        return None

    def _action_url(self, name: str, call: BackendCall | None) -> None:
        template = self.config.get(f"action_url.{name}", "")
        if not template:
            return
        ident = self.backend.identity()
        line = ident.lines[(call.line if call else 1) - 1] if ident.lines else None
        values = {
            "mac": ident.mac_plain, "ip": self.host, "model": ident.model, "firmware": ident.firmware,
            "call_id": str(call.id) if call else "", "remote": call.remote if call else "",
            "display_remote": call.remote if call else "", "local": line.address if line else "",
            "display_local": (line.display_name or line.username) if line else "",
            "active_user": line.username if line else "",
        }
        url = template
        for var in sorted(values, key=len, reverse=True):  # $display_local before $local
            url = url.replace(f"${var}", urllib.parse.quote(values[var], safe=""))
        if self._queue is not None:
            self._queue.put_nowait((name, url))

    async def on_started(self) -> None:
        self._queue = asyncio.Queue()
        self.spawn(self._sender())

    async def _sender(self) -> None:
        """Callbacks go out one at a time, in the order the events happened."""
        assert self._queue is not None
        async with aiohttp.ClientSession() as session:
            while True:
                name, url = await self._queue.get()
                rec = OutboundRecord(t=time.time(), kind=f"action_url.{name}", target=url, payload="")
                try:
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                        rec.status = resp.status
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    rec.error = f"{type(exc).__name__}: {exc}"
                self.record_outbound(rec)


class _BadKey(Exception):
    pass
