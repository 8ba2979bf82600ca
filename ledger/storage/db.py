"""Engines and transactions for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode so readers never block the writer; a write transaction
starts with ``BEGIN IMMEDIATE`` so two writers (threads or processes) queue on the
database lock instead of failing half-way with "database is locked".

Reads can be given a deadline (``time_limit``, used by GraphQL requests): every
transaction begun under it is bounded by the database itself, with ``SET LOCAL
statement_timeout`` (the time left) on PostgreSQL and an interrupt from SQLite's
progress handler on SQLite; a statement about to start after the deadline is not sent.
Either way the caller gets ``ReadTimeoutError`` or a driver error ``is_timeout`` recognises.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from ledger.errors import NotFoundError

try:
    import fcntl
except ImportError:  # not POSIX: SQLite's busy timeout alone orders the writers
    fcntl = None  # type: ignore[assignment]

SQLITE_BUSY_TIMEOUT_MS = 60_000
#: Connections kept open per process: enough for the concurrent requests a server process
#: serves (each read holds one briefly, the writer one), since a connection beyond the
#: pool is opened and closed per use (on PostgreSQL a new backend process, on SQLite a new
#: file handle and its pragmas each time).
POOL_SIZE = 32
POOL_OVERFLOW = 16
#: SQLite virtual-machine instructions between two looks at the clock (well under 1 ms).
SQLITE_PROGRESS_STEPS = 10_000
#: SQLSTATE query_canceled: what PostgreSQL answers when statement_timeout fires.
PG_QUERY_CANCELED = "57014"


@dataclass(frozen=True)
class Deadline:
    """When reads must be done (``time.monotonic()``), and the limit it was set from."""

    at: float
    limit_s: float

    def remaining_s(self) -> float:
        return self.at - time.monotonic()


class ReadTimeoutError(Exception):
    """A read ran past its deadline (``time_limit``)."""

    def __init__(self, limit_s: float) -> None:
        super().__init__(f"reads ran past their time limit of {limit_s:g} s")
        self.limit_s = limit_s


_deadline: ContextVar[Deadline | None] = ContextVar("read_deadline", default=None)


@contextmanager
def time_limit(seconds: float) -> Iterator[Deadline]:
    """Bound every transaction begun in this context (thread or task) to end within
    ``seconds`` from now, in the database: see the module docstring."""
    deadline = Deadline(time.monotonic() + seconds, seconds)
    token = _deadline.set(deadline)
    try:
        yield deadline
    finally:
        _deadline.reset(token)


def current_deadline() -> Deadline | None:
    return _deadline.get()


def is_timeout(error: BaseException) -> bool:
    """Whether ``error`` is a read stopped by its deadline: ``ReadTimeoutError``, PostgreSQL's
    query_canceled (statement_timeout) or SQLite's "interrupted"."""
    if isinstance(error, ReadTimeoutError):
        return True
    original = error.orig if isinstance(error, DBAPIError) else error
    if getattr(original, "sqlstate", None) == PG_QUERY_CANCELED:
        return True
    return isinstance(original, sqlite3.OperationalError) and str(original) == "interrupted"


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """The engine for ``url``. ``read_only``: for an audit of a database this process does
    not own: nothing is created (a missing SQLite file is refused, not made), and every
    connection refuses writes (SQLite opened with ``mode=ro``, PostgreSQL
    ``default_transaction_read_only``)."""
    parsed = make_url(url)
    if read_only:
        return _read_only_engine(url, parsed)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, parsed.database)
    else:
        # No ping before each checkout: it is a round trip on every request. A connection
        # found dead (the server restarted) invalidates the pool's older connections and
        # the request that met it answers 503, to be retried (api/errors.py).
        # LIFO: the connection used last is handed out next, so after a burst has grown
        # the pool, steady work keeps to warm backends (psycopg prepares a statement on a
        # connection's fifth use of it) and the surplus idles (tests/test_connection_pool.py).
        engine = create_engine(
            url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_use_lifo=True
        )
        event.listen(engine, "begin", _postgres_statement_timeout)
    event.listen(engine, "before_cursor_execute", _refuse_after_deadline)
    return engine


