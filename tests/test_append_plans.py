"""No cost of an append grows with the log: every statement an append runs is an index
lookup, never a scan.

The demo ledger exercises every kind an append meets (participants, keys, batches with
commitments and claims, purchased lots, rule sets, grades and their revocation, custody);
each SELECT, UPDATE and DELETE run inside a write transaction is explained by SQLite, and
any ``SCAN`` of a table is a failure, named with its statement. The replay check is also
explained on PostgreSQL with sequential scans disabled, so it must have an index to use.
The schema the migrations build is the one the models describe, on both databases.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, text
from sqlmodel import SQLModel

from ledger import demo
from ledger.bootstrap import init_ledger
from ledger.settings import Settings
from ledger.storage.db import make_engine, write_session
from ledger.storage.migrate import migrate
from ledger.storage.repository import Repository
from tests.conftest import LedgerEnv

READ_OR_CHANGE = ("SELECT", "UPDATE", "DELETE", "WITH")


@contextmanager
def write_statements(engine: Any) -> Iterator[dict[str, Any]]:
    """Collect (statement -> parameters) of every statement run inside a write session."""
    seen: dict[str, Any] = {}

    def capture(
        conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, many: bool
    ) -> None:
        writing = conn.get_execution_options().get("sqlite_begin") == "IMMEDIATE"
        if writing and not many and statement.lstrip().upper().startswith(READ_OR_CHANGE):
            seen.setdefault(statement, params)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def scans(database: Path, statements: dict[str, Any]) -> dict[str, list[str]]:
    """The statements whose SQLite plan scans a table, with the scanning plan lines."""
    found = {}
    with sqlite3.connect(database) as connection:
        for statement, params in statements.items():
            plan = connection.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
            lines = [row[3] for row in plan if row[3].startswith("SCAN")]
            if lines:
                found[re.sub(r"\s+", " ", statement)[:200]] = lines
    return found


def test_every_statement_an_append_runs_is_an_index_lookup(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    ledger = init_ledger(settings).ledger
    with write_statements(ledger.engine) as statements:
        demo.load_demo(ledger, settings, tmp_path / "keys")
    ledger.engine.dispose()
    assert len(statements) > 25  # the demo reached the kinds' checks
    assert scans(tmp_path / "data" / "ledger.db", statements) == {}


def test_the_replay_check_seeks_by_signer_and_nonce(env: LedgerEnv) -> None:
    """The check that made single appends fall from about 300/s at 10k records to 17/s at
    1M: it filtered on the nonce alone and so read the whole (signer, nonce) index."""
    engine = env.ledger.engine
    with write_statements(engine) as statements, write_session(engine) as session:
        Repository(session).replayed([("ab" * 32, "nonce-1"), ("cd" * 32, "nonce-2")])
    (statement,) = (s for s in statements if "nonce" in s)
    if engine.dialect.name == "sqlite":
        database = Path(engine.url.database or "")
        assert scans(database, {statement: statements[statement]}) == {}
    else:
        with engine.connect() as connection:
            connection.execute(text("SET enable_seqscan = off"))
            plan = connection.exec_driver_sql(f"EXPLAIN {statement}", statements[statement])
            lines = " ".join(row[0] for row in plan)
        assert "Index" in lines and "Seq Scan" not in lines, lines


def test_the_migrated_schema_is_the_schema_the_models_describe(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    with engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert drift == []
