"""The embedded reference gateway: the composition root that wires store, services, transports and APIs.

``EmbeddedGateway`` runs on an asyncio loop: ``await gw.start()`` / ``await gw.stop()``, or in a thread of
its own with ``gw.start_in_thread()`` / ``gw.stop_thread()`` for the harness and plain scripts. The command
``sipgw-lab gateway serve`` runs it in the foreground.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.clock import Clock
from gateway.config import GatewayConfig
from gateway.services.directory import Directory
from gateway.services.model import Flow, User
from gateway.services.registrar import DeviceRegistry, Registrar, RegistrarConfig
from gateway.services.routing import Router
from gateway.sip.auth import DigestServer
from gateway.sip.timers import TimerConfig
from gateway.sipcore import SipCore
from gateway.store.sqlite import Store
from gateway.tenant import Tenant, load_tenant
from gateway.trace import TraceRecorder
from gateway.transport.certs import LabPki, ensure_lab_pki
from gateway.transport.manager import client_tls_context, server_tls_context

log = logging.getLogger("sipgw.server")

try:  # uvloop when installed (README: optional speed-up)
    import uvloop  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the machine
    uvloop = None

BUILD = "sipgw-lab-gateway/0.1"


def hostport(host: str, port: int) -> str:
    """``host:port`` for a Via sent-by or a Contact, an IPv6 host bracketed (RFC 3261 §25.1)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class NoMedia:
    """A media directory with no endpoints: Teams clients and the PSTN are unreachable (480)."""

    def teams_client(self, user: User) -> Flow | None:
        return None

    def pstn_party(self, number: str) -> Flow | None:
        return None


