"""`sipgw-lab certify` on an emulated device of the default lab (the basic call suite, to stay fast): the HTML,
the PDF (its pages turned into images), the signed bundle that `verify` passes and then fails naming the changed
file; then the device's firmware is changed and a second run says so at its start, and `history` shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from device_profiles.capabilities import applicability
from device_profiles.catalogue import default_catalogue

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow
DEVICE = "poly-vvx450"
NEW_FIRMWARE = "6.4.3.5018"


def cli(*args: str, env: dict, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def pages_as_images(pdf: Path, tmp: Path) -> list[np.ndarray]:
    subprocess.run(["pdftoppm", "-r", "30", "-gray", str(pdf), str(tmp / "page")], check=True, timeout=60)
    out = []
    for p in sorted(tmp.glob("page*.pgm")):
        data = p.read_bytes()
        magic, w, h, _maxval, pixels = data.split(maxsplit=4)
        assert magic == b"P5"
        out.append(np.frombuffer(pixels[: int(w) * int(h)], dtype=np.uint8).reshape(int(h), int(w)))
    return out


def test_certify_verify_then_firmware_drift(tmp_path):
    suites = tmp_path / "suites"
    suites.mkdir()
    for name in ("conftest.py", "test_basic_call.py"):
        (suites / name).symlink_to(ROOT / "test_suites" / name)
    out = tmp_path / "reports"
    env = {**os.environ, "SIPGW_MANUAL": "none", "SIPGW_LAB_DATA": str(tmp_path / "labdata")}

    proc = cli("certify", "--inventory", "lab_inventory.yaml", "--device", DEVICE, "--repeat", "2",
               "--suites", str(suites), "--out", str(out), env=env)
    logs = proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dirs = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(run_dirs) == 1, logs
    run = run_dirs[0]
    data = json.loads((run / "certification.json").read_text())
    matrix = json.loads((run / "matrix.json").read_text())

    # a verdict per seed feature, from the observed cells; n/a only with the catalogue's reason
    cat = default_catalogue()
    profile = cat.find("VVX 450", vendor="Poly")
    assert [f["id"] for f in data["features"]] == list(cat.feature_ids())
    cells = {c["feature"]: c for c in matrix["cells"] if c["device_id"] == DEVICE}
    assert set(cells) == {"make_calls", "receive_calls"}, logs
    for f in data["features"]:
        app = applicability(profile, f["id"], cat)
        if not app.applicable:
            assert f["verdict"] == "not applicable" and f["reason"] == app.reason
        elif f["id"] in cells:
            assert (f["verdict"] == "certified") == (cells[f["id"]]["outcome"] == "pass"), f
            names = [e["test"] for e in f["evidence"]]  # every test ran twice: repetitions r1 and r2
            assert f["tests"] % 2 == 0 and sum("r1" in n for n in names) == sum("r2" in n for n in names) > 0
        else:
            assert f["verdict"] == "not certified" and "no test" in f["reason"]
    assert data["overall"] == "not certified"  # most features' suites were not in this run
    assert proc.returncode == 1, logs
    assert data["device"]["firmware_read_back"] == "5.9.5.0614" and data["device"]["mac"]
    assert data["firmware"]["verdict"] == "supported" and data["firmware"]["source"] == "read back from the device"
    rerun = f"sipgw-lab certify --inventory {ROOT / 'lab_inventory.yaml'} --device {DEVICE} --repeat 2"
    assert data["rerun_command"].startswith(rerun)
    html = (run / "certification.html").read_text()
    assert rerun in html and 'id="verdict-receive_calls"' in html
    receive = next(f for f in data["features"] if f["id"] == "receive_calls")
    ladder = next(e["ladder_txt"] for e in receive["evidence"] if e["ladder_txt"])
    assert (run / ladder).is_file() and "INVITE" in (run / ladder).read_text()

    pages = pages_as_images(run / "certification.pdf", tmp_path)
    assert len(pages) >= 2
    assert all((p < 128).mean() > 0.005 for p in pages[:1])  # the first page carries text, not a blank sheet

    bundle = next(run.glob(f"certification-{DEVICE}-*.zip"))
    with zipfile.ZipFile(bundle) as z:
        manifest = json.loads(z.read("manifest.json"))
        names = z.namelist()
    listed = {f["path"] for f in manifest["files"]}
    assert {"certification.pdf", "certification.html", "certification.json", "matrix.json", ladder} <= listed
    assert manifest["run_manifest"]["catalogue_digest"] == matrix["manifest"]["catalogue_digest"]
    assert (tmp_path / "labdata" / "lab-signing-key.pub.pem").is_file()
    ok = cli("verify", str(bundle), env=env, timeout=60)
    assert ok.returncode == 0 and "bundle intact" in ok.stdout, ok.stdout + ok.stderr
    members = {n: zipfile.ZipFile(bundle).read(n) for n in names}
    members["files/" + ladder] = members["files/" + ladder].replace(b"INVITE", b"INVITX", 1)
    with zipfile.ZipFile(bundle, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    bad = cli("verify", str(bundle), env=env, timeout=60)
    assert bad.returncode == 1 and f"changed: {ladder}" in bad.stdout and "bundle ALTERED" in bad.stdout

    # the device now runs another firmware: the next run says so before testing, and the history shows it
    inventory = tmp_path / "lab.yaml"
    inventory.write_text(
        "gateway: {mode: embedded}\ndefaults: {transport: udp}\ndevices:\n"
        f"  - {{id: {DEVICE}, vendor: Poly, model: VVX 450, firmware: {NEW_FIRMWARE}, driver: emulated,\n"
        "     lines: [{number: '+14255550111', name: Blake Rivera}]}\n")
    second = cli("run", "--inventory", str(inventory), "--feature", "receive_calls", "--suites", str(suites),
                 "--out", str(out), "--no-live", env=env)
    text = second.stdout
    drift = f"firmware drift: {DEVICE} reports {NEW_FIRMWARE}, its previous run (previous run {run.name}) had " \
            "5.9.5.0614"
    assert drift in text, text[-3000:] + second.stderr[-2000:]
    assert text.index(drift) < text.index("sipgw-lab matrix")  # said at the start, before the results
    assert "recorded run" in text
    second_run = (out / "latest").resolve()
    assert second_run != run and 'id="sipgw-trends"' in (second_run / "matrix.html").read_text()
    hist = cli("history", "--reports", str(out), "--device", DEVICE, env=env, timeout=60)
    assert hist.returncode == 0, hist.stderr
    assert f"firmware change: {DEVICE} 5.9.5.0614 → {NEW_FIRMWARE}" in hist.stdout
