"""Group commit: statements that arrive together are appended together.

Every append is a transaction that takes the head lock, signs a checkpoint and commits
(an fsync). Submitted one by one, concurrent statements queue on the lock and each pays
for all of that. A ``GroupCommitter`` is the process's one writer: callers hand it
statements and wait; its thread takes everything queued (up to ``max_statements``) and
appends it with
``Ledger.append_group``: one transaction, one checkpoint, each statement checked on its
own (the group is tried whole first and, only if a statement is refused, again with a
savepoint apiece). Each caller gets its own record, the size and the checkpoint of its
group (which covers it), or its own refusal: a refused statement fails no other.

Statements that arrive while a group commits are the next group, with no timer. After a
group of more than one (callers are concurrent) the writer also waits up to ``max_wait``
after the next group's first statement for more, so that a burst fills one transaction,
but only until as many have come as the last group held: callers answered together come
back together, and once they are all in, waiting longer only delays them (whatever more
is queued by then still joins). After a group of one it does not wait, so a lone
submitter pays no delay (PostgreSQL's ``commit_delay`` applies only with
``commit_siblings`` active for the same reason).

Once a group holds the head lock, the statements queued while it waited for the lock
(another process's group held it) join it too. They would otherwise wait a whole turn
more, and with several processes each group would leave behind those that came back
while it waited, splitting each process's callers into ever smaller groups (measured on
PostgreSQL with two processes and 16 submitters: groups of 4 to 6 became 7 to 9, and
appends/s rose by a third).

Bulk requests (``submit_many``) are atomic units and go through the same writer, alone,
so on SQLite the process never has two writers contending for the file lock. Several
processes each form their own groups; the head lock serialises them.

Invariants: statements are appended in the order they were queued; a caller's wait is
bounded by ``max_wait`` plus the groups ahead of it; a statement whose caller gave up
(its task cancelled) before the writer took it is not appended; ``close`` lets the
queued finish.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial

from ledger.errors import LedgerError
from ledger.log import Appended, Ledger
from ledger.statements import SignedStatement


@dataclass
class _Single:
    signed: SignedStatement
    done: Future[Appended] = field(default_factory=Future)


@dataclass
class _Bulk:
    statements: Sequence[SignedStatement]
    field_prefix: str
    done: Future[list[Appended]] = field(default_factory=Future)


_CLOSE = object()


class GroupCommitter:
    """The process's writer for one ledger (module docstring)."""

    def __init__(
        self, ledger: Ledger, *, max_wait_s: float = 0.002, max_statements: int = 256
    ) -> None:
        if max_statements < 1:
            raise ValueError("max_statements must be at least 1")
        self.ledger = ledger
        self.max_wait_s = max(0.0, max_wait_s)
        self.max_statements = max_statements
        self._queue: queue.Queue[_Single | _Bulk | object] = queue.Queue()
        self._held: _Single | _Bulk | object | None = None  # a bulk or closing, for the next turn
        self._last_group_size = 0
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, signed: SignedStatement) -> Appended:
        """Append one statement with whatever arrives with it; its record or its refusal."""
        single = _Single(signed)
        self._enqueue(single)
        return single.done.result()

    async def submit_async(self, signed: SignedStatement) -> Appended:
        """``submit`` for a caller on an asyncio event loop: it awaits the writer without
        holding a thread."""
        single = _Single(signed)
        self._enqueue(single)
        return await asyncio.wrap_future(single.done)

    def submit_many(
        self, statements: Sequence[SignedStatement], field_prefix: str = "statements"
    ) -> list[Appended]:
        """Append a bulk atomically (``Ledger.append_many``), through the same writer."""
        bulk = _Bulk(statements, field_prefix)
        self._enqueue(bulk)
        return bulk.done.result()

    def close(self) -> None:
        """Finish what is queued, then stop the writer thread."""
        if not self._closed:
            self._closed = True
            self._queue.put(_CLOSE)
            self._thread.join()

    def _enqueue(self, item: _Single | _Bulk) -> None:
        if self._closed:
            raise RuntimeError("the group committer is closed")
        self._queue.put(item)

    # -- the writer thread ----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            first = self._held if self._held is not None else self._queue.get()
            self._held = None
            if first is _CLOSE:
                return
            assert isinstance(first, _Single | _Bulk)
            if not _claimed(first):
                continue
            if isinstance(first, _Bulk):
                _settle_bulk(self.ledger, first)
                continue
            assert isinstance(first, _Single)
            group = [first]
            self._take(group, wait=self.max_wait_s if self._last_group_size > 1 else 0.0)
            _settle_group(self.ledger, group, joining=partial(self._join, group))
            self._last_group_size = len(group)

    def _take(self, group: list[_Single], wait: float) -> None:
        """Move the singles queued behind ``group`` into it: all that are there at once,
        then more until ``wait`` has passed or the group is as large as the last one. A
        bulk or closing ends the group; it is held for the writer's next turn."""
        deadline = time.monotonic() + wait
        while len(group) < self.max_statements and self._held is None:
            if len(group) >= self._last_group_size:
                deadline = 0.0  # everyone the last group answered is back: take only what is queued
            try:
                timeout = max(0.0, deadline - time.monotonic())
                item = self._queue.get(timeout=timeout) if timeout else self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Single):
                if _claimed(item):
                    group.append(item)
            else:
                self._held = item

    def _join(self, group: list[_Single]) -> list[SignedStatement]:
        """Called by the ledger once ``group`` holds the head lock: the statements queued
        while it waited for the lock (another process's group held it) join it, rather
        than wait for the next turn. Returns them; ``group`` now holds them too."""
        before = len(group)
        self._take(group, wait=0.0)
        return [item.signed for item in group[before:]]


def _claimed(item: _Single | _Bulk) -> bool:
    """Whether ``item``'s caller still waits for it; from now on its answer cannot be
    cancelled. A caller on an event loop whose task was cancelled while its statement was
    queued (``submit_async``) has cancelled the future: the statement is dropped, not
    appended (nobody would hear its record), and answering a cancelled future would raise
    in the writer thread and stop it."""
    return item.done.set_running_or_notify_cancel()


def _settle_group(
    ledger: Ledger, group: list[_Single], joining: Callable[[], Sequence[SignedStatement]]
) -> None:
    try:
        outcomes = ledger.append_group([item.signed for item in group], joining)
    except BaseException as error:  # a fault of the whole transaction: everyone hears it
        for item in group:
            item.done.set_exception(error)
        return
    for item, outcome in zip(group, outcomes, strict=True):
        if isinstance(outcome, LedgerError):
            item.done.set_exception(outcome)
        else:
            item.done.set_result(outcome)


def _settle_bulk(ledger: Ledger, bulk: _Bulk) -> None:
    try:
        bulk.done.set_result(ledger.append_many(bulk.statements, bulk.field_prefix))
    except BaseException as error:
        bulk.done.set_exception(error)
