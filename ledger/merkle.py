"""RFC 9162 §2.1 Merkle tree whose proofs are served from persisted interior nodes.

Modelled on golang.org/x/mod/sumdb/tlog: the store keeps the hash of every
*complete* subtree and nothing else.

Invariants
----------
- A node is addressed by ``NodeId = (level, index)``: the complete subtree of
  ``2**level`` leaves covering leaves ``[index * 2**level, (index + 1) * 2**level)``.
  Leaf hashes are the nodes ``(0, i)``.
- A node is written once, when the append that completes it happens, and never
  changes afterwards: appending only ever adds complete subtrees. A tree of
  ``n`` leaves therefore stores ``2n - popcount(n)`` nodes (< 2 per leaf).
- Nothing stored depends on the tree size, so the same rows answer for every
  past size: proofs against an old signed checkpoint need no snapshot.
- Every subtree hash RFC 9162 asks for, ``MTH(D[a:b])``, is either complete
  (one stored node) or lies on the right edge ``[a, n)``. The right edge splits,
  by the binary digits of ``n - a``, into at most ``log2(n)`` complete subtrees
  that fold right-to-left into its hash. Hence a root or a proof needs at most
  about ``2 * log2(n) + 2`` stored nodes, all known from the sizes and index
  alone: they are planned first and read in ONE ``read_nodes`` call (one
  database query), never by walking the leaves.

Storage-side misuse (an index outside the tree, a malformed hash handed to the
writer) raises ``ValueError``; anything a verifier refuses, and storage that
lacks or garbles a node, raises ``ProofError``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from ledger.errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeId = tuple[int, int]
"""``(level, index)`` of a complete subtree; see the module docstring."""

Span = tuple[int, int]
"""Half-open leaf range ``[start, end)`` of an RFC 9162 subtree."""

ProofPlan = list[list[NodeId]]
"""One entry per proof hash: the complete nodes that fold into that hash."""


# --- hashing -----------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash; the 0x00 prefix keeps leaves and nodes from colliding."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior-node hash (0x01 prefix: domain separation from leaves)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Hash of a right-edge subtree from its complete parts, largest first.

    RFC 9162 splits at the largest power of two below the width, which is
    exactly the first (largest) part, so the fold runs right to left.
    """
    acc = hashes[-1]
    for part in reversed(hashes[:-1]):
        acc = node_hash(part, acc)
    return acc


# --- storage interface ---------------------------------------------------------


class NodeReader(Protocol):
    """Where complete-subtree hashes live (database table, dict, tile files...)."""

    def read_nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        """Return the hashes of ``ids``; absent nodes may simply be left out.

        Called once per root or proof with every id it needs, so an SQL
        implementation answers with a single ``WHERE (level, index) IN ...``.
        """
        ...


