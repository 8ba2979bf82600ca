"""Tree nodes kept in memory in front of the database, for proofs that need no query.

A stored node never changes once committed (``ledger.merkle``: complete subtrees only,
written once), so a node read from a committed snapshot can be kept for as long as the
process likes and served to anyone: no invalidation exists because none is needed. The
cache is an LRU of a fixed number of entries (``Settings.node_cache_entries``), so its
memory is bounded whatever the log's size; the upper levels, which every proof shares,
stay in it.

Only nodes read in a read session enter it (never the writer's nodes, which a rollback
could still take back).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from cachetools import LRUCache

from ledger.merkle import HASH_SIZE, NodeId, NodeReader


class NodeCache:
    """A bounded, thread-safe map of node id to hash, shared by a process's readers."""

    def __init__(self, entries: int) -> None:
        self._nodes: LRUCache[NodeId, bytes] | None = LRUCache(entries) if entries > 0 else None
        self._lock = threading.Lock()

    def cached(self, ids: Sequence[NodeId]) -> dict[NodeId, bytes] | None:
        """Every node of ``ids`` from memory, or None when any is missing."""
        found, missing = self.split(ids)
        return None if missing else found

    def split(self, ids: Sequence[NodeId]) -> tuple[dict[NodeId, bytes], list[NodeId]]:
        """The nodes of ``ids`` held in memory, and the ids of the others."""
        found: dict[NodeId, bytes] = {}
        missing: list[NodeId] = []
        if self._nodes is None:
            return found, list(ids)
        with self._lock:
            for node_id in ids:
                digest = self._nodes.get(node_id)
                if digest is None:
                    missing.append(node_id)
                else:
                    found[node_id] = digest
        return found, missing

    def keep(self, nodes: Mapping[NodeId, bytes]) -> None:
        """Keep well-formed hashes (a garbled one is left for the proof code to refuse,
        each time it is read, rather than served from memory)."""
        if self._nodes is None:
            return
        with self._lock:
            for node_id, digest in nodes.items():
                if len(digest) == HASH_SIZE:
                    self._nodes[node_id] = bytes(digest)

    def memory_only(self) -> NodeReader:
        """A reader that answers from memory alone and raises ``NodeCacheMissError`` otherwise."""
        return _MemoryOnly(self)

    def over(self, store: NodeReader) -> NodeReader:
        """A reader that answers from memory what it can and reads only the rest from
        ``store`` (one call), keeping what it read."""
        return _ReadThrough(self, store)

    def __len__(self) -> int:
        return len(self._nodes) if self._nodes is not None else 0


class NodeCacheMissError(Exception):
    """A memory-only read asked for a node the cache does not hold."""


class _MemoryOnly(NodeReader):
    def __init__(self, cache: NodeCache) -> None:
        self._cache = cache

    def read_nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        found = self._cache.cached(ids)
        if found is None:
            raise NodeCacheMissError
        return found


class _ReadThrough(NodeReader):
    def __init__(self, cache: NodeCache, store: NodeReader) -> None:
        self._cache, self._store = cache, store

    def read_nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        found, missing = self._cache.split(ids)
        if missing:
            read = self._store.read_nodes(missing)
            self._cache.keep(read)
            found.update(read)
        return found
