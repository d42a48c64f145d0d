"""Bootstrap: make a device's control path usable again after a factory reset (the ``provision`` step of
the device state machine, :mod:`harness.strategies`).

A factory reset turns each vendor's control path off; what brings it back is per vendor:

- Poly: ``apps.restapi.enabled=1`` and a new admin password (UCS 5.9.7+ refuse every call with 4010 while
  the factory password ``456`` is set);
- Yealink: the harness address in ``features.action_uri_limit_ip``, then "Allow Remote Control?" accepted
  on the phone once; then the Action URLs pointed at the harness's listener (over the API itself);
- Cisco MPP: ``Control_Server_URL`` set to the harness's Remote SDK server, then the phone connects out;
- Algo: ``admin.web.api=1`` and the API password;
- AudioCodes MediaPack: the REST API is on by default; only checked.

Settings are applied by the driver's *device side*: the simulator itself for ``{protocol: simulator}``
devices, a person (:mod:`harness.drivers.physical.manual`) for physical ones. Every step is traced and the
control path is probed again afterwards: bootstrap succeeds only when the device answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from harness import steps
from harness.protocols import OperationFailed, ProvisioningInfo

PROBE_DEADLINE_S = 10.0


class BootstrapFailed(OperationFailed):
    pass


def _probe_until_ok(driver: Any, deadline_s: float = PROBE_DEADLINE_S) -> Any:
    end = time.monotonic() + deadline_s
    while True:
        p = driver.api.probe(driver.session)
        if p.ok or time.monotonic() > end or p.problem not in ("restarting", "not_connected"):
            return p
        time.sleep(0.1)


def _step(driver: Any, text: str) -> None:
    driver.bootstrap_steps.append(text)
    steps.record("bootstrap.step", args={"vendor": driver.ctx.vendor}, result=text, device_id=driver.device_id)


def _poly(driver: Any, probe: Any) -> None:
    from harness.drivers.vendors import poly

    if probe.problem in ("api_disabled", "default_password"):
        password = driver.session.ep.password or ""
        if not password or password == "456":
            raise BootstrapFailed(f"{driver.device_id}: Poly bootstrap needs a non-default admin password in the "
                                  "credentials (credentials.password: {env: ...})")
        who = driver.device_side.apply_config(poly.bootstrap_params(password), probe.detail)
        _step(driver, f"apps.restapi.enabled=1 and a new admin password ({who})")


def _yealink(driver: Any, probe: Any) -> None:
    from harness.drivers.vendors import yealink

    if probe.problem == "not_allowed":
        ip = str(driver.session.listener.server_address[0])  # where the listener is: the harness's lab address
        who = driver.device_side.apply_config(yealink.bootstrap_params(ip), probe.detail)
        _step(driver, f"features.action_uri_limit_ip={ip} ({who})")
        probe = _probe_until_ok(driver)
    if probe.problem == "confirm_on_device":
        who = driver.device_side.confirm_on_device("Allow Remote Control?")
        _step(driver, f"'Allow Remote Control?' accepted ({who})")


def _yealink_after(driver: Any) -> None:
    from harness.drivers.vendors import yealink

    yealink.config_set(driver.session, yealink.action_urls(driver.session))
    _step(driver, f"Action URLs pointed at {driver.session.listen_url}")


def _cisco(driver: Any, probe: Any) -> None:
    from harness.drivers.vendors import cisco

    if probe.problem == "not_connected":
        who = driver.device_side.apply_config(cisco.bootstrap_params(driver.session.url), probe.detail)
        _step(driver, f"Control_Server_URL={driver.session.url} ({who})")
        driver.session.wait_connected(PROBE_DEADLINE_S)


def _algo(driver: Any, probe: Any) -> None:
    from harness.drivers.vendors import algo

    if probe.problem == "api_disabled":
        who = driver.device_side.apply_config(algo.bootstrap_params(driver.session.ep.password or ""), probe.detail)
        _step(driver, f"admin.web.api=1 and the API password ({who})")


def _nothing(driver: Any, probe: Any) -> None:
    pass


VENDOR_STEPS: dict[str, tuple[Callable[[Any, Any], None], Callable[[Any], None] | None]] = {
    "Poly": (_poly, None),
    "Yealink": (_yealink, _yealink_after),
    "Cisco": (_cisco, None),
    "Algo": (_algo, None),
    "AudioCodes": (_nothing, None),
}


def bootstrap(driver: Any) -> ProvisioningInfo:
    """Bring ``driver``'s control path up (an :class:`~harness.drivers.physical.api_driver.ApiDriver`)."""
    vendor = driver.ctx.vendor
    try:
        before, after = VENDOR_STEPS[vendor]
    except KeyError:
        raise BootstrapFailed(f"{driver.device_id}: no bootstrap steps for {vendor}") from None
    probe = _probe_until_ok(driver)
    if not probe.ok:
        _step(driver, f"control path not usable: {probe.problem}: {probe.detail}")
        before(driver, probe)
        probe = _probe_until_ok(driver)
    if not probe.ok:
        raise BootstrapFailed(f"{driver.device_id}: the {driver.api.API} is still not usable after bootstrap: "
                              f"{probe.problem}: {probe.detail}")
    if after is not None:
        after(driver)
    _step(driver, f"{driver.api.API} answers")
    return ProvisioningInfo(url=None, status="applied", detail="; ".join(driver.bootstrap_steps))
