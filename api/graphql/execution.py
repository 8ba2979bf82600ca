"""GraphQL executions run off the server's event loop, each under a time limit.

A whole execution (parsing, validation, the cost check, every resolver and loader) runs in
a worker thread of a pool of its own, on an event loop that thread keeps, so the server's
loop only receives requests and writes answers: a slow or expensive query never holds up
``GET /v1/log-key`` or anyone else's request. The pool is separate from the one FastAPI
gives synchronous REST routes, so GraphQL cannot starve them, and bounded (``WORKERS``),
so GraphQL alone never holds more database connections than that.

Each execution reads under ``ledger.storage.db.time_limit``: PostgreSQL cancels a
statement at the deadline (``SET LOCAL statement_timeout``), SQLite interrupts it, and no
statement starts after it; the schema answers such a request with code ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ledger.storage.db import time_limit

DEFAULT_TIME_LIMIT_S = 10.0
"""How long one GraphQL request may read for, in seconds."""
WORKERS = 8
"""GraphQL executions at a time; more wait for a free worker."""

T = TypeVar("T")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_local = threading.local()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="graphql")
        return _pool


def _runner() -> asyncio.Runner:
    """This worker thread's event loop (made once per thread, kept for the next request)."""
    runner: asyncio.Runner | None = getattr(_local, "runner", None)
    if runner is None:
        runner = _local.runner = asyncio.Runner()
    return runner


def _run(make: Callable[[], Coroutine[Any, Any, T]], limit_s: float) -> T:
    with time_limit(limit_s):
        # The context must be given: by default a Runner reuses the one it was made in.
        return _runner().run(make(), context=contextvars.copy_context())


async def run_off_loop(make: Callable[[], Coroutine[Any, Any, T]], limit_s: float) -> T:
    """Await ``make()`` in a worker thread, its reads bounded to ``limit_s`` seconds.

    Each run gets a fresh ``contextvars.Context``: nothing set by one request (the
    deadline above all) is seen by the next one on the same thread."""
    loop = asyncio.get_running_loop()
    isolated = contextvars.Context()
    return await loop.run_in_executor(_executor(), isolated.run, _run, make, limit_s)
