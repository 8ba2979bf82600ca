"""``alu-ledger verify`` audits with the log's public key alone, from a folder holding
nothing of the ledger, over a read-only connection: the database is the same byte for byte
afterwards, a missing database is refused rather than created, and a forged checkpoint
still fails."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.storage.db import make_engine
from tests.conftest import LedgerEnv, make_env
from tests.support import CliLedger


@pytest.fixture
def ledger_file(tmp_path: Path) -> tuple[LedgerEnv, Path]:
    database = tmp_path / "operator" / "ledger.db"
    env = make_env(f"sqlite:///{database}", tmp_path / "operator" / "data")
    key = env.register("yunnan-hydro", "smelter")
    env.attest(key, 5)
    env.ledger.engine.dispose()
    return env, database


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_auditor_needs_only_the_public_key_and_writes_nothing(
    ledger_file: tuple[LedgerEnv, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, database = ledger_file
    empty = tmp_path / "auditor"
    empty.mkdir()
    monkeypatch.chdir(empty)  # no data directory, no log key: only what is passed
    before = digest(database)
    url = f"sqlite:///{database}"

    result = CliLedger(empty).run("verify", "--log-key", env.ledger.verifier_key, "--database", url)

    assert result.exit_code == 0, result.output
    assert "ok: 7 records verified against checkpoint 7" in result.output
    assert digest(database) == before
    assert not (empty / "data").exists()


def test_a_missing_database_is_refused_not_created(tmp_path: Path) -> None:
    absent = tmp_path / "nothing-here.db"
    key = make_env(f"sqlite:///{tmp_path / 'l.db'}", tmp_path / "data").ledger.verifier_key
    result = CliLedger(tmp_path).run(
        "verify", "--log-key", key, "--database", f"sqlite:///{absent}"
    )
    assert "no SQLite database" in CliLedger.error_line(result)
    assert not absent.exists()


def test_the_wrong_key_fails_the_audit(ledger_file: tuple[LedgerEnv, Path], tmp_path: Path) -> None:
    _, database = ledger_file
    other = make_env(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "other")
    key, url = other.ledger.verifier_key, f"sqlite:///{database}"
    result = CliLedger(tmp_path).run("verify", "--log-key", key, "--database", url)
    assert result.exit_code == 1
    assert "FAILED" in result.stderr and "checkpoint" in result.stderr


def test_a_read_only_engine_refuses_writes(database_url: str, tmp_path: Path) -> None:
    make_env(database_url, tmp_path / "data").ledger.engine.dispose()
    engine = make_engine(database_url, read_only=True)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM records")).scalar() == 1  # genesis
        with pytest.raises(Exception, match=r"(?i)read.only|readonly"):
            connection.execute(text("DELETE FROM records"))
    engine.dispose()
