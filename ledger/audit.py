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

Signature checks dominate the cost, so chunks of records are checked in worker
processes while the parent streams rows and folds the Merkle tree.
"""

from __future__ import annotations

import json
import os
from bisect import bisect_right
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine

from ledger import merkle
from ledger.canonical import canonical_value
from ledger.checkpoints import NoteVerifier, open_checkpoint
from ledger.disclosure.format import parse_disclosure
from ledger.disclosure.reveal import digests_in
from ledger.errors import LedgerError
from ledger.participants import KEY_KINDS, KeyHistory
from ledger.records import GENESIS_PREV, Record, statement_slice
from ledger.statements import decode_signature
from ledger.storage.db import read_session
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


@dataclass(frozen=True)
class ChunkResult:
    start: int
    leaf_hashes: list[bytes]
    first_prev: str
    problem: Problem | None


_public_keys: dict[str, Ed25519PublicKey] = {}
_history = KeyHistory()


def _init_worker(history: KeyHistory) -> None:
    """Give a worker the key history: which key could sign at which index."""
    global _history
    _history = history
    _public_keys.clear()
    _public_keys.update(
        {k: Ed25519PublicKey.from_public_bytes(s.public_key) for k, s in history.keys.items()}
    )


def check_chunk(start: int, rows: list[tuple[int, bytes, bytes]]) -> ChunkResult:
    """Check records that are self-contained (everything but cross-chunk links)."""
    hashes: list[bytes] = []
    first_prev = ""
    prev: str | None = None
    for position, (idx, leaf, stored_hash) in enumerate(rows):
        expected = start + position
        digest = merkle.leaf_hash(leaf)
        reason, record = _check_record(expected, idx, leaf, bytes(stored_hash), digest, prev)
        if reason is None:
            reason = _key_problem(record["statement"]["signer"], expected)
        if reason is None:
            reason = _check_signature(record, leaf)
        if reason is not None:
            return ChunkResult(start, hashes, first_prev, Problem(expected, reason))
        if position == 0:
            first_prev = record["prev"]
        hashes.append(digest)
        prev = digest.hex()
    return ChunkResult(start, hashes, first_prev, None)


def _key_problem(signer: str, index: int) -> str | None:
    """Why the key ``signer`` names could not sign record ``index`` (not yet added, or
    already ended by a rotation or revocation), naming the key; None if it could."""
    problem = _history.problem_at(signer, index)
    return None if problem is None else f"{problem} (key {signer})"


def _check_record(
    expected: int, idx: int, leaf: bytes, stored: bytes, digest: bytes, prev: str | None
) -> tuple[str | None, dict[str, Any]]:
    if idx != expected:
        return f"record is missing (next stored index is {idx})", {}
    if stored != digest:
        return "stored leaf hash does not match the record bytes", {}
    record = canonical_value(leaf)
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
            chunks = repo.stream_records(0, checkpoint.size)
            report = self._check_all(
                chunks, history, checkpoint.size, checkpoint.root, stored_roots
            )
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
        chunks: Iterator[list[tuple]],
        history: KeyHistory,
        size: int,
        root: bytes,
        stored_roots: dict[int, bytes],
    ) -> AuditReport:
        frontier = merkle.Frontier.empty()
        last_hash = GENESIS_PREV
        sizes = sorted(stored_roots)
        with _executor(self.workers, size, history) as executor:
            for result in _results(executor, chunks):
                problem = _link(result, last_hash, frontier, stored_roots, sizes)
                if problem:
                    return AuditReport(frontier.size, size, problem)
                if result.leaf_hashes:
                    last_hash = result.leaf_hashes[-1].hex()
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


def _link(
    result: ChunkResult,
    last_hash: str,
    frontier: merkle.Frontier,
    stored_roots: dict[int, bytes],
    sizes: list[int],
) -> Problem | None:
    """Checks that need the records before this chunk, in index order.

    ``sizes`` are the stored checkpoints' sizes, sorted: the tree is folded up to
    each of them in turn so every stored root is compared with the recomputed one.
    """
    if result.leaf_hashes and result.first_prev != last_hash:
        return Problem(result.start, "prev is not the leaf hash of the previous record")
    start, hashes = result.start, result.leaf_hashes
    low, high = bisect_right(sizes, start), bisect_right(sizes, start + len(hashes))
    for position in range(low, high):
        size = sizes[position]
        frontier.absorb(hashes[frontier.size - start : size - start])
        if stored_roots[size] != frontier.root():
            first = sizes[position - 1] if position else 0
            return Problem(
                first,
                f"checkpoint at size {size} has a different root: "
                f"a record in [{first}, {size}) changed after it was signed",
            )
    frontier.absorb(hashes[frontier.size - start :])
    return result.problem


class _InlineExecutor:
    def __init__(self, history: KeyHistory) -> None:
        _init_worker(history)

    def __enter__(self) -> _InlineExecutor:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None


def _executor(workers: int, size: int, history: KeyHistory) -> Executor | _InlineExecutor:
    if workers <= 1 or size < PARALLEL_THRESHOLD:
        return _InlineExecutor(history)
    return ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(history,))


def _results(executor: Executor | _InlineExecutor, chunks: Iterator[list[tuple]]) -> Iterator:
    """Chunk results in index order, with a bounded number of chunks in flight.

    Each chunk is numbered by where it should start, not by its first stored index,
    so a deleted record is reported at the index that is missing.
    """
    numbered = _numbered(chunks)
    if isinstance(executor, _InlineExecutor):
        yield from (check_chunk(start, rows) for start, rows in numbered)
        return
    in_flight: list[Future[ChunkResult]] = []
    for start, rows in numbered:
        in_flight.append(executor.submit(check_chunk, start, rows))
        if len(in_flight) > 2 * (getattr(executor, "_max_workers", 2)):
            yield in_flight.pop(0).result()
    for future in in_flight:
        yield future.result()


def _numbered(chunks: Iterator[list[tuple]]) -> Iterator[tuple[int, list[tuple]]]:
    expected = 0
    for rows in chunks:
        yield expected, rows
        expected += len(rows)
