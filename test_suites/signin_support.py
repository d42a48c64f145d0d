"""Fixtures and helpers shared by the provisioning, sign-in and offboarding suites.

A device under these suites is provisioned from the gateway's provisioning URL (as DHCP option 66/160 would hand
it) and onboarded; afterwards it is onboarded again and its lab lines registered again, so the suites that follow
find it as the lab left it. Evidence: the provisioning server's HTTP exchanges of the device (secrets blanked),
screenshots of the web pages, and the SIP ladder of the calls the tests make.
"""

from __future__ import annotations

import contextlib
import functools
import json
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.protocols import CallControl, NotApplicable, Provisioning, SignIn

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DAY, HOUR = 86400, 3600


@dataclass
class Provisioned:
    """A device provisioned through the gateway's provisioning server, with what the tests need around it."""

    device: Any
    lab: Any
    evidence: Any
    url: str
    mac: str
    first_seq: int
    users: list[str] = field(default_factory=list)

    @property
    def api(self):
        return self.lab.control.signin

    @property
    def prov(self):
        return self.device[Provisioning]

    @property
    def signin(self):
        return self.device[SignIn]

    def line_key(self, port: int = 1) -> str:
        """The gateway's key of one of the device's lines: its MAC, or ``<mac>:00N`` for a multi-port ATA's port
        (each port of an ATA is its own line, with its own sign-in state)."""
        profile = self.device.profile
        if profile.kind == "ata" and (profile.ports_usable or 1) > 1:
            return f"{self.mac}:{port:03d}"
        if port != 1:
            raise NotApplicable(f"{profile.vendor} {profile.model} has one line", device_id=self.device.id)
        return self.mac

    @property
    def key(self) -> str:
        """The key of the device's first line (what the admin page and the control API list)."""
        return self.line_key(1)

    def state(self, port: int = 1) -> str:
        return self.lab.control.device(self.line_key(port))["pair_state"]

    def user(self, *, common_area: bool = False, number: bool = True, allow: bool = True) -> tuple[str, str, str]:
        """A new tenant user (user name, password, number); deleted after the test."""
        name = f"t{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(10)
        num = f"+1425557{secrets.randbelow(10000):04d}" if number else None
        self.lab.control.create_user(name, f"Test {name}", password=password, number=num, common_area=common_area,
                                     allow_sip_devices_calling=allow, voicemail=False)
        self.users.append(name)
        return name, password, num or ""

    def attach_http(self) -> None:
        """The provisioning server's exchanges with this device (and the sign-in pages) since the test began."""
        ua = self.device[Provisioning].user_agent
        ex = [e for e in self.api.exchanges(self.first_seq)
              if e["user_agent"] == ua or e["path"].startswith(("/signin", "/admin", "/lang_"))
              or self.mac in e["path"]]
        self.evidence.add_bytes("http-exchanges", "http-exchanges.json", json.dumps(ex, indent=1).encode())


def records_http(test):
    """Attach the provisioning server's HTTP exchanges to the test's evidence when the test ends, pass or fail
    (evidence is collected right after the test body, before fixtures are torn down)."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        try:
            return test(*args, **kwargs)
        finally:
            with contextlib.suppress(Exception):
                kwargs["provisioned"].attach_http()

    return wrapper


@pytest.fixture
def provisioned(device, lab, evidence, sipgw_settings) -> Iterator[Provisioned]:
    """The device, factory-reset and provisioned from the gateway's provisioning URL (onboarded, signed out)."""
    if lab.control is None:
        raise NotApplicable("these suites need the gateway's control API (embedded gateway)", device_id=device.id)
    prov = device[Provisioning]
    url = lab.control.signin.provisioning_url()
    exchanges = lab.control.signin.exchanges()
    first = exchanges[-1]["seq"] if exchanges else 0
    mac = prov.mac
    prov.factory_reset()
    info = prov.provision(url)
    p = Provisioned(device, lab, evidence, url, mac, first)
    try:
        assert info.status == "applied", f"{device.id}: provisioning from {url} {info.status}: {info.detail}"
        yield p
    finally:
        _restore(p, sipgw_settings)


