"""matrix.json: the shape of the contract, round trips, located errors for bad files, atomic saves."""

from __future__ import annotations

import json

import pytest

from harness.outcomes import Outcome
from harness.reporting.model import (
    OUTCOMES,
    SCHEMA_PATH,
    Attempt,
    Cell,
    Matrix,
    MatrixConsistencyError,
    MatrixFileError,
    TestResult,
    load_matrix,
    matrix_json_schema,
    save_matrix,
)


def _text(run_dir):
    return (run_dir / "matrix.json").read_text(encoding="utf-8")


def _problems(tmp_path, text):
    p = tmp_path / "matrix.json"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(MatrixFileError) as info:
        load_matrix(p)
    return [str(x) for x in info.value.problems]


def _line_of(text, needle, nth=0):
    idx = -1
    for _ in range(nth + 1):
        idx = text.index(needle, idx + 1)
    return text.count("\n", 0, idx) + 1


def test_contract_keys(run):
    run_dir, _ = run
    data = json.loads(_text(run_dir))
    assert data["schema"] == 1
    assert set(data) >= {"schema", "manifest", "features", "cells", "summary"}
    assert set(data["manifest"]) >= {"run_id", "sipgw_lab_version", "git_commit", "catalogue_digest",
                                     "inventory_digest", "inventory_path", "gateway_build", "command_line",
                                     "started_at", "ended_at", "host", "devices"}
    assert set(data["manifest"]["devices"][0]) >= {"id", "vendor", "model", "kind", "firmware_declared",
                                                   "firmware_read_back", "mac", "user_agent", "firmware_verdict",
                                                   "verdict_reason"}
    assert set(data["features"][0]) == {"id", "title", "seed"}
    test = next(t for c in data["cells"] for t in c["tests"] if t["evidence"]["ladder_txt"])
    assert set(test) >= {"nodeid", "name", "outcome", "duration_s", "reason", "attempts", "evidence"}
    assert set(test["evidence"]) >= {"steps", "ladder_txt", "ladder_html", "pcap", "media", "device_log",
                                     "sip_call_ids"}
    assert set(data["summary"]) == {"counts", "duration_s"}
    assert data["summary"]["counts"] == {"pass": 48, "fail": 1, "not_applicable": 12, "blocked": 16, "error": 1,
                                         "flaky": 1}


def test_round_trip_is_lossless(run, tmp_path):
    run_dir, matrix = run
    again = load_matrix(run_dir / "matrix.json")
    assert again == matrix
    save_matrix(again, tmp_path / "matrix.json")
    assert (tmp_path / "matrix.json").read_text() == _text(run_dir)


def test_outcomes_match_the_harness_enum():
    assert tuple(o.value for o in Outcome) == OUTCOMES
    # the enum's members are accepted wherever an outcome is
    assert Attempt(outcome=Outcome.FLAKY, duration_s=0).outcome == "flaky"


def test_json_schema_file_is_generated_from_the_model():
    assert json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) == json.loads(
        json.dumps(matrix_json_schema(), sort_keys=True)), \
        "matrix.schema.json is stale: run python -c 'from harness.reporting.model import write_json_schema as w; w()'"
    schema = matrix_json_schema()
    assert schema["properties"]["schema"]["const"] == 1
    assert schema["$defs"]["Cell"]["properties"]["outcome"]["enum"] == list(OUTCOMES)


def test_json_syntax_error_is_located(tmp_path):
    problems = _problems(tmp_path, '{\n  "schema": 1,\n  "manifest": {,\n}\n')
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path / 'matrix.json'}:3:16: JSON syntax")


@pytest.mark.parametrize("edit,needle,expect", [
    (lambda d: d["cells"][5].update(outcome="passed"), '"outcome": "pass"', "cells[5].outcome: Input should be"),
    (lambda d: d["cells"][2].update(colour="red"), '"device_id"', "cells[2].colour: unknown key 'colour'"),
    (lambda d: d["manifest"].pop("gateway_build"), '"manifest"', "manifest.gateway_build: missing required key"),
    (lambda d: d["manifest"]["devices"][1].update(firmware_verdict="ok"), '"firmware_verdict"',
     "manifest.devices[1].firmware_verdict"),
])
def test_validation_errors_name_the_place(run, tmp_path, edit, needle, expect):
    run_dir, _ = run
    data = json.loads(_text(run_dir))
    edit(data)
    text = json.dumps(data, indent=2)
    problems = _problems(tmp_path, text)
    assert any(expect in p for p in problems), problems
    assert all(p.startswith(str(tmp_path / "matrix.json") + ":") for p in problems)


