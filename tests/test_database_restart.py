"""PostgreSQL restarts under a running server: the request that meets a dropped connection
answers 503 (retry; nothing stored changed), never 500, and the next one is served."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.bootstrap import init_ledger
from ledger.settings import Settings

pytestmark = pytest.mark.postgres


def drop_every_other_connection(pg_url: str) -> int:
    """What a server restart does to the app's pooled connections."""
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as admin:
        dropped = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return dropped[0] if dropped else 0


def test_a_dropped_connection_answers_503_then_the_server_recovers(
    pg_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=pg_url)
    ledger = init_ledger(settings).ledger
    with TestClient(create_app(ledger, settings)) as http:
        assert http.get("/v1/proofs/inclusion/0").status_code == 200  # a pooled connection
        assert drop_every_other_connection(pg_url) >= 1

        met_the_dead_connection = http.get("/v1/proofs/inclusion/0")
        assert met_the_dead_connection.status_code == 503
        assert met_the_dead_connection.headers["retry-after"] == "1"
        assert met_the_dead_connection.json()["error"] == "unavailable"

        assert http.get("/v1/proofs/inclusion/0").status_code == 200
        assert http.get("/v1/checkpoint").status_code == 200
    ledger.engine.dispose()
