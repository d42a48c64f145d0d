"""The ``audiocodes-mp`` driver: AudioCodes MediaPack REST status and reset; calls on FXS ports through an analog
line simulator (:mod:`harness.drivers.vendors`).
"""

from __future__ import annotations

from harness.drivers.physical.api_driver import ApiDriver
from harness.drivers.registry import register_driver


@register_driver("audiocodes-mp")
class AudioCodesMpDriver(ApiDriver):
    driver_name = "audiocodes-mp"
