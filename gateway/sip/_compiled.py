"""Whether the gateway's SIP modules run as compiled extension modules or as their Python source.

``tools/compile_sip_core.py`` compiles the SIP core (``gateway/sip``) and the modules that handle every
message above it (``gateway/sipcore.py`` and the services and hooks every REGISTER or call passes through,
``ABOVE_THE_CORE`` in the tool) with mypyc into ``build/sipcore/<interpreter tag>/``, with a manifest of
the SHA-256 of every source it compiled. ``gateway.sip``'s ``__init__`` calls :func:`activate` before
importing any of its modules (and ``gateway``'s ``__init__`` imports ``gateway.sip`` first, so this happens
before any gateway module is imported): when the manifest matches the sources byte for byte, a finder on
``sys.meta_path`` imports each compiled module from the build; otherwise nothing changes and the source is
used. All or nothing: the compiled modules call each other directly, so a build is never mixed with newer
source.

Module names here are dotted and relative to the ``gateway`` package (``sip.parser``, ``sipcore``,
``services.registrar``). The manifest also holds the SHA-256 of the modules the compiled ones import but that
stay Python (``types``: the service model, the firmware catalogue...): compiled code checks the types it
was built against when it reads their objects, so a change there also sets the build aside.

The compiled modules are the same source, with the same behaviour; they depend on nothing but the
interpreter (mypyc's small runtime is compiled into the build). Set ``SIPGW_LAB_PURE_PYTHON=1`` to use
the source even when a matching build exists.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import json
import os
import sys
import sysconfig
from importlib.machinery import ModuleSpec
from pathlib import Path

__all__ = [
    "DISABLE_ENV", "EXT_SUFFIX", "GATEWAY_DIR", "MANIFEST", "BuildState", "activate", "default_build_dir",
    "library_file", "module_file", "source_digests",
]

#: Set (to anything but empty or 0) to run the source even when a matching build exists.
DISABLE_ENV = "SIPGW_LAB_PURE_PYTHON"
#: The manifest's file name inside a build folder.
MANIFEST = "manifest.json"
#: Manifest format; a build with another is ignored (and rebuilt by the compile tool).
FORMAT = 3

PACKAGE_DIR = Path(__file__).resolve().parent
#: The ``gateway`` package's folder: module names in a manifest are relative to it.
GATEWAY_DIR = PACKAGE_DIR.parent
#: The file name ending of this interpreter's extension modules (``.cpython-311-x86_64-linux-gnu.so``).
EXT_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"


def interpreter_tag() -> str:
    """``cpython-311-x86_64-linux-gnu``: the extension suffix without dots, one build folder per interpreter."""
    return EXT_SUFFIX.strip(".").removesuffix(".so").removesuffix(".pyd").replace(".", "-") or "unknown"


def _relative(name: str) -> Path:
    """``services.registrar`` -> ``services/registrar``: a module's path inside the ``gateway`` package."""
    return Path(*name.split("."))


def module_file(build_dir: Path, name: str) -> Path:
    """Where a build keeps the compiled module ``gateway.<name>`` (``sip.parser``, ``sipcore``...)."""
    return build_dir / "gateway" / _relative(name).with_suffix(EXT_SUFFIX)


def library_file(build_dir: Path, library: str) -> Path:
    """Where a build keeps its shared library (a top-level module the compiled modules import)."""
    return build_dir / f"{library}{EXT_SUFFIX}"


def default_build_dir(root: Path | None = None) -> Path:
    """``<checkout>/build/sipcore/<interpreter tag>`` (the package lives at ``<checkout>/gateway``)."""
    base = GATEWAY_DIR.parent if root is None else root
    return base / "build" / "sipcore" / interpreter_tag()


def source_file(name: str, package_dir: Path = GATEWAY_DIR) -> Path:
    """The source of module ``gateway.<name>`` under ``package_dir`` (the ``gateway`` folder)."""
    return package_dir / _relative(name).with_suffix(".py")


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_digests(modules: list[str], package_dir: Path = GATEWAY_DIR) -> dict[str, str]:
    """SHA-256 of each module's source file, by module name (``sip.parser``, ``sipcore``...)."""
    return {name: file_digest(source_file(name, package_dir)) for name in modules}


