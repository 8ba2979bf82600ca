"""Proofs read their stored nodes with one prepared query of primary-key seeks.

A proof's nodes were once read through a SQLAlchemy ``OR`` expression rebuilt and
compiled on every call, twenty times the cost of the query itself. The query is now
plain SQL, one text per dialect and node count. These tests check, on SQLite and
PostgreSQL, that it is one statement per proof, that the database answers it with index
seeks (never a scan), and that the proofs it serves equal the RFC 9162 recursion computed
here from the records' leaf hashes alone and verify with it.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from ledger import merkle
from ledger.errors import NotFoundError, ProofError
from ledger.log import Proof
from ledger.node_cache import NodeCache
from ledger.storage import repository
from ledger.storage.db import read_session
from ledger.storage.repository import Repository, _node_query
from tests.conftest import LedgerEnv

# --- an independent RFC 9162 reference (hashlib only, no ledger.merkle) ----------------


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _k(len(leaves))
    return _node(_mth(leaves[:k]), _mth(leaves[k:]))


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _k(len(leaves))
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


def _subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    if m == len(leaves):
        return [] if whole else [_mth(leaves)]
    k = _k(len(leaves))
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), _mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), _mth(leaves[:k])]


def _leaf_hashes(env: LedgerEnv, size: int) -> list[bytes]:
    leaves = []
    for index in range(size):
        leaf = env.ledger.record(index).leaf
        leaves.append(hashlib.sha256(b"\x00" + leaf).digest())
    return leaves


@contextmanager
def node_statements(engine: Any) -> Iterator[list[tuple[str, Any]]]:
    """Every statement that reads ``merkle_nodes``, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def capture(_c: Any, _cursor: Any, statement: str, params: Any, _x: Any, _m: bool) -> None:
        if "merkle_nodes" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def test_proofs_equal_the_rfc_recursion_and_verify(grown: LedgerEnv) -> None:
    ledger = grown.ledger
    size = ledger.tree_size()
    leaves = _leaf_hashes(grown, size)
    for tree_size in (1, 2, 3, 64, 65, 127, 128, 129, size - 1, size):
        root = _mth(leaves[:tree_size])
        for index in {0, tree_size // 3, tree_size // 2, tree_size - 1}:
            proof = ledger.inclusion_proof(index, tree_size)
            assert proof.hashes == _path(index, leaves[:tree_size])
            merkle.verify_inclusion(leaves[index], index, tree_size, proof.hashes, root)
    for old, new in ((1, size), (2, 3), (64, 128), (65, size), (100, 129), (size - 1, size)):
        proof = ledger.consistency_proof(old, new)
        assert proof.hashes == _subproof(old, leaves[:new], True)
        old_root, new_root = _mth(leaves[:old]), _mth(leaves[:new])
        merkle.verify_consistency(old, new, proof.hashes, old_root, new_root)


def _ids_read(params: Any) -> int:
    """How many node ids a node query's parameters name (SQLite binds a level and an
    index for each; PostgreSQL two arrays)."""
    return len(params[0]) if isinstance(params[0], list) else len(params) // 2


def test_a_proof_reads_its_nodes_with_one_statement_of_index_seeks(grown: LedgerEnv) -> None:
    grown.ledger.nodes = NodeCache(0)  # without the node cache every proof reads them all
    engine = grown.ledger.engine
    size = grown.ledger.tree_size()
    with node_statements(engine) as statements:
        grown.ledger.inclusion_proof(77, size)
        grown.ledger.inclusion_proof(78, size)
    assert len(statements) == 2
    (first, params), (second, _) = statements
    assert first == second  # prepared once, not rebuilt per call
    assert _ids_read(params) == len(merkle.plan_ids(merkle.inclusion_proof_nodes(77, size)))
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {first}", params).all()
        lines = [row[3] for row in plan]
        assert not [line for line in lines if line.startswith("SCAN")], lines
        assert any("SEARCH merkle_nodes USING INDEX" in line for line in lines), lines
    else:
        with engine.connect() as connection:
            connection.execute(text("SET enable_seqscan = off"))
            plan = connection.exec_driver_sql(f"EXPLAIN {first}", params).all()
        lines = " ".join(row[0] for row in plan)
        assert "Seq Scan" not in lines, lines
        assert re.search(r"Index Scan (using|on) merkle_nodes_pkey", lines), lines


def test_proofs_read_together_take_one_statement_and_fail_alone(grown: LedgerEnv) -> None:
    """A batch of proofs (what the server's proof reader hands the ledger) reads the nodes
    of all in one statement; a proof that cannot be is refused alone."""
    ledger = grown.ledger
    ledger.nodes = NodeCache(0)
    size = ledger.tree_size()
    wanted = [(77, size), (150, None), (3, 64), (size, size), (5, size + 100), (199, size)]
    with node_statements(ledger.engine) as statements:
        answers = ledger.inclusion_proofs(wanted)
    assert len(statements) == 1
    for (index, tree_size), answer in zip(wanted, answers, strict=True):
        if index >= (tree_size or size) or (tree_size or 0) > size:
            assert isinstance(answer, NotFoundError), answer
        else:
            assert answer == ledger.inclusion_proof(index, tree_size)
            assert answer.tree_size == (tree_size or size)
    assert answers[4].field == "tree_size" and answers[3].field == "index"


def test_a_missing_node_fails_only_the_proofs_that_need_it(grown: LedgerEnv) -> None:
    ledger = grown.ledger
    ledger.nodes = NodeCache(0)
    with ledger.engine.begin() as connection:
        connection.execute(text("DELETE FROM merkle_nodes WHERE level = 0 AND idx = 5"))
    size = ledger.tree_size()
    with read_session(ledger.engine) as session:
        assert set(Repository(session).read_nodes([(0, 4), (0, 5), (1, 0)])) == {(0, 4), (1, 0)}
    refused, served = ledger.inclusion_proofs([(4, size), (100, size)])
    assert isinstance(refused, ProofError) and "lacks node (0, 5)" in str(refused)
    assert isinstance(served, Proof) and served.index_or_old == 100
    with pytest.raises(ProofError, match=r"lacks node \(0, 5\)"):
        ledger.inclusion_proof(4, size)


def test_a_long_read_is_split_into_bounded_queries(
    grown: LedgerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repository, "NODES_PER_QUERY", 4)
    ids = [(0, index) for index in range(10)]
    engine = grown.ledger.engine
    with node_statements(engine) as statements, read_session(engine) as session:
        found = Repository(session).read_nodes(ids)
    assert set(found) == set(ids)
    assert [_ids_read(params) for _, params in statements] == [4, 4, 2]


def test_a_garbled_stored_node_is_a_proof_error(grown: LedgerEnv) -> None:
    """However the nodes travel from the database, a hash of the wrong length is caught,
    each time it is read: the node cache never keeps it."""
    with grown.ledger.engine.begin() as connection:
        connection.execute(
            text("UPDATE merkle_nodes SET hash = :h WHERE level = 0 AND idx = 5"),
            {"h": b"\x01" * 31},
        )
    size = grown.ledger.tree_size()
    for _ in range(2):
        with pytest.raises(ProofError, match="31-byte hash for node"):
            grown.ledger.inclusion_proof(4, size)
    assert grown.ledger.cached_inclusion_proof(4, size) is None
    assert len(grown.ledger.inclusion_proof(100, size).hashes) > 0


def test_the_largest_node_query_still_seeks(tmp_path: Path) -> None:
    """The SQLite query text for the most nodes one query asks for (a batch of proofs'
    nodes) still seeks: no scan creeps in as the OR grows."""
    count = repository.NODES_PER_QUERY
    sql = _node_query("sqlite", count)
    with sqlite3.connect(tmp_path / "nodes.db") as connection:
        connection.execute(
            "CREATE TABLE merkle_nodes (level SMALLINT NOT NULL, idx BIGINT NOT NULL,"
            " hash BLOB NOT NULL, PRIMARY KEY (level, idx))"
        )
        plan = connection.execute(f"EXPLAIN QUERY PLAN {sql}", list(range(2 * count))).fetchall()
    lines = [row[3] for row in plan]
    assert not [line for line in lines if line.startswith("SCAN")]
