"""Audit the whole ledger: hash chain, signatures, key validity, Merkle root.

The audit trusts nothing the database says except the record bytes themselves and
a checkpoint signed by the pinned log key. For every record it checks, in index
order: the index is dense and matches the record, the stored leaf hash matches the
bytes, the bytes are canonical, ``prev`` is the previous leaf hash, the signature
verifies with the key the signer names, and that key was valid at that index
(replayed from the key records themselves). Finally the Merkle tree recomputed
from all leaves must have the signed checkpoint's root, and every stored
checkpoint's root must match the recomputed tree at its size.

Then every stored disclosure (the opened confidential values, kept beside the records)
must hash to a digest its record signed: an operator who edited a disclosure in the
database would serve buyers values the smelter never committed to.

Signature checks dominate the cost, so the log is cut into chunks of ``CHUNK`` records
(a power of two) checked in worker processes. A worker reads its own chunk from the
database by index range and sends back only what the checks across chunks need: the
first ``prev``, the last leaf hash, the chunk's complete subtrees (one hash for a whole
chunk) and, for each stored checkpoint inside the chunk, the hash of the chunk's leaves
up to it. The parent neither reads nor pickles rows: it links the chunks in index order,
folds one subtree per chunk into the tree and compares the checkpoints' roots.
"""

from __future__ import annotations

import json
import os
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from ledger import merkle
from ledger.canonical import canonical_value
from ledger.checkpoints import NoteVerifier, open_checkpoint
from ledger.disclosure.format import parse_disclosure
from ledger.disclosure.reveal import digests_in
from ledger.errors import LedgerError
from ledger.key_history import KEY_KINDS, KeyHistory
from ledger.records import GENESIS_PREV, Record, statement_slice
from ledger.statements import decode_signature
from ledger.storage.db import make_engine, read_session
from ledger.storage.disclosures import DisclosureRepository
from ledger.storage.repository import Repository

#: Below this many records a process pool costs more than it saves.
PARALLEL_THRESHOLD = 20_000


@dataclass(frozen=True)
class Problem:
    index: int
    reason: str

    def __str__(self) -> str:
        return f"record {self.index}: {self.reason}"


@dataclass(frozen=True)
class AuditReport:
    records: int
    checkpoint_size: int
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


#: Records per worker task. A power of two, so that every chunk but the last is one
#: complete subtree and a checkpoint inside a chunk folds in as one hash
#: (``merkle.Frontier.root_followed_by``).
CHUNK = 2048


@dataclass(frozen=True)
class ChunkResult:
    """What the parent needs of the chunk of records from ``start``: the checks that
    cross chunks (``prev``, the tree) and the first problem inside it, if any."""

    start: int
    #: Records from ``start`` that passed every check within the chunk.
    checked: int
    #: ``prev`` of the chunk's first record ("" when it did not pass).
    first_prev: str
    #: Leaf hash of the last record that passed.
    last_hash: bytes
    #: ``(level, hash)`` of the complete subtrees of the records that passed, largest first.
    nodes: tuple[tuple[int, bytes], ...]
    #: ``(size, MTH of leaves [start, size))`` for each stored checkpoint size in the chunk.
    roots: tuple[tuple[int, bytes], ...]
    problem: Problem | None


_public_keys: dict[str, Ed25519PublicKey] = {}
_history = KeyHistory()
_engine: Engine | None = None


def _init_worker(history: KeyHistory, database_url: str | None = None) -> None:
    """Give a worker the key history (which key could sign at which index) and, in a
    worker process, an engine of its own to read its chunks with."""
    global _history, _engine
    _history = history
    _public_keys.clear()
    _public_keys.update(
        {k: Ed25519PublicKey.from_public_bytes(s.public_key) for k, s in history.keys.items()}
    )
    if database_url is not None:
        _engine = make_engine(database_url, read_only=True)


def set_key_history(history: KeyHistory) -> None:
    """The key history ``check_chunk`` checks signers against in this process (the
    remote audit grows it page by page)."""
    _init_worker(history)


def check_range(start: int, stop: int, sizes: tuple[int, ...]) -> ChunkResult:
    """In a worker process: read records ``[start, stop)`` and check them."""
    assert _engine is not None, "the worker was not initialised with a database"
    with read_session(_engine) as session:
        rows = _rows(Repository(session), start, stop)
    return check_chunk(start, stop, rows, sizes)


def _rows(repo: Repository, start: int, stop: int) -> list[tuple[int, bytes, bytes]]:
    return [row for chunk in repo.stream_records(start, stop) for row in chunk]