def _read_only_engine(url: str, parsed: Any) -> Engine:
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(
            url, connect_args={"options": "-c default_transaction_read_only=on"}, pool_size=2
        )
        event.listen(engine, "before_cursor_execute", _refuse_after_deadline)
        return engine
    database = parsed.database
    if parsed.query.get("mode") == "ro":  # already read only (an audit worker's copy)
        return create_engine(url, connect_args={"check_same_thread": False})
    if not database or database == ":memory:" or not Path(database).is_file():
        raise NotFoundError(f"no SQLite database at {database}", field="database")
    # mode=ro: SQLite itself refuses every write, and a read-only connection never
    # checkpoints the write-ahead log into the database file when it closes.
    read_only_url = f"sqlite:///file:{Path(database).resolve()}?mode=ro&uri=true"
    return create_engine(read_only_url, connect_args={"check_same_thread": False})


def _refuse_after_deadline(*_: Any) -> None:
    """No statement starts once the deadline has passed."""
    deadline = _deadline.get()
    if deadline is not None and deadline.remaining_s() <= 0:
        raise ReadTimeoutError(deadline.limit_s)


def _postgres_statement_timeout(connection: Connection) -> None:
    """Under a deadline, the transaction's statements may run for the time left."""
    deadline = _deadline.get()
    if deadline is not None:
        remaining_ms = max(1, int(deadline.remaining_s() * 1000))
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {remaining_ms}")


def _sqlite_interrupt(dbapi_connection: Any, info: dict[str, Any]) -> None:
    """Under a deadline, SQLite interrupts a statement still running when it passes;
    without one, no handler (and none is left on a connection back in the pool)."""
    deadline = _deadline.get()
    if deadline is None:
        if info.pop("progress_handler", False):
            dbapi_connection.set_progress_handler(None, 0)
        return
    at = deadline.at
    dbapi_connection.set_progress_handler(lambda: time.monotonic() > at, SQLITE_PROGRESS_STEPS)
    info["progress_handler"] = True


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    pool: dict[str, Any] = {}
    if database and database != ":memory:":  # one shared in-memory database has one connection
        pool = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60}, **pool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        fairy = connection.connection
        _sqlite_interrupt(fairy.dbapi_connection, fairy.info)
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None and record.info.pop("progress_handler", False):
            dbapi_connection.set_progress_handler(None, 0)

    return engine


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose transaction holds SQLite's write lock from its first statement.

    On SQLite, writers first queue on an advisory file lock beside the database
    (``<database>-writer.lock``, ``flock``): the kernel wakes the next writer the moment
    the last one is done, where SQLite's busy timeout would poll with growing sleeps and
    leave some writers waiting far longer than others."""
    with _sqlite_writer_turn(engine), engine.connect() as connection:
        connection = connection.execution_options(sqlite_begin="IMMEDIATE")
        with Session(bind=connection) as session, connection.begin():
            yield session


@contextmanager
def _sqlite_writer_turn(engine: Engine) -> Iterator[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or fcntl is None:
        yield
        return
    fd = os.open(f"{database}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


@contextmanager
def autocommit_read_session(engine: Engine) -> Iterator[Session]:
    """A session whose statements each run on their own, with no transaction around them,
    which on PostgreSQL saves the ``BEGIN`` and ``ROLLBACK`` round trips of every read.
    For reads that need no snapshot: of what never changes once committed (tree nodes of
    a stored size, records), or a single statement (which is consistent by itself).
    SQLite has no round trips to save and begins its own transactions (``_on_begin``): a
    plain read session there."""
    if engine.dialect.name == "sqlite":
        with read_session(engine) as session:
            yield session
        return
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        with Session(bind=connection) as session:
            yield session
