"""The sign-in page and the admin devices page in headless Chromium (Debian's, Playwright never downloads one),
against a running embedded gateway: a user signs a device in with its pairing code, wrong input is shown on the
page and changes nothing, the admin page lists model, firmware verdict, state, user, last seen and offboarding
date, and its Sign out and Restart actions work."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from gateway.config import GatewayConfig
from gateway.control_api.client import ControlClient
from gateway.server import EmbeddedGateway

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")

UA = "Yealink SIP-T46S 66.86.0.15 80:5e:c0:12:dc:69"
MAC = "805ec012dc69"


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    g = EmbeddedGateway(tmp_path_factory.mktemp("gw"), GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0"))
    g.start_in_thread()
    with ControlClient(g.endpoints.control_url) as api:
        api.create_user("avery", "Avery Chen", password="pw-avery", number="+14255550101")
        api.create_user("nonum", "No Number", password="pw-nonum")
    yield g
    g.stop_thread()


@pytest.fixture(scope="module")
def page(gw):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser.new_page()
        finally:
            browser.close()


def pairing_code(gw) -> str:
    base = gw.endpoints.provisioning_url
    boot = httpx.get(f"{base}/{MAC}.cfg", headers={"User-Agent": UA}, timeout=5)
    state_url = next(line.split(" = ", 1)[1] for line in boot.text.splitlines()
                     if line.startswith("static.auto_provision.server.url"))
    httpx.get(state_url, headers={"User-Agent": UA}, timeout=5)
    token = state_url.split("/s/")[1].split("/")[0]
    return httpx.post(f"{base}/s/{token}/signin", timeout=5).json()["pairing_code"]


def submit(page, gw, username, password, code):
    page.goto(gw.endpoints.provisioning_url + "/signin")
    page.fill("#username", username)
    page.fill("#password", password)
    page.fill("#code", code)
    page.click("#submit")
    page.wait_for_selector("#message")
    return page.inner_text("#message")


def test_sign_in_page_refusals_then_success_and_admin_actions(gw, page, tmp_path):
    code = pairing_code(gw)
    assert "no phone number" in submit(page, gw, "nonum", "pw-nonum", code)
    assert "not right" in submit(page, gw, "avery", "wrong", code)
    assert "not known" in submit(page, gw, "avery", "pw-avery", "ZZZZZZZZZ")
    with ControlClient(gw.endpoints.control_url) as api:
        assert api.device(MAC)["pair_state"] == "unpaired"  # none of that changed anything
        msg = submit(page, gw, "avery", "pw-avery", code.lower())
        assert "signed in as Avery Chen (+14255550101)" in msg
        page.screenshot(path=str(tmp_path / "signin.png"))
        assert api.device(MAC)["pair_state"] == "paired"

        page.goto(gw.endpoints.provisioning_url + "/admin/devices")
        row = page.locator(f'tr[data-key="{MAC}"]')
        assert row.locator(".state").inner_text() == "Signed in"
        assert row.locator(".user").inner_text() == "avery"
        assert row.locator(".verdict").inner_text() == "supported"
        assert "T46S" in row.inner_text() and row.locator(".offboarding").inner_text().endswith("UTC")
        row.locator("button.restart").click()
        page.wait_for_selector("#message")
        assert "Restart requested" in page.inner_text("#message")
        assert api.signin.status(MAC)["restart_requested"] is not None
        page.locator(f'tr[data-key="{MAC}"] button.signout').click()
        page.wait_for_selector("#message")
        assert page.locator(f'tr[data-key="{MAC}"] .state').inner_text() == "Signed out"
        assert api.device(MAC)["pair_state"] == "unpaired"
        assert (tmp_path / "signin.png").stat().st_size > 0
