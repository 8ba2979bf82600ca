"""The CLI's read commands work for a buyer with no ledger of their own: with ``--server``
they read a ledger server's REST API and print what the same command prints on the
operator's database; without it, in a folder with no ledger, they say to use ``--server``
(not to create a ledger)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from ledger.demo import load_demo
from ledger.storage.db import read_session
from ledger.storage.tables import GradeRow
from ledger.tokens import issue_token
from tests.conftest import LedgerEnv, make_env
from tests.support import CliLedger, serving

BATCH = ("yn-lancang-aluminium", "YN-2025-0001")


@dataclass
class Site:
    env: LedgerEnv
    url: str
    buyer_token: str
    grade: int
    operator: CliLedger  # runs commands on the ledger's own database and data directory


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("cli-server")
    env = make_env(f"sqlite:///{tmp / 'ledger.db'}", tmp / "data")
    load_demo(env.ledger, env.settings, tmp / "keys")
    token = issue_token(env.ledger.engine, "foshan-extrusion").token
    with read_session(env.ledger.engine) as session:
        grade = session.exec(select(GradeRow.record_index)).first()
    assert grade is not None
    with serving(env.ledger) as url:
        yield Site(env, url, token, grade, CliLedger(tmp))
    env.ledger.engine.dispose()


@pytest.fixture
def buyer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliLedger:
    """A buyer's CLI in an empty folder: no data directory, no database, no keys."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEDGER_DATA_DIR", raising=False)
    monkeypatch.delenv("LEDGER_DATABASE_URL", raising=False)
    return CliLedger(tmp_path)


def output(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["checkpoint"],
        ["record", "3"],
        ["proof", "inclusion", "3", "--tree-size", "20"],
        ["proof", "consistency", "7", "20"],
        ["custody", "show", *BATCH],
        ["lineage", *BATCH, "--direction", "down"],
    ],
    ids=lambda command: " ".join(command),
)
def test_a_read_over_a_server_prints_what_the_operator_reads(
    site: Site, buyer: CliLedger, command: list[str]
) -> None:
    remote = output(buyer.run(*command, "--server", site.url, "--token", site.buyer_token))
    local = output(site.operator.ledger(*command))
    assert remote == local


def test_a_buyer_reads_a_batch_as_their_participant(site: Site, buyer: CliLedger) -> None:
    server = ("--server", site.url, "--token", site.buyer_token)
    remote = json.loads(output(buyer.run("batch", "show", *BATCH, *server)))
    operator = json.loads(output(site.operator.ledger("batch", "show", *BATCH)))
    assert remote["record"] == operator["record"]
    assert operator["disclosed"] is True
    assert remote["disclosed"] is False  # the smelter granted the demo buyer nothing


def test_a_certificate_fetched_from_a_server_verifies_offline(
    site: Site, buyer: CliLedger, tmp_path: Path
) -> None:
    bundle = tmp_path / "certificate.json"
    fetched = buyer.run(
        "certificate", "get", str(site.grade), "--server", site.url, "--output", bundle
    )
    assert fetched.exit_code == 0, fetched.output
    key = site.env.ledger.verifier_key
    verified = buyer.run("certificate", "verify", bundle, "--log-key", key, "--json")
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["status"] == "valid"


@pytest.mark.parametrize(
    "command",
    [
        ["batch", "show", *BATCH],
        ["certificate", "get", "53"],
        ["record", "1"],
        ["checkpoint"],
        ["custody", "show", *BATCH],
    ],
    ids=lambda command: " ".join(command),
)
def test_without_a_ledger_a_read_points_to_server_not_init(
    buyer: CliLedger, command: list[str]
) -> None:
    line = CliLedger.error_line(buyer.run(*command))
    assert "--server" in line and "init" not in line
    assert not (buyer.tmp / "data").exists()  # nothing was created


def test_an_unreachable_server_is_one_readable_line(buyer: CliLedger) -> None:
    line = CliLedger.error_line(buyer.run("record", "1", "--server", "http://127.0.0.1:9"))
    assert "http://127.0.0.1:9" in line


def test_a_refusal_from_the_server_is_its_error_line(site: Site, buyer: CliLedger) -> None:
    line = CliLedger.error_line(buyer.run("record", "999999", "--server", site.url))
    assert "no record with index 999999" in line
