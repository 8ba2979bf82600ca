"""The ledger: appends signed statements and answers reads with proofs.

Append invariants (all enforced inside one database transaction that holds the
log-head lock, so they hold across threads and processes):

* indexes are dense: the next record is ``head.size``; ``prev`` is the leaf hash
  of record ``head.size - 1``;
* the tree stored before the append has exactly the root of the last signed
  checkpoint, and the new tree extends it, so the log never signs two
  inconsistent checkpoints;
* every append (one statement or a bulk) commits with a checkpoint covering it.

A statement's ``signed_at`` (the signer's clock) must be plausible, allowing the
signer's clock to differ from the ledger's by ``max_clock_skew`` either way: not in
the future, not older than ``max_statement_age``, and not before the record that
added its signer key was integrated (a key cannot have signed before the log knew
it). Genesis adds its own key, so only the first two apply to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from ledger import keys, merkle
from ledger.checkpoints import Checkpoint, NoteSigner, NoteVerifier, sign_checkpoint
from ledger.disclosure.reveal import reveal
from ledger.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    LedgerError,
    MalformedError,
    NotFoundError,
    ProofError,
)
from ledger.kinds import AppendContext, Author, KindRegistry, SignerKey, SignerKeys
from ledger.node_cache import NodeCache, NodeCacheMissError
from ledger.records import GENESIS_PREV, Record, leaf_bytes
from ledger.signature_memo import VerifiedSignatures
from ledger.statements import SignedStatement, Statement, parse_utc
from ledger.storage.bulk_scope import BulkScope, close_bulk_scope, open_bulk_scope
from ledger.storage.db import autocommit_read_session, read_session, write_session
from ledger.storage.disclosures import DisclosureRepository, disclosure_rows
from ledger.storage.repository import Head, Repository


@dataclass(frozen=True)
class Appended:
    """What an append returns for each record."""

    record: Record
    tree_size: int
    checkpoint: str
    #: The nodes the append held (``merkle.AppendedNodes``): enough for the record's
    #: inclusion proof in ``tree_size`` without reading the database again.
    nodes: merkle.NodeReader = field(repr=False, compare=False)

    @property
    def index(self) -> int:
        return self.record.index

    def inclusion_proof(self) -> Proof:
        """The record's inclusion proof in ``tree_size`` (the checkpoint's size)."""
        hashes = merkle.inclusion_proof(self.index, self.tree_size, self.nodes)
        return Proof(self.index, self.tree_size, hashes)


@dataclass(frozen=True)
class Proof:
    index_or_old: int
    tree_size: int
    hashes: list[bytes]

    def inclusion_json(self) -> dict[str, Any]:
        """An inclusion proof as the API and the CLI show it."""
        return {"index": self.index_or_old, "tree_size": self.tree_size, "hashes": self._hex()}

    def consistency_json(self) -> dict[str, Any]:
        """A consistency proof as the API and the CLI show it."""
        return {"old": self.index_or_old, "new": self.tree_size, "hashes": self._hex()}

    def _hex(self) -> list[str]:
        return [digest.hex() for digest in self.hashes]


def _check_in_tree(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise NotFoundError(f"index {index} is not in a tree of size {size}", field="index")


class Ledger:
    """Appends and reads over one database with one log signing key."""

    def __init__(
        self,
        engine: Engine,
        signer: NoteSigner,
        kinds: KindRegistry,
        *,
        operator_id: str,
        max_clock_skew: timedelta = timedelta(minutes=5),
        max_statement_age: timedelta = timedelta(days=30),
        max_bulk: int = 10_000,
        node_cache_entries: int = 65_536,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.verifier_key = signer.verifier_key()
        self.verifier = NoteVerifier.parse(self.verifier_key)
        self.kinds = kinds
        self.operator_id = operator_id
        self.max_clock_skew = max_clock_skew
        self.max_statement_age = max_statement_age
        self.max_bulk = max_bulk
        #: The largest tree size this process has read (``_size_or_latest``).
        self._size_seen = 0
        #: Committed tree nodes in memory: proofs read only what it lacks.
        self.nodes = NodeCache(node_cache_entries)
        #: Signatures of a group verified before it takes the head lock.
        self.signatures = VerifiedSignatures()

    @property
    def origin(self) -> str:
        return self.signer.name

    # -- writing ----------------------------------------------------------
    def append(self, signed: SignedStatement) -> Appended:
        return self.append_many([signed], field_prefix="")[0]

    def append_many(
        self, statements: Sequence[SignedStatement], field_prefix: str = "statements"
    ) -> list[Appended]:
        """Append all statements atomically: either every one is recorded or none."""
        if not statements:
            raise MalformedError("at least one statement is required", field=field_prefix or "body")
        if len(statements) > self.max_bulk:
            raise MalformedError(
                f"at most {self.max_bulk} statements per append", field=field_prefix or "body"
            )
        with write_session(self.engine) as session:
            repo = Repository(session)
            head = repo.lock_head()
            if head is None:
                if statements[0].statement.kind != "ledger.genesis":
                    raise NotFoundError("the ledger is not initialised; run `alu-ledger init`")
                head = Head(0, merkle.EMPTY_ROOT, bytes.fromhex(GENESIS_PREV))
                repo.save_head(head, create=True)
            records, grown = self._append_locked(repo, head, statements, field_prefix)
        return [Appended(record, *grown) for record in records]

    def append_group(
        self,
        statements: Sequence[SignedStatement],
        joining: Callable[[], Sequence[SignedStatement]] = lambda: (),
    ) -> list[Appended | LedgerError]:
        """Append statements that arrived together (from any number of callers) in one
        transaction under one checkpoint, each checked on its own: a refused statement
        gets its error and takes nothing with it, the others are recorded. Results are
        in the order given; an all-refused group writes nothing.

        ``joining`` is called once, when the head lock is held: the statements it returns
        (those that queued while the group waited for the lock) join the group after
        ``statements``, and the results cover them too.

        Refusals are rare, so the group is first tried as one atomic append (no
        savepoints: two round trips a statement fewer; no query for replays: the unique
        (signer, nonce) index refuses one when the records are written). Only when a
        statement is refused is that attempt rolled back and the group appended again
        with a SAVEPOINT apiece, replays looked up first, where each refusal takes its own
        place in the results."""
        group = list(statements)
        if not group:
            return []
        self.signatures.verify_ahead(group)
        try:
            return self._append_group(group, joining, isolated=False)
        except LedgerError as refused:
            if len(group) == 1:
                return [refused]
        except IntegrityError:  # a replay, refused by the index: the retry names it
            pass
        return self._append_group(group, lambda: (), isolated=True)

    def _append_group(
        self,
        group: list[SignedStatement],
        joining: Callable[[], Sequence[SignedStatement]],
        *,
        isolated: bool,
    ) -> list[Appended | LedgerError]:
        """One attempt at ``append_group``; ``group`` grows by what ``joining`` returns."""
        with write_session(self.engine) as session:
            repo = Repository(session)
            head = repo.lock_head()
            group.extend(joining())
            if head is None:
                refused = NotFoundError("the ledger is not initialised; run `alu-ledger init`")
                return [refused for _ in group]
            outcomes, grown = self._append_locked(
                repo, head, group, field_prefix="", isolated=isolated, replays_by_index=not isolated
            )
        return [
            outcome if isinstance(outcome, LedgerError) else Appended(outcome, *grown)
            for outcome in outcomes
        ]

    def _append_locked(
        self,
        repo: Repository,
        head: Head,
        statements: Sequence[SignedStatement],
        field_prefix: str,
        *,
        isolated: bool = False,
        replays_by_index: bool = False,
    ) -> tuple[list[Any], tuple[int, str, merkle.NodeReader]]:
        """Check, apply and record ``statements`` under the head lock, then sign one
        checkpoint. Atomic (the first refusal raises) unless ``isolated``: then each
        statement runs in a savepoint, a refusal takes its place in the result and the
        rest go on. Replays are looked up first, to name the one refused, unless
        ``replays_by_index`` (an atomic append only): then the unique (signer, nonce)
        index refuses a replay with an IntegrityError as the records are written.
        Returns the records (or refusals) and the new size, checkpoint and the nodes
        behind the records' inclusion proofs."""
        assert not (isolated and replays_by_index), "savepoints need replays looked up"
        frontier = merkle.Frontier.load(head.size, repo)
        if frontier.root() != head.root:
            raise ProofError("stored tree does not match the last checkpoint; refusing to sign")
        replays = {} if replays_by_index else self._replays(repo, statements, field_prefix)
        if replays and not isolated:
            raise next(iter(replays.values()))
        if isolated:  # each statement in its own savepoint: nothing may be deferred
            return self._append_checked(repo, head, frontier, statements, field_prefix, replays)
        scope = open_bulk_scope(repo.session)
        try:
            self._read_ahead(repo, statements)
            return self._append_checked(
                repo, head, frontier, statements, field_prefix, replays, scope
            )
        finally:
            close_bulk_scope(repo.session, flush=False)

    def _read_ahead(self, repo: Repository, statements: Sequence[SignedStatement]) -> None:
        """Let each kind that works with a bulk's scope look up, at once, what checking
        its statements will need."""
        by_kind: dict[str, list[Statement]] = {}
        for signed in statements:
            by_kind.setdefault(signed.statement.kind, []).append(signed.statement)
        for name, group in by_kind.items():
            kind = self.kinds.find(name)
            if kind is not None and kind.uses_bulk_scope:
                kind.read_ahead(repo.session, group)

    def _append_checked(
        self,
        repo: Repository,
        head: Head,
        frontier: merkle.Frontier,
        statements: Sequence[SignedStatement],
        field_prefix: str,
        replays: Mapping[int, LedgerError],
        scope: BulkScope | None = None,
    ) -> tuple[list[Any], tuple[int, str, merkle.NodeReader]]:
        """``_append_locked`` once the head is locked and replays are known: each
        statement admitted in turn (in a savepoint when there is no bulk ``scope``), then
        the records, nodes and checkpoint written."""
        isolated = scope is None
        before = frontier.nodes
        now = clock()
        integrated_at = _timestamp(now)
        prev = head.last_leaf_hash
        signer_keys = SignerKeys(repo)
        times = _Times(signer_keys, now, integrated_at)
        rows: list[dict[str, Any]] = []
        nodes: list[tuple[merkle.NodeId, bytes]] = []
        outcomes: list[Any] = []
        disclosures: list[dict[str, Any]] = []
        for position, signed in enumerate(statements):
            if position in replays:
                outcomes.append(replays[position])
                continue
            index = head.size + len(rows)
            ctx = AppendContext(
                repo,
                index,
                integrated_at,
                self.operator_id,
                signer_keys,
                origin=self.origin,
                log_verifier_key=self.verifier_key,
            )
            if scope is not None and not self._uses_scope(signed):
                scope.settle(repo.session)
            try:
                if isolated:
                    with repo.session.begin_nested():
                        leaf = self._admit(ctx, signed, prev.hex(), times)
                else:
                    leaf = self._admit(ctx, signed, prev.hex(), times)
            except LedgerError as error:
                refused = _prefixed(error, field_prefix, position)
                if not isolated:
                    raise refused from None
                # What the refused statement read or cached must not outlive its savepoint.
                signer_keys.forget()
                times.forget()
                outcomes.append(refused)
                continue
            disclosures.extend(disclosure_rows(index, signed.disclosures))
            prev = merkle.leaf_hash(leaf)
            nodes.extend(frontier.append(prev))
            outcomes.append(Record(index, leaf))
            rows.append(_record_row(index, leaf, prev, signed, integrated_at))
        if not rows:
            return outcomes, (head.size, "", merkle.MemoryNodeStore())
        if scope is not None:
            scope.flush(repo.session)
        DisclosureRepository(repo.session).insert(disclosures)
        new_head = Head(frontier.size, frontier.root(), prev)
        note = sign_checkpoint(Checkpoint(self.origin, new_head.size, new_head.root), self.signer)
        repo.write_append(rows, nodes, new_head, note, integrated_at)
        return outcomes, (new_head.size, note, merkle.AppendedNodes(before, nodes))

    def _uses_scope(self, signed: SignedStatement) -> bool:
        kind = self.kinds.find(signed.statement.kind)
        return kind is not None and kind.uses_bulk_scope

    def _admit(
        self,
        ctx: AppendContext,
        signed: SignedStatement,
        prev: str,
        times: _Times,
    ) -> bytes:
        """Authenticate, check and apply one statement; return its leaf bytes."""
        statement = signed.statement
        kind = self.kinds.get(statement.kind)
        signed_at = self._check_clock(statement.signed_at, times.now)
        author = self._authenticate(ctx, signed, bootstraps=kind.bootstraps)
        if not kind.bootstraps:  # genesis adds its own key: no earlier record to be after
            self._check_signed_after_key(statement, signed_at, times)
        opened = reveal(statement.payload, signed.disclosures, kind.visibility())
        plain = Statement(
            statement.kind, opened.payload, statement.signer, statement.nonce, statement.signed_at
        )
        checked = kind.check(ctx, plain, author)
        kind.apply(ctx, plain, author, checked)
        # The record holds the signed (committed) statement, never the plaintext.
        return leaf_bytes(
            ctx.index, prev, times.integrated_at, signed.signature, statement.canonical()
        )

    def _authenticate(
        self, ctx: AppendContext, signed: SignedStatement, bootstraps: bool
    ) -> Author:
        statement = signed.statement
        if bootstraps:
            public_key = keys.parse_public_key(
                statement.payload.get("operator", {}).get("public_key", ""),
                field="payload.operator.public_key",
            )
            keys.verify(public_key, signed.signature, statement.canonical())
            return Author(self.operator_id, "operator", statement.signer)
        key = ctx.signer_key(statement.signer)
        _refuse_unusable(key)
        assert key is not None
        self.signatures.verify(
            statement.signer, key.public_key, signed.signature, statement.canonical()
        )
        return Author(key.participant_id, key.role, key.key_id)

    def _check_clock(self, signed_at: str, now: datetime) -> datetime:
        """The statement's signing time, refused if in the future or too old."""
        when = parse_utc(signed_at, "statement.signed_at")
        # Differences, not ``now ± window``: a huge configured window must not overflow.
        if when - now > self.max_clock_skew:
            raise MalformedError("signed_at is in the future", field="statement.signed_at")
        if now - when > self.max_statement_age:
            raise InvalidError(
                f"signed_at {signed_at} is older than the {_span(self.max_statement_age)} "
                "this ledger accepts; sign the statement again with the current time",
                field="statement.signed_at",
            )
        return when

    def _check_signed_after_key(
        self, statement: Statement, signed_at: datetime, times: _Times
    ) -> None:
        """Refuse a statement dated before the record that added its signer key."""
        added = times.key_added(statement.signer)
        if added.at - signed_at > self.max_clock_skew:
            raise InvalidError(
                f"signed_at {statement.signed_at} is before the signer key was added to the"
                f" log (record {added.index}, integrated {added.text}); a key cannot sign"
                " before it is registered: sign the statement again with the current time",
                field="statement.signed_at",
            )

    @staticmethod
    def _replays(
        repo: Repository, statements: Sequence[SignedStatement], field_prefix: str
    ) -> dict[int, ConflictError]:
        """The refusal of each statement (by position) whose signer already used its nonce,
        on the ledger or earlier in ``statements``."""
        pairs = [(s.statement.signer, s.statement.nonce) for s in statements]
        seen: set[tuple[str, str]] = set()
        replayed = repo.replayed(pairs)
        refusals = {}
        for position, pair in enumerate(pairs):
            if pair in replayed or pair in seen:
                field = _field(field_prefix, position, "statement.nonce")
                refusals[position] = ConflictError(
                    "replay: this signer already used this nonce", field=field
                )
            seen.add(pair)
        return refusals

    # -- reading ----------------------------------------------------------
    def tree_size(self) -> int:
        with read_session(self.engine) as session:
            head = Repository(session).head()
        return head.size if head else 0

    def record(self, index: int) -> Record:
        with read_session(self.engine) as session:
            record = Repository(session).record(index)
        if record is None:
            raise NotFoundError(f"no record with index {index}", field="index")
        return record

    def records_page(self, start: int, limit: int) -> tuple[list[tuple[int, bytes, bytes]], int]:
        """Records ``[start, start + limit)`` that the tree holds, as ``(index, leaf,
        leaf_hash)`` in index order (one indexed range read), and the tree size they were
        read under: what a remote audit streams."""
        with autocommit_read_session(self.engine) as session:
            repo = Repository(session)
            size = self._size_or_latest(repo, None)
            stop = min(start + limit, size)
            rows = [row for chunk in repo.stream_records(start, stop) for row in chunk]
        return [(idx, bytes(leaf), bytes(digest)) for idx, leaf, digest in rows], size

    def latest_checkpoint(self) -> str:
        with read_session(self.engine) as session:
            row = Repository(session).latest_checkpoint()
        if row is None:
            raise NotFoundError("the ledger has no checkpoint yet; run `alu-ledger init`")
        return row.note

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> Proof:
        """Record ``index``'s RFC 9162 inclusion proof in ``tree_size`` (None: the current
        size)."""
        (proof,) = self.inclusion_proofs([(index, tree_size)])
        if isinstance(proof, LedgerError):
            raise proof
        return proof

    def inclusion_proofs(
        self, wanted: Sequence[tuple[int, int | None]]
    ) -> list[Proof | LedgerError]:
        """The inclusion proof of each ``(index, tree_size)``, or the error that refuses
        it, read together: the head at most once and every node the node cache lacks in
        one query (``ledger/batched_reads.py`` hands it the proofs of many requests).

        A size's nodes are fixed once the size is: the head and the nodes need not be read
        in one transaction."""
        with autocommit_read_session(self.engine) as session:
            repo = Repository(session)
            sizes = self._sizes_or_latest(repo, [tree_size for _, tree_size in wanted])
            indexes = [index for index, _ in wanted]
            plans = [_inclusion_plan(*pair) for pair in zip(indexes, sizes, strict=True)]
            needed = [group for plan in plans if isinstance(plan, list) for group in plan]
            nodes = self.nodes.over(repo).read_nodes(merkle.plan_ids(needed))
        return [
            _proof_from(index, size, plan, nodes)
            for index, size, plan in zip(indexes, sizes, plans, strict=True)
        ]

    def cached_inclusion_proof(self, index: int, tree_size: int | None) -> Proof | None:
        """The inclusion proof when it needs no database read (a size this process has
        seen and every node in the node cache), else None: an async route answers it on
        the event loop and hands only the rest to a worker thread."""
        if tree_size is None or not 0 < tree_size <= self._size_seen:
            return None
        _check_in_tree(index, tree_size)
        try:
            hashes = merkle.inclusion_proof(index, tree_size, self.nodes.memory_only())
        except NodeCacheMissError:
            return None
        return Proof(index, tree_size, hashes)

    def consistency_proof(self, old: int, new: int) -> Proof:
        with read_session(self.engine) as session:
            repo = Repository(session)
            size = self._size_or_latest(repo, new)
            if not 0 < old <= size:
                raise MalformedError(f"old must be between 1 and new ({size})", field="old")
            hashes = merkle.consistency_proof(old, size, self.nodes.over(repo))
        return Proof(old, size, hashes)

    def _size_or_latest(self, repo: Repository, tree_size: int | None) -> int:
        """``tree_size``, checked against the log's size, or the current size."""
        (size,) = self._sizes_or_latest(repo, [tree_size])
        if isinstance(size, LedgerError):
            raise size
        return size

    def _sizes_or_latest(
        self, repo: Repository, tree_sizes: Sequence[int | None]
    ) -> list[int | LedgerError]:
        """Each of ``tree_sizes`` checked against the log's size (or the error refusing
        it), None read as the current size.

        The log only grows, so a size at most one seen before is valid without reading the
        head again: a proof for a given size (what buyers and the certificate cache ask
        for) then costs only its node read. The head is read at most once."""
        current = self._size_seen
        if any(size is None or size > self._size_seen for size in tree_sizes):
            head = repo.head()
            current = head.size if head else 0
            self._size_seen = max(self._size_seen, current)
        sizes: list[int | LedgerError] = []
        for size in tree_sizes:
            if size is None:
                sizes.append(current)
            elif 0 < size <= self._size_seen:
                sizes.append(size)
            else:
                sizes.append(
                    NotFoundError(
                        f"tree_size must be between 1 and the current size {current}",
                        field="tree_size",
                    )
                )
        return sizes


