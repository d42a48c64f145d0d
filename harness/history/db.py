"""Results database schema, migrations, recording and queries (SQLAlchemy 2 Core).

Migrations are a small versioned table (``sipgw_schema``) rather than alembic: the schema is three tables that
only ever grow, every migration is one function applied in one transaction, and a run must be able to create
the database on first use without an alembic script directory shipped next to it. Each migration records its
version; a database newer than this sipgw-lab is refused with both versions named.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    select,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from harness.reporting.diff import BAD, GOOD

DEFAULT_DB_NAME = "results.db"

metadata = MetaData()

schema_table = Table(
    "sipgw_schema", metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", String(40), nullable=False),
)
runs = Table(
    "runs", metadata,
    Column("run_id", String(80), primary_key=True),
    Column("kind", String(20), nullable=False),  # run | certify
    Column("started_at", String(40), nullable=False),  # ISO 8601, UTC: sorts as text
    Column("ended_at", String(40)),
    Column("command_line", Text, nullable=False),
    Column("sipgw_lab_version", String(40), nullable=False),
    Column("git_commit", String(64)),
    Column("catalogue_digest", String(80), nullable=False),
    Column("inventory_digest", String(80), nullable=False),
    Column("inventory_path", Text, nullable=False),
    Column("run_dir", Text),
    Column("host", String(200)),
)
run_devices = Table(
    "run_devices", metadata,
    Column("run_id", String(80), primary_key=True),
    Column("device_id", String(200), primary_key=True),
    Column("vendor", String(100), nullable=False),
    Column("model", String(100), nullable=False),
    Column("firmware", String(100)),
    Column("firmware_declared", String(100)),
    Column("firmware_read_back", String(100)),
    Column("firmware_verdict", String(40), nullable=False),
    Column("catalogue_entry_digest", String(80)),
)
cells = Table(
    "cells", metadata,
    Column("run_id", String(80), primary_key=True),
    Column("device_id", String(200), primary_key=True),
    Column("feature", String(80), primary_key=True),
    Column("outcome", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("tests", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("passes", Integer, nullable=False),
    Column("flaky_tests", Integer, nullable=False),
    Column("duration_s", Float, nullable=False),
)


def _migration_1(conn: Connection) -> None:
    for t in (runs, run_devices, cells):
        t.create(conn, checkfirst=True)


def _migration_2(conn: Connection) -> None:
    """Indexes for the lookups a run makes at its end (regressions by model, a device's runs, runs by time)."""
    # plain DDL (SQLite and PostgreSQL both know IF NOT EXISTS); Index objects would attach to the shared
    # Table objects and be created again by migration 1 on the next new database
    for name, table, cols in (("ix_run_devices_model", "run_devices", "vendor, model, firmware"),
                              ("ix_run_devices_device", "run_devices", "device_id"),
                              ("ix_runs_started", "runs", "started_at")):
        conn.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({cols})"))


#: version → migration; append, never edit an applied one.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _migration_1, 2: _migration_2}
SCHEMA_VERSION = max(MIGRATIONS)


class ResultsDBError(Exception):
    """The results database cannot be used: the message names the database (password hidden) and the cause."""


def default_url(reports_dir: str | Path = "reports") -> str:
    return f"sqlite:///{Path(reports_dir).resolve() / DEFAULT_DB_NAME}"


def catalogue_entry_digest(vendor: str, model: str) -> str | None:
    """SHA-256 of the catalogue entry of a model (its table row, firmware bounds, notes): changes when it does."""
    from device_profiles.catalogue import default_catalogue

    profile = default_catalogue().find(model, vendor=vendor)
    if profile is None:
        return None
    text = json.dumps(profile.as_dict(), sort_keys=True, default=str, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Point:
    run_id: str
    started_at: str
    firmware: str | None
    outcome: str
    attempts: int
    passes: int
    flaky_tests: int
    duration_s: float
    tests: int


@dataclass
class CellHistory:
    """One device × feature over time, oldest first."""

    device_id: str
    vendor: str
    model: str
    feature: str
    points: list[Point] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return sum(p.attempts for p in self.points)

    @property
    def passes(self) -> int:
        return sum(p.passes for p in self.points)

    @property
    def stability(self) -> float | None:
        """Passes per attempt over every recorded run (None when nothing was attempted)."""
        return self.passes / self.attempts if self.attempts else None

    @property
    def flaky(self) -> int:
        """Runs in which the cell was flaky, or passed only on a retry of one of its tests."""
        return sum(1 for p in self.points if p.outcome == "flaky" or p.flaky_tests)

    @property
    def firmware_changes(self) -> list[tuple[str | None, str | None, str]]:
        out, prev = [], None
        for i, p in enumerate(self.points):
            if i and p.firmware != prev:
                out.append((prev, p.firmware, p.run_id))
            prev = p.firmware
        return out


@dataclass(frozen=True)
class FirmwareDrift:
    device_id: str
    before: str | None
    after: str | None
    source: str  # "previous run <id>" or "inventory"

    def describe(self) -> str:
        against = "its previous run" if self.source.startswith("previous") else "the inventory"
        return (f"firmware drift: {self.device_id} reports {self.after or '-'}, {against} "
                f"({self.source}) had {self.before or '-'}")


@dataclass(frozen=True)
class Regression:
    device_id: str
    feature: str
    firmware_before: str | None
    firmware_after: str | None
    outcome_before: str
    outcome_after: str
    run_id_before: str

    def describe(self) -> str:
        return (f"REGRESSION {self.device_id} × {self.feature}: {self.outcome_before} on firmware "
                f"{self.firmware_before} (run {self.run_id_before}), {self.outcome_after} on {self.firmware_after}")


@dataclass(frozen=True)
class RecordResult:
    ok: bool
    where: str
    message: str


class ResultsDB:
    """A results database at ``url``; the schema is created or migrated on first use."""

    def __init__(self, url: str, *, connect_timeout_s: float = 3.0) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ResultsDBError(f"--results-db {url!r}: not a database URL ({exc}); expected e.g. "
                                 "sqlite:///reports/results.db or postgresql+psycopg://user@host:5432/db") from None
        self.where = parsed.render_as_string(hide_password=True)
        args: dict[str, Any] = {}
        if parsed.get_backend_name() == "postgresql":
            args["connect_args"] = {"connect_timeout": max(1, int(connect_timeout_s))}
        elif parsed.get_backend_name() == "sqlite":
            args["connect_args"] = {"timeout": connect_timeout_s}
        try:
            if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(parsed, **args)
            self.migrate()
        except (SQLAlchemyError, OSError, ImportError) as exc:
            raise ResultsDBError(f"results database {self.where}: {_cause(exc)}") from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ResultsDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- schema ---------------------------------------------------------------------------------------

    def migrate(self) -> int:
        with self.engine.begin() as conn:
            schema_table.create(conn, checkfirst=True)
            have = conn.execute(select(schema_table.c.version)).scalars().all()
            current = max(have, default=0)
            if current > SCHEMA_VERSION:
                raise ResultsDBError(f"results database {self.where} has schema version {current}; this "
                                     f"sipgw-lab knows up to {SCHEMA_VERSION}: upgrade sipgw-lab")
            for version in sorted(v for v in MIGRATIONS if v > current):
                MIGRATIONS[version](conn)
                conn.execute(schema_table.insert().values(version=version, applied_at=_iso(datetime.now(UTC))))
        return SCHEMA_VERSION

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return max(conn.execute(select(schema_table.c.version)).scalars().all(), default=0)

    # --- recording ------------------------------------------------------------------------------------

    def record(self, matrix: Any, *, kind: str = "run", run_dir: str | Path | None = None) -> None:
        """Store one run's matrix (a ``harness.reporting.model.Matrix``); recording it again replaces it."""
        m = matrix.manifest
        rid = m.run_id
        with self.engine.begin() as conn:
            for t in (cells, run_devices, runs):
                conn.execute(t.delete().where(t.c.run_id == rid))
            conn.execute(runs.insert().values(
                run_id=rid, kind=kind, started_at=_iso(m.started_at), ended_at=_iso(m.ended_at),
                command_line=m.command_line, sipgw_lab_version=m.sipgw_lab_version, git_commit=m.git_commit,
                catalogue_digest=m.catalogue_digest, inventory_digest=m.inventory_digest,
                inventory_path=m.inventory_path, run_dir=str(run_dir) if run_dir else None, host=m.host))
            if m.devices:
                conn.execute(run_devices.insert(), [dict(
                    run_id=rid, device_id=d.id, vendor=d.vendor, model=d.model, firmware=d.firmware,
                    firmware_declared=d.firmware_declared, firmware_read_back=d.firmware_read_back,
                    firmware_verdict=d.firmware_verdict,
                    catalogue_entry_digest=catalogue_entry_digest(d.vendor, d.model)) for d in m.devices])
            rows = []
            for c in matrix.cells:
                attempts = [a for t in c.tests for a in (t.attempts or [])]
                rows.append(dict(
                    run_id=rid, device_id=c.device_id, feature=c.feature, outcome=c.outcome, reason=c.reason,
                    tests=len(c.tests), attempts=len(attempts) or len(c.tests),
                    passes=sum(1 for a in attempts if a.outcome == "pass") if attempts
                    else sum(1 for t in c.tests if t.outcome == "pass"),
                    flaky_tests=sum(1 for t in c.tests if t.outcome == "flaky"),
                    duration_s=sum(t.duration_s for t in c.tests)))
            if rows:
                conn.execute(cells.insert(), rows)

    # --- queries --------------------------------------------------------------------------------------

    def run_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(runs.c.run_id).order_by(runs.c.started_at, runs.c.run_id)).scalars())

    def history(self, *, device: str | None = None, model: str | None = None, feature: str | None = None,
                devices: list[str] | None = None, last_runs: int | None = None) -> list[CellHistory]:
        """Per device × feature, oldest run first; ``last_runs`` keeps only the most recent runs."""
        q = (select(cells, run_devices.c.vendor, run_devices.c.model, run_devices.c.firmware, runs.c.started_at)
             .join(run_devices, (run_devices.c.run_id == cells.c.run_id)
                   & (run_devices.c.device_id == cells.c.device_id))
             .join(runs, runs.c.run_id == cells.c.run_id)
             .order_by(runs.c.started_at, runs.c.run_id))
        if device:
            q = q.where(cells.c.device_id == device)
        if model:
            q = q.where(_norm(run_devices.c.model) == _norm_text(model))
        if feature:
            q = q.where(cells.c.feature == feature)
        if devices is not None:
            q = q.where(cells.c.device_id.in_(devices))
        if last_runs:
            recent = select(runs.c.run_id).order_by(runs.c.started_at.desc(), runs.c.run_id.desc()).limit(last_runs)
            q = q.where(cells.c.run_id.in_(recent.scalar_subquery()))
        out: dict[tuple[str, str], CellHistory] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(q).mappings():
                h = out.setdefault((r["device_id"], r["feature"]),
                                   CellHistory(r["device_id"], r["vendor"], r["model"], r["feature"]))
                h.points.append(Point(r["run_id"], r["started_at"], r["firmware"], r["outcome"], r["attempts"],
                                      r["passes"], r["flaky_tests"], r["duration_s"], r["tests"]))
        return sorted(out.values(), key=lambda h: (h.device_id, h.feature))

    def last_device_run(self, device_id: str, *, before_run: str | None = None) -> dict | None:
        """The device's most recent recorded run (its firmware and catalogue entry then)."""
        q = (select(run_devices, runs.c.started_at).join(runs, runs.c.run_id == run_devices.c.run_id)
             .where(run_devices.c.device_id == device_id).order_by(runs.c.started_at.desc(), runs.c.run_id.desc()))
        if before_run:
            q = q.where(run_devices.c.run_id != before_run)
        with self.engine.connect() as conn:
            row = conn.execute(q.limit(1)).mappings().first()
        return dict(row) if row else None

    def last_pass(self, device_id: str) -> dict | None:
        """The device's most recent run in which at least one cell passed, with its firmware then."""
        q = (select(run_devices, runs.c.started_at).join(runs, runs.c.run_id == run_devices.c.run_id)
             .where(run_devices.c.device_id == device_id)
             .where(select(cells.c.run_id).where((cells.c.run_id == run_devices.c.run_id)
                                                 & (cells.c.device_id == device_id)
                                                 & (cells.c.outcome.in_(("pass", "flaky")))).exists())
             .order_by(runs.c.started_at.desc(), runs.c.run_id.desc()))
        with self.engine.connect() as conn:
            row = conn.execute(q.limit(1)).mappings().first()
        return dict(row) if row else None

    def drift(self, devices: Iterable[Any]) -> list[FirmwareDrift]:
        """Inventory devices (``.id``, ``.firmware``) whose declared firmware differs from their previous run's."""
        out = []
        for d in devices:
            last = self.last_device_run(d.id)
            if last and d.firmware and last["firmware"] != d.firmware:
                out.append(FirmwareDrift(d.id, last["firmware"], d.firmware, f"previous run {last['run_id']}"))
        return out

    def changed_since_last_pass(self, devices: Iterable[Any]) -> dict[str, str]:
        """Inventory devices whose firmware or catalogue entry changed since their last pass → why."""
        out = {}
        for d in devices:
            last = self.last_pass(d.id)
            if last is None:
                out[d.id] = "no recorded pass"
            elif d.firmware and last["firmware"] != d.firmware:
                out[d.id] = f"firmware {last['firmware']} → {d.firmware} since run {last['run_id']}"
            elif last["catalogue_entry_digest"] != catalogue_entry_digest(d.vendor, d.model):
                out[d.id] = f"catalogue entry of {d.vendor} {d.model} changed since run {last['run_id']}"
        return out

    def regressions(self, matrix: Any) -> list[Regression]:
        """Cells of ``matrix`` that fail now and passed on the previous firmware of the same model.

        The previous firmware is the one of the model's latest recorded run on another firmware; a cell counts as
        passed there when that device (else any device of the model in that run) passed or was flaky.
        """
        out = []
        before_by_model: dict[tuple[str, str, str | None], tuple[str | None, str, dict[str, dict]]] = {}
        with self.engine.connect() as conn:
            for d in matrix.manifest.devices:
                key = (d.vendor, d.model, d.firmware)
                if key not in before_by_model:
                    last = conn.execute(
                        select(run_devices.c.run_id, run_devices.c.firmware)
                        .join(runs, runs.c.run_id == run_devices.c.run_id)
                        .where(run_devices.c.vendor == d.vendor).where(run_devices.c.model == d.model)
                        .where(run_devices.c.firmware != d.firmware)
                        .where(run_devices.c.run_id != matrix.manifest.run_id)
                        .order_by(runs.c.started_at.desc(), runs.c.run_id.desc()).limit(1)).mappings().first()
                    per_device: dict[str, dict] = {}
                    if last is not None:
                        rows = conn.execute(
                            select(cells.c.device_id, cells.c.feature, cells.c.outcome)
                            .join(run_devices, (run_devices.c.run_id == cells.c.run_id)
                                  & (run_devices.c.device_id == cells.c.device_id))
                            .where(cells.c.run_id == last["run_id"]).where(run_devices.c.vendor == d.vendor)
                            .where(run_devices.c.model == d.model)
                            .where(run_devices.c.firmware == last["firmware"])).mappings()
                        for r in rows:
                            per_device.setdefault(r["device_id"], {})[r["feature"]] = r["outcome"]
                    before_by_model[key] = (last["firmware"] if last else None, last["run_id"] if last else "",
                                            per_device)
                fw_before, run_before, per_device = before_by_model[key]
                for c in matrix.cells:
                    if c.device_id != d.id or c.outcome not in BAD:
                        continue
                    own = per_device.get(d.id, {}).get(c.feature)
                    outcome = own if own is not None else next(
                        (o[c.feature] for o in per_device.values() if o.get(c.feature) in GOOD), None)
                    if outcome in GOOD:
                        out.append(Regression(d.id, c.feature, fw_before, d.firmware, outcome, c.outcome,
                                              run_before))
        return out


def _norm(col: Any) -> Any:
    from sqlalchemy import func

    return func.replace(func.replace(func.lower(col), " ", ""), "-", "")


def _norm_text(text: str) -> str:
    return text.lower().replace(" ", "").replace("-", "")


def _cause(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def display_url(url: str) -> str:
    """``url`` with its password hidden (for messages)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def record_run(matrix: Any, url: str, *, kind: str = "run", run_dir: str | Path | None = None) -> RecordResult:
    """Record a run; never raises. The result says where it went or why it did not."""
    try:
        with ResultsDB(url) as db:
            db.record(matrix, kind=kind, run_dir=run_dir)
            return RecordResult(True, db.where, f"recorded run {matrix.manifest.run_id} in {db.where}")
    except ResultsDBError as exc:
        return RecordResult(False, url, f"results not recorded: {exc}; the run's files are written")
    except (SQLAlchemyError, OSError) as exc:
        where = display_url(url)
        return RecordResult(False, where, f"results not recorded in {where}: {_cause(exc)}; the run's files "
                                          "are written")
