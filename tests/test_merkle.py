"""RFC 9162 Merkle tree: external vectors, a naive reference, and storage access.

Why three angles: the transparency-dev vectors pin us to the standard (a
self-consistent but non-standard tree would pass every self-test); the naive
recursive MTH/PATH/PROOF straight from the RFC text checks every size and index
we can afford; the counting reader checks the storage promise (one batched read
of O(log n) nodes per proof), which is the reason this module exists.
"""

from __future__ import annotations

import base64
import json
import math
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.errors import ProofError
from ledger.merkle import (
    EMPTY_ROOT,
    AppendedNodes,
    Frontier,
    MemoryNodeStore,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    tree_from_leaves,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parent / "third_party" / "rfc9162"

# --- transparency-dev/merkle vectors --------------------------------------------------


def _vector_files(kind: str) -> list[Path]:
    """Every vector of a kind; a missing folder is a failure, never a silent skip."""
    folder = VECTORS / kind
    files = sorted(folder.rglob("*.json")) if folder.is_dir() else []
    return files or [folder / "MISSING"]


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _load(path: Path) -> dict:
    assert path.is_file(), f"RFC 9162 vectors not found at {path}"
    return json.loads(path.read_text())


def _vector_id(path: Path) -> str:
    return str(path.relative_to(VECTORS)) if path.is_relative_to(VECTORS) else str(path)


def test_vector_folders_are_complete():
    """Guard against a half-copied vector set silently shrinking the suite."""
    assert len(_vector_files("inclusion")) >= 90
    assert len(_vector_files("consistency")) >= 90
    assert (VECTORS / "inclusion" / "single-entry").is_dir()
    assert (VECTORS / "consistency" / "additional").is_dir()


def test_vector_leaf_index_is_zero_based():
    """inclusion/0/happy-path is the only leaf of a 1-leaf tree, at leafIdx 0."""
    case = _load(VECTORS / "inclusion" / "0" / "happy-path.json")
    assert (case["leafIdx"], case["treeSize"], case["wantErr"]) == (0, 1, False)
    assert case["root"] == case["leafHash"]


@pytest.mark.parametrize("path", _vector_files("inclusion"), ids=_vector_id)
def test_inclusion_vector(path: Path):
    case = _load(path)
    proof = [_b64(h) for h in case["proof"] or []]
    args = (_b64(case["leafHash"]), case["leafIdx"], case["treeSize"], proof, _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", _vector_files("consistency"), ids=_vector_id)
def test_consistency_vector(path: Path):
    case = _load(path)
    proof = [_b64(h) for h in case["proof"] or []]
    args = (case["size1"], case["size2"], proof, _b64(case["root1"]), _b64(case["root2"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


# --- naive reference, transcribed from RFC 9162 §2.1 -------------------------------------

MAX_LEAVES = 5000
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(MAX_LEAVES)]


def _k(n: int) -> int:
    """Largest power of two strictly smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def mth(lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) by the RFC recursion over all leaves."""
    if hi - lo == 0:
        return EMPTY_ROOT
    if hi - lo == 1:
        return LEAVES[lo]
    k = _k(hi - lo)
    return node_hash(mth(lo, lo + k), mth(lo + k, hi))


def ref_path(m: int, lo: int, hi: int) -> list[bytes]:
    """PATH(m, D[lo:hi]) of RFC 9162 §2.1.3.1, m relative to lo."""
    n = hi - lo
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, lo, lo + k), mth(lo + k, hi)]
    return [*ref_path(m - k, lo + k, hi), mth(lo, lo + k)]


def ref_subproof(m: int, lo: int, hi: int, b: bool) -> list[bytes]:
    """SUBPROOF(m, D[lo:hi], b) of RFC 9162 §2.1.4.1, m relative to lo."""
    n = hi - lo
    if m == n:
        return [] if b else [mth(lo, hi)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, lo, lo + k, b), mth(lo + k, hi)]
    return [*ref_subproof(m - k, lo + k, hi, False), mth(lo, lo + k)]


class CountingReader:
    """Wraps a store and records each read_nodes call."""

    def __init__(self, inner: MemoryNodeStore):
        self.inner = inner
        self.calls: list[list[tuple[int, int]]] = []

    def read_nodes(self, ids):
        self.calls.append(list(ids))
        return self.inner.read_nodes(ids)


def _id_budget(n: int) -> int:
    return int(2 * math.log2(n)) + 2 if n > 1 else 2


@pytest.fixture(scope="module")
def big_tree() -> tuple[MemoryNodeStore, Frontier]:
    return tree_from_leaves(LEAVES)


@pytest.fixture(scope="module")
def small_tree() -> tuple[MemoryNodeStore, Frontier]:
    return tree_from_leaves(LEAVES[:70])


def _check_inclusion(store: MemoryNodeStore, index: int, size: int) -> None:
    reader = CountingReader(store)
    proof = inclusion_proof(index, size, reader)
    assert proof == ref_path(index, 0, size)
    assert len(reader.calls) == (1 if proof else 0)
    assert all(len(call) <= _id_budget(size) for call in reader.calls)
    verify_inclusion(LEAVES[index], index, size, proof, mth(0, size))


def _check_consistency(store: MemoryNodeStore, old: int, new: int) -> None:
    reader = CountingReader(store)
    proof = consistency_proof(old, new, reader)
    assert proof == ref_subproof(old, 0, new, True)
    assert len(reader.calls) == (1 if proof else 0)
    assert all(len(call) <= _id_budget(new) for call in reader.calls)
    verify_consistency(old, new, proof, mth(0, old), mth(0, new))


# --- generated trees ------------------------------------------------------------------------


def test_roots_match_naive_mth_for_every_size(small_tree):
    """One store of 70 leaves answers for every past size: nodes never change."""
    store, frontier = small_tree
    assert merkle.root(0, store) == EMPTY_ROOT == Frontier.empty().root()
    assert frontier.root() == mth(0, 70)
    for size in range(1, 71):
        reader = CountingReader(store)
        assert merkle.root(size, reader) == mth(0, size)
        assert len(reader.calls) == 1
        assert len(reader.calls[0]) == bin(size).count("1")


def test_inclusion_every_index_of_every_size_up_to_70(small_tree):
    store, _ = small_tree
    for size in range(1, 71):
        for index in range(size):
            _check_inclusion(store, index, size)


def test_consistency_every_pair_up_to_40(small_tree):
    store, _ = small_tree
    for new in range(1, 41):
        for old in range(1, new + 1):
            _check_consistency(store, old, new)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_large_trees_random_proofs(big_tree, data):
    store, _ = big_tree
    size = data.draw(st.integers(1, MAX_LEAVES), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    old = data.draw(st.integers(1, size), label="old")
    _check_inclusion(store, index, size)
    _check_consistency(store, old, size)


def test_store_holds_exactly_the_complete_subtrees(big_tree):
    store, frontier = big_tree
    n = frontier.size
    assert len(store) == 2 * n - bin(n).count("1")
    assert frontier.root() == mth(0, n)


def test_append_returns_leaf_then_completed_parents():
    frontier = Frontier.empty()
    for i in range(9):
        created = frontier.append(LEAVES[i])
        assert created[0] == ((0, i), LEAVES[i])
        # Appending leaf i completes one parent per trailing 1-bit of i.
        assert len(created) == 1 + (((i + 1) & -(i + 1)).bit_length() - 1)
        for (level, index), h in created:
            start = index << level
            assert h == mth(start, start + (1 << level))
    assert frontier.size == 9
    assert [node_id for node_id, _ in frontier.nodes] == [(3, 0), (0, 8)]


def test_frontier_load_matches_the_writer_with_one_read(small_tree):
    store, _ = small_tree
    writer = Frontier.empty()
    for size in range(71):
        reader = CountingReader(store)
        loaded = Frontier.load(size, reader)
        assert loaded.nodes == writer.nodes
        assert loaded.root() == writer.root() == mth(0, size)
        assert len(reader.calls) == (1 if size else 0)
        if size < 70:
            writer.append(LEAVES[size])


def test_bulk_append_continues_a_loaded_tree():
    """The writer's path: load the frontier, stage a batch, insert its nodes at once."""
    store, _ = tree_from_leaves(LEAVES[:37])
    frontier = Frontier.load(37, store)
    staged = frontier.copy()
    new_nodes = staged.extend(LEAVES[37:64])
    assert frontier.size == 37  # the copy left the original untouched
    store.put(new_nodes)
    assert staged.size == 64 and staged.root() == mth(0, 64) == merkle.root(64, store)
    assert merkle.root(37, store) == mth(0, 37)


def test_the_writers_nodes_prove_every_appended_leaf():
    """``AppendedNodes``: the old frontier and the nodes an append completed answer the
    inclusion proof of every appended leaf in the grown tree, for every old size and
    group size up to 40 (the writer returns these proofs without reading the store)."""
    store, _ = tree_from_leaves(LEAVES[:70])
    for old in range(40):
        frontier = Frontier.load(old, store) if old else Frontier.empty()
        before = frontier.nodes
        for grown in range(old + 1, 41):
            created = frontier.copy().extend(LEAVES[old:grown])
            held = AppendedNodes(before, created)
            for index in range(old, grown):
                expected = merkle.inclusion_proof(index, grown, store)
                assert merkle.inclusion_proof(index, grown, held) == expected


def test_planning_functions_are_exposed():
    assert merkle.root_nodes(13) == [(3, 0), (2, 2), (0, 12)]
    assert merkle.inclusion_proof_nodes(0, 5) == [[(0, 1)], [(1, 1)], [(0, 4)]]
    assert merkle.consistency_proof_nodes(3, 7) == [
        [(0, 2)],
        [(0, 3)],
        [(1, 0)],
        [(1, 2), (0, 6)],
    ]


# --- storage faults and misuse ------------------------------------------------------------


def test_missing_node_is_a_proof_error():
    store, _ = tree_from_leaves(LEAVES[:8])
    partial = MemoryNodeStore(
        (node_id, h)
        for node_id, h in store.read_nodes([(lv, i) for lv in range(4) for i in range(8)]).items()
        if node_id != (1, 1)
    )
    with pytest.raises(ProofError, match=r"lacks node \(1, 1\)"):
        inclusion_proof(0, 8, partial)
    with pytest.raises(ProofError):
        Frontier.load(7, MemoryNodeStore())


def test_garbled_node_is_a_proof_error():
    class Garbled:
        def read_nodes(self, ids):
            return {node_id: b"short" for node_id in ids}

    with pytest.raises(ProofError, match="5-byte"):
        merkle.root(5, Garbled())


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (inclusion_proof, (5, 5)),
        (inclusion_proof, (-1, 5)),
        (inclusion_proof, (0, 0)),
        (consistency_proof, (0, 5)),
        (consistency_proof, (6, 5)),
    ],
)
def test_storage_side_misuse_is_value_error(call, args):
    with pytest.raises(ValueError):
        call(*args, MemoryNodeStore())


