#!/usr/bin/env python3
"""Compile the SIP core (``gateway/sip``) and the gateway modules above it that handle every message to C
extension modules with mypyc.

The gateway's CPU per message is mostly Python function calls and attribute lookups in the parser,
headers, URIs and transaction layer, and in the layer that dispatches each message to the registrar or
the B2BUA; compiled with mypyc the same source runs them as C. The output goes to
``build/sipcore/<interpreter tag>/`` with a manifest of the SHA-256 of every compiled source; ``gateway``
imports it only while the sources still match (``gateway/sip/_compiled.py``).

Usage::

    python tools/compile_sip_core.py            # build when missing or older than the source
    python tools/compile_sip_core.py --force    # build again
    python tools/compile_sip_core.py --check    # exit 0 when the build matches the source, 1 if not
    python tools/compile_sip_core.py --clean    # remove the build (the source is used)

Needs a C compiler and the interpreter's headers (Debian: gcc, python3-dev) and mypy (the ``dev``
extra). Exit status 0 when a matching build is in place, 1 when it is not, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gateway.sip import _compiled  # noqa: E402  (after the checkout is on the path)

GATEWAY = ROOT / "gateway"
PACKAGE = GATEWAY / "sip"
#: The shared library's top-level module name (mypyc's runtime and the code of every compiled module).
GROUP = "sipgw_lab_sipcore"
#: Modules left as Python: the package's __init__ and the build loader (they choose the build),
#: framing (mypyc 2.4 stops with an internal error on its bytearray buffer; TCP framing only), and timers:
#: compiled, TimerConfig's float fields would turn ``True`` into 1.0 before its own check refuses a bool
#: (a configuration error would pass unnoticed); what runs per timer, TimerPolicy, is in timer_policy (compiled).
NOT_COMPILED = frozenset({"__init__", "_compiled", "framing", "timers"})
#: Gateway modules above the core that run for every REGISTER or call: the dispatch, the services that answer
#: and the hooks every request passes through (counted with opcode tracing: about 1 900 interpreted bytecodes
#: per REGISTER and 4 500 per call before they were compiled, 150 and 440 after). Their classes have fixed
#: attributes once compiled. The rest of the gateway (control API, media node, store, transports) stays Python.
ABOVE_THE_CORE = ("sipcore", "services.b2bua", "services.directory", "services.mwi", "services.registrar",
                  "services.routing", "provisioning.sip_hooks", "services.call_queues", "services.e911",
                  "services.feature_codes", "services.forwarding", "services.transfer")


def compiled_modules(package: Path = PACKAGE) -> list[str]:
    """Module names relative to the ``gateway`` package (``sip.parser``, ``sipcore``...), sorted."""
    core = [f"sip.{p.stem}" for p in package.glob("*.py") if p.stem not in NOT_COMPILED]
    return sorted([*core, *ABOVE_THE_CORE])


#: Top-level packages whose modules the compiled ones may import (the rest is the standard library or installed).
PROJECT_PACKAGES = ("gateway", "device_profiles")


def _module_file(root: Path, module: str) -> Path | None:
    """The file of project module ``module`` (dotted, absolute) under ``root``: a module or a package."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(path: Path, module: str) -> set[str]:
    """The project modules (and names in them) that ``module``'s source imports, absolute dotted names."""
    found: set[str] = set()
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[:len(package) - node.level + 1], *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PROJECT_PACKAGES}


def type_dependencies(modules: list[str], root: Path = ROOT) -> list[str]:
    """The project files the compiled modules import, directly or through each other, that are not compiled
    themselves (paths from the checkout's root). Compiled code checks the types of what it reads from their
    objects, so the build is only valid with the versions it was compiled against."""
    compiled = {f"gateway.{name}" for name in modules}
    seen: dict[str, Path] = {}
    todo = sorted(compiled)
    while todo:
        module = todo.pop()
        path = _module_file(root, module)
        if path is None or module in seen:
            continue  # a name imported from a module, not a module
        seen[module] = path
        todo.extend(sorted(_imported(path, module)))
    return sorted(path.relative_to(root).as_posix() for module, path in seen.items() if module not in compiled)


def _check_toolchain() -> str | None:
    include = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not include.is_file():
        return f"no {include}: install the interpreter's headers (Debian: apt-get install python3-dev)"
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return "no C compiler on PATH (Debian: apt-get install gcc)"
    try:
        import mypyc  # noqa: F401
    except ImportError:
        return "mypy is not installed: pip install -e '.[dev]' (or pip install 'mypy>=2.4.1')"
    return None