def check_chunk(
    start: int, stop: int, rows: list[tuple[int, bytes, bytes]], sizes: tuple[int, ...] = ()
) -> ChunkResult:
    """Check records ``[start, stop)`` given their stored rows in index order: everything
    but the links to earlier chunks. ``sizes`` are the stored checkpoint sizes in
    ``(start, stop]``; the result carries the hash of the leaves up to each of them."""
    hashes: list[bytes] = []
    first_prev = ""
    prev: str | None = None
    problem: Problem | None = None
    for position, (idx, leaf, stored_hash) in enumerate(rows):
        expected = start + position
        digest = merkle.leaf_hash(leaf)
        reason, record = _check_record(expected, idx, leaf, bytes(stored_hash), digest, prev)
        if reason is None:
            reason = _key_problem(record["statement"]["signer"], expected)
        if reason is None:
            reason = _check_signature(record, leaf)
        if reason is not None:
            problem = Problem(expected, reason)
            break
        if position == 0:
            first_prev = record["prev"]
        hashes.append(digest)
        prev = digest.hex()
    else:
        if start + len(rows) < stop:
            problem = Problem(start + len(rows), "record is missing")
    subtree = merkle.Frontier.empty()
    roots = []
    for size in sizes:
        if size - start > len(hashes):
            break
        subtree.absorb(hashes[subtree.size : size - start])
        roots.append((size, subtree.root()))
    subtree.absorb(hashes[subtree.size :])
    nodes = tuple((level, digest) for (level, _), digest in subtree.nodes)
    last = hashes[-1] if hashes else b""
    return ChunkResult(start, len(hashes), first_prev, last, nodes, tuple(roots), problem)


def _key_problem(signer: str, index: int) -> str | None:
    """Why the key ``signer`` names could not sign record ``index`` (not yet added, or
    already ended by a rotation or revocation), naming the key; None if it could."""
    problem = _history.problem_at(signer, index)
    return None if problem is None else f"{problem} (key {signer})"


class _InexactNumberError(Exception):
    """A number the C JSON encoder would not write as RFC 8785 does (a float, NaN)."""


def _inexact(_text: str) -> Any:
    raise _InexactNumberError


#: Built once: ``json.loads`` with hooks builds a decoder per call, a tenth of the
#: audit's own cost per record beside the signature check.
_DECODER = json.JSONDecoder(parse_float=_inexact, parse_constant=_inexact)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _canonical_record(leaf: bytes) -> Any | None:
    """``canonical_value(leaf)``, with its fast path (the C decoder and encoder) first."""
    try:
        value = _DECODER.decode(leaf.decode())
    except (_InexactNumberError, ValueError):  # bad UTF-8 and bad JSON are ValueErrors
        return canonical_value(leaf)
    return value if _ENCODER.encode(value).encode() == leaf else canonical_value(leaf)


def _check_record(
    expected: int, idx: int, leaf: bytes, stored: bytes, digest: bytes, prev: str | None
) -> tuple[str | None, dict[str, Any]]:
    if idx != expected:
        return f"record is missing (next stored index is {idx})", {}
    if stored != digest:
        return "stored leaf hash does not match the record bytes", {}
    record = _canonical_record(leaf)
    if not isinstance(record, dict):
        return "record bytes are not canonical JSON (RFC 8785)", {}
    if record.get("index") != expected:
        return f"record bytes say index {record.get('index')}", record
    if prev is not None and record.get("prev") != prev:
        return "prev is not the leaf hash of the previous record", record
    return None, record


def _check_signature(record: dict[str, Any], leaf: bytes) -> str | None:
    signer = record["statement"]["signer"]
    key = _public_keys.get(signer)
    if key is None:
        return "signer key is not registered anywhere in the ledger"
    try:
        key.verify(decode_signature(record["signature"]), statement_slice(leaf))
    except (InvalidSignature, LedgerError):
        return "signature does not verify"
    return None


