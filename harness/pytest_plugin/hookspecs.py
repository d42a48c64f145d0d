"""Hooks the sipgw-lab plugin offers to conftest files and lab plugins.

pytest only looks at names that start with ``pytest_``, hence ``pytest_sipgw_*``.
"""

from __future__ import annotations

import pytest


@pytest.hookspec
def pytest_sipgw_evidence(item: pytest.Item, evidence: dict) -> None:
    """Called on the process that ran ``item`` with its finalised evidence dict; add files or figures in place."""


@pytest.hookspec
def pytest_sipgw_matrix_row(device: dict, cells: list[dict]) -> None:
    """Called on the controller for each device row before the matrix is written; may add figures in place."""


@pytest.hookspec(firstresult=True)
def pytest_sipgw_matrix_written(run_dir: str, matrix: object) -> object:
    """Called on the controller after ``matrix.json`` and its renderings were written."""
