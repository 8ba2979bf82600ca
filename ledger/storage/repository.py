"""All SQL the ledger runs, behind one class per session.

The append pipeline and the read side both use ``Repository``; no other module
builds queries. It also implements ``merkle.NodeReader`` so proofs are read with a
single query for the O(log n) nodes they need.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import CursorResult, Row, bindparam, insert, select, update
from sqlalchemy.sql import Executable
from sqlmodel import Session

from ledger.merkle import NodeId
from ledger.records import Record
from ledger.storage.tables import (
    CheckpointRow,
    LogHeadRow,
    MerkleNodeRow,
    MetaRow,
    ParticipantKeyRow,
    ParticipantRow,
    RecordRow,
)

HEAD_ID = 1
#: Rows per chunk when streaming the whole log (audit, export).
STREAM_CHUNK = 5_000


# The append path's statements, built once: Core statements run on the session's
# connection, so no ORM bulk-persistence layer sits between the rows and the driver,
# and a statement built once keeps its memoised cache key (SQLAlchemy otherwise builds
# the expression and its key again on every append).
_records, _nodes, _checkpoints, _head = (
    RecordRow.__table__,  # type: ignore[attr-defined]
    MerkleNodeRow.__table__,  # type: ignore[attr-defined]
    CheckpointRow.__table__,  # type: ignore[attr-defined]
    LogHeadRow.__table__,  # type: ignore[attr-defined]
)
_LOCK_HEAD = (
    select(_head.c.size, _head.c.root, _head.c.last_leaf_hash)
    .where(_head.c.id == HEAD_ID)
    .with_for_update()
)
_SAVE_HEAD = update(_head).where(_head.c.id == HEAD_ID)
_INSERT_RECORDS = _records.insert()
_INSERT_NODES = _nodes.insert()
_INSERT_CHECKPOINT = _checkpoints.insert()
#: ``Repository.write_append`` on PostgreSQL: the records, the nodes, the checkpoint and
#: the head in one statement. Rows go in as one array per column (``unnest``), so the
#: statement text is the same whatever the group's size and psycopg prepares it once;
#: the arrays in binary (``%b``), which psycopg writes without escaping each element
#: (in text, dumping them took a tenth of the writer's CPU).
_WRITE_APPEND_PG = """
WITH records_in AS (
  INSERT INTO records (idx, leaf_hash, leaf, kind, signer, nonce, integrated_at)
  SELECT * FROM unnest(%b::bigint[], %b::bytea[], %b::bytea[], %b::varchar[], %b::varchar[],
                       %b::varchar[], %b::varchar[])
), nodes_in AS (
  INSERT INTO merkle_nodes (level, idx, hash)
  SELECT * FROM unnest(%b::smallint[], %b::bigint[], %b::bytea[])
), checkpoint_in AS (
  INSERT INTO checkpoints (size, root, note, created_at) VALUES (%s, %s, %s, %s)
)
UPDATE log_head SET size = %s, root = %s, last_leaf_hash = %s WHERE id = %s
"""
_RECORD_COLUMNS = ("idx", "leaf_hash", "leaf", "kind", "signer", "nonce", "integrated_at")
_keys, _participants = (
    ParticipantKeyRow.__table__,  # type: ignore[attr-defined]
    ParticipantRow.__table__,  # type: ignore[attr-defined]
)
_SIGNER_KEY = (
    select(
        _keys.c.key_id,
        _keys.c.participant_id,
        _keys.c.public_key,
        _keys.c.added_index,
        _keys.c.ended_index,
        _keys.c.end_reason,
        _participants.c.role,
        _records.c.integrated_at.label("added_at"),
    )
    .join(_participants, _participants.c.participant_id == _keys.c.participant_id)
    .outerjoin(_records, _records.c.idx == _keys.c.added_index)
    .where(_keys.c.key_id == bindparam("key_id"))
)
_REPLAYED = select(_records.c.signer, _records.c.nonce).where(
    _records.c.signer.in_(bindparam("signers", expanding=True)),
    _records.c.nonce.in_(bindparam("nonces", expanding=True)),
)


@dataclass(frozen=True)
class Head:
    size: int
    root: bytes
    last_leaf_hash: bytes


class Repository:
    """Queries over one session; the caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- log head ---------------------------------------------------------
    def lock_head(self) -> Head | None:
        """Read the head row, locking it until commit so appends are serialised."""
        row = self._run(_LOCK_HEAD).first()
        return Head(row[0], bytes(row[1]), bytes(row[2])) if row else None

    def head(self) -> Head | None:
        """The head row, unlocked: what every proof and tree-size read asks first, so it is
        plain SQL (no expression to build and compile per call), as ``read_nodes`` is."""
        row = (
            self.session.connection()
            .exec_driver_sql(
                f"SELECT size, root, last_leaf_hash FROM log_head WHERE id = {int(HEAD_ID)}"
            )
            .first()
        )
        return Head(row[0], bytes(row[1]), bytes(row[2])) if row else None

    def save_head(self, head: Head, *, create: bool = False) -> None:
        values = {"size": head.size, "root": head.root, "last_leaf_hash": head.last_leaf_hash}
        if create:
            self.session.execute(insert(LogHeadRow), [{"id": HEAD_ID, **values}])
        else:
            self._run(_SAVE_HEAD, values)

    def write_append(
        self,
        rows: Sequence[dict[str, Any]],
        nodes: Sequence[tuple[NodeId, bytes]],
        head: Head,
        note: str,
        created_at: str,
    ) -> None:
        """Write what an append made: its records, the tree's new nodes, the checkpoint
        (``note``, signed over ``head``) and the head.

        On PostgreSQL this is one statement: every statement is a round trip paid while
        the head lock is held, and the lock is what concurrent appenders queue on. SQLite
        runs in the process, so there the four inserts cost no more than one."""
        if self.session.connection().dialect.name != "postgresql":
            self.insert_records(rows)
            self.insert_nodes(nodes)
            self.insert_checkpoint(head.size, head.root, note, created_at)
            self.save_head(head)
            return
        record_columns = [[row[column] for row in rows] for column in _RECORD_COLUMNS]
        node_columns = [[level for (level, _), _ in nodes], [idx for (_, idx), _ in nodes]]
        params = (
            *record_columns,
            *node_columns,
            [digest for _, digest in nodes],
            head.size,
            head.root,
            note,
            created_at,
            head.size,
            head.root,
            head.last_leaf_hash,
            HEAD_ID,
        )
        self.session.connection().exec_driver_sql(_WRITE_APPEND_PG, params)

    def _run(
        self, statement: Executable, params: Mapping[str, Any] | list[dict[str, Any]] | None = None
    ) -> CursorResult[Any]:
        """A prepared Core statement on the session's connection (in its transaction)."""
        return self.session.connection().execute(statement, params)

    # -- meta -------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        return dict(self.session.execute(select(MetaRow.name, MetaRow.value)).all())

    def set_meta(self, values: Mapping[str, str]) -> None:
        self.session.execute(insert(MetaRow), [{"name": k, "value": v} for k, v in values.items()])

    # -- records ----------------------------------------------------------
    def insert_records(self, rows: Sequence[dict[str, object]]) -> None:
        if rows:
            self._run(_INSERT_RECORDS, list(rows))

    def record(self, index: int) -> Record | None:
        leaf = self.session.execute(select(RecordRow.leaf).where(RecordRow.idx == index)).scalar()
        return None if leaf is None else Record(index, bytes(leaf))

    def records(self, indexes: Iterable[int]) -> dict[int, Record]:
        """Several records in one query, by index."""
        wanted = list(indexes)
        if not wanted:
            return {}
        rows = self.session.execute(
            select(RecordRow.idx, RecordRow.leaf).where(RecordRow.idx.in_(wanted))
        ).all()
        return {idx: Record(idx, bytes(leaf)) for idx, leaf in rows}

    def leaf_hash(self, index: int) -> bytes | None:
        value = self.session.execute(
            select(RecordRow.leaf_hash).where(RecordRow.idx == index)
        ).scalar()
        return None if value is None else bytes(value)

    def stream_records(
        self, start: int = 0, stop: int | None = None
    ) -> Iterator[list[tuple[int, bytes, bytes]]]:
        """Yield chunks of ``(idx, leaf, leaf_hash)`` in index order, keyset-paginated."""
        position = start
        while True:
            query = select(RecordRow.idx, RecordRow.leaf, RecordRow.leaf_hash).where(
                RecordRow.idx >= position
            )
            if stop is not None:
                query = query.where(RecordRow.idx < stop)
            # Core rows, not ORM rows: the audit streams every record through here.
            connection = self.session.connection()
            chunk = connection.execute(query.order_by(RecordRow.idx).limit(STREAM_CHUNK)).all()
            if not chunk:
                return
            yield chunk
            position = chunk[-1][0] + 1

    def records_of_kinds(self, kinds: Iterable[str]) -> list[tuple[int, bytes]]:
        rows = self.session.execute(
            select(RecordRow.idx, RecordRow.leaf)
            .where(RecordRow.kind.in_(list(kinds)))
            .order_by(RecordRow.idx)
        ).all()
        return [(idx, bytes(leaf)) for idx, leaf in rows]

    def replayed(self, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which ``(signer, nonce)`` pairs the ledger already holds.

        Both columns are constrained, so the unique ``(signer, nonce)`` index answers with
        one seek per signer and nonce asked about, whatever the size of the log (a filter
        on the nonce alone made every append scan the whole index)."""
        wanted = set(pairs)
        if not wanted:
            return set()
        signers = sorted({signer for signer, _ in wanted})
        rows = self._run(
            _REPLAYED, {"signers": signers, "nonces": sorted({nonce for _, nonce in wanted})}
        ).all()
        return wanted & {(signer, nonce) for signer, nonce in rows}

    # -- merkle nodes (merkle.NodeReader) ---------------------------------
    def insert_nodes(self, nodes: Sequence[tuple[NodeId, bytes]]) -> None:
        if nodes:
            self._run(
                _INSERT_NODES,
                [{"level": level, "idx": idx, "hash": digest} for (level, idx), digest in nodes],
            )

    def read_nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        """The hashes of the nodes of ``ids`` that are stored (``merkle.NodeReader``: the
        proof code names a missing one), in one query per ``NODES_PER_QUERY`` ids.

        A proof asks for about ``2 * log2(n)`` nodes; a batch of proofs
        (``Ledger.inclusion_proofs``) for all of theirs at once. The query is plain SQL,
        not a SQLAlchemy expression rebuilt and compiled per call, which cost twenty times
        the query itself. Every node is one primary-key seek on both databases
        (``tests/test_proof_speed.py`` checks the plans).
        """
        found: dict[NodeId, bytes] = {}
        if not ids:
            return found
        connection = self.session.connection()
        dialect = connection.dialect.name
        for start in range(0, len(ids), NODES_PER_QUERY):
            chunk = ids[start : start + NODES_PER_QUERY]
            if dialect == "sqlite":
                params: tuple[Any, ...] = tuple(value for node_id in chunk for value in node_id)
                result = connection.exec_driver_sql(_node_query(dialect, len(chunk)), params)
                found.update(_parse_nodes(result.scalar()))
            else:
                levels, indexes = [level for level, _ in chunk], [idx for _, idx in chunk]
                result = connection.exec_driver_sql(_node_query(dialect, 0), (levels, indexes))
                found.update(((level, idx), bytes(digest)) for level, idx, digest in result)
        return found

    # -- checkpoints ------------------------------------------------------
    def insert_checkpoint(self, size: int, root: bytes, note: str, created_at: str) -> None:
        self._run(
            _INSERT_CHECKPOINT, {"size": size, "root": root, "note": note, "created_at": created_at}
        )

    def latest_checkpoint(self) -> CheckpointRow | None:
        return self.session.exec(
            select(CheckpointRow).order_by(CheckpointRow.size.desc()).limit(1)
        ).scalar()

    def checkpoint_roots(self) -> dict[int, bytes]:
        rows = self.session.execute(select(CheckpointRow.size, CheckpointRow.root)).all()
        return {size: bytes(root) for size, root in rows}

    # -- participants and keys --------------------------------------------
    def participant(self, participant_id: str) -> ParticipantRow | None:
        return self.session.get(ParticipantRow, participant_id)

    def participants(self, role: str | None = None) -> list[ParticipantRow]:
        query = select(ParticipantRow).order_by(ParticipantRow.participant_id)
        if role:
            query = query.where(ParticipantRow.role == role)
        return list(self.session.exec(query).scalars())

    def add_participant(self, row: ParticipantRow) -> None:
        self.session.add(row)
        self.session.flush()

    def key(self, key_id: str) -> ParticipantKeyRow | None:
        return self.session.get(ParticipantKeyRow, key_id)

    def signer_key(self, key_id: str) -> Row[Any] | None:
        """A key's row (``key_id, participant_id, public_key, added_index, ended_index,
        end_reason``) with its participant's ``role`` and the ``added_at`` of the record
        that added it (None while that record is not yet stored), in one indexed query;
        None for an unknown key or one whose participant is not registered.

        Through the session (not ``_run``), so a key added earlier in the same
        transaction and not yet flushed is found."""
        return self.session.execute(_SIGNER_KEY, {"key_id": key_id}).first()

    def keys_of(self, participant_id: str) -> list[ParticipantKeyRow]:
        return list(
            self.session.exec(
                select(ParticipantKeyRow)
                .where(ParticipantKeyRow.participant_id == participant_id)
                .order_by(ParticipantKeyRow.added_index)
            ).scalars()
        )

    def add_key(self, row: ParticipantKeyRow) -> None:
        self.session.add(row)
        self.session.flush()

    def end_key(self, key_id: str, index: int, reason: str) -> None:
        self.session.execute(
            update(ParticipantKeyRow)
            .where(ParticipantKeyRow.key_id == key_id)
            .values(ended_index=index, end_reason=reason)
        )
        self.session.expire_all()


#: Most node ids one query asks for (a SQLite statement binds two values for each).
NODES_PER_QUERY = 256


@lru_cache(maxsize=NODES_PER_QUERY + 1)
def _node_query(dialect: str, count: int) -> str:
    """The query for ``count`` nodes (any count on PostgreSQL), for the dialect's driver.

    SQLite: an OR of key equalities, which it plans as a MULTI-INDEX OR of primary-key
    searches (it scans the table for a row-value IN, and a join on VALUES scans the
    constants first). The nodes come back as ONE row, ``level idx HEX`` joined by commas:
    Python's sqlite3 releases the GIL for every row it steps, and with the server's
    threads answering requests side by side each release became a thread switch (a proof
    read row by row cost twice the context switches and a third more CPU under 16
    clients). PostgreSQL (psycopg reads all rows at once): ``level, idx, hash`` rows of a
    join on two arrays unnested side by side, a nested loop of primary-key index scans;
    one text whatever the count, which psycopg prepares on the server after a few calls
    (a text per count would keep the prepared-statement cache churning once proofs are
    read in batches of any size).
    """
    if dialect == "sqlite":
        where = " OR ".join(["(level = ? AND idx = ?)"] * count)
        return (
            "SELECT group_concat(level || ' ' || idx || ' ' || hex(hash), ',')"
            f" FROM merkle_nodes WHERE {where}"
        )
    return (
        "SELECT m.level, m.idx, m.hash FROM unnest(%s::smallint[], %s::bigint[]) AS k(level, idx)"
        " JOIN merkle_nodes AS m ON m.level = k.level AND m.idx = k.idx"
    )


def _parse_nodes(joined: str | None) -> dict[NodeId, bytes]:
    """The nodes of SQLite's one-row answer (None when no node matched)."""
    found: dict[NodeId, bytes] = {}
    for item in joined.split(",") if joined else ():
        level, idx, digest = item.split(" ")
        found[(int(level), int(idx))] = bytes.fromhex(digest)
    return found
