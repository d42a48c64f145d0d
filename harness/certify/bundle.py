"""Evidence bundles: one zip archive, a manifest of every file with its SHA-256, signed with the lab's Ed25519 key.

Layout of a bundle::

    manifest.json       {"format": "sipgw-lab-evidence-bundle", "version": 1, "created_at", "run_manifest",
                         "certification": {...summary...}, "signer": {"public_key_pem", "fingerprint"},
                         "files": [{"path", "sha256", "size"}]}
    manifest.sig        the raw Ed25519 signature of manifest.json's bytes (64 bytes)
    files/<path>        every listed file

The lab key is created in the lab's data directory on first use (``$SIPGW_LAB_DATA``, else
``$XDG_DATA_HOME/sipgw-lab``, else ``~/.local/share/sipgw-lab``): ``lab-signing-key.pem`` (private, mode 0600)
and ``lab-signing-key.pub.pem`` (the public key to hand to whoever verifies bundles).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "sipgw-lab-evidence-bundle"
MANIFEST, SIGNATURE, FILES = "manifest.json", "manifest.sig", "files/"
KEY_FILE, PUB_FILE = "lab-signing-key.pem", "lab-signing-key.pub.pem"


def lab_data_dir() -> Path:
    if os.environ.get("SIPGW_LAB_DATA"):
        return Path(os.environ["SIPGW_LAB_DATA"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sipgw-lab"


def fingerprint(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:32]


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def lab_key(data_dir: str | Path | None = None) -> Ed25519PrivateKey:
    """The lab's signing key, created (with its exported public key) on first use."""
    d = Path(data_dir) if data_dir else lab_data_dir()
    key_path = d / KEY_FILE
    if key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{key_path}: not an Ed25519 private key")
        return key
    d.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    (d / PUB_FILE).write_text(public_pem(key.public_key()), encoding="utf-8")
    return key


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def write_bundle(out: str | Path, files: Iterable[tuple[str, Path]], *, run_manifest: dict[str, Any],
                 certification: dict[str, Any] | None = None, key: Ed25519PrivateKey | None = None) -> Path:
    """Write a signed bundle of ``files`` (archive path, file on disk); the archive paths must be unique."""
    key = key or lab_key()
    entries, seen = [], set()
    for arc, src in files:
        arc = str(PurePosixPath(arc))
        if arc in seen or arc.startswith(("/", "..")):
            raise ValueError(f"bundle path {arc!r}: duplicate or outside the bundle")
        seen.add(arc)
        entries.append((arc, Path(src)))
    entries.sort()
    manifest = {
        "format": FORMAT, "version": 1, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_manifest": run_manifest, "certification": certification or {},
        "signer": {"public_key_pem": public_pem(key.public_key()), "fingerprint": fingerprint(key.public_key())},
        "files": [{"path": arc, "sha256": _sha256(src), "size": src.stat().st_size} for arc, src in entries],
    }
    body = (json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(MANIFEST, body)
        z.writestr(SIGNATURE, key.sign(body))
        for arc, src in entries:
            z.write(src, FILES + arc)
    tmp.replace(out)
    return out


class BundleError(Exception):
    """The bundle cannot be read at all (not a zip, no manifest): exit status 2."""


@dataclass
class Verification:
    signature_ok: bool = False
    signer: str = ""
    trusted: bool | None = None  # None: no trusted key to compare with
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.signature_ok and self.trusted is not False and not self.changed and not self.missing
                and not self.added and not self.problems)

    def lines(self) -> list[str]:
        out = [f"signature: {'valid' if self.signature_ok else 'INVALID'} (signer {self.signer or 'unknown'})"]
        if self.trusted is True:
            out.append("signer: the trusted lab key")
        elif self.trusted is False:
            out.append("signer: NOT the trusted lab key")
        out += [f"changed: {p} (its SHA-256 differs from the manifest)" for p in self.changed]
        out += [f"missing: {p} (listed in the manifest, not in the bundle)" for p in self.missing]
        out += [f"added: {p} (in the bundle, not in the manifest)" for p in self.added]
        out += self.problems
        out.append(f"{self.checked} file(s) checked: " + ("bundle intact" if self.ok else "bundle ALTERED"))
        return out


def verify_bundle(path: str | Path, trusted_public_pem: str | None = None) -> Verification:
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path}: no such file")
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"{path}: not a sipgw-lab evidence bundle (not a zip archive: {exc})") from None
    v = Verification()
    with z:
        names = set(z.namelist())
        if MANIFEST not in names:
            raise BundleError(f"{path}: not a sipgw-lab evidence bundle (no {MANIFEST})")
        body = z.read(MANIFEST)
        try:
            manifest = json.loads(body)
            pub = serialization.load_pem_public_key(manifest["signer"]["public_key_pem"].encode())
            listed = {f["path"]: f["sha256"] for f in manifest["files"]}
        except (ValueError, KeyError, TypeError) as exc:
            v.problems.append(f"{MANIFEST}: unreadable ({type(exc).__name__}: {exc})")
            v.checked = 0
            return v
        if manifest.get("format") != FORMAT:
            v.problems.append(f"{MANIFEST}: format {manifest.get('format')!r}, expected {FORMAT!r}")
        if not isinstance(pub, Ed25519PublicKey):
            v.problems.append(f"{MANIFEST}: signer key is not Ed25519")
        else:
            v.signer = fingerprint(pub)
            sig = z.read(SIGNATURE) if SIGNATURE in names else b""
            if not sig:
                v.problems.append(f"{SIGNATURE}: missing")
            try:
                pub.verify(sig, body)
                v.signature_ok = True
            except InvalidSignature:
                v.problems.append(f"{MANIFEST}: does not match its signature (the manifest was edited or re-signed "
                                  "by another key)")
            if trusted_public_pem is not None:
                trusted = serialization.load_pem_public_key(trusted_public_pem.encode())
                v.trusted = isinstance(trusted, Ed25519PublicKey) and fingerprint(trusted) == v.signer
        present = {n[len(FILES):] for n in names if n.startswith(FILES) and not n.endswith("/")}
        extra_top = names - {MANIFEST, SIGNATURE} - {n for n in names if n.startswith(FILES)}
        for arc in sorted(listed):
            if arc not in present:
                v.missing.append(arc)
                continue
            h = hashlib.sha256()
            with z.open(FILES + arc) as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 16), b""):
                    h.update(chunk)
            v.checked += 1
            if h.hexdigest() != listed[arc]:
                v.changed.append(arc)
        v.added = sorted((present - set(listed)) | extra_top)
    return v