def _read(reader: NodeReader, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
    """One batched read; a missing or malformed node means the store is broken."""
    return _checked(reader.read_nodes(ids), ids)


def _checked(got: Mapping[NodeId, bytes], ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
    """The hashes of ``ids`` in ``got``; raises ProofError naming a missing or malformed one."""
    out: dict[NodeId, bytes] = {}
    for node_id in ids:
        value = got.get(node_id)
        if value is None:
            raise ProofError(f"tree storage lacks node {node_id}", field="merkle.node")
        if len(value) != HASH_SIZE:
            raise ProofError(
                f"tree storage holds a {len(value)}-byte hash for node {node_id}",
                field="merkle.node",
            )
        out[node_id] = bytes(value)
    return out


# --- planning: which stored nodes a computation needs ---------------------------


def _split(width: int) -> int:
    """RFC 9162's k: the largest power of two strictly below ``width`` (>= 2)."""
    return 1 << ((width - 1).bit_length() - 1)


def span_nodes(start: int, end: int) -> list[NodeId]:
    """Complete subtrees covering the RFC subtree ``[start, end)``, largest first.

    Valid for the spans RFC 9162 recursion produces: ``start`` is a multiple of
    a power of two at least ``end - start``, so every part is aligned.
    """
    ids: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start % (1 << level):
            raise ValueError(f"span [{start}, {end}) is not an RFC 9162 subtree")
        ids.append((level, start >> level))
        start += 1 << level
    return ids


def _inclusion_spans(index: int, size: int) -> list[Span]:
    """Sibling subtrees of RFC 9162 §2.1.3.1 PATH(index, D[size]), leaf side first."""
    spans: list[Span] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            spans.append((lo + k, hi))
            hi = lo + k
        else:
            spans.append((lo, lo + k))
            lo += k
    spans.reverse()
    return spans


def _consistency_spans(old: int, new: int) -> list[Span]:
    """Subtrees of RFC 9162 §2.1.4.1 PROOF(old, D[new]), in proof order."""
    spans: list[Span] = []
    lo, hi, whole_old_tree = 0, new, True
    while old != hi:
        k = _split(hi - lo)
        if old - lo <= k:
            spans.append((lo + k, hi))
            hi = lo + k
        else:
            spans.append((lo, lo + k))
            lo += k
            whole_old_tree = False
    if not whole_old_tree:
        spans.append((lo, hi))
    spans.reverse()
    return spans


def _check_index(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")


def _check_sizes(old: int, new: int) -> None:
    if not 0 < old <= new:
        raise ValueError(f"consistency needs 0 < old <= new, got old={old} new={new}")


def root_nodes(size: int) -> list[NodeId]:
    """The binary decomposition of ``size``: the nodes whose fold is the root."""
    if size < 0:
        raise ValueError(f"tree size {size} is negative")
    return span_nodes(0, size)


def inclusion_proof_nodes(index: int, size: int) -> ProofPlan:
    """Stored nodes behind each hash of the inclusion proof, in proof order."""
    _check_index(index, size)
    return [span_nodes(a, b) for a, b in _inclusion_spans(index, size)]


def consistency_proof_nodes(old: int, new: int) -> ProofPlan:
    """Stored nodes behind each hash of the consistency proof, in proof order."""
    _check_sizes(old, new)
    return [span_nodes(a, b) for a, b in _consistency_spans(old, new)]


def plan_ids(plan: ProofPlan) -> list[NodeId]:
    """Distinct ids of a plan, in first-use order: the argument to ``read_nodes``."""
    return list(dict.fromkeys(node_id for group in plan for node_id in group))


def _assemble(plan: ProofPlan, reader: NodeReader) -> list[bytes]:
    """Read a plan's nodes in one call and fold each group into a proof hash."""
    ids = plan_ids(plan)
    return fold_plan(plan, reader.read_nodes(ids)) if ids else []


def fold_plan(plan: ProofPlan, nodes: Mapping[NodeId, bytes]) -> list[bytes]:
    """The proof hashes of ``plan`` from nodes already read (those of many plans, read
    together, may be more); raises ProofError when one it needs is missing or malformed."""
    got = _checked(nodes, plan_ids(plan))
    return [_fold([got[node_id] for node_id in group]) for group in plan]


# --- proofs from storage ----------------------------------------------------------


def root(size: int, reader: NodeReader) -> bytes:
    """RFC 9162 MTH of the first ``size`` leaves, from at most log2(size)+1 nodes."""
    ids = root_nodes(size)
    if not ids:
        return EMPTY_ROOT
    got = _read(reader, ids)
    return _fold([got[node_id] for node_id in ids])


def inclusion_proof(index: int, size: int, reader: NodeReader) -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion proof of leaf ``index`` in the tree of ``size``."""
    return _assemble(inclusion_proof_nodes(index, size), reader)


def consistency_proof(old: int, new: int, reader: NodeReader) -> list[bytes]:
    """RFC 9162 §2.1.4.1 proof that the tree of ``old`` leaves is a prefix of ``new``."""
    return _assemble(consistency_proof_nodes(old, new), reader)


# --- the writer's view --------------------------------------------------------------


def _require_hash(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes")
    return bytes(value)


class Frontier:
    """Compact right edge of a tree: the complete subtrees that make up its size.

    Holds at most log2(size)+1 hashes, which is all a writer needs to append
    leaves and compute the new root without reading anything else. Appending a
    batch in memory and persisting what ``append`` returns in one insert keeps
    the store in step with the frontier.
    """

    __slots__ = ("_nodes", "_size")

    def __init__(self, size: int, nodes: Sequence[tuple[NodeId, bytes]]) -> None:
        """Take a decomposition as read from storage; it must match ``size``."""
        if [node_id for node_id, _ in nodes] != root_nodes(size):
            raise ValueError(f"nodes are not the decomposition of size {size}")
        self._size = size
        self._nodes = [(node_id, _require_hash(h, "frontier hash")) for node_id, h in nodes]

    @classmethod
    def empty(cls) -> Frontier:
        """The frontier of a tree with no leaves."""
        return cls(0, [])

    @classmethod
    def load(cls, size: int, reader: NodeReader) -> Frontier:
        """Rebuild the frontier of a stored tree with one ``read_nodes`` call."""
        ids = root_nodes(size)
        if not ids:
            return cls.empty()
        got = _read(reader, ids)
        return cls(size, [(node_id, got[node_id]) for node_id in ids])

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def nodes(self) -> tuple[tuple[NodeId, bytes], ...]:
        """The decomposition, largest subtree first."""
        return tuple(self._nodes)

    def copy(self) -> Frontier:
        """An independent frontier, so a writer can stage a batch and drop it."""
        return Frontier(self._size, self._nodes)

    def append(self, leaf_hash: bytes) -> list[tuple[NodeId, bytes]]:
        """Add one leaf; return every node it completes (the leaf first) to persist."""
        node: tuple[NodeId, bytes] = ((0, self._size), _require_hash(leaf_hash, "leaf hash"))
        created = [node]
        while self._nodes and self._nodes[-1][0][0] == node[0][0]:
            (level, index), left = self._nodes.pop()
            node = ((level + 1, index >> 1), node_hash(left, node[1]))
            created.append(node)
        self._nodes.append(node)
        self._size += 1
        return created

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[tuple[NodeId, bytes]]:
        """Append many leaves; return all new nodes, ready for one bulk insert."""
        created: list[tuple[NodeId, bytes]] = []
        for h in leaf_hashes:
            created.extend(self.append(h))
        return created

    def absorb(self, leaf_hashes: Sequence[bytes]) -> None:
        """Append leaves without collecting the nodes they complete.

        For readers that only need roots (the audit folds millions of leaves):
        the same arithmetic as ``append`` without building the persist list.
        """
        nodes, size = self._nodes, self._size
        for digest in leaf_hashes:
            if len(digest) != HASH_SIZE:
                raise ValueError(f"leaf hash must be {HASH_SIZE} bytes")
            level, index = 0, size
            while nodes and nodes[-1][0][0] == level:
                left = nodes.pop()[1]
                digest = node_hash(left, digest)
                level, index = level + 1, index >> 1
            nodes.append(((level, index), digest))
            size += 1
        self._size = size

    def append_subtree(self, level: int, digest: bytes) -> None:
        """Append the ``2**level`` leaves of a complete subtree, given only its hash.

        The tree's size must be a multiple of ``2**level`` (the subtree is aligned), as
        it is when another frontier's nodes are appended in order, largest first, onto a
        tree whose size is a multiple of ``2**k`` and the other frontier holds at most
        ``2**k`` leaves: the audit folds chunks of leaves checked elsewhere this way.
        """
        if level < 0 or self._size % (1 << level):
            raise ValueError(f"a subtree of level {level} is not aligned at size {self._size}")
        node: tuple[NodeId, bytes] = (
            (level, self._size >> level),
            _require_hash(digest, "subtree hash"),
        )
        while self._nodes and self._nodes[-1][0][0] == node[0][0]:
            (lower, index), left = self._nodes.pop()
            node = ((lower + 1, index >> 1), node_hash(left, node[1]))
        self._nodes.append(node)
        self._size += 1 << level

    def root(self) -> bytes:
        """MTH of the current tree (EMPTY_ROOT when there are no leaves)."""
        if not self._nodes:
            return EMPTY_ROOT
        return _fold([h for _, h in self._nodes])

    def root_followed_by(self, tail_root: bytes) -> bytes:
        """MTH of this tree followed by leaves whose own MTH is ``tail_root``.

        Valid when those leaves are no more than the smallest complete subtree of this
        tree holds (any number when it is empty): RFC 9162 then splits the longer tree at
        this tree's subtrees before it reaches the tail, so the tail folds in as one
        part. The audit checks a stored checkpoint inside a chunk of ``2**k`` leaves,
        appended at a multiple of ``2**k``, this way: the chunk's worker sends only the
        MTH of the chunk's leaves up to the checkpoint.
        """
        _require_hash(tail_root, "tail root")
        return _fold([*(h for _, h in self._nodes), bytes(tail_root)])


# --- in-memory store ------------------------------------------------------------------


class MemoryNodeStore(NodeReader):
    """Dict-backed node store for tests and for the offline verifier."""

    def __init__(self, nodes: Iterable[tuple[NodeId, bytes]] = ()) -> None:
        self._nodes: dict[NodeId, bytes] = {}
        self.put(nodes)

    def put(self, nodes: Iterable[tuple[NodeId, bytes]]) -> None:
        """Store nodes; rewriting one with a different hash breaks append-only."""
        for node_id, value in nodes:
            value = _require_hash(value, f"hash of node {node_id}")
            if self._nodes.setdefault(node_id, value) != value:
                raise ValueError(f"node {node_id} is already stored with another hash")

    def read_nodes(self, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        """Return the stored subset of ``ids`` (the caller reports what is missing)."""
        return {node_id: self._nodes[node_id] for node_id in ids if node_id in self._nodes}

    def __len__(self) -> int:
        return len(self._nodes)


class AppendedNodes(NodeReader):
    """What a writer holds after growing a tree: the frontier it started from and every
    node its appends completed (``Frontier.append``'s results).

    That is every node an inclusion proof of an appended leaf in the grown tree reads,
    so the writer answers such proofs without a read. A proof of leaf ``i`` (at or past
    the old size ``s``) in the new size ``n`` reads perfect subtrees of three sorts:
    those to the right of ``i`` lie in ``[i, n)``, all appended, so each was completed
    by an append; those holding appended leaves and leaves before ``s`` were completed
    by the append of their last leaf; those wholly before ``s`` are left siblings of a
    subtree that holds ``i``: their parent starts at a multiple of twice their width
    and ends past ``s``, so ``s`` has their width's bit set and they are a member of
    the old decomposition. (``tests/test_merkle.py`` checks it against whole trees.)
    The map is built on the first read, so a bulk whose proofs nobody asks for pays
    nothing for it.
    """

    def __init__(
        self,
        before: Sequence[tuple[NodeId, bytes]],
        created: Sequence[tuple[NodeId, bytes]],
    ) -> None:
        self._parts = (before, created)
        self._nodes: dict[NodeId, bytes] | None = None

    def read_nodes(self, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        if self._nodes is None:
            self._nodes = {**dict(self._parts[0]), **dict(self._parts[1])}
        return {node_id: self._nodes[node_id] for node_id in ids if node_id in self._nodes}


def tree_from_leaves(leaf_hashes: Iterable[bytes]) -> tuple[MemoryNodeStore, Frontier]:
    """Build a store and frontier holding ``leaf_hashes`` (already leaf-hashed)."""
    frontier = Frontier.empty()
    store = MemoryNodeStore(frontier.extend(leaf_hashes))
    return store, frontier


# --- verifiers (pure: no storage) ----------------------------------------------------


def _check_hash(value: bytes, field: str) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise ProofError(f"expected a {HASH_SIZE}-byte hash", field=field)


def _check_proof(proof: Sequence[bytes], expected: int) -> None:
    if len(proof) != expected:
        raise ProofError(f"proof has {len(proof)} hashes, expected {expected}", field="proof")
    for i, h in enumerate(proof):
        _check_hash(h, f"proof[{i}]")


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(bytes(a), bytes(b))


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Root implied by an inclusion proof (RFC 9162 §2.1.3.2 steps 1-4, check of sn)."""
    if index < 0 or size < 0:
        raise ProofError("leaf index and tree size must not be negative", field="index")
    if index >= size:
        raise ProofError(f"leaf index {index} is not below tree size {size}", field="index")
    _check_hash(leaf_hash, "leaf_hash")
    _check_proof(proof, len(_inclusion_spans(index, size)))
    fn, sn, r = index, size - 1, bytes(leaf_hash)
    for p in proof:
        if sn == 0:
            raise ProofError("proof is longer than the path to the root", field="proof")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("proof is shorter than the path to the root", field="proof")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ProofError unless ``proof`` puts ``leaf_hash`` at ``index`` under ``root``."""
    _check_hash(root, "root")
    if not _same(root_from_inclusion_proof(leaf_hash, index, size, proof), root):
        raise ProofError("inclusion proof does not lead to the root", field="root")


def verify_consistency(
    old: int, new: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Raise ProofError unless the tree (old, old_root) is a prefix of (new, new_root).

    Size 0 is refused: the empty tree commits to nothing, so there is nothing
    to prove and a caller must not mistake the call for a check. Equal sizes
    need an empty proof and byte-identical roots (compared as given, as the
    RFC 9162 test vectors require). Otherwise RFC 9162 §2.1.4.2 verbatim.
    """
    if old < 0 or new < 0:
        raise ProofError("tree sizes must not be negative", field="size")
    if old > new:
        raise ProofError(f"old size {old} is larger than new size {new}", field="size")
    if old == 0:
        raise ProofError("consistency with the empty tree proves nothing", field="size")
    if old == new:
        _verify_same_size(proof, old_root, new_root)
        return
    _check_hash(old_root, "old_root")
    _check_hash(new_root, "new_root")
    if not proof:
        raise ProofError("consistency proof is empty", field="proof")
    _check_proof(proof, len(_consistency_spans(old, new)))
    fr, sr = _consistency_roots(old, new, proof, old_root)
    if not _same(fr, old_root):
        raise ProofError("consistency proof does not lead to the old root", field="old_root")
    if not _same(sr, new_root):
        raise ProofError("consistency proof does not lead to the new root", field="new_root")


def _verify_same_size(proof: Sequence[bytes], old_root: bytes, new_root: bytes) -> None:
    if proof:
        raise ProofError("sizes are equal, so the proof must be empty", field="proof")
    if not _same(old_root, new_root):
        raise ProofError("sizes are equal but the roots differ", field="new_root")


def _consistency_roots(
    old: int, new: int, proof: Sequence[bytes], old_root: bytes
) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 2-6 and the sn check: the (fr, sr) a proof implies."""
    path = [bytes(h) for h in proof]
    if old & (old - 1) == 0:
        path.insert(0, bytes(old_root))
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("proof is longer than the path to the root", field="proof")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("proof is shorter than the path to the root", field="proof")
    return fr, sr
