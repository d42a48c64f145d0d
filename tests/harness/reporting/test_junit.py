"""junit.xml: one suite per device, properties for device, firmware and gateway build, outcomes mapped for CI."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from harness.reporting.junit import write_junit
from tests.harness.reporting.fixture_run import ERROR_REASON, FAIL_REASON


@pytest.fixture(scope="module")
def junit(run):
    run_dir, matrix = run
    return ET.parse(write_junit(matrix, run_dir / "junit.xml")).getroot(), matrix


def _props(el):
    return {p.get("name"): p.get("value") for p in el.findall("properties/property")}


def _case(root, device, feature):
    (case,) = [c for c in root.iter("testcase") if c.get("classname") == f"{device}.{feature}"]
    return case


def test_suites_and_properties(junit):
    root, matrix = junit
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [d.id for d in matrix.manifest.devices]
    cisco = next(s for s in suites if s.get("name") == "cisco-8865")
    props = _props(cisco)
    assert props["device"] == "cisco-8865" and props["firmware"] == "12-0-3MPP"
    assert props["firmware_verdict"] == "newer_than_approved"
    assert props["gateway_build"] == matrix.manifest.gateway_build and props["run_id"] == matrix.manifest.run_id
    case = _case(root, "cisco-8865", "make_calls")
    cprops = _props(case)
    assert (cprops["device"], cprops["firmware"], cprops["gateway_build"]) == (
        "cisco-8865", "12-0-3MPP", matrix.manifest.gateway_build)
    assert cprops["nodeid"] == "test_suites/test_make_calls.py::test_make_calls[cisco-8865]"


def test_outcome_mapping(junit):
    root, _ = junit
    fail = _case(root, "poly-vvx450", "hold_resume")
    assert fail.find("failure").get("message") == FAIL_REASON
    assert "evidence pcap: evidence/poly-vvx450/hold_resume/" in fail.find("system-out").text
    assert "12:00:41 [sip] hold key pressed" in fail.find("system-err").text  # the device log's tail
    err = _case(root, "cisco-8865", "voicemail")
    assert err.find("error").get("message") == ERROR_REASON and err.find("failure") is None
    na = _case(root, "algo-8301", "call_transfer")
    assert na.find("skipped").get("message").startswith("not applicable: ")
    blocked = _case(root, "cisco-7841", "make_calls")
    assert blocked.get("name") == "make_calls"
    assert blocked.find("skipped").get("message").startswith("blocked: Cisco 7841 runs 11-0-1MPP, below the minimum")
    flaky = _case(root, "yealink-t46s", "dtmf")
    assert flaky.find("failure") is None and flaky.find("error") is None and flaky.find("skipped") is None
    assert _props(flaky)["flaky"] == "true" and _props(flaky)["attempts"] == "2"
    passed = _case(root, "yealink-t46s", "make_calls")
    assert list(passed) == [passed.find("properties")]  # passes stay lean: no system-out


def test_counts(junit):
    root, matrix = junit
    c = matrix.summary.counts
    assert int(root.get("tests")) == sum(c.values())  # one test per cell in the fixture
    assert int(root.get("failures")) == c["fail"] and int(root.get("errors")) == c["error"]
    assert int(root.get("skipped")) == c["not_applicable"] + c["blocked"]
    blocked = next(s for s in root.findall("testsuite") if s.get("name") == "cisco-7841")
    assert blocked.get("skipped") == blocked.get("tests") == "16"


def test_control_characters_do_not_break_the_xml(run, tmp_path):
    _, matrix = run
    m = matrix.model_copy(deep=True)
    cell = next(c for c in m.cells if c.outcome == "fail")
    cell.tests[0].reason = "device said \x07\x1b[31mBUSY"
    root = ET.parse(write_junit(m, tmp_path / "junit.xml")).getroot()
    assert "\\x07\\x1b[31mBUSY" in _case(root, cell.device_id, cell.feature).find("failure").get("message")
