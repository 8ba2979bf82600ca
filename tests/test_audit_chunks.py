"""The parallel audit: workers read their own chunks and send back subtrees, not rows.

Chunks are ``ledger.audit.CHUNK`` records (a power of two, small here); a worker process
reads its chunk by index range, checks it, and returns the chunk's complete subtrees and,
for each stored checkpoint inside it, the hash of the chunk's leaves up to there. These
tests check, on SQLite and PostgreSQL, that the parent folding those finds the same
problems at the same indexes as the audit run in one process, including checkpoints that
fall inside a chunk, on its boundary, and records missing at a chunk's end.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

import ledger.audit
from ledger import merkle
from ledger.audit import Auditor, AuditReport, Problem, check_chunk
from tests.conftest import LedgerEnv, attestation

CHUNK = 16


@pytest.fixture
def chunked(env: LedgerEnv, monkeypatch: pytest.MonkeyPatch) -> LedgerEnv:
    """99 records: single appends (a checkpoint each) around bulks of 7 and 15, so stored
    checkpoints fall inside chunks, on chunk boundaries, and a bulk spans a boundary."""
    monkeypatch.setattr(ledger.audit, "PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(ledger.audit, "CHUNK", CHUNK)
    key = env.register("chunk-smelter", "smelter")
    n = 0
    while env.ledger.tree_size() < 99:
        size = env.ledger.tree_size()
        count = {10: 7, 35: 15}.get(size, 1)
        env.ledger.append_many([attestation(key, n + i) for i in range(count)])
        n += count
    assert env.ledger.tree_size() == 99
    return env


def audits(env: LedgerEnv) -> tuple[AuditReport, AuditReport]:
    """The same audit in one process and with two worker processes."""
    inline = Auditor(env.ledger.engine, env.ledger.verifier, workers=1).run()
    parallel = Auditor(env.ledger.engine, env.ledger.verifier, workers=2).run()
    return inline, parallel


def run_sql(env: LedgerEnv, sql: str, **params: Any) -> None:
    with env.ledger.engine.begin() as connection:
        connection.execute(text(sql), params)


def test_a_sound_ledger_passes_both_ways_with_progress_per_chunk(chunked: LedgerEnv) -> None:
    seen: list[int] = []
    report = Auditor(
        chunked.ledger.engine, chunked.ledger.verifier, workers=2, on_progress=seen.append
    ).run()
    assert report == AuditReport(99, 99, None)
    assert seen == [16, 32, 48, 64, 80, 96, 99]
    assert audits(chunked) == (report, report)


@pytest.mark.parametrize("size", [5, 17, 32, 35, 50, 64, 98])
def test_a_stored_checkpoint_root_is_checked_wherever_it_falls(
    chunked: LedgerEnv, size: int
) -> None:
    """Inside a chunk (5, 35, 50 ending a bulk, 98), at its end (32, 64), after its first
    record (17, ending a bulk that began in the chunk before)."""
    with chunked.ledger.engine.connect() as connection:
        sizes = sorted(row[0] for row in connection.execute(text("SELECT size FROM checkpoints")))
    assert size in sizes
    run_sql(chunked, "UPDATE checkpoints SET root = :r WHERE size = :s", r=b"\x07" * 32, s=size)
    previous = sizes[sizes.index(size) - 1]
    expected = Problem(
        previous,
        f"checkpoint at size {size} has a different root: "
        f"a record in [{previous}, {size}) changed after it was signed",
    )
    inline, parallel = audits(chunked)
    assert inline == parallel
    assert inline.problem == expected


@pytest.mark.parametrize("index", [0, 15, 16, 40, 98])
def test_a_missing_record_is_named_both_ways(chunked: LedgerEnv, index: int) -> None:
    run_sql(chunked, "DELETE FROM records WHERE idx = :i", i=index)
    inline, parallel = audits(chunked)
    assert inline == parallel
    assert inline.problem is not None and inline.problem.index == index
    assert "record is missing" in inline.problem.reason
    assert inline.records == index


def test_a_changed_record_at_a_chunk_end_is_found_in_its_chunk(chunked: LedgerEnv) -> None:
    """Record 31, the last of its chunk, rewritten with a matching leaf hash: found in its
    chunk (its signature), before the next chunk's link to it is looked at."""
    with chunked.ledger.engine.connect() as connection:
        leaf = connection.execute(text("SELECT leaf FROM records WHERE idx = 31")).scalar_one()
    changed = bytes(leaf).replace(b'"title":"report', b'"title":"REPORT')
    assert changed != bytes(leaf)
    run_sql(
        chunked,
        "UPDATE records SET leaf = :leaf, leaf_hash = :h WHERE idx = 31",
        leaf=changed,
        h=merkle.leaf_hash(changed),
    )
    inline, parallel = audits(chunked)
    assert inline == parallel
    assert inline.problem == Problem(31, "signature does not verify")


def test_a_chunk_returns_subtrees_and_checkpoint_hashes_not_rows() -> None:
    """What crosses the process boundary is a few hashes per chunk, however many rows."""
    leaves = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(40)]
    whole = merkle.Frontier.empty()
    roots = []
    for digest in leaves:
        whole.append(digest)
        roots.append(whole.root())
    tree = merkle.Frontier.empty()
    for start in range(0, 40, 16):
        part = leaves[start : start + 16]
        local = merkle.Frontier.empty()
        local.extend(part)
        for level, digest in ((lv, h) for (lv, _), h in local.nodes):
            tree.append_subtree(level, digest)
        assert tree.root() == roots[start + len(part) - 1]
    assert tree.nodes == whole.nodes
    # A stored checkpoint at 21 lies inside the chunk [16, 32): the chunk's hash of
    # leaves [16, 21) after the tree of the first 16 leaves gives the root at 21.
    first = merkle.Frontier.empty()
    first.extend(leaves[:16])
    tail = merkle.Frontier.empty()
    tail.extend(leaves[16:21])
    assert first.root_followed_by(tail.root()) == roots[20]


def test_an_unaligned_subtree_is_refused() -> None:
    tree = merkle.Frontier.empty()
    tree.append(merkle.leaf_hash(b"x"))
    with pytest.raises(ValueError, match="not aligned"):
        tree.append_subtree(1, b"\x00" * 32)


def test_check_chunk_reports_a_short_chunk_as_missing() -> None:
    result = check_chunk(32, 48, [], (40,))
    assert result.problem == Problem(32, "record is missing")
    assert (result.checked, result.nodes, result.roots) == (0, (), ())
