"""What the B2BUA keeps per call is gone once the call has ended: its client transactions, server transaction and
dialogs are no longer mapped (each call's end removes its own entries, not a walk over every call's)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from bench.gateway_micro import CALLEE_PORT, PASSWORD, PHONE_PORT, Harness
from bench.gateway_proc import CALLEE, CALLEE_NUMBER, bench_tenant, user_name, user_number
from gateway.config import GatewayConfig
from gateway.server import EmbeddedGateway


def test_ended_calls_leave_nothing_mapped() -> None:
    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            config = GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0", digest_algorithms=["MD5"], trace_entries=0)
            gw = EmbeddedGateway(Path(tmp), config, tenant=bench_tenant(3, PASSWORD), control_api=False)
            await gw.start()
            try:
                h = Harness(gw, 3)
                h.register(CALLEE, CALLEE_NUMBER, CALLEE_PORT)
                for i in range(3):
                    h.register(user_name(i), user_number(i), PHONE_PORT)
                b2bua = gw.core.b2bua
                for k in range(20):
                    h.call(k % 3)  # INVITE (407, then with credentials), 200, ACK, BYE, 200 through the B2BUA
                assert b2bua.history and len(b2bua.history) == 20
                assert all(r.state == "ended" for r in b2bua.history[-20:])
                assert not b2bua.calls
                assert not b2bua._by_client_tx and not b2bua._by_server_tx and not b2bua._by_dialog
            finally:
                await gw.stop()

    asyncio.run(run())
