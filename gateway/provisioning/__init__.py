"""Provisioning, onboarding and sign-in for the embedded gateway.

:class:`Provisioning` wires the sign-in service (:mod:`gateway.services.signin`), the offboarding sweeper
(:mod:`gateway.services.lifecycle`), the SIP hooks (:mod:`gateway.provisioning.sip_hooks`) and the HTTP server
with the web pages (:mod:`gateway.provisioning.server`, :mod:`gateway.web`), and, when the gateway has a media
node, the ``*55*`` confirmation tone (:mod:`gateway.media_node.confirmation`) into a running gateway:
``EmbeddedGateway.start()`` creates one as ``gw.provisioning`` and stops it in ``stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.provisioning.server import ProvisioningServer
from gateway.provisioning.sip_hooks import SignInSipHooks
from gateway.services.lifecycle import Lifecycle
from gateway.services.signin import SignInService

log = logging.getLogger("sipgw.provisioning")

__all__ = ["Provisioning", "ProvisioningServer"]


class Provisioning:
    """Sign-in service, lifecycle sweeper, SIP hooks and provisioning HTTP server of one gateway."""

    def __init__(self, gw, *, code_ttl_s: float = 900.0, sweep_interval_s: float = 1.0, lab_mode: bool = True):
        self.gw = gw
        self.signin = SignInService(gw.directory, gw.devices, gw.store, gw.clock.now, realm=gw.config.domain,
                                    code_ttl_s=code_ttl_s)
        self.hooks = SignInSipHooks(gw, self.signin)
        self.signin.is_online = self.hooks.is_online
        self.signin.drop_bindings = self.hooks.drop_bindings
        self.lifecycle = Lifecycle(gw.devices, gw.clock.now, on_offboard=self._offboarded,
                                   is_online=self.hooks.is_online)
        self.server = ProvisioningServer(gw, self.signin, lab_mode=lab_mode)
        self.sweep_interval_s = sweep_interval_s
        self._task: asyncio.Task | None = None

    def _offboarded(self, device) -> None:
        self.signin.forget_credentials(device.key)
        self.hooks.drop_bindings(device.key)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.hooks.install()
        media = self.gw.media
        if hasattr(media, "add_listener") and hasattr(media, "reserve"):  # a media node: *55* gets its tone
            from gateway.media_node.confirmation import ConfirmationTone

            self.hooks.confirmation = ConfirmationTone(media)
        await self.server.start(host, port)
        self.signin.signin_url = f"{self.server.url}/signin"
        self._task = asyncio.create_task(self._sweeper())
        return self.server.url

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval_s)
            try:
                self.lifecycle.sweep()
            except Exception:
                log.exception("offboarding sweep failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await self.server.stop()
