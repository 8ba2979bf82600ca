"""Proofs served from the node cache: committed tree nodes kept in memory, so a proof a
process has the nodes for needs no query at all, and one it half has reads only the rest.

A stored node never changes once committed, so the cache needs no invalidation; these
tests check that what it serves equals what the database holds, that it stays within its
bound, and that it never keeps what the proof code would refuse.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from api.app import create_app
from ledger import merkle
from ledger.errors import NotFoundError
from ledger.node_cache import NodeCache
from tests.conftest import LedgerEnv
from tests.test_proof_speed import node_statements


def test_a_proof_asked_again_reads_nothing(grown: LedgerEnv) -> None:
    ledger, size = grown.ledger, grown.ledger.tree_size()
    with node_statements(ledger.engine) as statements:
        first = ledger.inclusion_proof(57, size)
        again = ledger.inclusion_proof(57, size)
        from_memory = ledger.cached_inclusion_proof(57, size)
    assert len(statements) == 1
    assert first == again == from_memory


def test_a_proof_that_shares_nodes_reads_only_the_others(grown: LedgerEnv) -> None:
    ledger, size = grown.ledger, grown.ledger.tree_size()
    ledger.inclusion_proof(0, size)
    wanted = merkle.plan_ids(merkle.inclusion_proof_nodes(1, size))
    with node_statements(ledger.engine) as statements:
        proof = ledger.inclusion_proof(1, size)
    (_, params), *_ = statements
    # leaf 1's proof shares every node but one with leaf 0's: the sibling leaf 0 itself
    assert len(statements) == 1 and len(params) == 2 < 2 * len(wanted)
    uncached = NodeCache(0)
    ledger.nodes, cached_nodes = uncached, ledger.nodes
    assert ledger.inclusion_proof(1, size) == proof
    ledger.nodes = cached_nodes


def test_memory_alone_answers_only_what_it_holds(grown: LedgerEnv) -> None:
    ledger, size = grown.ledger, grown.ledger.tree_size()
    assert ledger.cached_inclusion_proof(3, None) is None  # the current size needs a read
    assert ledger.cached_inclusion_proof(3, size) is None  # nothing cached yet
    ledger.inclusion_proof(3, size)
    assert ledger.cached_inclusion_proof(3, size) == ledger.inclusion_proof(3, size)
    assert ledger.cached_inclusion_proof(3, size + 1) is None  # a size this process never saw
    with pytest.raises(NotFoundError):
        ledger.cached_inclusion_proof(size, size)


def test_the_cache_keeps_at_most_its_entries(grown: LedgerEnv) -> None:
    ledger, size = grown.ledger, grown.ledger.tree_size()
    ledger.nodes = NodeCache(8)
    leaves = [ledger.record(index).leaf for index in range(size)]
    _, frontier = merkle.tree_from_leaves(merkle.leaf_hash(leaf) for leaf in leaves)
    for index in range(size):
        proof = ledger.inclusion_proof(index, size)
        merkle.verify_inclusion(
            merkle.leaf_hash(leaves[index]), index, size, proof.hashes, frontier.root()
        )
        assert len(ledger.nodes) <= 8


@pytest.fixture
def client(grown: LedgerEnv) -> Iterator[TestClient]:
    with TestClient(create_app(grown.ledger)) as test_client:
        yield test_client


def test_the_proof_route_answers_from_memory_once_it_has_read(
    client: TestClient, grown: LedgerEnv
) -> None:
    size = grown.ledger.tree_size()
    with node_statements(grown.ledger.engine) as statements:
        answers = [client.get(f"/v1/proofs/inclusion/12?tree_size={size}") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert answers[0].json() == answers[1].json() == answers[2].json()
    assert len(statements) == 1
    outside = client.get(f"/v1/proofs/inclusion/{size}?tree_size={size}")
    assert outside.status_code == 404 and outside.json()["field"] == "index"


def test_proofs_that_must_read_are_read_together_and_refused_alone(grown: LedgerEnv) -> None:
    """Requests whose nodes are not in memory wait for one reader, which reads the nodes
    of every proof queued in one query; a proof outside the tree is refused alone."""
    ledger, size = grown.ledger, grown.ledger.tree_size()
    ledger.nodes = NodeCache(0)  # every proof must read
    app = create_app(ledger)
    indexes = [5, 60, 120, size, 199]
    held, release = threading.Event(), threading.Event()

    def hold_the_first(*_: Any) -> None:
        if not held.is_set():
            held.set()
            assert release.wait(10)

    async def ask() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as http:
            first = asyncio.ensure_future(http.get(f"/v1/proofs/inclusion/0?tree_size={size}"))
            assert await asyncio.to_thread(held.wait, 10)
            rest = [
                asyncio.ensure_future(http.get(f"/v1/proofs/inclusion/{i}?tree_size={size}"))
                for i in indexes
            ]
            await asyncio.sleep(0.1)  # all queued behind the held read
            release.set()
            return list(await asyncio.gather(first, *rest))

    with node_statements(ledger.engine) as statements:
        event.listen(ledger.engine, "before_cursor_execute", hold_the_first)
        try:
            answers = asyncio.run(ask())
        finally:
            event.remove(ledger.engine, "before_cursor_execute", hold_the_first)
            app.state.proof_reads.close()
    assert len(statements) == 2  # the first proof alone, then the five together
    for index, answer in zip([0, *indexes], answers, strict=True):
        if index == size:
            assert answer.status_code == 404 and answer.json()["field"] == "index"
        else:
            assert answer.status_code == 200
            assert answer.json() == ledger.inclusion_proof(index, size).inclusion_json()
