"""The sipgw-lab pytest plugin, run the way users run it (pytester), against a stub lab.

The stub lab (in the generated conftest) stands in for ``harness.lab.Lab``: the plugin only needs
``start()``/``stop()``, ``devices`` and ``control``; what is under test is the plugin's own mechanics —
outcomes, not-applicable and blocked cells, the rerun budget and flaky cells, the feature marker, filters and the
matrix written once by the controller.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

INVENTORY = """\
gateway: {mode: embedded}
devices:
  - id: poly-vvx450
    vendor: Poly
    model: VVX 450
    firmware: 5.9.5.0614
    driver: emulated
    lines: [{number: "+14255550111", name: Blake Rivera}]
  - id: cisco-7841-old
    vendor: Cisco
    model: "7841"
    firmware: 11.0.1MPP
    driver: emulated
    lines: [{number: "+14255550105", name: Stock Room}]
  - id: algo-8301
    vendor: Algo
    model: "8301"
    firmware: "5.3"
    driver: emulated
    lines: [{number: "+14255550172", name: Paging Zone 1}]
  - id: yealink-t46s
    vendor: Yealink
    model: T46S
    firmware: 66.86.0.15
    driver: emulated
    lines: [{number: "+14255550121", name: Drew Patel}]
"""

CONFTEST = """\
import os
import pytest
from harness.protocols import DeviceIdentity

class StubDevice:
    def __init__(self, spec):
        self.spec = spec
        self.id = spec.id
        self.identity = DeviceIdentity(vendor=spec.vendor, model=spec.model, firmware=spec.firmware or "",
                                       mac=None, user_agent=f"stub/{spec.id}")

class StubLab:
    def __init__(self, settings):
        from harness.inventory import load_inventory
        self.inventory = load_inventory(settings.inventory)
        self.devices = {}
        self.gateway = None
        self.control = None
        self.started = 0

    def start(self):
        self.started += 1
        with open("lab-starts.txt", "a") as f:
            f.write(f"{os.getpid()}\\n")

    def device(self, device_id):
        if device_id not in self.devices:
            self.devices[device_id] = StubDevice(self.inventory.device(device_id))
        return self.devices[device_id]

    def stop(self):
        pass

@pytest.fixture(scope="session")
def sipgw_lab_factory():
    return StubLab
