"""A started gateway fed datagrams directly by ``bench.gateway_micro``'s harness, its callee and users registered:
for tests that drive many registrations and calls through the whole gateway without sockets."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bench.gateway_micro import CALLEE_PORT, PASSWORD, PHONE_PORT, Harness
from bench.gateway_proc import CALLEE, CALLEE_NUMBER, bench_tenant, user_name, user_number
from gateway.config import GatewayConfig
from gateway.server import EmbeddedGateway


@asynccontextmanager
async def micro_gateway(users: int) -> AsyncIterator[tuple[EmbeddedGateway, Harness]]:
    with tempfile.TemporaryDirectory() as tmp:
        config = GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0", digest_algorithms=["MD5"], trace_entries=0)
        gw = EmbeddedGateway(Path(tmp), config, tenant=bench_tenant(users, PASSWORD), control_api=False)
        await gw.start()
        try:
            h = Harness(gw, users)
            h.register(CALLEE, CALLEE_NUMBER, CALLEE_PORT)
            for i in range(users):
                h.register(user_name(i), user_number(i), PHONE_PORT)
            yield gw, h
        finally:
            await gw.stop()