def _restore(p: Provisioned, settings) -> None:
    """Onboard the device again and register its lab lines, whatever the test left behind."""
    for name in p.users:
        with contextlib.suppress(Exception):
            p.lab.control.delete_user(name)
    with contextlib.suppress(Exception):
        p.lab.control.reset()  # the clock back to now
    prov = p.prov
    with contextlib.suppress(Exception):
        prov.provision(p.url)
    with contextlib.suppress(Exception):
        prov.factory_reset()
    calls = p.device[CallControl]
    for line in range(len(p.device.lines)):
        with contextlib.suppress(Exception):
            calls.register(line, timeout=settings.deadline(10))


def _representatives(sipgw_inventory, sipgw_settings, feature: str) -> list[str]:
    """Ids of this run's devices that could carry a gateway-side check of ``feature``, in inventory order: an
    acceptable firmware verdict, the feature applicable, and a configuration format the provisioning server serves."""
    from device_profiles.capabilities import applicability
    from gateway.provisioning.formats import format_for

    chosen = set(sipgw_settings.devices)
    return [spec.id for spec in sipgw_inventory.devices
            if (not chosen or spec.id in chosen) and spec.verdict.acceptable
            and applicability(spec.profile, feature) and applicability(spec.profile, feature.split(".")[0])
            and format_for(spec.profile.vendor, spec.profile.kind) is not None]


def _only_on_representative(device, sipgw_inventory, sipgw_settings, feature: str) -> str:
    ids = _representatives(sipgw_inventory, sipgw_settings, feature)
    if not ids or ids[0] != device.id:
        raise NotApplicable(
            "a gateway-side check (the device-side behaviour is the same on every device): it runs once, on the "
            f"run's representative device {ids[0] if ids else '(none eligible in this run)'}",
            feature=feature.split(".")[0], device_id=device.id)
    return device.id


@pytest.fixture
def representative(request, device, sipgw_inventory, sipgw_settings) -> str:
    """Only on the run's representative device (the first eligible one for the test's feature); every other
    device is not applicable with that reason, before the device is factory-reset and provisioned.
    List it before ``provisioned``."""
    feature = request.node.get_closest_marker("feature").args[0]
    return _only_on_representative(device, sipgw_inventory, sipgw_settings, feature)


@pytest.fixture
def representative_local(device, sipgw_inventory, sipgw_settings) -> str:
    """``representative`` among the devices with a local sign-in (a display showing a pairing code)."""
    return _only_on_representative(device, sipgw_inventory, sipgw_settings, "sign_in_out.local")


def require_local_sign_in(device) -> None:
    from device_profiles.capabilities import applicability

    app = applicability(device.profile, "sign_in_out.local")
    if not app:
        raise NotApplicable(app.reason or "no local sign-in on this device", feature="sign_in_out",
                            device_id=device.id)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (never a downloaded browser): one per worker session, each
    test gets its own context (cookies and storage are not shared)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make debs)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, evidence):
    ctx = browser.new_context(viewport={"width": 1200, "height": 800})
    pg = ctx.new_page()
    try:
        yield pg
    finally:
        ctx.close()


def screenshot(page, evidence, label: str) -> None:
    evidence.add_bytes(label, f"{label}.png", page.screenshot(full_page=True))


def web_sign_in(page, evidence, auth_url: str, username: str, password: str, code: str, label: str) -> str:
    """Sign in on the gateway's sign-in page as a user would; returns the message the page shows."""
    page.goto(auth_url)
    page.fill("#username", username)
    page.fill("#password", password)
    page.fill("#code", code)
    page.click("#submit")
    page.wait_for_selector("#message")
    screenshot(page, evidence, label)
    return page.inner_text("#message")