def _listed(names: list[str]) -> str:
    """The first three of ``names`` for a reason line, with ``...`` when there are more."""
    return ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")


def _checkout_file(path: str) -> bool:
    """A manifest's ``types`` entry: a relative POSIX path of a ``.py`` file that stays inside the checkout."""
    parts = path.split("/")
    return path.endswith(".py") and not path.startswith("/") and "" not in parts and ".." not in parts \
        and "\\" not in path


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


def check(build_dir: Path, package_dir: Path = GATEWAY_DIR) -> BuildState:
    """Whether ``build_dir`` holds a build of exactly the sources under ``package_dir`` (the ``gateway`` folder)
    for this interpreter."""
    manifest_path = build_dir / MANIFEST
    if not manifest_path.is_file():
        return BuildState(False, f"pure Python: no compiled build in {build_dir}", build_dir)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        modules = tuple(manifest["sources"])
        digests = dict(manifest["sources"])
        types = dict(manifest["types"])
        tag = manifest["interpreter"]
        shared = manifest["shared_library"]
        fmt = manifest["format"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return BuildState(False, f"pure Python: unreadable {manifest_path} ({exc})", build_dir)
    if fmt != FORMAT:
        return BuildState(False, f"pure Python: {manifest_path} has format {fmt}, expected {FORMAT}", build_dir)
    odd = [name for name in modules if not all(part.isidentifier() for part in name.split("."))]
    if odd:
        return BuildState(False, f"pure Python: {manifest_path} names a module {odd[0]!r}, not a dotted name",
                          build_dir)
    odd = [path for path in types if not _checkout_file(path)]
    if odd:
        return BuildState(False, f"pure Python: {manifest_path} names a file {odd[0]!r} outside the checkout",
                          build_dir)
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
        names = _listed([_relative(name).with_suffix(".py").as_posix() for name in changed])
        return BuildState(False, f"pure Python: the compiled build is older than {names}; "
                                 "run `make sipcore` (or python tools/compile_sip_core.py)", build_dir)
    root = package_dir.parent
    try:
        changed = [path for path, digest in types.items() if file_digest(root / path) != digest]
    except OSError as exc:
        return BuildState(False, f"pure Python: cannot read a module the build was compiled against ({exc})",
                          build_dir)
    if changed:
        return BuildState(False, f"pure Python: the compiled build was made against an older {_listed(changed)} "
                                 "(the compiled modules rely on its types); run `make sipcore` (or python "
                                 "tools/compile_sip_core.py)", build_dir)
    return BuildState(True, f"compiled with mypyc {manifest.get('mypy', '?')} ({len(modules)} modules, {build_dir})",
                      build_dir, modules)


class _BuildFinder(importlib.abc.MetaPathFinder):
    """Finds the compiled modules of one build, by full name, before the normal finders find their source."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return ModuleSpec(fullname, loader, origin=str(file))

    def __repr__(self) -> str:
        return f"<sipgw-lab compiled build: {len(self.files)} modules>"


_ACTIVE: BuildState | None = None


def activate(build_dir: Path | None = None, *, meta_path: list | None = None) -> BuildState:
    """Import every module of a matching build from the build from now on; say what was done.

    Called again, returns what the first call found (the choice is made once per interpreter). ``meta_path``
    (default ``sys.meta_path``) and ``build_dir`` are for tests, which make a fresh choice each time."""
    global _ACTIVE
    fresh = build_dir is not None or meta_path is not None
    if _ACTIVE is not None and not fresh:
        return _ACTIVE
    where = default_build_dir() if build_dir is None else build_dir
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        state = BuildState(False, f"pure Python: {DISABLE_ENV} is set", where)
    else:
        state = check(where)
    if state.compiled:
        files = {f"gateway.{name}": module_file(where, name) for name in state.modules}
        (sys.meta_path if meta_path is None else meta_path).insert(0, _BuildFinder(files))
        if str(where) not in sys.path:
            # The compiled modules import their shared library (mypyc's runtime and code) by a top-level name.
            sys.path.append(str(where))
    if not fresh:
        _ACTIVE = state
    return state
