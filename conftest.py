"""Repository-wide pytest configuration for sipgw-lab's own tests and suites."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Property tests must not fail on a slow or busy CI machine because one example took long.
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("dev", deadline=2000)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_report_header(config) -> str:
    """Say which SIP core the run exercises: the compiled build (make sipcore) or the Python source."""
    from gateway import sip

    return f"sipgw-lab SIP core: {sip.BUILD.reason}"
