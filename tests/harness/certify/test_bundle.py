"""Evidence bundles: the lab key, signing, and `sipgw-lab verify` naming what was altered."""

from __future__ import annotations

import json
import stat
import zipfile

import pytest

from harness.certify.bundle import KEY_FILE, PUB_FILE, lab_key, verify_bundle, write_bundle
from harness.cli import main


@pytest.fixture
def lab_data(tmp_path, monkeypatch):
    d = tmp_path / "labdata"
    monkeypatch.setenv("SIPGW_LAB_DATA", str(d))
    return d


@pytest.fixture
def bundle(tmp_path, lab_data):
    src = tmp_path / "run"
    (src / "evidence" / "t1").mkdir(parents=True)
    (src / "matrix.json").write_text('{"schema": 1}')
    (src / "evidence" / "t1" / "ladder.txt").write_text("INVITE ->\n<- 200 OK\n")
    (src / "evidence" / "t1" / "calls.pcap").write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(40))
    files = [(str(p.relative_to(src)), p) for p in sorted(src.rglob("*")) if p.is_file()]
    return write_bundle(tmp_path / "b.zip", files, run_manifest={"run_id": "r1", "git_commit": "abc"},
                        certification={"overall": "certified"})


def rewrite(path, *, change=None, drop=None, add=None, manifest=None):
    """A copy of the bundle with one member changed, dropped or added (what someone editing it would do)."""
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    if change:
        members[change] = members[change] + b"tampered"
    if drop:
        del members[drop]
    if add:
        members[add] = b"extra"
    if manifest:
        members["manifest.json"] = manifest(members["manifest.json"])
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


def test_key_created_once_private_and_exported(lab_data):
    k1 = lab_key()
    assert stat.S_IMODE((lab_data / KEY_FILE).stat().st_mode) == 0o600
    assert (lab_data / PUB_FILE).read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert lab_key().public_key().public_bytes_raw() == k1.public_key().public_bytes_raw()


def test_intact_bundle_verifies(bundle, capsys):
    with zipfile.ZipFile(bundle) as z:
        manifest = json.loads(z.read("manifest.json"))
    assert [f["path"] for f in manifest["files"]] == ["evidence/t1/calls.pcap", "evidence/t1/ladder.txt",
                                                      "matrix.json"]
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    assert manifest["run_manifest"]["run_id"] == "r1"
    assert main(["verify", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert "signature: valid" in out and "signer: the trusted lab key" in out
    assert "3 file(s) checked: bundle intact" in out


@pytest.mark.parametrize(("edit", "expect"), [
    ({"change": "files/evidence/t1/ladder.txt"}, "changed: evidence/t1/ladder.txt"),
    ({"drop": "files/evidence/t1/calls.pcap"}, "missing: evidence/t1/calls.pcap"),
    ({"add": "files/evidence/t1/extra.wav"}, "added: evidence/t1/extra.wav"),
    ({"manifest": lambda b: b.replace(b'"r1"', b'"r2"')}, "manifest.json: does not match its signature"),
])
def test_altered_bundle_names_what_changed(bundle, capsys, edit, expect):
    rewrite(bundle, **edit)
    assert main(["verify", str(bundle)]) == 1
    out = capsys.readouterr().out
    assert expect in out and "bundle ALTERED" in out
    assert out.count("changed:") + out.count("missing:") + out.count("added:") <= 1  # only what was altered


def test_resigned_by_another_key_is_not_the_lab_key(bundle, tmp_path, lab_data, capsys):
    other = lab_key(tmp_path / "other-lab")
    with zipfile.ZipFile(bundle) as z:
        manifest = json.loads(z.read("manifest.json"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "matrix.json").write_text('{"schema": 1, "forged": true}')
    forged = write_bundle(tmp_path / "forged.zip", [("matrix.json", src / "matrix.json")],
                          run_manifest=manifest["run_manifest"], key=other)
    assert main(["verify", str(forged)]) == 1
    assert "signer: NOT the trusted lab key" in capsys.readouterr().out
    assert main(["verify", str(forged), "--key", str(tmp_path / "other-lab" / PUB_FILE)]) == 0
    assert verify_bundle(forged).ok  # without a trusted key: only self-consistent


def test_bad_input_exits_2(tmp_path, lab_data, capsys):
    assert main(["verify", str(tmp_path / "nope.zip")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "x.zip").write_text("not a zip")
    assert main(["verify", str(tmp_path / "x.zip")]) == 2
    assert "not a zip archive" in capsys.readouterr().err
    with zipfile.ZipFile(tmp_path / "y.zip", "w") as z:
        z.writestr("hello.txt", "hi")
    assert main(["verify", str(tmp_path / "y.zip")]) == 2
    assert "no manifest.json" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--device", "no-such-device"], "--device no-such-device: not in"),
    (["--device", "poly-vvx450", "--repeat", "0"], "--repeat 0: expected 1 to 1000"),
])
def test_certify_bad_input_exits_2_and_writes_nothing(tmp_path, lab_data, capsys, args, message):
    from pathlib import Path

    inventory = Path(__file__).resolve().parents[3] / "lab_inventory.yaml"
    assert main(["certify", "--inventory", str(inventory), "--out", str(tmp_path / "out"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not lab_data.exists()
