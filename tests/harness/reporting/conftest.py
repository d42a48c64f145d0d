from __future__ import annotations

import pytest

from tests.harness.reporting.fixture_run import build_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(run_dir, matrix) of the realistic fixture run, written once per test module."""
    run_dir = tmp_path_factory.mktemp("run")
    return run_dir, build_run(run_dir)