def _inclusion_plan(index: int, size: int | LedgerError) -> merkle.ProofPlan | LedgerError:
    """The nodes behind ``index``'s proof in ``size``, or why there is no such proof."""
    if isinstance(size, LedgerError):
        return size
    try:
        _check_in_tree(index, size)
    except NotFoundError as error:
        return error
    return merkle.inclusion_proof_nodes(index, size)


def _proof_from(
    index: int,
    size: int | LedgerError,
    plan: merkle.ProofPlan | LedgerError,
    nodes: Mapping[merkle.NodeId, bytes],
) -> Proof | LedgerError:
    """A planned proof folded from the nodes read for its batch, or why it cannot be."""
    if isinstance(plan, LedgerError):
        return plan
    assert not isinstance(size, LedgerError)  # a refused size has no plan
    try:
        return Proof(index, size, merkle.fold_plan(plan, nodes))
    except ProofError as error:
        return error


@dataclass(frozen=True)
class _KeyAdded:
    index: int
    text: str
    at: datetime


def clock() -> datetime:
    """The ledger's clock: ``integrated_at`` of the records an append writes, and the
    time their ``signed_at`` is judged against (one reading per append)."""
    return datetime.now(UTC)


def _timestamp(when: datetime) -> str:
    """RFC 3339 UTC with microseconds, the form records carry."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Times:
    """One append's clock reading, and when each signer key entered the log (the
    ``integrated_at`` of the record that added it, looked up once per key)."""

    def __init__(self, signer_keys: SignerKeys, now: datetime, integrated_at: str) -> None:
        self.signer_keys = signer_keys
        self.now = now
        self.integrated_at = integrated_at
        self._cache: dict[str, _KeyAdded] = {}

    def key_added(self, key_id: str) -> _KeyAdded:
        """The record that added ``key_id``, an authenticated (so registered) key."""
        if key_id not in self._cache:
            key = self.signer_keys.get(key_id)
            assert key is not None
            # Records are written when the append commits: a key added earlier in this
            # same bulk has no stored record yet, and is integrated with this append.
            text = key.added_at or self.integrated_at
            at = parse_utc(text, "integrated_at")
            self._cache[key_id] = _KeyAdded(key.added_index, text, at)
        return self._cache[key_id]

    def forget(self) -> None:
        self._cache.clear()


def _span(window: timedelta) -> str:
    """``30 days``, ``12 hours`` or ``90 seconds``: a window as an operator set it."""
    seconds = int(window.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _refuse_unusable(key: SignerKey | None) -> None:
    if key is None:
        raise ForbiddenError("signer key is not registered", field="statement.signer")
    if key.ended_index is not None:
        raise ForbiddenError(
            f"signer key was {key.end_reason} at record {key.ended_index}",
            field="statement.signer",
        )


def _record_row(
    index: int, leaf: bytes, digest: bytes, signed: SignedStatement, at: str
) -> dict[str, Any]:
    statement = signed.statement
    return {
        "idx": index,
        "leaf": leaf,
        "leaf_hash": digest,
        "kind": statement.kind,
        "signer": statement.signer,
        "nonce": statement.nonce,
        "integrated_at": at,
    }


def _field(prefix: str, position: int, field: str) -> str:
    return f"{prefix}[{position}].{field}" if prefix else field


def _prefixed(error: LedgerError, prefix: str, position: int) -> LedgerError:
    """Re-raise a statement's error with its position in a bulk request."""
    if prefix:
        field = error.field or "statement"
        if not field.startswith(("statement", "signature", "disclosures")):
            field = f"statement.{field}"
        error.field = f"{prefix}[{position}].{field}"
    elif error.field and error.field.startswith("payload"):
        error.field = f"statement.{error.field}"
    return error
