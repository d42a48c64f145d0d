"""Evidence files: where they go, and what the matrix records about them."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from gateway.trace import to_pcap
from harness.reporting.evidence import EvidenceWriter, read_trace_file, safe_component, step_from_event
from tests.harness.reporting import sip_samples as s


def test_safe_component():
    assert safe_component("poly-vvx450") == "poly-vvx450"
    a = safe_component("test_call[poly-vvx450]")
    b = safe_component("test_call(poly-vvx450)")
    assert a != b and a.startswith("test_call_poly-vvx450-") and "/" not in a
    assert safe_component("../..").startswith("_-") and safe_component("a/b") != "a/b"
    assert len(safe_component("x" * 300)) <= 80
    with pytest.raises(ValueError):
        safe_component("")


@dataclass
class _Event:  # the shape of harness.steps.StepEvent
    name: str
    args: dict
    result: object
    duration_s: float
    ok: bool
    error: BaseException | None
    device_id: str
    t: float


def test_writer_records_relative_paths(tmp_path):
    w = EvidenceWriter(tmp_path, "yealink-t46s", "make_calls", "test_make_calls[yealink-t46s]")
    rec = s.recorded_call()
    w.add_trace(rec.entries(), s.LABELS, title="make_calls",
                notes=[{"time": s.T0 + 6.0, "text": "RTCP yealink-t46s ← gateway: 224 pkts, loss 0 %, jitter 1.8 ms"}])
    w.add_pcap(to_pcap(rec.entries()))
    w.add_steps([_Event("dial", {"number": "+14255550123", "path": tmp_path}, None, 0.1, True, None, "yealink-t46s",
                        1.0),
                 _Event("wait", {}, None, 5.0, False, TimeoutError("no 200 OK within 5 s"), "yealink-t46s", 1.1)])
    w.add_media({"mos": 4.38})
    w.add_device_log("boot ok\n")
    w.add_file("screenshot", "screen.png", b"\x89PNG")
    ev = w.evidence
    base = "evidence/yealink-t46s/make_calls/" + safe_component("test_make_calls[yealink-t46s]")
    assert ev.ladder_txt == f"{base}/ladder.txt" and ev.pcap == f"{base}/trace.pcap"
    for rel in ev.paths():
        assert (tmp_path / rel).is_file() and not rel.startswith("/")
    assert (tmp_path / ev.pcap).read_bytes()[:4] == b"\xd4\xc3\xb2\xa1"
    assert ev.sip_call_ids == [s.A_CALL_ID, s.B_CALL_ID]
    assert "INVITE (SDP)" in (tmp_path / ev.ladder_txt).read_text()
    entries, labels, notes = read_trace_file(tmp_path / ev.trace)
    assert len(entries) == 13 and labels == s.LABELS and notes[0]["text"].startswith("RTCP yealink-t46s")
    # the RTCP summary sits between the ACK (+1.530) and the BYE (+6.100)
    text_rows = [r for r in (tmp_path / ev.ladder_txt).read_text().splitlines() if r.startswith("[")]
    assert text_rows[9].startswith("[--]   +6.000 ~~  RTCP yealink-t46s") and text_rows[10].startswith("[10]")
    assert ev.steps[0].args["path"] == str(tmp_path)
    assert ev.steps[1].ok is False and ev.steps[1].error == "TimeoutError: no 200 OK within 5 s"
    assert ev.media == {"mos": 4.38}
    json.dumps(ev.model_dump(mode="json"))  # all JSON
    assert not list(tmp_path.rglob(".*.tmp"))


def test_step_from_dict_and_bare_list_trace(tmp_path):
    step = step_from_event({"name": "press", "args": ["hold"], "result": b"ok", "duration_s": -1})
    assert step.args == {"args": ["hold"]} and step.result == "ok" and step.duration_s == 0.0 and step.ok
    (tmp_path / "t.json").write_text(json.dumps([e.as_dict() for e in s.recorded_call().entries()]))
    entries, labels, notes = read_trace_file(tmp_path / "t.json")
    assert len(entries) == 13 and labels == {} and notes == []


def test_pcap_is_checked(tmp_path):
    w = EvidenceWriter(tmp_path, "d", "dnd", "t")
    with pytest.raises(ValueError, match="not a pcap"):
        w.add_pcap(b"<html>")
    assert w.evidence.pcap is None