def test_wrong_outcome_points_at_its_line(run, tmp_path):
    run_dir, _ = run
    data = json.loads(_text(run_dir))
    data["cells"][3]["outcome"] = "green"
    text = json.dumps(data, indent=2)
    (problem,) = _problems(tmp_path, text)
    line = _line_of(text, '"outcome": "green"')
    assert problem.startswith(f"{tmp_path / 'matrix.json'}:{line}:")
    assert "cells[3].outcome" in problem and "'green'" in problem


def test_cross_references_are_checked(run, tmp_path):
    run_dir, _ = run
    data = json.loads(_text(run_dir))
    data["cells"][0]["device_id"] = "grandstream-gxp"
    data["cells"].append(dict(data["cells"][1]))
    data["summary"]["counts"]["pass"] += 1
    text = json.dumps(data, indent=2)
    problems = _problems(tmp_path, text)
    assert any("cells[0].device_id: device 'grandstream-gxp' is not in manifest.devices" in p for p in problems)
    dup = next(p for p in problems if "a second cell" in p)
    assert "(first at cells[1])" in dup
    assert not any("summary.counts" in p for p in problems)  # the counts match once the copy is counted


def test_summary_must_match_cells(run, tmp_path):
    run_dir, _ = run
    data = json.loads(_text(run_dir))
    data["summary"]["counts"]["fail"] = 0
    problems = _problems(tmp_path, json.dumps(data, indent=2))
    assert any("summary.counts.fail: says 0 fail cell(s) but the cells hold 1" in p for p in problems)


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "https://example.com/x.pcap", "a\\b.pcap"])
def test_evidence_paths_stay_in_the_run(run, tmp_path, path):
    run_dir, _ = run
    data = json.loads(_text(run_dir))
    cell = next(c for c in data["cells"] if c["tests"] and c["tests"][0]["evidence"]["pcap"])
    cell["tests"][0]["evidence"]["pcap"] = path
    problems = _problems(tmp_path, json.dumps(data, indent=2))
    assert any("evidence.pcap" in p and path.replace("\\", "\\\\") in p for p in problems), problems


def test_schema_version_and_top_level(tmp_path):
    assert "schema 2 is not supported; this sipgw-lab reads schema 1" in _problems(tmp_path, '{"schema": 2}')[0]
    assert "top level must be a JSON object" in _problems(tmp_path, "[1, 2]")[0]
    assert "missing 'schema'" in _problems(tmp_path, "{}")[0]


def test_unreadable_files(tmp_path):
    with pytest.raises(MatrixFileError, match="file not found"):
        load_matrix(tmp_path / "nope.json")
    (tmp_path / "bin.json").write_bytes(b'{"schema": 1,\n "x": "\xff"}')
    with pytest.raises(MatrixFileError, match=r"bin.json:2:1: not UTF-8 text"):
        load_matrix(tmp_path / "bin.json")


def test_reasons_and_flaky_attempts_are_required():
    with pytest.raises(ValueError, match="a 'blocked' cell needs a reason"):
        Cell(device_id="d", feature="dnd", outcome="blocked")
    with pytest.raises(ValueError, match="a flaky test must list its attempts"):
        TestResult(nodeid="t::x", name="x", outcome="flaky", duration_s=1,
                   attempts=[Attempt(outcome="pass", duration_s=1)])


def test_a_bad_save_keeps_the_stored_file(run, tmp_path):
    _, matrix = run
    target = tmp_path / "matrix.json"
    save_matrix(matrix, target)
    before = target.read_bytes()
    broken = matrix.model_copy(deep=True)
    broken.cells[0].device_id = "nobody"  # models are not re-validated on assignment
    with pytest.raises(MatrixFileError, match=r"device .nobody. is not in manifest\.devices"):
        save_matrix(broken, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["matrix.json"]  # no temporary file left behind


def test_building_in_code_reports_inconsistency(run):
    _, matrix = run
    with pytest.raises(MatrixConsistencyError, match="feature 'fax'"):
        Matrix.build(matrix.manifest, matrix.features, [{"device_id": "poly-vvx450", "feature": "fax",
                                                          "outcome": "pass"}])
