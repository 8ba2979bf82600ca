"""The connection pool hands back the connection used last (LIFO). After a burst of
concurrent requests has grown the pool, the writer keeps meeting the same warm PostgreSQL
backend (its statements already prepared by psycopg, its caches filled) instead of cycling
through every connection the burst opened; the surplus sits idle. Cycling had cost 16
concurrent submitters about 8 % of their rate after a round of certificate requests."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from sqlalchemy import Engine

from ledger.storage.db import make_engine

pytestmark = pytest.mark.postgres


def backend_of_next_checkout(engine: Engine) -> int:
    with engine.connect() as connection:
        pid: int = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        return pid


def test_after_a_burst_the_pool_hands_back_the_connection_used_last(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        with ExitStack() as burst:  # four connections held at once, as concurrent reads do
            for _ in range(4):
                burst.enter_context(engine.connect())
        backends = {backend_of_next_checkout(engine) for _ in range(8)}
        assert len(backends) == 1
    finally:
        engine.dispose()
