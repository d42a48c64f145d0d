"""The choice between the compiled SIP core and its Python source (gateway/sip/_compiled.py), and the
compile tool's command line (tools/compile_sip_core.py). ``make test`` builds the core and runs every test
on it, then the core's tests on the source; these tests check the choice itself."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gateway.sip
import gateway.sipcore
from gateway.sip import _compiled

ROOT = Path(__file__).resolve().parents[3]
TOOL = ROOT / "tools" / "compile_sip_core.py"
SUFFIX = _compiled.EXT_SUFFIX


def _fake_build(tmp_path: Path, package: Path, modules: list[str], **manifest_changes: object) -> Path:
    """A build folder as the tool leaves it, with empty files in place of the extension modules."""
    build = tmp_path / "build"
    for name in modules:
        _compiled.module_file(build, name).parent.mkdir(parents=True, exist_ok=True)
        _compiled.module_file(build, name).write_bytes(b"")
    _compiled.library_file(build, "lib__mypyc").write_bytes(b"")
    manifest = {"format": _compiled.FORMAT, "interpreter": _compiled.interpreter_tag(), "mypy": "9.9",
                "shared_library": "lib__mypyc", "sources": _compiled.source_digests(modules, package), "types": {}}
    manifest.update(manifest_changes)
    (build / _compiled.MANIFEST).write_text(json.dumps(manifest))
    return build


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A ``gateway`` folder with a module of the core, one beside it and one in a subpackage."""
    pkg = tmp_path / "src"
    (pkg / "sip").mkdir(parents=True)
    (pkg / "services").mkdir()
    (pkg / "sip" / "parser.py").write_text("X = 1\n")
    (pkg / "sip" / "uri.py").write_text("Y = 2\n")
    (pkg / "sipcore.py").write_text("Z = 3\n")
    (pkg / "services" / "registrar.py").write_text("W = 4\n")
    return pkg


MODULES = ["services.registrar", "sip.parser", "sip.uri", "sipcore"]


def test_a_build_of_exactly_these_sources_is_used(tmp_path: Path, package: Path) -> None:
    build = _fake_build(tmp_path, package, MODULES)
    state = _compiled.check(build, package)
    assert state.compiled and state.modules == tuple(MODULES)
    assert "mypyc 9.9" in state.reason and "4 modules" in state.reason
    assert _compiled.module_file(build, "services.registrar") == build / "gateway" / "services" / f"registrar{SUFFIX}"
    assert _compiled.module_file(build, "sipcore") == build / "gateway" / f"sipcore{SUFFIX}"


@pytest.mark.parametrize(("changed", "named"), [
    ("sip/uri.py", "sip/uri.py"), ("sipcore.py", "sipcore.py"), ("services/registrar.py", "services/registrar.py"),
])
def test_a_changed_source_disables_the_whole_build_and_names_the_file(tmp_path: Path, package: Path, changed: str,
                                                                      named: str) -> None:
    build = _fake_build(tmp_path, package, MODULES)
    (package / changed).write_text("changed = True\n")
    state = _compiled.check(build, package)
    assert not state.compiled
    assert f"older than {named}" in state.reason and "make sipcore" in state.reason


@pytest.mark.parametrize(("change", "expected"), [
    ({"interpreter": "cpython-39-x86_64-linux-gnu"}, "the build is for cpython-39"),
    ({"format": 99}, "format 99"),
    ({"format": 1}, "format 1, expected 3"),  # a build from before modules outside gateway/sip were compiled
    ({"format": 2}, "format 2, expected 3"),  # ... or before the modules it was compiled against were noted
    ({"types": ["model.py"]}, "unreadable"),
    ({"types": {"../outside.py": "0"}}, "outside the checkout"),
    ({"types": {"/etc/passwd.py": "0"}}, "outside the checkout"),
    ({"types": {"src/notes.txt": "0"}}, "outside the checkout"),
    ({"sources": "not a mapping"}, "unreadable"),
    ({"sources": {"../../etc/x": "0"}}, "not a dotted name"),
    ({"sources": {"sip..uri": "0"}}, "not a dotted name"),
])
def test_a_build_for_another_interpreter_or_format_is_ignored(tmp_path: Path, package: Path, change: dict,
                                                              expected: str) -> None:
    build = _fake_build(tmp_path, package, ["sip.parser"], **change)
    state = _compiled.check(build, package)
    assert not state.compiled and expected in state.reason


def test_a_changed_module_the_build_relies_on_for_types_disables_it(tmp_path: Path, package: Path) -> None:
    (package / "services" / "model.py").write_text("class User:\n    number: str\n")
    build = _fake_build(tmp_path, package, MODULES,
                        types={"src/services/model.py": _compiled.file_digest(package / "services" / "model.py")})
    assert _compiled.check(build, package).compiled
    (package / "services" / "model.py").write_text("class User:\n    number: str | None\n")
    state = _compiled.check(build, package)
    assert not state.compiled and "made against an older src/services/model.py" in state.reason
    (package / "services" / "model.py").unlink()
    assert "cannot read a module the build was compiled against" in _compiled.check(build, package).reason


