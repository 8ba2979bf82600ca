"""Queries for lots, their edges and events, transfers and custody policies.

The custody kinds (``ledger/custody/kinds.py``) read and change lots inside the append
transaction, which holds the log-head lock: an available mass checked here cannot be
spent by a concurrent writer before this transaction commits. Lots are changed as ORM
objects so that several statements of one bulk append see each other's changes.

Lineage is one recursive CTE over ``lot_edges`` (SQLite and PostgreSQL alike) joined to
the rows it needs, so a walk costs a fixed number of queries whatever its size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import ColumnElement, Integer, Row, Select, and_, cast, func, literal, or_, select
from sqlmodel import Session

from ledger.storage.tables import (
    CustodyPolicyRow,
    GradeRow,
    LotEdgeRow,
    LotEventRow,
    LotRow,
    TransferRow,
)

_INSERT_EDGES: Final = LotEdgeRow.__table__.insert()
_INSERT_EVENTS: Final = LotEventRow.__table__.insert()


@dataclass(frozen=True)
class Walk:
    """Lots reached from a start lot, with the fewest edges to each (the start is depth 0).

    Lots and edges are read-only Core rows with the columns of ``LotRow`` and
    ``LotEdgeRow`` as attributes: a walk reads thousands, and ORM objects cost several
    times more to build.
    """

    depths: dict[int, int]
    lots: dict[int, Row]
    edges: list[Row]


class CustodyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- lots -------------------------------------------------------------
    def lot(self, ns: str, lot_id: str) -> LotRow | None:
        query = select(LotRow).where(LotRow.ns == ns, LotRow.lot_id == lot_id)
        return self.session.exec(query).scalar()

    def lots_by_key(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], LotRow]:
        """Several lots by (namespace, lot id) in one query (absent keys are left out)."""
        if not keys:
            return {}
        query = select(LotRow).where(
            or_(*(and_(LotRow.ns == ns, LotRow.lot_id == lot_id) for ns, lot_id in keys))
        )
        return {(row.ns, row.lot_id): row for row in self.session.exec(query).scalars()}

    def lot_by_id(self, id_: int) -> LotRow | None:
        return self.session.get(LotRow, id_)

    def lot_exists(self, ns: str, lot_id: str) -> bool:
        query = select(LotRow.id).where(LotRow.ns == ns, LotRow.lot_id == lot_id)
        return self.session.execute(query).first() is not None

    def add_lot(self, row: LotRow) -> LotRow:
        """Insert a lot and return it with its id."""
        self.session.add(row)
        self.session.flush()
        return row

    def save(self) -> None:
        """Write changed lots and transfers now, so later statements of a bulk see them."""
        self.session.flush()

    def lots_held_by(self, participant_id: str) -> list[LotRow]:
        query = select(LotRow).where(LotRow.holder_id == participant_id).order_by(LotRow.id)
        return list(self.session.exec(query).scalars())

    def metal_held_by(self, participant_id: str, limit: int) -> list[LotRow]:
        """The first ``limit`` lots ``participant_id`` holds with metal left, oldest first."""
        query = (
            select(LotRow)
            .where(LotRow.holder_id == participant_id, LotRow.available_kg > 0)
            .order_by(LotRow.id)
            .limit(limit)
        )
        return list(self.session.exec(query).scalars())

    def every_grade(self, lot_ids: Iterable[int]) -> list[tuple[int, GradeRow]]:
        """Every grade, revoked and expired ones too, of the registered-batch lots among
        ``lot_ids``, as (lot id, grade), in one query."""
        return self._grades_of(lot_ids)

    # -- edges and events -------------------------------------------------
    def add_edges(self, rows: Sequence[dict[str, object]]) -> None:
        """Insert edges (Core rows; pending ORM changes are flushed first, as the ORM would)."""
        if rows:
            self.session.flush()
            self.session.connection().execute(_INSERT_EDGES, list(rows))

    def add_events(self, rows: Sequence[dict[str, object]]) -> None:
        """Insert events (Core rows; pending ORM changes are flushed first, as the ORM would)."""
        if rows:
            self.session.flush()
            self.session.connection().execute(_INSERT_EVENTS, list(rows))

    def events_of(self, lot: int) -> list[LotEventRow]:
        query = (
            select(LotEventRow)
            .where(LotEventRow.lot == lot)
            .order_by(LotEventRow.record_index, LotEventRow.id)
        )
        return list(self.session.exec(query).scalars())

    def parents_of(self, lot: int) -> list[tuple[LotEdgeRow, LotRow]]:
        query = (
            select(LotEdgeRow, LotRow)
            .join(LotRow, LotRow.id == LotEdgeRow.parent)
            .where(LotEdgeRow.child == lot)
            .order_by(LotEdgeRow.id)
        )
        return [(edge, row) for edge, row in self.session.execute(query).all()]

    def children_of(self, lot: int) -> list[tuple[LotEdgeRow, LotRow]]:
        query = (
            select(LotEdgeRow, LotRow)
            .join(LotRow, LotRow.id == LotEdgeRow.child)
            .where(LotEdgeRow.parent == lot)
            .order_by(LotEdgeRow.id)
        )
        return [(edge, row) for edge, row in self.session.execute(query).all()]

    # -- transfers and policies -------------------------------------------
    def add_transfer(self, row: TransferRow) -> None:
        self.session.add(row)
        self.session.flush()

    def transfer(self, record_index: int) -> TransferRow | None:
        return self.session.get(TransferRow, record_index)

    def transfers_of(self, lot: int) -> list[TransferRow]:
        query = select(TransferRow).where(TransferRow.lot == lot).order_by(TransferRow.record_index)
        return list(self.session.exec(query).scalars())

    def policy(self, participant_id: str) -> CustodyPolicyRow | None:
        return self.session.get(CustodyPolicyRow, participant_id)

    def set_policy(self, participant_id: str, require_acceptance: bool, index: int) -> None:
        row = self.policy(participant_id)
        if row is None:
            row = CustodyPolicyRow(participant_id=participant_id, require_acceptance=False)
        row.require_acceptance = require_acceptance
        row.record_index = index
        self.session.add(row)
        self.session.flush()

    # -- lineage ----------------------------------------------------------
    def walk(self, start: int, upward: bool, max_depth: int | None = None) -> Walk:
        """Every lot reachable from ``start`` against (up) or along (down) the edges.

        Three queries: the lots with their depth, the edges between them, nothing else.
        ``max_depth`` None walks to the end (lots form a DAG: a lot's parents are older).
        """
        nodes = self._walk_nodes(start, upward, max_depth)
        lots_table, edges_table = LotRow.__table__, LotEdgeRow.__table__
        connection = self.session.connection()
        rows = connection.execute(
            select(lots_table, nodes.c.depth).join(nodes, lots_table.c.id == nodes.c.node)
        ).all()
        depths = {row.id: row.depth for row in rows}
        lots = {row.id: row for row in rows}
        near = edges_table.c.child if upward else edges_table.c.parent
        edges_query = (
            select(edges_table)
            .join(nodes, near == nodes.c.node)
            .order_by(edges_table.c.record_index, edges_table.c.id)
        )
        if max_depth is not None:
            edges_query = edges_query.where(nodes.c.depth < max_depth)
        edges = list(connection.execute(edges_query).all())
        return Walk(depths, lots, edges)

    def _walk_nodes(self, start: int, upward: bool, max_depth: int | None) -> Select:
        edges = LotEdgeRow.__table__
        near, far = (edges.c.child, edges.c.parent) if upward else (edges.c.parent, edges.c.child)
        seed = select(
            cast(literal(start), Integer).label("node"), cast(literal(0), Integer).label("depth")
        ).cte("walk", recursive=True)
        step = select(far, seed.c.depth + 1).join_from(seed, edges, near == seed.c.node)
        if max_depth is not None:
            step = step.where(seed.c.depth < max_depth)
        walk = seed.union(step)
        return (
            select(walk.c.node, func.min(walk.c.depth).label("depth"))
            .group_by(walk.c.node)
            .subquery("nodes")
        )

    def active_grades(self, lot_ids: Iterable[int], day: str) -> list[tuple[int, GradeRow]]:
        """Grades in force on ``day`` (not revoked, not expired) of the registered-batch lots
        among ``lot_ids``, as (lot id, grade), in one query."""
        return self._grades_of(lot_ids, GradeRow.revoked_index.is_(None), GradeRow.expires_on > day)

    def _grades_of(
        self, lot_ids: Iterable[int], *conditions: ColumnElement[bool]
    ) -> list[tuple[int, GradeRow]]:
        wanted = list(lot_ids)
        if not wanted:
            return []
        query = (
            select(LotRow.id, GradeRow)
            .join(
                GradeRow,
                and_(GradeRow.smelter_id == LotRow.ns, GradeRow.batch_id == LotRow.lot_id),
            )
            .where(LotRow.id.in_(wanted), LotRow.origin == "batch", *conditions)
            .order_by(GradeRow.record_index)
        )
        return [(lot, grade) for lot, grade in self.session.execute(query).all()]
