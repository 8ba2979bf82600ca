"""Fixtures: a fresh ledger on SQLite and on PostgreSQL, and participants to act with.

PostgreSQL tests use ``LEDGER_TEST_PG_URL`` (default: the local ``test`` database
as ``postgres``); each test gets its own new database. Without a server they skip
locally, but when ``CI`` is set they fail: CI must never pass by skipping them.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from ledger import keys, statements
from ledger.bootstrap import init_ledger
from ledger.disclosure.sign import sign_statement
from ledger.log import Appended, Ledger
from ledger.settings import Settings
from ledger.storage.migrate import MIGRATIONS, migrate

#: The advisory lock under which one test process builds the template database.
TEMPLATE_LOCK = 7_166_001
PG_URL = os.environ.get("LEDGER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Any]:
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as exc:  # any driver/connection failure means "no server"
        engine.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_URL}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    yield engine
    engine.dispose()


def _database_url(name: str) -> str:
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_template(pg_admin: Any) -> str:
    """A database migrated to head, named by a digest of the migrations, that every test
    database is copied from (``CREATE DATABASE ... TEMPLATE``): a copy costs a fraction
    of running the migrations again. Built once for all test processes (an advisory lock
    lets the first build it); templates of other migrations are dropped."""
    name = f"alu_template_{_migrations_digest()}"
    with pg_admin.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": TEMPLATE_LOCK})
        try:
            templates = (
                connection.execute(
                    text("SELECT datname FROM pg_database WHERE datname LIKE 'alu\\_template\\_%'")
                )
                .scalars()
                .all()
            )
            for old in templates:
                if old != name:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)'))
            if name not in templates:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
                engine = create_engine(_database_url(name), poolclass=NullPool)
                migrate(engine)
                engine.dispose()  # a template must have no connections when it is copied
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": TEMPLATE_LOCK})
    return name


def _migrations_digest() -> str:
    folder = MIGRATIONS
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture
def pg_url(pg_admin: Any, pg_template: str) -> Iterator[str]:
    """A brand-new PostgreSQL database for one test, migrated (a copy of the template)."""
    name = f"alu_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    yield _database_url(name)
    with pg_admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("pg_url")


@dataclass
class LedgerEnv:
    """A fresh, initialised ledger plus helpers to act as its participants."""

    ledger: Ledger
    settings: Settings
    operator_key: Ed25519PrivateKey
    participant_keys: dict[str, Ed25519PrivateKey] = field(default_factory=dict)

    def register(self, participant_id: str, role: str, **extra: str) -> Ed25519PrivateKey:
        key = keys.generate()
        payload = {
            "participant_id": participant_id,
            "legal_name": extra.get("legal_name", f"{participant_id} Co., Ltd."),
            "role": role,
            "country": extra.get("country", "CN"),
            "region": extra.get("region", "CN-YN"),
            "public_key": keys.public_key_b64(key),
        }
        self.append("participant.register", payload, self.operator_key)
        self.participant_keys[participant_id] = key
        return key

    def append(self, kind: str, payload: dict[str, Any], key: Ed25519PrivateKey) -> Appended:
        return self.ledger.append(sign_statement(kind, payload, key))

    def attest(self, key: Ed25519PrivateKey, n: int = 1) -> list[Appended]:
        return self.ledger.append_many([attestation(key, i) for i in range(n)])


def attestation(key: Ed25519PrivateKey, i: int = 0) -> statements.SignedStatement:
    payload = {"sha256": f"{i:064x}", "media_type": "application/pdf", "title": f"report {i}"}
    return sign_statement("document.attest", payload, key)


def make_env(database_url: str, data_dir: Path) -> LedgerEnv:
    settings = Settings(data_dir=data_dir, database_url=database_url)
    result = init_ledger(settings)
    operator_key = keys.read_private_key(result.operator_key_path)
    return LedgerEnv(result.ledger, settings, operator_key)


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> Iterator[LedgerEnv]:
    ledger_env = make_env(database_url, tmp_path / "data")
    yield ledger_env
    ledger_env.ledger.engine.dispose()


@pytest.fixture
def grown(env: LedgerEnv) -> LedgerEnv:
    """A ledger of 1 + 1 + 200 records in a few appends (so several checkpoints)."""
    key = env.register("proof-smelter", "smelter")
    for _ in range(4):
        env.attest(key, 50)
    return env


@pytest.fixture
def sqlite_env(tmp_path: Path) -> Iterator[LedgerEnv]:
    ledger_env = make_env(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "data")
    yield ledger_env
    ledger_env.ledger.engine.dispose()