def test_the_tool_notes_what_the_compiled_modules_import_and_nothing_compiled() -> None:
    spec = importlib.util.spec_from_file_location("compile_sip_core", TOOL)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    modules = tool.compiled_modules()
    types = tool.type_dependencies(modules)
    assert {"gateway/services/model.py", "device_profiles/verdict.py", "gateway/services/signin.py"} <= set(types)
    compiled_files = {f"gateway/{name.replace('.', '/')}.py" for name in modules}
    assert not compiled_files & set(types)
    assert all(path.endswith(".py") and (ROOT / path).is_file() for path in types)


def test_missing_pieces_are_named(tmp_path: Path, package: Path) -> None:
    assert "no compiled build" in _compiled.check(tmp_path / "nothing", package).reason
    build = _fake_build(tmp_path, package, MODULES)
    _compiled.module_file(build, "services.registrar").unlink()
    assert f"lacks registrar{SUFFIX}" in _compiled.check(build, package).reason
    (build / _compiled.MANIFEST).write_text("{not json")
    assert "unreadable" in _compiled.check(build, package).reason


def test_activate_imports_exactly_the_built_modules_from_the_build(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    modules = ["sip.abnf", "services.routing"]
    build = _fake_build(tmp_path, _compiled.GATEWAY_DIR, modules)
    monkeypatch.delenv(_compiled.DISABLE_ENV, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    meta_path: list = []
    state = _compiled.activate(build, meta_path=meta_path)
    assert state.compiled and len(meta_path) == 1
    finder = meta_path[0]
    spec = finder.find_spec("gateway.services.routing")
    assert spec.origin == str(_compiled.module_file(build, "services.routing"))
    assert spec.name == "gateway.services.routing"
    assert finder.find_spec("gateway.sip.abnf").origin.endswith(f"abnf{SUFFIX}")
    for other in ("gateway.sip.parser", "gateway.services", "abnf", "gateway.services.b2bua"):
        assert finder.find_spec(other) is None, other  # found by the normal finders: the source
    assert str(build) in sys.path  # where the modules find their shared library


def test_the_environment_switch_keeps_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = _fake_build(tmp_path, _compiled.GATEWAY_DIR, ["sip.abnf"])
    monkeypatch.setenv(_compiled.DISABLE_ENV, "1")
    meta_path: list = []
    state = _compiled.activate(build, meta_path=meta_path)
    assert not state.compiled and _compiled.DISABLE_ENV in state.reason
    assert meta_path == []


def test_the_choice_is_made_once() -> None:
    assert _compiled.activate() is gateway.sip.BUILD
    assert sum(1 for f in sys.meta_path if type(f).__name__ == "_BuildFinder") == int(gateway.sip.COMPILED)


def test_the_package_says_what_it_runs() -> None:
    build = gateway.sip.BUILD
    if build.compiled:
        assert gateway.sip.COMPILED
        assert {"sipcore", "services.registrar", "services.b2bua", "sip.parser"} <= set(build.modules)
        for name in build.modules:
            module = importlib.import_module(f"gateway.{name}")
            assert module.__file__ is not None and module.__file__.endswith(SUFFIX), name
    else:
        assert not gateway.sip.COMPILED and gateway.sip.parser.__file__.endswith(".py")
        assert gateway.sipcore.__file__.endswith(".py")


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI builds the SIP core first (make sipcore)")
def test_ci_runs_the_compiled_core_unless_told_not_to() -> None:
    if os.environ.get(_compiled.DISABLE_ENV, "") not in ("", "0"):
        assert not gateway.sip.COMPILED
    else:
        assert gateway.sip.COMPILED, gateway.sip.BUILD.reason


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, check=False)


def test_tool_check_agrees_with_the_loader() -> None:
    # The tool judges the default build as the package's loader does (it ignores SIPGW_LAB_PURE_PYTHON, which
    # only keeps the package off a build).
    expected = _compiled.check(_compiled.default_build_dir())
    out = _tool("--check")
    assert out.stdout.strip() == expected.reason
    assert out.returncode == (0 if expected.compiled else 1)
    if gateway.sip.COMPILED:
        assert expected.compiled


def test_tool_check_of_an_empty_folder_says_there_is_no_build(tmp_path: Path) -> None:
    out = _tool("--check", "--out", str(tmp_path / "none"))
    assert out.returncode == 1 and "no compiled build" in out.stdout


def test_tool_refuses_conflicting_actions() -> None:
    out = _tool("--check", "--clean")
    assert out.returncode == 2 and "not allowed with argument" in out.stderr


def test_tool_clean_removes_only_the_given_folder(tmp_path: Path) -> None:
    target = tmp_path / "b"
    (target / "gateway").mkdir(parents=True)
    out = _tool("--clean", "--out", str(target))
    assert out.returncode == 0 and not target.exists() and tmp_path.exists()


def test_tool_clean_leaves_a_folder_that_is_not_a_build(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep")
    out = _tool("--clean", "--out", str(tmp_path))
    assert out.returncode == 2 and "not a SIP core build" in out.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep"
