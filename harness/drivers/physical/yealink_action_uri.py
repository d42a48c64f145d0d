"""The ``yealink-action-uri`` driver: Yealink Action URI with the harness's Action URL listener for events
(:mod:`harness.drivers.vendors`).
"""

from __future__ import annotations

from harness.drivers.physical.api_driver import ApiDriver, harness_ip
from harness.drivers.registry import register_driver


@register_driver("yealink-action-uri")
class YealinkActionUriDriver(ApiDriver):
    driver_name = "yealink-action-uri"

    def _endpoint_options(self) -> dict:
        # The phone calls the Action URL listener back on this address (the harness's lab interface).
        return {"listen_host": harness_ip(self.ctx)}
