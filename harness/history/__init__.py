"""The results database: every run (``sipgw-lab run``, ``sipgw-lab certify``) recorded cell by cell.

SQLite in ``reports/results.db`` by default, or any SQLAlchemy URL (``postgresql+psycopg://…`` for a team that
shares labs, the ``sipgw-lab[postgres]`` extra) through ``--results-db URL``. Recording never breaks a run:
:func:`record_run` returns a :class:`RecordResult` that says what happened instead of raising.
"""

from harness.history.db import (
    DEFAULT_DB_NAME,
    CellHistory,
    FirmwareDrift,
    RecordResult,
    ResultsDB,
    ResultsDBError,
    catalogue_entry_digest,
    default_url,
    record_run,
)

__all__ = ["DEFAULT_DB_NAME", "CellHistory", "FirmwareDrift", "RecordResult", "ResultsDB", "ResultsDBError",
           "catalogue_entry_digest", "default_url", "record_run"]
