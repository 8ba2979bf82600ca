"""One thread answers the requests waiting, many in one call (``ledger/batched_reads.py``).

What the proof and revocation readers rest on: requests queued while a batch is answered
go together in the next; an answer that is an exception refuses its request alone; a
batch that fails fails its requests and the reader goes on; each event loop is woken once
per batch with its own requests' answers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence

import pytest

from ledger.batched_reads import BatchedReads


class Doubler:
    """Answers ints with their double and refuses negative ones; records each batch and
    can hold the next one until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.entered, self.release = threading.Event(), threading.Event()
        self.hold = False

    def __call__(self, requests: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(requests))
        if self.hold:
            self.hold = False
            self.entered.set()
            assert self.release.wait(10)
        if 13 in requests:
            raise RuntimeError("unlucky batch")
        return [ValueError(f"{n} < 0") if n < 0 else 2 * n for n in requests]


@pytest.fixture
def doubler() -> Doubler:
    return Doubler()


@pytest.fixture
def reads(doubler: Doubler) -> Iterator[BatchedReads[int, int]]:
    reader: BatchedReads[int, int] = BatchedReads(doubler, name="doubler")
    yield reader
    reader.close()


def test_requests_waiting_go_together_and_a_refusal_is_their_own(
    doubler: Doubler, reads: BatchedReads[int, int]
) -> None:
    doubler.hold = True

    async def main() -> list[int | BaseException]:
        first = asyncio.ensure_future(reads.read(1))
        assert await asyncio.to_thread(doubler.entered.wait, 10)
        rest = [asyncio.ensure_future(reads.read(n)) for n in (2, -3, 4)]
        await asyncio.sleep(0.05)  # all queued behind the held batch
        doubler.release.set()
        return list(await asyncio.gather(first, *rest, return_exceptions=True))

    one, two, refused, four = asyncio.run(main())
    assert (one, two, four) == (2, 4, 8)
    assert isinstance(refused, ValueError) and str(refused) == "-3 < 0"
    assert doubler.batches == [[1], [2, -3, 4]]


def test_a_failed_batch_fails_its_requests_and_the_reader_goes_on(
    reads: BatchedReads[int, int],
) -> None:
    async def main() -> list[int | BaseException]:
        return list(await asyncio.gather(reads.read(13), return_exceptions=True))

    (failed,) = asyncio.run(main())
    assert isinstance(failed, RuntimeError) and str(failed) == "unlucky batch"
    assert asyncio.run(reads.read(5)) == 10


def test_a_wrong_number_of_answers_fails_the_batch() -> None:
    reader: BatchedReads[int, int] = BatchedReads(lambda requests: [], name="short")
    try:
        with pytest.raises(RuntimeError, match="0 answers to 1"):
            asyncio.run(reader.read(1))
    finally:
        reader.close()


def test_requests_from_several_event_loops_each_get_their_own(
    doubler: Doubler, reads: BatchedReads[int, int]
) -> None:
    """The server's loop and a test's, or two apps' in one process: one batch may hold
    requests of several loops, and each answer goes to the loop that waits for it."""
    doubler.hold = True
    answers: dict[int, list[int]] = {}

    def loop_asking(offset: int) -> None:
        async def ask() -> list[int]:
            return list(await asyncio.gather(*(reads.read(offset + n) for n in range(3))))

        answers[offset] = asyncio.run(ask())

    async def first() -> int:
        return await reads.read(0)

    holder = threading.Thread(target=lambda: answers.setdefault(-1, [asyncio.run(first())]))
    holder.start()
    assert doubler.entered.wait(10)
    askers = [threading.Thread(target=loop_asking, args=(offset,)) for offset in (100, 200)]
    for asker in askers:
        asker.start()
    while reads._queue.qsize() < 6:
        threading.Event().wait(0.01)
    doubler.release.set()
    for thread in (holder, *askers):
        thread.join(10)
    assert answers == {-1: [0], 100: [200, 202, 204], 200: [400, 402, 404]}
    assert len(doubler.batches) == 2 and sorted(doubler.batches[1]) == [
        100,
        101,
        102,
        200,
        201,
        202,
    ]


def test_a_batch_must_hold_a_request() -> None:
    with pytest.raises(ValueError):
        BatchedReads(lambda requests: [], name="empty", max_batch=0)
