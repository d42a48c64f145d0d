"""A realistic finished run, written the way the harness writes one: several vendors, every outcome kind,
a device blocked below its minimum firmware, a flaky cell, and evidence files for the tests that ran.

Verdicts and "not applicable" reasons come from the real catalogue, ladders from real SIP messages recorded
through ``gateway.trace.TraceRecorder``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from device_profiles.capabilities import applicability
from device_profiles.catalogue import default_catalogue
from device_profiles.verdict import check_firmware
from gateway.trace import to_pcap
from harness.reporting.evidence import EvidenceWriter
from harness.reporting.model import (
    Attempt,
    Cell,
    Manifest,
    ManifestDevice,
    Matrix,
    TestResult,
    features_from_catalogue,
    save_matrix,
)
from tests.harness.reporting import sip_samples

RUN_ID = "20261126T120000Z-lab1"
# (id, vendor, model, firmware as read back)
DEVICES = [
    ("poly-vvx450", "Poly", "VVX 450", "5.9.5.0614"),
    ("yealink-t46s", "Yealink", "T46S", "66.86.0.15"),
    ("cisco-8865", "Cisco", "8865", "12-0-3MPP"),
    ("cisco-7841", "Cisco", "7841", "11-0-1MPP"),
    ("algo-8301", "Algo", "8301", "5.3"),
    ("audiocodes-c450hd", "AudioCodes", "C450HD", "2.2.16.1"),
]
FAIL_REASON = "hold: no re-INVITE with a=sendonly or a=inactive from the device within 5 s (last message: 200 OK)"
ERROR_REASON = "lab error: media node worker for +14255550100 exited (signal 11) before the voicemail answered"


def _manifest() -> Manifest:
    devices = []
    for dev_id, vendor, model, fw in DEVICES:
        v = check_firmware(model, fw, vendor=vendor)
        devices.append(ManifestDevice(id=dev_id, vendor=vendor, model=v.model or model, kind=v.kind or "desk_phone",
                                      firmware_declared=fw, firmware_read_back=fw, firmware_verdict=v.verdict.value,
                                      verdict_reason=v.reason, mac="00:15:65:aa:10:01" if vendor == "Yealink" else None,
                                      user_agent="Yealink SIP-T46S 66.86.0.15" if vendor == "Yealink" else None))
    return Manifest(run_id=RUN_ID, sipgw_lab_version="0.1.0", git_commit="1f7387e", catalogue_digest="sha256:c4t",
                    inventory_digest="sha256:1nv", inventory_path="lab_inventory.yaml",
                    gateway_build="sipgw-lab-gateway 0.1.0 (embedded)", command_line="sipgw-lab run --inventory lab",
                    started_at=datetime(2026, 11, 26, 12, 0, tzinfo=UTC), ended_at=datetime(2026, 11, 26, 12, 6, 30,
                                                                                             tzinfo=UTC),
                    host="lab-runner-1", devices=devices)


def _evidence(run_dir: Path, dev: str, feature: str, name: str, *, log: str | None = None):
    w = EvidenceWriter(run_dir, dev, feature, name)
    rec = sip_samples.recorded_call()
    labels = {**sip_samples.LABELS, "127.0.0.1:5071": dev}
    rtcp = {"time": sip_samples.T0 + 6.0, "text": f"RTCP {dev} → gateway: 224 packets, loss 0 %, jitter 1.8 ms; "
                                                  f"gateway → {dev}: 226 packets, loss 0 %, jitter 2.1 ms"}
    w.add_trace(rec.entries(), labels, title=f"{dev} {feature}", notes=[rtcp])
    w.add_pcap(to_pcap(rec.entries()))
    t0 = sip_samples.T0
    w.add_steps([
        {"name": "dial", "args": {"number": "+14255550123"}, "result": None, "duration_s": 0.05, "ok": True,
         "error": None, "device_id": dev, "t": t0},
        {"name": "wait_call_state", "args": {"state": "confirmed"}, "result": "confirmed", "duration_s": 1.5,
         "ok": True, "error": None, "device_id": dev, "t": t0 + 0.05},
        {"name": "hangup", "args": {}, "result": None, "duration_s": 0.03, "ok": True, "error": None,
         "device_id": dev, "t": t0 + 6.1},
    ])
    w.add_media({"tone_hz_sent": 700, "tone_hz_detected": 700.4, "rtp_packets_rx": 224, "loss_pct": 0.0,
                 "jitter_ms": 1.8, "mos": 4.38})
    if log is not None:
        w.add_device_log(log)
    return w.evidence


def build_run(run_dir: Path) -> Matrix:
    """Write evidence and ``matrix.json`` into ``run_dir``; return the matrix."""
    cat = default_catalogue()
    manifest = _manifest()
    features = features_from_catalogue()
    cells: list[Cell] = []
    for d in manifest.devices:
        profile = cat.find(d.model, vendor=d.vendor)
        for f in features:
            if not d.acceptable:
                cells.append(Cell(device_id=d.id, feature=f.id, outcome="blocked", reason=d.verdict_reason))
                continue
            app = applicability(profile, f.id, cat)
            if not app.applicable:
                cells.append(Cell(device_id=d.id, feature=f.id, outcome="not_applicable", reason=app.reason or "?"))
                continue
            if f.id in ("teams_meetings", "offboard_stale_devices", "call_queues", "dynamic_e911"):
                continue  # not run in this run
            name = f"test_{f.id}[{d.id}]"
            nodeid = f"test_suites/test_{f.id}.py::{name}"
            if (d.id, f.id) == ("poly-vvx450", "hold_resume"):
                log = "12:00:41 [sip] hold key pressed\n12:00:41 no re-INVITE\n"
                ev = _evidence(run_dir, d.id, f.id, name, log=log)
                t = TestResult(nodeid=nodeid, name=name, outcome="fail", duration_s=5.4, reason=FAIL_REASON,
                               attempts=[Attempt(outcome="fail", duration_s=5.4, error=FAIL_REASON)], evidence=ev)
                cells.append(Cell(device_id=d.id, feature=f.id, outcome="fail", reason=FAIL_REASON, tests=[t]))
            elif (d.id, f.id) == ("cisco-8865", "voicemail"):
                t = TestResult(nodeid=nodeid, name=name, outcome="error", duration_s=2.0, reason=ERROR_REASON,
                               attempts=[Attempt(outcome="error", duration_s=2.0, error=ERROR_REASON)])
                cells.append(Cell(device_id=d.id, feature=f.id, outcome="error", reason=ERROR_REASON, tests=[t]))
            elif (d.id, f.id) == ("yealink-t46s", "dtmf"):
                ev = _evidence(run_dir, d.id, f.id, name)
                t = TestResult(nodeid=nodeid, name=name, outcome="flaky", duration_s=7.9,
                               reason="passed on attempt 2 of 2; attempt 1: lab error (RTP port in use)",
                               attempts=[Attempt(outcome="error", duration_s=0.4, error="OSError: [Errno 98] RTP port "
                                                 "in use"), Attempt(outcome="pass", duration_s=7.5)], evidence=ev)
                cells.append(Cell(device_id=d.id, feature=f.id, outcome="flaky",
                                  reason="passed on retry after a lab error", tests=[t]))
            else:
                ev = _evidence(run_dir, d.id, f.id, name) if (d.id, f.id) == ("yealink-t46s", "make_calls") else None
                t = TestResult(nodeid=nodeid, name=name, outcome="pass", duration_s=3.2,
                               attempts=[Attempt(outcome="pass", duration_s=3.2)], **({"evidence": ev} if ev else {}))
                cells.append(Cell(device_id=d.id, feature=f.id, outcome="pass", tests=[t]))
    matrix = Matrix.build(manifest, features, cells)
    save_matrix(matrix, run_dir / "matrix.json")
    return matrix
