"""What the B2BUA keeps per call is gone once the call has ended: its client transactions, server transaction and
dialogs are no longer mapped (each call's end removes its own entries, not a walk over every call's)."""

from __future__ import annotations

import asyncio

from tests.gateway.micro_gateway import micro_gateway


def test_ended_calls_leave_nothing_mapped() -> None:
    async def run() -> None:
        async with micro_gateway(3) as (gw, h):
            b2bua = gw.core.b2bua
            for k in range(20):
                h.call(k % 3)  # INVITE (407, then with credentials), 200, ACK, BYE, 200 through the B2BUA
            assert len(b2bua.history) == 20 and all(r.state == "ended" for r in b2bua.history)
            assert not b2bua.calls
            assert not b2bua._by_client_tx and not b2bua._by_server_tx and not b2bua._by_dialog

    asyncio.run(run())