def build(out: Path, *, quiet: bool = True) -> float:
    """Compile into a fresh folder next to ``out``, then put it in place of ``out``. Returns seconds."""
    from mypy.version import __version__ as mypy_version
    from mypyc.build import mypycify
    from setuptools import setup

    modules = compiled_modules()
    started = time.monotonic()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sipcore-", dir=out.parent) as tmp:
        stage = Path(tmp) / "src"
        # mypy reads what the compiled modules import (types only): the whole package and the catalogue.
        skip = shutil.ignore_patterns("__pycache__", "*.so", "*.pyc")
        for package in PROJECT_PACKAGES:
            shutil.copytree(ROOT / package, stage / package, ignore=skip)
        digests = _compiled.source_digests(modules, stage / "gateway")
        types = {path: _compiled.file_digest(stage / path) for path in type_dependencies(modules, stage)}
        cwd = os.getcwd()
        sink = io.StringIO()
        try:
            os.chdir(stage)  # mypycify names modules by their path from here; no pyproject.toml is read
            with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
                extensions = mypycify(
                    # Modules that are not compiled are read for their types only: their own typing is not
                    # this build's business.
                    ["--follow-imports=silent",
                     *(_compiled.source_file(name, Path("gateway")).as_posix() for name in modules)],
                    opt_level="3", group_name=GROUP,
                )
                setup(name="sipgw-lab-sipcore", ext_modules=extensions,
                      script_args=["build_ext", "--inplace", *(["--quiet"] if quiet else [])])
        except (SystemExit, Exception) as exc:
            tail = "\n".join(sink.getvalue().splitlines()[-20:])
            raise RuntimeError(f"mypyc failed: {exc}\n{tail}") from exc
        finally:
            os.chdir(cwd)
        # build_ext --inplace left the extensions in the stage as the build folder lays them out.
        library = f"{GROUP}__mypyc"
        result = Path(tmp) / "out"
        for name in modules:
            _compiled.module_file(result, name).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(_compiled.module_file(stage, name), _compiled.module_file(result, name))
        shutil.move(_compiled.library_file(stage, library), _compiled.library_file(result, library))
        manifest = {
            "format": _compiled.FORMAT,
            "interpreter": _compiled.interpreter_tag(),
            "mypy": mypy_version,
            "shared_library": library,
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "sources": digests,
            "types": types,
        }
        (result / _compiled.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        old = Path(tmp) / "old"
        if out.exists():
            out.rename(old)
        result.rename(out)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/compile_sip_core.py", description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--force", action="store_true", help="build even when the build matches the source")
    action.add_argument("--check", action="store_true", help="only say whether the build matches the source")
    action.add_argument("--clean", action="store_true", help="remove the build")
    parser.add_argument("--out", type=Path, default=None,
                        help="build folder (default build/sipcore/<interpreter tag> in the checkout)")
    parser.add_argument("--verbose", action="store_true", help="show mypyc's and the compiler's output")
    args = parser.parse_args(argv)
    out = (args.out or _compiled.default_build_dir(ROOT)).resolve()

    if args.clean:
        if out.exists():
            if not ((out / _compiled.MANIFEST).is_file() or (out / "gateway").is_dir()):
                print(f"--out {out}: not a SIP core build (no {_compiled.MANIFEST}, no gateway/); left alone",
                      file=sys.stderr)
                return 2
            shutil.rmtree(out)
            print(f"removed {out}")
        else:
            print(f"no build at {out}")
        return 0
    state = _compiled.check(out, GATEWAY)
    if state.compiled and set(state.modules) != set(compiled_modules()):
        state = _compiled.BuildState(False, "pure Python: the build compiled other modules", out)
    if args.check:
        print(state.reason)
        return 0 if state.compiled else 1
    if state.compiled and not args.force:
        print(f"SIP core up to date: {state.reason}")
        return 0
    problem = _check_toolchain()
    if problem is not None:
        print(f"cannot compile the SIP core: {problem}; the Python source is used", file=sys.stderr)
        return 1
    print(f"compiling the SIP core ({len(compiled_modules())} modules) with mypyc into {out} ...", flush=True)
    try:
        seconds = build(out, quiet=not args.verbose)
    except RuntimeError as exc:
        print(f"cannot compile the SIP core: {exc}", file=sys.stderr)
        return 1
    state = _compiled.check(out, GATEWAY)
    if not state.compiled:
        # The source changed while it compiled: the build is of the copy taken at the start.
        print(f"compiled in {seconds:.0f} s, but {state.reason}", file=sys.stderr)
        return 1
    print(f"compiled in {seconds:.0f} s: {state.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
