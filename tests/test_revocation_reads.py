"""Grades' statuses for certificate requests are read by one thread, many in one query.

Each read starts after its request was queued, so a revocation committed before the
request is seen; reads queued while a query runs go together in the next one; a failed
query fails the reads it was for, and only those. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from ledger.certificates.revocation_reads import RevocationReads
from tests.conftest import LedgerEnv
from tests.grading_support import CENTRE, issue, set_up_grading


@pytest.fixture
def grades(env: LedgerEnv) -> tuple[LedgerEnv, list[int]]:
    set_up_grading(env)
    return env, [issue(env, grade).index for grade in ("tier-2", "tier-2", "tier-2")]


@pytest.fixture
def reads(env: LedgerEnv) -> Iterator[RevocationReads]:
    reader = RevocationReads(env.ledger.engine)
    yield reader
    reader.close()


class Queries:
    """Counts the grade-status queries on an engine; can hold the next one until
    released, or make them fail."""

    def __init__(self, env: LedgerEnv) -> None:
        self.batches: list[Any] = []
        self.entered, self.release = threading.Event(), threading.Event()
        self.hold = False
        self.fail: Exception | None = None
        event.listen(env.ledger.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "revoked_index" not in statement or "record_index IN" not in statement:
            return
        self.batches.append(params)
        if self.fail is not None:
            raise self.fail
        if self.hold:
            self.hold = False
            self.entered.set()
            assert self.release.wait(10)


def revoke(env: LedgerEnv, grade_index: int) -> int:
    payload = {"grade_record_index": grade_index, "reason": "data error"}
    return env.append("grade.revoke", payload, env.participant_keys[CENTRE]).index


def test_a_revocation_committed_before_the_read_is_seen(
    grades: tuple[LedgerEnv, list[int]], reads: RevocationReads
) -> None:
    env, (grade, *_) = grades
    assert asyncio.run(reads.revocation(grade)) is None
    revocation = revoke(env, grade)
    assert asyncio.run(reads.revocation(grade)) == revocation
    assert asyncio.run(reads.revocation(env.ledger.tree_size() + 5)) is None  # no such grade


def test_reads_queued_during_a_query_go_together_in_the_next(
    grades: tuple[LedgerEnv, list[int]], reads: RevocationReads
) -> None:
    env, indexes = grades
    revoked = revoke(env, indexes[1])
    queries = Queries(env)
    queries.hold = True

    async def main() -> list[int | None]:
        first = asyncio.ensure_future(reads.revocation(indexes[0]))
        assert await asyncio.to_thread(queries.entered.wait, 10)
        rest = [asyncio.ensure_future(reads.revocation(index)) for index in indexes * 2]
        await asyncio.sleep(0.05)  # all queued behind the held query
        queries.release.set()
        return list(await asyncio.gather(first, *rest))

    answers = asyncio.run(main())
    assert answers == [None, *[None, revoked, None] * 2]
    assert len(queries.batches) == 2  # the first read alone, then the six together


def test_a_cancelled_read_is_skipped_and_the_reader_goes_on(
    grades: tuple[LedgerEnv, list[int]], reads: RevocationReads
) -> None:
    env, indexes = grades
    queries = Queries(env)
    queries.hold = True

    async def main() -> list[int | None]:
        first = asyncio.ensure_future(reads.revocation(indexes[0]))
        assert await asyncio.to_thread(queries.entered.wait, 10)
        cancelled = asyncio.ensure_future(reads.revocation(indexes[1]))
        kept = asyncio.ensure_future(reads.revocation(indexes[2]))
        await asyncio.sleep(0.05)  # both queued behind the held query
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled  # by now its read is cancelled too (wrap_future passes it on)
        queries.release.set()
        answered = await asyncio.wait_for(asyncio.gather(first, kept), 30)
        later = await asyncio.wait_for(reads.revocation(indexes[1]), 30)  # the reader goes on
        return [*answered, later]

    assert asyncio.run(main()) == [None, None, None]
    second = queries.batches[1]  # a tuple (SQLite) or a dict (PostgreSQL) of the grades read
    read = list(second.values()) if isinstance(second, dict) else list(second)
    assert read == [indexes[2]]  # the cancelled read was skipped


def test_a_failed_query_fails_its_reads_and_the_next_succeed(
    grades: tuple[LedgerEnv, list[int]], reads: RevocationReads
) -> None:
    env, indexes = grades
    queries = Queries(env)
    queries.fail = RuntimeError("the database went away")

    async def both() -> list[Any]:
        pending = [reads.revocation(index) for index in indexes[:2]]
        return list(await asyncio.gather(*pending, return_exceptions=True))

    failed = asyncio.run(both())
    assert all(isinstance(answer, Exception) for answer in failed), failed
    queries.fail = None
    assert asyncio.run(reads.revocation(indexes[0])) is None


def test_closing_stops_the_thread_and_a_later_read_starts_another(
    grades: tuple[LedgerEnv, list[int]], reads: RevocationReads
) -> None:
    _env, indexes = grades

    def running() -> int:  # apps of other tests may keep theirs
        return sum(thread.name == "revocation-reads" for thread in threading.enumerate())

    assert asyncio.run(reads.revocation(indexes[0])) is None
    before = running()
    reads.close()
    assert running() == before - 1
    assert asyncio.run(reads.revocation(indexes[0])) is None
    assert running() == before
    with pytest.raises(ValueError):
        RevocationReads(reads._engine, max_batch=0)
