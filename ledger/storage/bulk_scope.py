"""What an atomic bulk append reads ahead and the writes it defers, for one transaction.

An atomic bulk (``Ledger.append_many``) succeeds or fails whole, so a write whose result no
later statement of the bulk reads need not reach the database at once: on PostgreSQL every
statement sent is a round trip, and a bulk of registrations sent one by one spends more
time waiting on them than working. Kinds may instead

* ``defer`` a write: it is queued and sent with the others of its statement as one
  ``executemany`` (psycopg pipelines it: one round trip for all) when the scope is
  flushed;
* read ahead: look up once, for every statement of the bulk, what checking each will need,
  and keep it in ``ahead`` (keyed by the kind), updating it as their own writes change it.

Invariants, kept by the append loop and the repositories:

- Deferred writes are flushed before anything reads what they write: before a statement of
  a kind that does not declare it works with the scope (``StatementKind.uses_bulk_scope``),
  before a read of the tables they write (the repositories' ``flush_deferred`` calls), and
  before the records are inserted. Within one statement they run in the order deferred
  relative to their own statement, grouped by statement in first-use order (each kind
  defers parents before children).
- What is read ahead is dropped (``settle``) before a statement of any other kind runs,
  since that kind may change it.
- No scope exists in an isolated group (savepoints), where a refusal must take back its
  own writes at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Executable
from sqlmodel import Session

_KEY = "alu_ledger.bulk_scope"


class BulkScope:
    def __init__(self) -> None:
        self._deferred: dict[Executable, list[dict[str, Any]]] = {}
        #: Read-ahead lookups, by whatever key the kind that made them chose.
        self.ahead: dict[Any, Any] = {}

    def defer(self, statement: Executable, params: dict[str, Any]) -> None:
        self._deferred.setdefault(statement, []).append(params)

    def flush(self, session: Session) -> None:
        """Send every deferred write: one ``executemany`` per statement, in first-use order."""
        if not self._deferred:
            return
        connection = session.connection()
        deferred, self._deferred = self._deferred, {}
        for statement, rows in deferred.items():
            connection.execute(statement, rows)

    def settle(self, session: Session) -> None:
        """Flush the deferred writes and forget what was read ahead."""
        self.flush(session)
        self.ahead.clear()


def open_bulk_scope(session: Session) -> BulkScope:
    scope = BulkScope()
    session.info[_KEY] = scope
    return scope


def close_bulk_scope(session: Session, *, flush: bool = True) -> None:
    """End the scope, flushing what is still deferred (unless the transaction is being
    abandoned anyway)."""
    scope = session.info.pop(_KEY, None)
    if scope is not None and flush:
        scope.flush(session)


def bulk_scope(session: Session) -> BulkScope | None:
    """The session's scope while an atomic bulk is appended, else None."""
    scope = session.info.get(_KEY)
    return scope if isinstance(scope, BulkScope) else None


def flush_deferred(session: Session) -> None:
    """Called before reading tables deferred writes may touch."""
    scope = bulk_scope(session)
    if scope is not None:
        scope.flush(session)
