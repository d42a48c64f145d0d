"""The ``algo-rest`` driver: Algo RESTful API (HMAC auth with a clock-skew correction)
(:mod:`harness.drivers.vendors`).
"""

from __future__ import annotations

from harness.drivers.physical.api_driver import ApiDriver
from harness.drivers.registry import register_driver


@register_driver("algo-rest")
class AlgoRestDriver(ApiDriver):
    driver_name = "algo-rest"