class Auditor:
    """One audit run over one database, against one pinned log key."""

    def __init__(
        self,
        engine: Engine,
        verifier: NoteVerifier,
        *,
        workers: int | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.verifier = verifier
        self.workers = workers or os.cpu_count() or 1
        self.on_progress = on_progress or (lambda _done: None)

    def run(self) -> AuditReport:
        with read_session(self.engine) as session:
            repo = Repository(session)
            latest = repo.latest_checkpoint()
            if latest is None:
                return AuditReport(0, 0, Problem(0, "the ledger has no signed checkpoint"))
            try:
                checkpoint = open_checkpoint(latest.note, self.verifier)
            except LedgerError as error:
                return AuditReport(0, latest.size, Problem(latest.size - 1, f"checkpoint: {error}"))
            history = self._key_history(repo)
            stored_roots = repo.checkpoint_roots()
            report = self._check_all(repo, history, checkpoint.size, checkpoint.root, stored_roots)
            if report.ok:
                problem = check_disclosures(repo, DisclosureRepository(session))
                if problem is not None:
                    return AuditReport(report.records, report.checkpoint_size, problem)
            return report

    def _key_history(self, repo: Repository) -> KeyHistory:
        history = KeyHistory()
        for index, leaf in repo.records_of_kinds(KEY_KINDS):
            statement = json.loads(leaf)["statement"]
            try:
                history.apply(index, statement["kind"], statement["payload"])
            except (LedgerError, KeyError, TypeError):
                continue  # a damaged key record is reported when its turn comes
        return history

    def _check_all(
        self,
        repo: Repository,
        history: KeyHistory,
        size: int,
        root: bytes,
        stored_roots: dict[int, bytes],
    ) -> AuditReport:
        frontier = merkle.Frontier.empty()
        last_hash = GENESIS_PREV
        sizes = sorted(stored_roots)
        with _Checker(self.workers, size, history, repo) as checker:
            for result in checker.results(_chunks(size, sizes)):
                problem = _link(result, last_hash, frontier, stored_roots, sizes)
                if problem:
                    return AuditReport(frontier.size, size, problem)
                if result.checked:
                    last_hash = result.last_hash.hex()
                self.on_progress(frontier.size)
        if frontier.size < size:
            return AuditReport(frontier.size, size, Problem(frontier.size, "record is missing"))
        if frontier.root() != root:
            return AuditReport(size, size, Problem(size - 1, "Merkle root differs from checkpoint"))
        return AuditReport(size, size, None)


def check_disclosures(repo: Repository, disclosures: DisclosureRepository) -> Problem | None:
    """The first stored disclosure that opens no digest its record signed."""
    for chunk in disclosures.stream():
        records = repo.records(index for index, _ in chunk)
        for index, text in chunk:
            problem = _disclosure_problem(records.get(index), text)
            if problem is not None:
                return Problem(index, problem)
    return None


def _disclosure_problem(record: Record | None, text: str) -> str | None:
    if record is None:
        return "disclosures are stored for a record that does not exist"
    try:
        stored = [parse_disclosure(raw, "disclosure") for raw in json.loads(text)]
    except (ValueError, TypeError, LedgerError):
        return "stored disclosures are not disclosures"
    known = set(digests_in(record.statement["payload"]))
    for disclosure in stored:  # nested digests (a fuel line of fuels) come with their parent
        known.update(digests_in(disclosure.value))
    for position, disclosure in enumerate(stored):
        if disclosure.digest not in known:
            return (
                f"disclosure {position} ({disclosure.what}) opens no digest the record signed"
                f" (its digest is {disclosure.digest})"
            )
    return None


def _chunks(size: int, sizes: list[int]) -> Iterator[tuple[int, int, tuple[int, ...]]]:
    """``(start, stop, stored checkpoint sizes in (start, stop])`` of each chunk, in order."""
    for start in range(0, size, CHUNK):
        stop = min(start + CHUNK, size)
        inside = sizes[bisect_right(sizes, start) : bisect_right(sizes, stop)]
        yield start, stop, tuple(inside)


def _link(
    result: ChunkResult,
    last_hash: str,
    frontier: merkle.Frontier,
    stored_roots: dict[int, bytes],
    sizes: list[int],
) -> Problem | None:
    """Checks that need the records before this chunk, in index order: the first
    ``prev``, then the root at each stored checkpoint inside the chunk (the tree so far
    followed by the chunk's leaves up to it), then the chunk joins the tree."""
    if result.checked and result.first_prev != last_hash:
        return Problem(result.start, "prev is not the leaf hash of the previous record")
    for size, tail in result.roots:
        if stored_roots[size] != frontier.root_followed_by(tail):
            position = bisect_right(sizes, size) - 1
            first = sizes[position - 1] if position else 0
            return Problem(
                first,
                f"checkpoint at size {size} has a different root: "
                f"a record in [{first}, {size}) changed after it was signed",
            )
    for level, digest in result.nodes:
        frontier.append_subtree(level, digest)
    return result.problem


class _Checker:
    """Checks chunks in worker processes (each reading its own records), or in this
    process through the audit's own session when the log is small, there is one
    worker, or the database is in memory (a worker could not open it)."""

    def __init__(self, workers: int, size: int, history: KeyHistory, repo: Repository) -> None:
        self.repo = repo
        self.workers = workers
        url = repo.session.get_bind().engine.url
        self.pool: ProcessPoolExecutor | None = None
        if workers > 1 and size >= PARALLEL_THRESHOLD and not _in_memory(url):
            database_url = url.render_as_string(hide_password=False)
            self.pool = ProcessPoolExecutor(
                workers, initializer=_init_worker, initargs=(history, database_url)
            )
        else:
            _init_worker(history)

    def __enter__(self) -> _Checker:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.pool is not None:  # after a problem, chunks not yet started are dropped
            self.pool.shutdown(wait=True, cancel_futures=True)

    def results(self, chunks: Iterator[tuple[int, int, tuple[int, ...]]]) -> Iterator[ChunkResult]:
        """Chunk results in index order, with a bounded number of chunks in flight."""
        if self.pool is None:
            for start, stop, sizes in chunks:
                yield check_chunk(start, stop, _rows(self.repo, start, stop), sizes)
            return
        in_flight: deque[Future[ChunkResult]] = deque()
        for start, stop, sizes in chunks:
            in_flight.append(self.pool.submit(check_range, start, stop, sizes))
            if len(in_flight) > 3 * self.workers:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()


def _in_memory(url: URL) -> bool:
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or url.query.get("mode") == "memory"
    )