"""


@pytest.fixture
def lab_dir(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", lab_inventory=INVENTORY)
    pytester.makeconftest(CONFTEST)
    return pytester


def _matrix(pytester: pytest.Pytester) -> dict:
    runs = [p for p in (pytester.path / "reports").iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(runs) == 1, runs
    return json.loads((runs[0] / "matrix.json").read_text())


def _outcomes(result: pytest.RunResult) -> dict[str, int]:
    return {k: v for k, v in result.parseoutcomes().items() if k not in ("warnings", "warning")}


def _cell(matrix: dict, device: str, feature: str) -> dict:
    found = [c for c in matrix["cells"] if c["device_id"] == device and c["feature"] == feature]
    assert len(found) == 1, (device, feature, [(c["device_id"], c["feature"]) for c in matrix["cells"]])
    return found[0]


def test_outcomes_na_blocked_fail_and_matrix(lab_dir: pytest.Pytester) -> None:
    lab_dir.makepyfile(test_suite=textwrap.dedent("""
        import pytest

        @pytest.mark.feature("make_calls")
        def test_call(device):
            assert device.identity.user_agent == f"stub/{device.id}"

        @pytest.mark.feature("receive_calls")
        def test_receive(device):
            assert device.id != "yealink-t46s", "observed: no INVITE reached yealink-t46s within 5 s"
    """))
    result = lab_dir.runpytest("--sipgw-report", "reports", "-rA")
    # poly passes both; cisco (below minimum) blocked twice; algo n/a for make_calls, passes receive; yealink fails
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 4
    assert outcomes.get("failed") == 1
    assert outcomes.get("blocked") == 2
    assert outcomes.get("not_applicable") == 1
    assert "skipped" not in outcomes
    assert result.ret == 1
    m = _matrix(lab_dir)
    assert _cell(m, "poly-vvx450", "make_calls")["outcome"] == "pass"
    blocked = _cell(m, "cisco-7841-old", "make_calls")
    assert blocked["outcome"] == "blocked" and "below_minimum" in blocked["reason"]
    na = _cell(m, "algo-8301", "make_calls")
    assert na["outcome"] == "not_applicable" and na["reason"]
    assert _cell(m, "algo-8301", "receive_calls")["outcome"] == "pass"
    failed = _cell(m, "yealink-t46s", "receive_calls")
    assert failed["outcome"] == "fail" and "no INVITE reached" in failed["reason"]
    assert m["summary"]["counts"]["blocked"] == 2
    ids = {d["id"]: d for d in m["manifest"]["devices"]}
    assert ids["poly-vvx450"]["firmware_read_back"] == "5.9.5.0614"
    assert ids["poly-vvx450"]["user_agent"] == "stub/poly-vvx450"
    assert ids["cisco-7841-old"]["firmware_verdict"] == "below_minimum"
    reports = lab_dir.path / "reports"
    assert (reports / "latest").is_symlink()
    assert (reports / "latest" / "matrix.json").exists()
    assert (reports / "latest" / "junit.xml").exists()
    assert (reports / "latest" / "matrix.html").exists()
    # test ids are vendor-model-id
    assert any("[poly-vvx-450-poly-vvx450]" in t["nodeid"] or "poly-vvx450]" in t["nodeid"]
               for t in _cell(m, "poly-vvx450", "make_calls")["tests"])


def test_unknown_feature_is_a_collection_error_naming_known_ids(lab_dir: pytest.Pytester) -> None:
    lab_dir.makepyfile(test_bad=textwrap.dedent("""
        import pytest

        @pytest.mark.feature("make_call")
        def test_x(device):
            pass
    """))
    result = lab_dir.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*unknown feature 'make_call'*known feature ids: make_calls, receive_calls*"])


def test_filters_device_vendor_and_feature(lab_dir: pytest.Pytester) -> None:
    lab_dir.makepyfile(test_suite=textwrap.dedent("""
        import pytest

        @pytest.mark.feature("make_calls")
        def test_call(device):
            pass

        @pytest.mark.feature("dtmf")
        def test_dtmf(device):
            pass
    """))
    result = lab_dir.runpytest("--co", "-q", "--device", "poly-vvx450", "--feature", "dtmf")
    result.stdout.fnmatch_lines(["*test_dtmf*poly-vvx450*", "*1/2 tests collected (1 deselected)*"])
    result = lab_dir.runpytest("--co", "-q", "--vendor", "yealink")
    result.stdout.fnmatch_lines(["*2 tests collected*"])
    result = lab_dir.runpytest("--co", "-q", "--device", "nope")
    result.stdout.fnmatch_lines(["*--device nope: not in*devices: algo-8301, cisco-7841-old*"])
    result = lab_dir.runpytest("--co", "-q", "--feature", "teleport")
    result.stderr.fnmatch_lines(["*--feature teleport: unknown feature id; known: make_calls*"])


def test_a_devices_tests_run_together(lab_dir: pytest.Pytester) -> None:
    lab_dir.makepyfile(test_suite=textwrap.dedent("""
        import pytest

        @pytest.mark.feature("make_calls")
        def test_a(device):
            pass

        @pytest.mark.feature("receive_calls")
        def test_b(device):
            pass
    """))
    result = lab_dir.runpytest("--co", "-q", "--vendor", "poly", "--vendor", "yealink")
    ids = [line for line in result.stdout.lines if line.startswith("test_suite.py::")]
    assert [i.split("[")[-1].rstrip("]").split("-")[-1] for i in ids] == ["vvx450", "vvx450", "t46s", "t46s"]
    assert [i.split("::")[1].split("[")[0] for i in ids] == ["test_a", "test_b", "test_a", "test_b"]


def test_only_infrastructure_errors_are_retried_within_one_budget(lab_dir: pytest.Pytester) -> None:
    lab_dir.makepyfile(test_suite=textwrap.dedent("""
        import pathlib
        import pytest
        from harness.protocols import InfrastructureError

        def _count(name):
            p = pathlib.Path(name)
            n = int(p.read_text()) + 1 if p.exists() else 1
            p.write_text(str(n))
            return n

        @pytest.mark.feature("make_calls")
        def test_flaky_worker(device):
            if _count("flaky-" + device.id) == 1:
                raise InfrastructureError("worker for poly-vvx450 died (SIGKILL)")

        @pytest.mark.feature("receive_calls")
        def test_protocol_failure(device):
            _count("proto-" + device.id)
            assert False, "observed 486 Busy Here where 200 OK was expected"

        @pytest.mark.feature("dtmf")
        def test_always_broken_lab(device):
            _count("infra-" + device.id)
            raise InfrastructureError("port 5060 already in use")
    """))
    result = lab_dir.runpytest("--device", "poly-vvx450", "--rerun-budget", "2", "--sipgw-report", "reports")
    outcomes = result.parseoutcomes()
    assert outcomes.get("flaky") == 1
    # a protocol failure runs once; the always-broken lab uses what is left of the budget (1) and stops
    assert (lab_dir.path / "proto-poly-vvx450").read_text() == "1"
    assert (lab_dir.path / "infra-poly-vvx450").read_text() == "2"
    assert (lab_dir.path / "flaky-poly-vvx450").read_text() == "2"
    m = _matrix(lab_dir)
    flaky = _cell(m, "poly-vvx450", "make_calls")
    assert flaky["outcome"] == "flaky"
    assert [a["outcome"] for a in flaky["tests"][0]["attempts"]] == ["error", "pass"]
    assert "worker for poly-vvx450 died" in flaky["tests"][0]["attempts"][0]["error"]
    assert _cell(m, "poly-vvx450", "receive_calls")["outcome"] == "fail"
    err = _cell(m, "poly-vvx450", "dtmf")
    assert err["outcome"] == "error" and "port 5060 already in use" in err["reason"]
    assert len(err["tests"][0]["attempts"]) == 2


def test_device_broken_blocks_its_later_tests(lab_dir: pytest.Pytester) -> None:
    lab_dir.makepyfile(test_suite=textwrap.dedent("""
        import pytest
        from harness.protocols import DeviceBroken

        @pytest.mark.feature("make_calls")
        def test_a(device):
            raise DeviceBroken("REGISTER answered 403 Forbidden", device_id=device.id, state="provisioned")

        @pytest.mark.feature("receive_calls")
        def test_b(device):
            pass
    """))
    result = lab_dir.runpytest("--device", "poly-vvx450", "--sipgw-report", "reports")
    assert _outcomes(result) == {"failed": 1, "blocked": 1}
    m = _matrix(lab_dir)
    assert _cell(m, "poly-vvx450", "make_calls")["outcome"] == "fail"
    later = _cell(m, "poly-vvx450", "receive_calls")
    assert later["outcome"] == "blocked" and "403 Forbidden" in later["reason"] and "test_a" in later["reason"]


def test_a_broken_helper_device_blocks_without_breaking_the_device_under_test(lab_dir: pytest.Pytester) -> None:
    lab_dir.makepyfile(test_suite=textwrap.dedent("""
        import pytest
        from harness.protocols import DeviceBroken

        @pytest.mark.feature("make_calls")
        def test_a(device):
            raise DeviceBroken("REGISTER answered 403 Forbidden", device_id="yealink-t46s")

        @pytest.mark.feature("receive_calls")
        def test_b(device):
            pass
    """))
    result = lab_dir.runpytest("--device", "poly-vvx450", "--sipgw-report", "reports")
    assert _outcomes(result) == {"passed": 1, "blocked": 1}
    m = _matrix(lab_dir)
    cell = _cell(m, "poly-vvx450", "make_calls")
    assert cell["outcome"] == "blocked" and "helper device yealink-t46s" in cell["reason"]
    assert _cell(m, "poly-vvx450", "receive_calls")["outcome"] == "pass"


def test_repeat_makes_a_cell_fail_when_one_run_fails(lab_dir: pytest.Pytester) -> None:
    lab_dir.makepyfile(test_suite=textwrap.dedent("""
        import pytest

        @pytest.mark.feature("make_calls")
        def test_call(device, sipgw_repeat):
            assert sipgw_repeat != 2, "observed one-way audio on run 2"
    """))
    result = lab_dir.runpytest("--device", "poly-vvx450", "--repeat", "3", "--sipgw-report", "reports")
    result.assert_outcomes(passed=2, failed=1)
    cell = _cell(_matrix(lab_dir), "poly-vvx450", "make_calls")
    assert cell["outcome"] == "fail" and cell["reason"].startswith("1 of 3 runs did not pass")


def test_a_test_with_its_own_device_fixture_is_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_other=textwrap.dedent("""
        import pytest

        @pytest.fixture
        def device():
            return "my own"

        def test_x(device):
            assert device == "my own"
    """))
    result = pytester.runpytest("--inventory", "does-not-exist.yaml")
    assert _outcomes(result) == {"passed": 1}


def test_bad_options_are_usage_errors(lab_dir: pytest.Pytester) -> None:
    for args, text in ((["--gateway", "nowhere"], "*--gateway 'nowhere': expected 'embedded' or HOST:PORT*"),
                       (["--slowness", "0"], "*--slowness 0.0: expected a factor above 0*"),
                       (["--repeat", "0"], "*--repeat 0: expected a count from 1 to 1000*")):
        result = lab_dir.runpytest(*args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([text])


def test_matrix_written_once_by_the_controller_under_xdist(lab_dir: pytest.Pytester) -> None:
    lab_dir.makepyfile(test_suite=textwrap.dedent("""
        import os
        import pytest

        def _ran(device):
            with open("ran-on.txt", "a") as fh:
                fh.write(f"{device.id} {os.getpid()}\\n")

        @pytest.mark.feature("make_calls")
        def test_call(device):
            _ran(device)

        @pytest.mark.feature("receive_calls")
        def test_receive(device):
            _ran(device)
    """))
    # Plugins this run does not need are left out: three interpreters start (controller and two workers).
    result = lab_dir.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "--sipgw-report", "reports",
                                          "-p", "no:cacheprovider", "-p", "no:allure_pytest",
                                          "-p", "no:hypothesispytest", "-p", "no:anyio", timeout=120)
    assert _outcomes(result) == {"passed": 5, "blocked": 2, "not_applicable": 1}
    reports = lab_dir.path / "reports"
    runs = [p for p in reports.iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(runs) == 1
    assert len(list(reports.rglob("matrix.json"))) == 1 + 0  # the latest symlink is not followed by rglob
    m = json.loads((runs[0] / "matrix.json").read_text())
    assert len(m["cells"]) == 8  # 4 devices x 2 features, merged from both workers
    assert {c["tests"][0]["nodeid"].split("@")[-1] for c in m["cells"]} == {
        c["tests"][0]["nodeid"].split("@")[-1] for c in m["cells"]}
    assert not any("@" in t["nodeid"] for c in m["cells"] for t in c["tests"])
    starts = Path(lab_dir.path / "lab-starts.txt").read_text().split()
    assert 1 <= len(starts) <= 2 and len(set(starts)) == len(starts)  # one lab per worker at most
    # --dist loadgroup: all tests of a device on one worker (the @<device> suffix reaches xdist under pytest 9)
    ran = [line.split() for line in (lab_dir.path / "ran-on.txt").read_text().splitlines()]
    workers_of = {dev: {pid for d, pid in ran if d == dev} for dev, _ in ran}
    assert len(ran) == 5 and all(len(pids) == 1 for pids in workers_of.values()), ran
    assert {d["id"] for d in m["manifest"]["devices"] if d["firmware_read_back"]} >= {"poly-vvx450", "algo-8301"}


def test_live_view_shows_each_cells_outcome_letters() -> None:
    import io

    from rich.console import Console

    from harness.pytest_plugin.progress import matrix_table

    table = matrix_table(["poly-vvx450", "algo-8301"], {
        ("poly-vvx450", "make_calls"): ["pass", "flaky"],
        ("algo-8301", "make_calls"): ["not_applicable"],
        ("algo-8301", "receive_calls"): ["fail"],
    }, title="run")
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(table)
    text = out.getvalue()
    assert "make_calls" in text and "receive_calls" in text
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if line.startswith("│")}
    assert ".~" in rows["poly-vvx450"]
    assert "n" in rows["algo-8301"].split("│")[2] and "F" in rows["algo-8301"].split("│")[3]


def test_evidence_collects_steps_and_the_call_ids_they_returned() -> None:
    from harness import steps
    from harness.protocols import CallDirection, CallInfo, CallState
    from harness.pytest_plugin.evidence import EvidenceCollector

    ev = EvidenceCollector("suite.py::test_x[dev]", device_id="dev")
    ev.start()
    try:
        call = CallInfo(id="1", state=CallState.CALLING, remote="+14255550121", direction=CallDirection.OUTGOING,
                        sip_call_id="abc@127.0.0.1")
        steps.record("dial", args={"target": "+14255550121"}, result=call, device_id="dev")
        ev.add_call({"sip_call_id": "media-leg-1"})
    finally:
        ev.stop()
    steps.record("after", device_id="dev")  # not collected once stopped
    out = ev.finalise(None)
    assert [s["name"] for s in out["steps"]] == ["dial"]
    assert out["sip_call_ids"] == ["abc@127.0.0.1", "media-leg-1"]


def test_gateway_side_variation_runs_once_on_the_representative_device(lab_dir: pytest.Pytester) -> None:
    lab_dir.makepyfile(test_suite=textwrap.dedent("""
        import pytest

        @pytest.mark.feature("make_calls")
        def test_every_device(device):
            pass

        @pytest.mark.feature("make_calls")
        def test_gateway_side(gateway_side, device):
            assert gateway_side == device.id
    """))
    result = lab_dir.runpytest("--sipgw-report", "reports", "-p", "no:cacheprovider")
    m = _matrix(lab_dir)
    runs = {(t["name"].split("[")[0], c["device_id"]): t for c in m["cells"] for t in c["tests"]}
    # The first device in inventory order with an acceptable verdict to which the feature applies.
    assert runs[("test_gateway_side", "poly-vvx450")]["outcome"] == "pass"
    assert runs[("test_every_device", "yealink-t46s")]["outcome"] == "pass"
    other = runs[("test_gateway_side", "yealink-t46s")]
    assert other["outcome"] == "not_applicable"
    assert "runs once, on the run's representative device poly-vvx450" in other["reason"]
    assert runs[("test_gateway_side", "cisco-7841-old")]["outcome"] == "blocked"  # firmware first
    assert result.ret == 0
