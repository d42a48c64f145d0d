"""Certification data from a run's matrix: verdicts from observed outcomes, catalogue reasons, regressions."""

from __future__ import annotations

from device_profiles.capabilities import applicability
from device_profiles.catalogue import default_catalogue
from harness.certify.report import certification_data as cert
from harness.certify.report import render_html
from harness.history.db import Regression
from tests.harness.history.helpers import device, matrix, result


def test_verdicts_follow_observed_outcomes_and_regressions_are_called_out():
    m = matrix("run-9", 9, [device(firmware="6.4.3.5018")], {
        ("poly-vvx450", "make_calls"): [result("pass"), result("pass")],
        ("poly-vvx450", "receive_calls"): [result("flaky", attempts=["error", "pass"])],
        ("poly-vvx450", "hold_resume"): [result("fail")],
    })
    reg = Regression("poly-vvx450", "hold_resume", "5.9.5.0614", "6.4.3.5018", "pass", "fail", "run-8")
    data = cert(m, "poly-vvx450", repeat=1, rerun_command="sipgw-lab certify --inventory /lab.yaml --device "
                "poly-vvx450 --repeat 1", regressions=[reg])
    f = {x["id"]: x for x in data["features"]}
    assert f["make_calls"]["verdict"] == "certified"
    assert f["receive_calls"]["verdict"] == "not certified" and f["receive_calls"]["reason"].startswith("flaky")
    assert f["hold_resume"]["verdict"] == "not certified" and "observed: no 200 OK" in f["hold_resume"]["reason"]
    assert f["hold_resume"]["regression"].startswith("REGRESSION poly-vvx450 × hold_resume: pass on firmware "
                                                     "5.9.5.0614")
    assert f["dtmf"]["verdict"] == "not certified" and "no test" in f["dtmf"]["reason"]
    assert all(x["verdict"] != "not applicable" for x in data["features"])  # every feature applies to a VVX 450
    assert data["overall"] == "not certified" and data["summary"]["regressions"] == 1
    html = render_html(data)
    assert "REGRESSION poly-vvx450" in html and "sipgw-lab certify --inventory /lab.yaml" in html


def test_below_minimum_firmware_is_never_certified():
    m = matrix("run-1", 1, [device(firmware="5.9.4.0001", verdict="below_minimum")],
               {("poly-vvx450", "make_calls"): [result("pass")]})
    data = cert(m, "poly-vvx450", repeat=1, rerun_command="x")
    assert data["firmware"]["verdict"] == "below_minimum" and data["firmware"]["acceptable"] is False
    assert data["overall"] == "not certified"


def test_not_applicable_carries_the_catalogue_reason_even_when_a_test_ran():
    speaker = device("algo-8186", firmware="5.3.4", model="8186", vendor="Algo")
    m = matrix("run-2", 2, [speaker], {("algo-8186", "receive_calls"): [result("pass")]})
    data = cert(m, "algo-8186", repeat=1, rerun_command="x")
    profile = default_catalogue().find("8186", vendor="Algo")
    f = {x["id"]: x for x in data["features"]}
    assert f["make_calls"]["verdict"] == "not applicable"
    assert f["make_calls"]["reason"] == applicability(profile, "make_calls").reason
    assert f["receive_calls"]["verdict"] == "certified"
