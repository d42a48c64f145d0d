"""matrix.html in headless Chromium (Debian's /usr/bin/chromium; Playwright never downloads a browser).

Checks what a lab engineer sees: rows and columns, the colour and label of each outcome, the filters, the
blocked device's firmware verdict, and a cell opening its evidence page with the SIP ladder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.reporting.html import render_report
from tests.harness.reporting.fixture_run import FAIL_REASON

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make debs)"),
]

# background colours of style.css, as the browser computes them
BG = {"pass": "rgb(217, 242, 223)", "fail": "rgb(251, 220, 217)", "not_applicable": "rgb(236, 238, 242)",
      "blocked": "rgb(230, 222, 243)", "error": "rgb(255, 228, 199)", "flaky": "rgb(255, 241, 184)"}


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def context(browser, run):
    run_dir, matrix = run
    render_report(matrix, run_dir)
    ctx = browser.new_context(viewport={"width": 1500, "height": 1000})
    # self-contained: any request that is not a local file fails the test
    requests: list[str] = []
    ctx.on("request", lambda r: requests.append(r.url) if not r.url.startswith("file://") else None)
    yield ctx, requests
    ctx.close()


@pytest.fixture
def page(context, run):
    ctx, requests = context
    pg = ctx.new_page()
    pg.set_default_timeout(5000)
    pg.goto((run[0] / "matrix.html").as_uri())
    yield pg
    pg.close()
    assert requests == []


def _visible_devices(pg):
    return [r.get_attribute("data-device") for r in pg.locator("#matrix tr.dev-row:visible").all()]


def _cell(pg, device, feature):
    return pg.locator(f'#matrix tr[data-device="{device}"] td.cell[data-feature="{feature}"]')


def test_rows_columns_and_outcome_cells(page, run, tmp_path):
    _, matrix = run
    assert _visible_devices(page) == [d.id for d in matrix.manifest.devices]
    assert page.locator("#matrix th.feat").all_inner_texts() == [f.title for f in matrix.features]
    seen = {}
    for (dev, feat), outcome, label in [
        (("yealink-t46s", "make_calls"), "pass", "PASS"),
        (("poly-vvx450", "hold_resume"), "fail", "FAIL"),
        (("algo-8301", "call_transfer"), "not_applicable", "N/A"),
        (("cisco-7841", "dnd"), "blocked", "BLOCKED"),
        (("cisco-8865", "voicemail"), "error", "ERROR"),
        (("yealink-t46s", "dtmf"), "flaky", "FLAKY"),
    ]:
        cell = _cell(page, dev, feat)
        assert cell.inner_text().strip() == label
        assert cell.evaluate("el => getComputedStyle(el).backgroundColor") == BG[outcome]
        seen[outcome] = cell.get_attribute("title")
    assert seen["fail"] == f"fail: {FAIL_REASON}"
    assert seen["not_applicable"].startswith("n/a: ") and len(seen["not_applicable"]) > 10
    assert "below the minimum 11.1.1MPP" in seen["blocked"]
    assert _cell(page, "poly-vvx450", "teams_meetings").inner_text().strip() == "–"  # not run: no link
    assert page.locator("#summary .chip.o-fail").inner_text() == "fail 1"
    assert page.locator("#manifest summary").inner_text() == "Run manifest"
    page.locator("#manifest summary").click()
    assert page.get_by_text("sipgw-lab run --inventory lab").is_visible()
    page.screenshot(path=str(tmp_path / "matrix.png"), full_page=True)
    assert (tmp_path / "matrix.png").stat().st_size > 10_000


def test_blocked_device_shows_its_verdict(page):
    row = page.locator('#matrix tr[data-device="cisco-7841"]')
    assert "blocked" in row.get_attribute("class")
    fw = row.locator("td.fw")
    assert fw.locator(".verdict").inner_text() == "below minimum"
    reason = fw.locator(".verdict-reason")
    assert reason.is_visible()
    assert reason.inner_text().startswith("Cisco 7841 runs 11-0-1MPP, below the minimum 11.1.1MPP")
    assert row.locator("td.cell.o-blocked").count() == 16
    assert page.locator('#matrix tr[data-device="cisco-8865"] .verdict').inner_text() == "newer than approved"


def test_filters(page):
    page.select_option("#f-vendor", "Cisco")
    assert _visible_devices(page) == ["cisco-8865", "cisco-7841"]
    assert page.locator("#shown").inner_text() == "2 of 6 devices shown"
    page.select_option("#f-vendor", "")
    page.select_option("#f-outcome", "fail")
    assert _visible_devices(page) == ["poly-vvx450"]
    assert "dim" not in _cell(page, "poly-vvx450", "hold_resume").get_attribute("class")
    assert "dim" in _cell(page, "poly-vvx450", "make_calls").get_attribute("class")
    page.select_option("#f-outcome", "not_applicable")
    assert _visible_devices(page) == ["algo-8301"]
    page.select_option("#f-outcome", "")
    page.select_option("#f-feature", "dtmf")
    assert page.locator("#matrix th.feat:visible").all_inner_texts() == ["Dual-tone multi-frequency"]
    assert page.locator('#matrix tr[data-device="yealink-t46s"] td.cell:visible').inner_text().strip() == "FLAKY"
    page.select_option("#f-outcome", "flaky")
    assert _visible_devices(page) == ["yealink-t46s"]
    page.fill("#f-text", "t46")
    assert _visible_devices(page) == ["yealink-t46s"]
    page.fill("#f-text", "vvx")
    assert _visible_devices(page) == []
    # the filter state is in the address, so a filtered view can be shared
    assert "feature=dtmf" in page.url and "outcome=flaky" in page.url


def test_cell_opens_its_evidence_with_the_ladder(page, tmp_path):
    _cell(page, "poly-vvx450", "hold_resume").locator("a").click()
    page.wait_for_url("**/evidence/poly-vvx450/hold_resume/index.html")
    assert page.locator("h1").inner_text() == "Hold/Resume on poly-vvx450"
    assert page.locator("#cell-outcome").inner_text() == "fail"
    assert page.locator("#cell-reason").inner_text() == FAIL_REASON
    ladder = page.locator(".sipgw-ladder svg")
    assert ladder.is_visible()
    assert page.locator(".sipgw-ladder a.msg").count() == 13
    assert page.locator(".sipgw-ladder g.note").text_content().startswith("+6.000RTCP poly-vvx450 → gateway")
    assert page.locator(".sipgw-ladder text.who").all_text_contents() == ["poly-vvx450", "gateway", "Teams client"]
    details = page.locator("details#t1m-3")
    assert not details.evaluate("el => el.open")
    page.locator('.sipgw-ladder a.msg[data-msg="t1m-3"]').click()
    page.wait_for_function("document.getElementById('t1m-3').open")
    assert details.locator("pre").is_visible()
    assert "INVITE sip:blake.teams@127.0.0.1:5080 SIP/2.0" in details.locator("pre").inner_text()
    links = page.locator("section.test .links a").all_inner_texts()
    assert {"SIP ladder (text)", "pcap slice", "device log"} <= set(links)
    assert "hold key pressed" in page.locator("pre.log").inner_text()
    page.screenshot(path=str(tmp_path / "evidence.png"), full_page=True)
    page.locator("nav.crumbs a").click()
    page.wait_for_url("**/matrix.html")