@dataclass
class Endpoints:
    """Where the running gateway listens (ports resolved when 0 was asked for)."""

    udp: tuple[str, int]
    tcp: tuple[str, int]
    tls: tuple[str, int]
    http: tuple[str, int] | None
    udp6: tuple[str, int] | None = None
    tcp6: tuple[str, int] | None = None
    tls6: tuple[str, int] | None = None
    provisioning_url: str | None = None  # the provisioning HTTP server and web pages

    @property
    def control_url(self) -> str | None:
        """The control API's base URL; an IPv6 host is bracketed (RFC 3986 §3.2.2: ``http://[::1]:8080``)."""
        if not self.http:
            return None
        host, port = self.http
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class EmbeddedGateway:
    def __init__(self, data_dir: str | Path, config: GatewayConfig | None = None, *,
                 tenant: Tenant | str | Path | None = None, media=None, control_api: bool = True):
        self.config = config or GatewayConfig()
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.clock = Clock()
        self.store = Store(self.data_dir / "gateway.db")
        self.trace = TraceRecorder(max_entries=max(self.config.trace_entries, 1),
                                   enabled=self.config.trace_entries > 0)
        realm = self.config.domain
        self.directory = Directory(self.store, realm)
        secret = self.store.setting("nonce_secret")
        if secret is None:
            secret = secrets.token_hex(32)
            self.store.set_setting("nonce_secret", secret)
        self.auth = DigestServer(realm, bytes.fromhex(secret), algorithms=tuple(self.config.digest_algorithms))
        self.devices = DeviceRegistry(self.store)
        reg = self.config.registration
        self.registrar = Registrar(self.directory, self.auth, self.devices, RegistrarConfig(
            default_expires=reg.default_expires, min_expires=reg.min_expires, max_expires=reg.max_expires,
            firmware_policy=self.config.firmware_policy, throttle_failures=self.config.auth_throttle_failures))
        if media is None and self.config.media == "node":
            media = "node"
        if media == "node":  # Teams clients and PSTN parties on pjsua2 worker processes
            from gateway.media_node import MediaNode

            media = MediaNode(self.data_dir / "media", max_processes=self.config.media_workers_max,
                              host=self.config.sip_address[0])
        self.media = media or NoMedia()
        self.router = Router(self.directory, self.registrar, self.media, self.config.domain)
        self.core = SipCore(directory=self.directory, registrar=self.registrar, router=self.router,
                            auth=self.auth, domain=self.config.domain, wall_clock=self.clock.now,
                            timers=TimerConfig(t1=self.config.sip_t1, t2=max(4.0, self.config.sip_t1)))
        self.core.transports.trace = self.trace
        self.router.flow_live = self.core.transports.is_live
        self.core.transports.max_message_size = self.config.max_message_size
        self.pki: LabPki | None = None
        self.endpoints: Endpoints | None = None
        self._control_enabled = control_api
        self._control = None
        #: The registrar workers (gateway/shards) while registrar_processes > 1 and the gateway runs.
        self.shards = None
        self._tasks: list[asyncio.Task] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.started_at: float | None = None
        if tenant is not None:
            self.load_tenant(tenant)

    # --- tenant -------------------------------------------------------------------------------------------
    def load_tenant(self, tenant: Tenant | str | Path) -> Tenant:
        """Add a tenant file's users and PSTN ranges (validated as a whole before anything is written)."""
        if not isinstance(tenant, Tenant):
            tenant = load_tenant(tenant)
        for user, password in tenant.users:
            self.directory.put_user(user, password=password)
        if tenant.pstn:
            self.directory.set_pstn_ranges(list(tenant.pstn))
        return tenant

    # --- lifecycle ------------------------------------------------------------------------------------------
    async def start(self) -> Endpoints:
        self._loop = asyncio.get_running_loop()
        cfg = self.config
        host, port = cfg.sip_address
        tls_host, tls_port = cfg.tls_address
        names = sorted({host, tls_host, "localhost", "127.0.0.1"} | ({"::1"} if cfg.ipv6 else set()))
        self.pki = ensure_lab_pki(self.data_dir, names)
        t = self.core.transports
        t._tls_client = client_tls_context(str(self.pki.ca_cert), verify=False)
        udp, tcp = await self._listen_udp_tcp(host, port)
        ssl_ctx = server_tls_context(str(self.pki.server_cert), str(self.pki.server_key))
        tls = await t.listen_stream(tls_host, tls_port if tls_port else 0, ssl_ctx)
        eps = Endpoints((host, udp.port), (host, tcp.port), (tls_host, tls.port), None)
        if cfg.ipv6:
            eps.udp6 = ("::1", (await t.listen_udp("::1", udp.port)).port)
            eps.tcp6 = ("::1", (await t.listen_stream("::1", tcp.port)).port)
            eps.tls6 = ("::1", (await t.listen_stream("::1", tls.port, ssl_ctx)).port)

        self.core.bind({"UDP": hostport(host, udp.port), "TCP": hostport(host, tcp.port),
                        "TLS": hostport(tls_host, tls.port)})
        if self._control_enabled:
            from gateway.control_api.app import ControlApi

            self._control = ControlApi(self)
            eps.http = await self._control.start(*cfg.http_address)
        from gateway.provisioning import Provisioning  # onboarding, sign-in, offboarding (README)

        self.provisioning = Provisioning(self)
        # ``gateway serve --provisioning HOST:PORT`` sets provisioning_address; else the control API's host, port 0
        eps.provisioning_url = await self.provisioning.start(
            *(getattr(self, "provisioning_address", None) or (cfg.http_address[0], 0)))
        from gateway.services.feature_codes import FeatureCodes  # *30*/*31*, chained before the sign-in hooks

        self.feature_codes = FeatureCodes(self)
        self.feature_codes.install()
        self.endpoints = eps
        if hasattr(self.media, "start"):
            await self.media.start(self)
        self._install_call_features()
        from gateway.services.e911 import E911Service  # emergency calls: LIS, PIDF-LO, PSAP (outermost handler)

        self.e911 = E911Service(self)
        self.e911.install()
        from gateway.services.call_queues import CallQueues  # call queues and auto attendants

        self.queues = CallQueues(self)
        self.queues.install()
        from gateway.services.meetings import Meetings  # meetings: access number IVR, mixer, participant actions

        self.meetings = Meetings(self)
        self.meetings.install()
        if cfg.registrar_processes > 1:  # UDP REGISTERs shared with registrar workers, last: they see every service
            from gateway.shards.pool import RegistrarShards

            self.shards = RegistrarShards(self, cfg.registrar_processes)
            try:
                await self.shards.start()
            except BaseException:
                await self.stop()  # the listeners, servers and store opened above
                raise
        self._tasks.append(asyncio.create_task(self._housekeeping()))
        self.started_at = time.time()
        log.info("gateway up: sip udp/tcp %s, tls %s, control %s", eps.udp, eps.tls, eps.control_url)
        return eps

    def _install_call_features(self) -> None:
        """Voicemail and MWI, forwarding (*32*-*35*, device redirects) and transfer (REFER, Replaces)."""
        from gateway.services.forwarding import Forwarding
        from gateway.services.mwi import MwiService
        from gateway.services.transfer import TransferService
        from gateway.services.voicemail import VoicemailBoxes

        loop = asyncio.get_running_loop()
        self.voicemail = VoicemailBoxes(self.store, self.data_dir / "voicemail", wall=self.clock.now)
        self.mwi = MwiService(self.core, self.directory, self.registrar, self.voicemail.counts,
                              domain=self.config.domain, call_later=loop.call_later)
        self.mwi.install(self.core)
        self.forwarding = Forwarding(self.store, self.directory, call_later=loop.call_later)
        self.forwarding.install(self.router, self.core.b2bua, getattr(self, "feature_codes", None))
        self.transfer = TransferService(self.core)
        self.transfer.install()
        self.voicemail_node = None
        if hasattr(self.media, "add_listener"):
            from gateway.media_node.voicemail import VoicemailNode

            self.voicemail_node = VoicemailNode(self, self.voicemail, self.mwi)
            self.voicemail_node.install()
        else:
            self.voicemail.listeners.append(lambda u: loop.call_soon_threadsafe(self.mwi.changed, u))

    async def _listen_udp_tcp(self, host: str, port: int):
        """UDP and TCP on the same port (RFC 3261 §18: one sent-by for both). With port 0 the kernel picks
        the UDP port, and that port may be taken for TCP by another process: try again, a bounded number of
        times."""
        t = self.core.transports
        for attempt in range(20):
            udp = await t.listen_udp(host, port)
            try:
                return udp, await t.listen_stream(host, udp.port)
            except OSError as exc:
                t.close_listener(udp)
                if port != 0 or attempt == 19:
                    raise OSError(exc.errno, f"cannot listen on TCP {host}:{udp.port} next to UDP: {exc.strerror}"
                                  ) from exc
        raise AssertionError("unreachable")

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                self.store.flush()
                self.registrar.expire(self.core.now())
            except Exception:
                log.exception("housekeeping failed")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.shards is not None:
            await self.shards.stop()
        if self._control is not None:
            await self._control.stop()
        if getattr(self, "provisioning", None) is not None:
            await self.provisioning.stop()
        if hasattr(self.media, "close"):  # before the transports, so its BYEs still get answers
            await asyncio.get_running_loop().run_in_executor(None, self.media.close)
        await self.core.transports.close()
        self.store.close()
        log.info("gateway stopped")

    # --- running in a thread of its own ----------------------------------------------------------------------
    def start_in_thread(self, timeout: float = 30.0) -> Endpoints:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # reported to the starting thread
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.stop())
                loop.close()

        self._thread = threading.Thread(target=run, name="sipgw-gateway", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"the embedded gateway did not start within {timeout} s")
        if errors:
            raise errors[0]
        assert self.endpoints is not None
        return self.endpoints

    def stop_thread(self, timeout: float = 30.0) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None

    def call_soon(self, fn, *args):
        """Run ``fn`` on the gateway's loop and wait for its result (from another thread)."""
        assert self._loop is not None

        async def wrapper():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(30)
