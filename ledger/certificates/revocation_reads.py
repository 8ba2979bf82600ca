"""Grades' revocations read for requests on an event loop, many in one query.

A certificate request must see its grade's status as it is when the request arrives (a
revocation shows at once: ``ledger/certificates/cache.py``), so every request reads it,
even when the bundle is cached. Read in a worker thread per request, those reads were
where cached bundles lost their time on PostgreSQL under load: a few stalled for seconds
while the event loop ran on and PostgreSQL showed no query running, and came back only
when the load stopped (16 clients, 2 server processes: p99 0.2 - 1.7 s with p50 4 ms; with
the read on the event loop instead, p99 16 - 40 ms).

Here one thread reads for every waiting request: it takes all the requests queued, reads
their grades in one query and hands each its answer. A read starts only after its request
was queued, so it sees every revocation committed before the request arrived.

Invariants: answers come in no particular order but each to its own request; a failed
query fails exactly the requests it was reading for; a read whose request was cancelled
is skipped; ``close`` answers what is queued.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

from sqlalchemy import Engine

from ledger.storage.db import autocommit_read_session
from ledger.storage.grading import GradingRepository


@dataclass
class _Read:
    grade_index: int
    done: Future[int | None] = field(default_factory=Future)


_CLOSE = object()


class RevocationReads:
    """The revocations of grades, read by one thread (started on the first read).

    ``max_batch``: most grades one query reads."""

    def __init__(self, engine: Engine, *, max_batch: int = 256) -> None:
        if max_batch < 1:
            raise ValueError("a query must read at least one grade")
        self._engine = engine
        self._max_batch = max_batch
        self._queue: queue.Queue[_Read | object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def revocation(self, grade_index: int) -> int | None:
        """The index of the record that revoked grade ``grade_index``, as of now; None if
        it is active or there is no such grade (``GradingRepository.revocation``)."""
        read = _Read(grade_index)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="revocation-reads", daemon=True
                )
                self._thread.start()
            self._queue.put(read)
        return await asyncio.wrap_future(read.done)

    def close(self) -> None:
        """Answer the reads queued, then stop the thread (a later read starts another)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(_CLOSE)
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            batch, closing = self._take()
            if batch:
                self._answer(batch)
            if closing:
                return

    def _take(self) -> tuple[list[_Read], bool]:
        """The reads queued now (waiting for the first), up to ``max_batch``; and whether
        ``close`` was asked for behind them."""
        batch: list[_Read] = []
        item = self._queue.get()
        while item is not _CLOSE:
            assert isinstance(item, _Read)
            # A request whose task was cancelled has cancelled its read: skip it (answering
            # a cancelled future would raise here and stop the thread); the rest can no
            # longer be cancelled under it.
            if item.done.set_running_or_notify_cancel():
                batch.append(item)
            if len(batch) == self._max_batch:
                return batch, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def _answer(self, batch: list[_Read]) -> None:
        try:
            with autocommit_read_session(self._engine) as session:
                found = GradingRepository(session).revocations({r.grade_index for r in batch})
        except BaseException as error:  # the database failed these reads: each hears it
            for read in batch:
                read.done.set_exception(error)
            return
        for read in batch:
            read.done.set_result(found.get(read.grade_index))
