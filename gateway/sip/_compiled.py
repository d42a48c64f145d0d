"""Whether ``gateway.sip`` runs as compiled extension modules or as the Python source beside this file.

``tools/compile_sip_core.py`` compiles the SIP core's modules with mypyc into
``build/sipcore/<interpreter tag>/``, with a manifest of the SHA-256 of every source it compiled.
The package's ``__init__`` calls :func:`activate` before importing any of its modules: when the
manifest matches the sources here byte for byte, the build's folder goes first on the package's
``__path__`` and every compiled module is imported from there; otherwise nothing changes and the
source is used. All or nothing: the compiled modules call each other directly, so a build is never
mixed with newer source.

The compiled modules are the same source, with the same behaviour; they depend on nothing but the
interpreter (mypyc's small runtime is compiled into the build). Set ``SIPGW_LAB_PURE_PYTHON=1`` to
use the source even when a matching build exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import sysconfig
from pathlib import Path

__all__ = [
    "DISABLE_ENV", "EXT_SUFFIX", "MANIFEST", "BuildState", "activate", "default_build_dir", "library_file",
    "module_file", "source_digests",
]

#: Set (to anything but empty or 0) to run the source even when a matching build exists.
DISABLE_ENV = "SIPGW_LAB_PURE_PYTHON"
#: The manifest's file name inside a build folder.
MANIFEST = "manifest.json"
#: Manifest format; a build with another is ignored (and rebuilt by the compile tool).
FORMAT = 1

PACKAGE_DIR = Path(__file__).resolve().parent
#: The file name ending of this interpreter's extension modules (``.cpython-311-x86_64-linux-gnu.so``).
EXT_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"


def interpreter_tag() -> str:
    """``cpython-311-x86_64-linux-gnu``: the extension suffix without dots, one build folder per interpreter."""
    return EXT_SUFFIX.strip(".").removesuffix(".so").removesuffix(".pyd").replace(".", "-") or "unknown"


def module_file(build_dir: Path, name: str) -> Path:
    """Where a build keeps the compiled module ``gateway.sip.<name>``."""
    return build_dir / "gateway" / "sip" / f"{name}{EXT_SUFFIX}"


def library_file(build_dir: Path, library: str) -> Path:
    """Where a build keeps its shared library (a top-level module the compiled modules import)."""
    return build_dir / f"{library}{EXT_SUFFIX}"


def default_build_dir(root: Path | None = None) -> Path:
    """``<checkout>/build/sipcore/<interpreter tag>`` (the package lives at ``<checkout>/gateway/sip``)."""
    base = PACKAGE_DIR.parent.parent if root is None else root
    return base / "build" / "sipcore" / interpreter_tag()


def source_digests(modules: list[str], package_dir: Path = PACKAGE_DIR) -> dict[str, str]:
    """SHA-256 of each module's source file, by module name (``parser``, ``uri``...)."""
    out = {}
    for name in modules:
        out[name] = hashlib.sha256((package_dir / f"{name}.py").read_bytes()).hexdigest()
    return out


class BuildState:
    """What :func:`activate` found: ``compiled`` and, either way, a one-line ``reason`` for logs."""

    __slots__ = ("build_dir", "compiled", "modules", "reason")

    def __init__(self, compiled: bool, reason: str, build_dir: Path, modules: tuple[str, ...] = ()) -> None:
        self.compiled = compiled
        self.reason = reason
        self.build_dir = build_dir
        self.modules = modules

    def __repr__(self) -> str:
        return f"BuildState(compiled={self.compiled}, reason={self.reason!r})"


def check(build_dir: Path, package_dir: Path = PACKAGE_DIR) -> BuildState:
    """Whether ``build_dir`` holds a build of exactly the sources in ``package_dir`` for this interpreter."""
    manifest_path = build_dir / MANIFEST
    if not manifest_path.is_file():
        return BuildState(False, f"pure Python: no compiled build in {build_dir}", build_dir)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        modules = tuple(manifest["sources"])
        digests = dict(manifest["sources"])
        tag = manifest["interpreter"]
        shared = manifest["shared_library"]
        fmt = manifest["format"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return BuildState(False, f"pure Python: unreadable {manifest_path} ({exc})", build_dir)
    if fmt != FORMAT:
        return BuildState(False, f"pure Python: {manifest_path} has format {fmt}, expected {FORMAT}", build_dir)
    if tag != interpreter_tag():
        return BuildState(False, f"pure Python: the build is for {tag}, this interpreter is {interpreter_tag()}",
                          build_dir)
    for path in [*(module_file(build_dir, name) for name in modules), library_file(build_dir, shared)]:
        if not path.is_file():
            return BuildState(False, f"pure Python: the build lacks {path.name}", build_dir)
    try:
        current = source_digests(list(modules), package_dir)
    except OSError as exc:
        return BuildState(False, f"pure Python: cannot read a compiled module's source ({exc})", build_dir)
    changed = [name for name in modules if current[name] != digests[name]]
    if changed:
        names = ", ".join(f"{name}.py" for name in changed[:3]) + (" ..." if len(changed) > 3 else "")
        return BuildState(False, f"pure Python: the compiled build is older than {names}; "
                                 "run `make sipcore` (or python tools/compile_sip_core.py)", build_dir)
    return BuildState(True, f"compiled with mypyc {manifest.get('mypy', '?')} ({len(modules)} modules, {build_dir})",
                      build_dir, modules)


def activate(package_path: list[str], build_dir: Path | None = None) -> BuildState:
    """Put a matching build first on ``package_path`` (the package's ``__path__``); say what was done."""
    where = default_build_dir() if build_dir is None else build_dir
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        return BuildState(False, f"pure Python: {DISABLE_ENV} is set", where)
    state = check(where)
    if state.compiled:
        package_path.insert(0, str(where / "gateway" / "sip"))
        if str(where) not in sys.path:
            # The compiled modules import their shared library (mypyc's runtime and code) by a top-level name.
            sys.path.append(str(where))
    return state