def test_writer_rejects_bad_hashes_and_rewrites():
    with pytest.raises(ValueError):
        Frontier.empty().append(b"\x00" * 31)
    store = MemoryNodeStore([((0, 0), LEAVES[0])])
    store.put([((0, 0), LEAVES[0])])  # idempotent
    with pytest.raises(ValueError):
        store.put([((0, 0), LEAVES[1])])
    with pytest.raises(ValueError):
        Frontier(3, [((1, 0), LEAVES[0])])


# --- verifier edge cases beyond the vectors ------------------------------------------------


def test_every_single_bit_flip_in_a_proof_is_rejected(small_tree):
    store, _ = small_tree
    proof = inclusion_proof(21, 70, store)
    for i in range(len(proof)):
        for bit in range(0, 256, 37):
            tampered = list(proof)
            tampered[i] = bytes(
                b ^ (1 << (bit % 8)) if j == bit // 8 else b for j, b in enumerate(proof[i])
            )
            with pytest.raises(ProofError):
                verify_inclusion(LEAVES[21], 21, 70, tampered, mth(0, 70))


def test_proof_for_one_position_fails_at_another(small_tree):
    store, _ = small_tree
    proof = inclusion_proof(10, 50, store)
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[10], 11, 50, proof, mth(0, 50))
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[11], 10, 50, proof, mth(0, 50))
    with pytest.raises(ProofError):  # same index, different path shape
        verify_inclusion(LEAVES[10], 10, 12, proof, mth(0, 50))
    assert root_from_inclusion_proof(LEAVES[10], 10, 50, proof) == mth(0, 50)


def test_consistency_rejects_a_forked_history():
    forked = [*LEAVES[:20], leaf_hash(b"rewritten"), *LEAVES[21:40]]
    fork_store, fork = tree_from_leaves(forked)
    proof = consistency_proof(25, 40, fork_store)
    with pytest.raises(ProofError):
        verify_consistency(25, 40, proof, mth(0, 25), fork.root())


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33])
def test_wrong_hash_lengths_are_rejected(bad):
    proof = [LEAVES[1]]
    root2 = node_hash(LEAVES[0], LEAVES[1])
    with pytest.raises(ProofError):
        verify_inclusion(bad, 0, 2, proof, root2)
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[0], 0, 2, [bad], root2)
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[0], 0, 2, proof, bad)
    with pytest.raises(ProofError):
        verify_consistency(1, 2, [bad], LEAVES[0], root2)


def test_negative_sizes_are_rejected_not_crashing():
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[0], -1, 1, [], LEAVES[0])
    with pytest.raises(ProofError):
        verify_consistency(-1, 1, [], LEAVES[0], LEAVES[0])
