"""Grades' revocations read for requests on an event loop, many in one query.

A certificate request must see its grade's status as it is when the request arrives (a
revocation shows at once: ``ledger/certificates/cache.py``), so every request reads it,
even when the bundle is cached. Read in a worker thread per request, those reads were
where cached bundles lost their time on PostgreSQL under load: a few stalled for seconds
while the event loop ran on and PostgreSQL showed no query running, and came back only
when the load stopped (16 clients, 2 server processes: p99 0.2 - 1.7 s with p50 4 ms; with
the read on the event loop instead, p99 16 - 40 ms). So one thread reads them, the grades
of every request waiting in one query (``ledger/batched_reads.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from ledger.batched_reads import BatchedReads
from ledger.storage.db import autocommit_read_session
from ledger.storage.grading import GradingRepository


class RevocationReads:
    """The revocations of grades, read by one thread (started on the first read).

    ``max_batch``: most grades one query reads."""

    def __init__(self, engine: Engine, *, max_batch: int = 256) -> None:
        self._engine = engine
        self._reads: BatchedReads[int, int | None] = BatchedReads(
            self._revocations, name="revocation-reads", max_batch=max_batch
        )

    async def revocation(self, grade_index: int) -> int | None:
        """The index of the record that revoked grade ``grade_index``, as of now; None if
        it is active or there is no such grade (``GradingRepository.revocation``)."""
        return await self._reads.read(grade_index)

    def close(self) -> None:
        """Answer the reads queued, then stop the thread (a later read starts another)."""
        self._reads.close()

    def _revocations(self, grades: Sequence[int]) -> list[int | None]:
        with autocommit_read_session(self._engine) as session:
            found = GradingRepository(session).revocations(set(grades))
        return [found.get(grade) for grade in grades]
