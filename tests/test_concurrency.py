"""Concurrent writers: the log stays one dense, hash-chained, consistent history.

Appends lock the log head for their whole transaction, so writers in separate
processes (PostgreSQL) or threads (SQLite) queue instead of interleaving. After
many writers have appended at once - single statements and bulks mixed - the
ledger must hold every statement exactly once, at dense indexes, each ``prev``
linking to the record before, one checkpoint per committed append, every
checkpoint consistent with the final one, and the full audit must pass.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import threading
import traceback
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from ledger import keys, merkle, statements
from ledger.audit import Auditor
from ledger.bootstrap import open_ledger
from ledger.checkpoints import open_checkpoint
from ledger.disclosure.sign import sign_statement
from ledger.log import Ledger
from ledger.records import GENESIS_PREV
from ledger.settings import Settings
from tests.conftest import LedgerEnv, make_env

PROCESSES = 8
PER_PROCESS = 500
THREADS = 4
PER_THREAD = 100


def statement(key: Any, writer: int, n: int) -> statements.SignedStatement:
    payload = {
        "sha256": f"{writer:08x}{n:056x}",
        "media_type": "application/pdf",
        "title": f"writer {writer} document {n}",
    }
    return sign_statement("document.attest", payload, key)


def write_mixed(ledger: Ledger, key: Any, writer: int, total: int) -> tuple[list[int], int]:
    """Append ``total`` statements as a deterministic mix of singles and bulks of 10-50.

    Returns the indexes the ledger assigned, in submission order, and the number
    of append transactions made.
    """
    rng = random.Random(writer)
    indexes: list[int] = []
    transactions = 0
    while len(indexes) < total:
        left = total - len(indexes)
        if rng.random() < 0.5:
            size = min(left, rng.randint(10, 50))
            batch = [statement(key, writer, len(indexes) + i) for i in range(size)]
            indexes.extend(a.index for a in ledger.append_many(batch))
        else:
            indexes.append(ledger.append(statement(key, writer, len(indexes))).index)
        transactions += 1
    return indexes, transactions


def writer_process(
    data_dir: str, database_url: str, key_path: str, writer: int, start: Any, results: Any
) -> None:
    """One writer process: its own engine, log key and kind registry, from settings."""
    try:
        ledger = open_ledger(Settings(data_dir=Path(data_dir), database_url=database_url))
        key = keys.read_private_key(Path(key_path))
        start.wait(timeout=120)
        indexes, transactions = write_mixed(ledger, key, writer, PER_PROCESS)
        ledger.engine.dispose()
        results.put((writer, indexes, transactions, None))
    except BaseException:
        results.put((writer, [], 0, traceback.format_exc()))


def register_writers(env: LedgerEnv, count: int) -> list[Any]:
    return [env.register(f"smelter-{i:02d}", "smelter") for i in range(count)]


def assert_one_consistent_history(
    ledger: Ledger, expected_size: int, expected_checkpoints: int, spot_checks: int = 20
) -> None:
    """Dense indexes, linked ``prev``, a checkpoint per append, all consistent, audit OK."""
    assert ledger.tree_size() == expected_size
    with ledger.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT idx, leaf, leaf_hash FROM records ORDER BY idx")
        ).all()
        sizes = [
            size
            for (size,) in connection.execute(text("SELECT size FROM checkpoints ORDER BY size"))
        ]
    assert [row.idx for row in rows] == list(range(expected_size))
    previous = GENESIS_PREV
    for row in rows:
        record = json.loads(bytes(row.leaf))
        assert record["index"] == row.idx
        assert record["prev"] == previous, f"record {row.idx} does not link to {row.idx - 1}"
        assert bytes(row.leaf_hash) == merkle.leaf_hash(bytes(row.leaf))
        previous = bytes(row.leaf_hash).hex()

    assert len(sizes) == expected_checkpoints
    assert sizes[-1] == expected_size
    final = open_checkpoint(ledger.latest_checkpoint(), ledger.verifier)
    assert final.size == expected_size
    step = max(1, len(sizes) // spot_checks)
    with ledger.engine.connect() as connection:
        for size in sizes[::step]:
            note = connection.execute(
                text("SELECT note FROM checkpoints WHERE size = :s"), {"s": size}
            ).scalar_one()
            old = open_checkpoint(note, ledger.verifier)
            assert old.size == size
            proof = ledger.consistency_proof(old.size, final.size)
            merkle.verify_consistency(old.size, final.size, proof.hashes, old.root, final.root)

    report = Auditor(ledger.engine, ledger.verifier, workers=1).run()
    assert report.ok, report.problem
    assert report.records == expected_size


@pytest.mark.postgres
@pytest.mark.slow
def test_eight_writer_processes_build_one_history_on_postgresql(
    pg_url: str, tmp_path: Path
) -> None:
    env = make_env(pg_url, tmp_path / "data")
    writer_keys = register_writers(env, PROCESSES)
    key_paths = []
    for i, key in enumerate(writer_keys):
        path = tmp_path / f"writer-{i}.pem"
        keys.write_private_key(key, path)
        key_paths.append(path)
    setup_transactions = env.ledger.tree_size()  # genesis and each registration: one each
    env.ledger.engine.dispose()

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    processes = [
        ctx.Process(
            target=writer_process,
            args=(str(env.settings.data_dir), pg_url, str(key_paths[i]), i, start, results),
        )
        for i in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    errors = [error for _, _, _, error in outcomes if error]
    assert not errors, errors[0]
    all_indexes: list[int] = []
    for _writer, indexes, _transactions, _ in outcomes:
        assert len(indexes) == PER_PROCESS
        assert indexes == sorted(indexes), "one writer's appends must keep their order"
        all_indexes.extend(indexes)
    first = 1 + PROCESSES
    assert sorted(all_indexes) == list(range(first, first + PROCESSES * PER_PROCESS))

    ledger = open_ledger(env.settings)
    with ledger.engine.connect() as connection:
        signers = dict(connection.execute(text("SELECT idx, signer FROM records")).all())
    for writer, indexes, _, _ in outcomes:
        expected_signer = keys.key_id(writer_keys[writer])
        assert {signers[i] for i in indexes} == {expected_signer}

    transactions = sum(t for _, _, t, _ in outcomes)
    assert_one_consistent_history(
        ledger, first + PROCESSES * PER_PROCESS, setup_transactions + transactions
    )
    ledger.engine.dispose()


def test_four_writer_threads_build_one_history_on_sqlite(sqlite_env: LedgerEnv) -> None:
    writer_keys = register_writers(sqlite_env, THREADS)
    setup_transactions = sqlite_env.ledger.tree_size()
    start = threading.Barrier(THREADS)
    outcomes: dict[int, tuple[list[int], int]] = {}
    failures: list[str] = []

    def write(writer: int) -> None:
        try:
            start.wait(timeout=60)
            outcomes[writer] = write_mixed(
                sqlite_env.ledger, writer_keys[writer], writer, PER_THREAD
            )
        except BaseException:
            failures.append(traceback.format_exc())

    threads = [threading.Thread(target=write, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, failures[0]
    assert sorted(outcomes) == list(range(THREADS))

    first = 1 + THREADS
    all_indexes = sorted(i for indexes, _ in outcomes.values() for i in indexes)
    assert all_indexes == list(range(first, first + THREADS * PER_THREAD))
    transactions = sum(t for _, t in outcomes.values())
    assert_one_consistent_history(
        sqlite_env.ledger, first + THREADS * PER_THREAD, setup_transactions + transactions
    )
