"""The ``cisco-mpp`` driver: Cisco MPP Remote SDK; the harness runs the WebSocket server the phone connects out to
(:mod:`harness.drivers.vendors`).
"""

from __future__ import annotations

from harness.drivers.physical.api_driver import ApiDriver, harness_ip
from harness.drivers.registry import register_driver


@register_driver("cisco-mpp")
class CiscoMppDriver(ApiDriver):
    driver_name = "cisco-mpp"

    def _endpoint_options(self) -> dict:
        # The phone connects out to this address: on a physical lab it is the harness's lab interface.
        return {"listen_host": harness_ip(self.ctx)}
