"""The choice between the compiled SIP core and its Python source (gateway/sip/_compiled.py), and the
compile tool's command line (tools/compile_sip_core.py). ``make test`` builds the core and runs every test
on it, then the core's tests on the source; these tests check the choice itself."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gateway.sip
from gateway.sip import _compiled

ROOT = Path(__file__).resolve().parents[3]
TOOL = ROOT / "tools" / "compile_sip_core.py"
SUFFIX = _compiled.EXT_SUFFIX


def _fake_build(tmp_path: Path, package: Path, modules: list[str], **manifest_changes: object) -> Path:
    """A build folder as the tool leaves it, with empty files in place of the extension modules."""
    build = tmp_path / "build"
    (build / "gateway" / "sip").mkdir(parents=True)
    for name in modules:
        _compiled.module_file(build, name).write_bytes(b"")
    _compiled.library_file(build, "lib__mypyc").write_bytes(b"")
    manifest = {"format": _compiled.FORMAT, "interpreter": _compiled.interpreter_tag(), "mypy": "9.9",
                "shared_library": "lib__mypyc", "sources": _compiled.source_digests(modules, package)}
    manifest.update(manifest_changes)
    (build / _compiled.MANIFEST).write_text(json.dumps(manifest))
    return build


@pytest.fixture
def package(tmp_path: Path) -> Path:
    pkg = tmp_path / "src"
    pkg.mkdir()
    (pkg / "parser.py").write_text("X = 1\n")
    (pkg / "uri.py").write_text("Y = 2\n")
    return pkg


def test_a_build_of_exactly_these_sources_is_used(tmp_path: Path, package: Path) -> None:
    build = _fake_build(tmp_path, package, ["parser", "uri"])
    state = _compiled.check(build, package)
    assert state.compiled and state.modules == ("parser", "uri")
    assert "mypyc 9.9" in state.reason


def test_a_changed_source_disables_the_whole_build_and_names_the_file(tmp_path: Path, package: Path) -> None:
    build = _fake_build(tmp_path, package, ["parser", "uri"])
    (package / "uri.py").write_text("Y = 3\n")
    state = _compiled.check(build, package)
    assert not state.compiled
    assert "older than uri.py" in state.reason and "make sipcore" in state.reason


@pytest.mark.parametrize(("change", "expected"), [
    ({"interpreter": "cpython-39-x86_64-linux-gnu"}, "the build is for cpython-39"),
    ({"format": 99}, "format 99"),
    ({"sources": "not a mapping"}, "unreadable"),
])
def test_a_build_for_another_interpreter_or_format_is_ignored(tmp_path: Path, package: Path, change: dict,
                                                              expected: str) -> None:
    build = _fake_build(tmp_path, package, ["parser"], **change)
    state = _compiled.check(build, package)
    assert not state.compiled and expected in state.reason


def test_missing_pieces_are_named(tmp_path: Path, package: Path) -> None:
    assert "no compiled build" in _compiled.check(tmp_path / "nothing", package).reason
    build = _fake_build(tmp_path, package, ["parser", "uri"])
    (build / "gateway" / "sip" / f"uri{SUFFIX}").unlink()
    assert f"lacks uri{SUFFIX}" in _compiled.check(build, package).reason
    (build / _compiled.MANIFEST).write_text("{not json")
    assert "unreadable" in _compiled.check(build, package).reason


def test_activate_puts_the_build_first_on_the_package_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    modules = ["abnf"]
    build = _fake_build(tmp_path, _compiled.PACKAGE_DIR, modules)
    monkeypatch.delenv(_compiled.DISABLE_ENV, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    path = ["/the/source"]
    state = _compiled.activate(path, build)
    assert state.compiled
    assert path == [str(build / "gateway" / "sip"), "/the/source"]
    assert str(build) in sys.path  # where the modules find their shared library


def test_the_environment_switch_keeps_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = _fake_build(tmp_path, _compiled.PACKAGE_DIR, ["abnf"])
    monkeypatch.setenv(_compiled.DISABLE_ENV, "1")
    path = ["/the/source"]
    state = _compiled.activate(path, build)
    assert not state.compiled and _compiled.DISABLE_ENV in state.reason
    assert path == ["/the/source"]


def test_the_package_says_what_it_runs() -> None:
    build = gateway.sip.BUILD
    if build.compiled:
        assert gateway.sip.COMPILED
        for name in build.modules:
            module = importlib.import_module(f"gateway.sip.{name}")
            assert module.__file__ is not None and module.__file__.endswith(SUFFIX), name
    else:
        assert not gateway.sip.COMPILED and gateway.sip.parser.__file__.endswith(".py")


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
