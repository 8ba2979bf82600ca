"""Reads for requests on an event loop, many answered together by one thread.

A read handed to a worker thread per request costs a thread hand-off, a session and a
query each; under load most of a cheap read's time went there (grades' statuses for
cached certificate bundles stalled for seconds; proofs over the whole log ran at a fifth
of the rate of a constant route). Here one thread answers every request waiting: it takes
all those queued, answers them with one call of ``answer`` (one session, one query for
all) and hands each its own answer. A batch starts only after its requests were queued,
so it sees everything committed before they arrived.

Invariants: answers come in no particular order but each to its own request; an answer
that is an exception fails its request alone; a call of ``answer`` that raises fails
exactly the requests of its batch; a request whose caller was cancelled is skipped;
``close`` answers what is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Request = TypeVar("Request")
Answer = TypeVar("Answer")

#: Answers a batch: one answer (or the exception that refuses it) per request, in order.
AnswerBatch = Callable[[Sequence[Request]], Sequence[Answer | Exception]]


@dataclass
class _Pending(Generic[Request, Answer]):
    request: Request
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[Answer]


_CLOSE = object()


class BatchedReads(Generic[Request, Answer]):
    """Requests answered in batches by one thread (started on the first request).

    ``max_batch``: most requests one call of ``answer`` takes."""

    def __init__(
        self, answer: AnswerBatch[Request, Answer], *, name: str, max_batch: int = 256
    ) -> None:
        if max_batch < 1:
            raise ValueError("a batch must hold at least one request")
        self._answer_batch = answer
        self._name = name
        self._max_batch = max_batch
        self._queue: queue.Queue[_Pending[Request, Answer] | object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def read(self, request: Request) -> Answer:
        """The answer to ``request``, from the batch it joins."""
        loop = asyncio.get_running_loop()
        pending: _Pending[Request, Answer] = _Pending(request, loop, loop.create_future())
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._queue.put(pending)
        return await pending.done

    def close(self) -> None:
        """Answer the requests queued, then stop the thread (a later read starts another)."""
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

    def _take(self) -> tuple[list[_Pending[Request, Answer]], bool]:
        """The requests queued now (waiting for the first), up to ``max_batch``; and
        whether ``close`` was asked for behind them."""
        batch: list[_Pending[Request, Answer]] = []
        item = self._queue.get()
        while item is not _CLOSE:
            assert isinstance(item, _Pending)
            # A request whose task was cancelled has cancelled its future: skip it. (One
            # cancelled after this is passed over when the answers are handed out.)
            if not item.done.cancelled():
                batch.append(item)
            if len(batch) == self._max_batch:
                return batch, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def _answer(self, batch: list[_Pending[Request, Answer]]) -> None:
        try:
            answers: Sequence[Answer | BaseException] = self._answer_batch(
                [pending.request for pending in batch]
            )
            if len(answers) != len(batch):
                raise RuntimeError(f"{self._name}: {len(answers)} answers to {len(batch)}")
        except BaseException as error:  # the batch failed: each of its requests hears it
            answers = [error] * len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Answer], Any]]] = {}
        for pending, answer in zip(batch, answers, strict=True):
            by_loop.setdefault(pending.loop, []).append((pending.done, answer))
        # One wake-up of each event loop for the whole batch, not one per request.
        for loop, settled in by_loop.items():
            # A loop that has closed has nobody waiting for these answers.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future[Any], Any]]) -> None:
    """Hand each waiting request its answer (on its event loop)."""
    for done, answer in settled:
        if done.done():  # cancelled meanwhile
            continue
        if isinstance(answer, BaseException):
            done.set_exception(answer)
        else:
            done.set_result(answer)
