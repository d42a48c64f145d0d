"""The ``poly-rest`` driver: Poly UC Software REST API (VVX, Trio, Edge E) (:mod:`harness.drivers.vendors`)."""

from __future__ import annotations

from harness.drivers.physical.api_driver import ApiDriver
from harness.drivers.registry import register_driver


@register_driver("poly-rest")
class PolyRestDriver(ApiDriver):
    driver_name = "poly-rest"
