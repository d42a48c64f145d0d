"""Hooks the sipgw-lab plugin offers to conftest files and lab plugins."""

from __future__ import annotations

import pytest


@pytest.hookspec
def sipgw_evidence(item: pytest.Item, evidence: dict) -> None:
    """Called on the process that ran ``item`` with its finalised evidence dict; add files or figures in place."""


@pytest.hookspec
def sipgw_matrix_row(device: dict, cells: list[dict]) -> None:
    """Called on the controller for each device row before the matrix is written; may add figures in place."""


@pytest.hookspec(firstresult=True)
def sipgw_matrix_written(run_dir: str, matrix: object) -> object:
    """Called on the controller after ``matrix.json`` and its renderings were written."""
