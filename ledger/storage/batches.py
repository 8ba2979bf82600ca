"""Queries for batches and certificate claims.

``SqlClaimBook`` answers ``batches.certificates.ClaimBook`` inside the append
transaction; since appends are serialised by the log-head lock, a claim checked
here cannot be taken by a concurrent writer before it is recorded.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, NamedTuple

from sqlalchemy import ColumnElement, Connection, and_, bindparam, exists, func, or_, select
from sqlmodel import Session

from ledger.batches.certificates import CertificateClaim, IdHolding, RangeHolding
from ledger.storage.bulk_scope import BulkScope, bulk_scope, flush_deferred
from ledger.storage.tables import (
    BatchRow,
    CertificateClaimRow,
    GradeRow,
    LotEventRow,
    LotRow,
    ParticipantRow,
)

_BATCHES: Final = BatchRow.__table__
_CLAIMS: Final = CertificateClaimRow.__table__
_INSERT_BATCH: Final = _BATCHES.insert()
_INSERT_CLAIMS: Final = _CLAIMS.insert()
_LOTS: Final = LotRow.__table__
_EVENTS: Final = LotEventRow.__table__
_INSERT_LOT: Final = _LOTS.insert()
_INSERT_EVENT: Final = _EVENTS.insert()
_PARTICIPANTS: Final = ParticipantRow.__table__
_SMELTER, _BATCH = bindparam("smelter_id"), bindparam("batch_id")
#: The lot of a batch's id, by the (ns, lot_id) key.
_LOT_ID: Final = select(_LOTS.c.id).where(_LOTS.c.ns == _SMELTER, _LOTS.c.lot_id == _BATCH)
#: ``BatchRepository.registration_state``: by the participant's key, the batch's and the
#: lot's existence beside its country and region (a statement built once).
_REGISTRATION_STATE: Final = select(
    exists().where(_BATCHES.c.smelter_id == _SMELTER, _BATCHES.c.batch_id == _BATCH),
    exists(_LOT_ID),
    _PARTICIPANTS.c.country,
    _PARTICIPANTS.c.region,
).where(_PARTICIPANTS.c.participant_id == _SMELTER)


@dataclass(frozen=True)
class BatchFilter:
    """Conditions on registered batches; None means "any". Shares are in ppm (integers)."""

    smelter_id: str | None = None
    product_form: str | None = None
    period_from: str | None = None
    period_to: str | None = None
    #: The stored (signed) region texts that match: a region id and its name.
    regions: tuple[str, ...] | None = None
    route: str | None = None
    declared_footprint_min: int | None = None
    declared_footprint_max: int | None = None
    #: The computed (market-based) cradle-to-gate footprint; a batch without one (not
    #: computable) does not match a bound on it.
    computed_footprint_min: int | None = None
    computed_footprint_max: int | None = None
    footprint_check: str | None = None
    renewable_share_min_ppm: int | None = None
    recycled_total_min_ppm: int | None = None
    holder_id: str | None = None
    #: Only batches holding a grade that is not revoked (and, with ``grade``, that grade).
    ruleset_id: str | None = None
    grade: str | None = None
    #: Grades count only if they have not expired by this ISO date.
    grade_day: str | None = None


def _registered_statement(*, returning: bool) -> Any:
    """``insert_with_root_lot`` on PostgreSQL: the batch and its lot in data-modifying CTEs,
    the lot's first event inserted from the lot's new id, which it returns (``returning``;
    the deferred form, sent many at once, returns nothing)."""
    batch = _BATCHES.insert().values(
        {column.name: bindparam(f"b_{column.name}", type_=column.type) for column in _BATCHES.c}
    )
    lot = _LOTS.insert().values(
        {
            column.name: bindparam(f"l_{column.name}", type_=column.type)
            for column in _LOTS.c
            if column.name != "id"
        }
    )
    new_batch = batch.cte("new_batch")
    new_lot = lot.returning(_LOTS.c.id).cte("new_lot")
    columns = [column for column in _EVENTS.c if column.name not in ("id", "lot")]
    event = select(
        new_lot.c.id, *(bindparam(f"e_{column.name}", type_=column.type) for column in columns)
    )
    names = ["lot", *(column.name for column in columns)]
    insert = _EVENTS.insert().from_select(names, event).add_cte(new_batch)
    return insert.returning(_EVENTS.c.lot) if returning else insert


_INSERT_REGISTERED: Final = _registered_statement(returning=True)
_INSERT_REGISTERED_DEFERRED: Final = _registered_statement(returning=False)


def _first_event_statement() -> Any:
    """``insert_with_root_lot`` deferred on SQLite: a lot's first event, inserted from the
    id of the lot with its ``(ns, lot_id)`` key (a unique-index seek), so that the batches,
    their lots and the events can each be sent as one ``executemany``, in that order."""
    columns = [column for column in _EVENTS.c if column.name not in ("id", "lot")]
    values = (bindparam(f"e_{column.name}", type_=column.type) for column in columns)
    lot = select(_LOTS.c.id, *values).where(
        _LOTS.c.ns == bindparam("l_ns"), _LOTS.c.lot_id == bindparam("l_lot_id")
    )
    return _EVENTS.insert().from_select(["lot", *(column.name for column in columns)], lot)


_INSERT_FIRST_EVENT_DEFERRED: Final = _first_event_statement()


def _first_event_params(event: Mapping[str, Any]) -> dict[str, Any]:
    """The first event's columns as the statements above name them (its lot comes from
    the statement)."""
    return {f"e_{name}": value for name, value in event.items() if name != "lot"}


class _RootRows(NamedTuple):
    """What registering a batch stores: the batch's row, the lot it starts as (no ``id``)
    and that lot's first event (no ``id`` or ``lot``)."""

    batch: Mapping[str, Any]
    lot: Mapping[str, Any]
    event: Mapping[str, Any]


def _store_in_one_statement(
    connection: Connection, deferred_to: BulkScope | None, rows: _RootRows
) -> int | None:
    """PostgreSQL: batch, lot and first event in one statement, sent now (the lot's id
    returned) or deferred to the bulk's ``executemany`` (None)."""
    params = {f"b_{name}": value for name, value in rows.batch.items()}
    params |= {f"l_{name}": value for name, value in rows.lot.items()}
    params |= _first_event_params(rows.event)
    if deferred_to is not None:
        deferred_to.defer(_INSERT_REGISTERED_DEFERRED, params)
        return None
    return int(connection.execute(_INSERT_REGISTERED, params).scalar_one())


def _store_in_three(
    connection: Connection, deferred_to: BulkScope | None, rows: _RootRows
) -> int | None:
    """SQLite: batch, lot and first event in three statements, sent now (the lot's id
    returned) or deferred to the bulk's three ``executemany`` (None; the event finds its
    lot by the lot's ``(ns, lot_id)`` key)."""
    batch, lot, event = rows
    if deferred_to is not None:
        deferred_to.defer(_INSERT_BATCH, dict(batch))
        deferred_to.defer(_INSERT_LOT, dict(lot))
        of_lot = {"l_ns": lot["ns"], "l_lot_id": lot["lot_id"]}
        deferred_to.defer(_INSERT_FIRST_EVENT_DEFERRED, _first_event_params(event) | of_lot)
        return None
    connection.execute(_INSERT_BATCH, dict(batch))
    key = connection.execute(_INSERT_LOT, dict(lot)).inserted_primary_key
    assert key is not None
    connection.execute(_INSERT_EVENT, {**event, "lot": key[0]})
    return int(key[0])


#: Read ahead for a bulk (``read_ahead_registrations``): batches and lots of one smelter
#: among many ids, and smelters' countries and regions.
_IDS = bindparam("ids", expanding=True)
_BATCHES_AMONG: Final = select(_BATCHES.c.batch_id).where(
    _BATCHES.c.smelter_id == _SMELTER, _BATCHES.c.batch_id.in_(_IDS)
)
_LOTS_AMONG: Final = select(_LOTS.c.lot_id).where(_LOTS.c.ns == _SMELTER, _LOTS.c.lot_id.in_(_IDS))
_PLACES: Final = select(
    _PARTICIPANTS.c.participant_id, _PARTICIPANTS.c.country, _PARTICIPANTS.c.region
).where(_PARTICIPANTS.c.participant_id.in_(_IDS))
#: Most ids one read-ahead query names.
_AHEAD_CHUNK: Final = 1_000
_AHEAD_KEY: Final = "batch.register state"


@dataclass(frozen=True)
class RegistrationState:
    """What registering batch ``(smelter, batch id)`` needs to know of the ledger, read in
    one query: whether the batch, or a lot of that id, exists, and the smelter's country
    and region (None when there is no such participant)."""

    batch_exists: bool
    lot_exists: bool
    country: str | None
    region: str | None


class BatchRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, smelter_id: str, batch_id: str) -> BatchRow | None:
        return self.session.get(BatchRow, (smelter_id, batch_id))

    def by_record_index(self, record_index: int) -> BatchRow | None:
        """The batch registered by record ``record_index``, if that record registered one."""
        query = select(BatchRow).where(BatchRow.record_index == record_index)
        return self.session.exec(query).scalars().first()

    def exists(self, smelter_id: str, batch_id: str) -> bool:
        query = select(BatchRow.record_index).where(
            BatchRow.smelter_id == smelter_id, BatchRow.batch_id == batch_id
        )
        return self.session.execute(query).first() is not None

    def registration_state(self, smelter_id: str, batch_id: str) -> RegistrationState:
        """``RegistrationState`` of a batch about to be registered: read ahead for an atomic
        bulk (``read_ahead_registrations``), else in one round trip: the smelter's row by
        primary key, with the batch and lot keys looked up beside it."""
        scope = bulk_scope(self.session)
        if scope is not None:
            known = scope.ahead.get((_AHEAD_KEY, smelter_id, batch_id))
            if isinstance(known, RegistrationState):
                return known
            scope.flush(self.session)
        self.session.flush()  # what the ORM would do before a query: pending rows count
        keys = {"smelter_id": smelter_id, "batch_id": batch_id}
        connection = self.session.connection()
        row = connection.execute(_REGISTRATION_STATE, keys).first()
        if row is None:  # no such participant: the batch and lot are looked up alone
            lot_exists = connection.execute(_LOT_ID, keys).first() is not None
            return RegistrationState(self.exists(smelter_id, batch_id), lot_exists, None, None)
        return RegistrationState(bool(row[0]), bool(row[1]), row[2], row[3])

    def read_ahead_registrations(self, keys: Sequence[tuple[str, str]]) -> None:
        """For an atomic bulk: the ``RegistrationState`` of every (smelter, batch id) in
        ``keys``, in a few queries for all of them (index lookups by smelter and id),
        kept in the bulk's scope; ``insert_with_root_lot`` keeps them current."""
        scope = bulk_scope(self.session)
        if scope is None or not keys:
            return
        scope.flush(self.session)
        self.session.flush()
        connection = self.session.connection()
        by_smelter: dict[str, list[str]] = {}
        for smelter_id, batch_id in dict.fromkeys(keys):
            by_smelter.setdefault(smelter_id, []).append(batch_id)
        places = {
            participant: (country, region)
            for chunk in _chunks(list(by_smelter))
            for participant, country, region in connection.execute(_PLACES, {"ids": chunk})
        }
        for smelter_id, batch_ids in by_smelter.items():
            batches, lots = set(), set()
            for chunk in _chunks(batch_ids):
                params = {"smelter_id": smelter_id, "ids": chunk}
                batches.update(connection.execute(_BATCHES_AMONG, params).scalars())
                lots.update(connection.execute(_LOTS_AMONG, params).scalars())
            country, region = places.get(smelter_id, (None, None))
            for batch_id in batch_ids:
                state = RegistrationState(batch_id in batches, batch_id in lots, country, region)
                scope.ahead[(_AHEAD_KEY, smelter_id, batch_id)] = state

    def add(self, row: BatchRow) -> None:
        self.session.add(row)
        self.session.flush()

    def insert_with_root_lot(
        self,
        batch: Mapping[str, Any],
        lot: Mapping[str, Any],
        event: Mapping[str, Any],
        *,
        lot_id_needed: bool = True,
    ) -> int | None:
        """Store a batch (every column of ``BatchRow``), the lot it starts as (every column
        of ``LotRow`` but ``id``) and that lot's first event (every column of
        ``LotEventRow`` but ``id`` and ``lot``); return the lot's id.

        No ORM objects are made; later reads in the transaction find the rows as usual.
        On PostgreSQL the three are one statement (one round trip); on SQLite, three. In an
        atomic bulk, unless the caller needs the lot's id, they are deferred and sent with
        the bulk's others at once (None is returned): on PostgreSQL that saves the round
        trips, on SQLite the cost of a statement executed on its own, which was most of a
        registration's storing (under cProfile, three executes took 0.28 ms a batch; its
        rows in the bulk's three ``executemany``, 0.05 ms).
        """
        scope = bulk_scope(self.session)
        if scope is not None:
            _mark_registered(scope, batch["smelter_id"], batch["batch_id"])
        deferred_to = scope if scope is not None and not lot_id_needed else None
        connection = self.session.connection()
        store = (
            _store_in_one_statement if connection.dialect.name == "postgresql" else _store_in_three
        )
        return store(connection, deferred_to, _RootRows(batch, lot, event))

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], BatchRow]:
        """Several batches by (smelter id, batch id) in one query (absent keys are left out).

        An OR of key lookups, not a row-value IN: SQLite plans the latter as a scan.
        """
        if not keys:
            return {}
        query = select(BatchRow).where(
            or_(*(and_(BatchRow.smelter_id == s, BatchRow.batch_id == b) for s, b in keys))
        )
        return {(row.smelter_id, row.batch_id): row for row in self.session.exec(query).scalars()}

    def count(self, where: BatchFilter) -> int:
        """How many batches match ``where`` (a count over them: asked for explicitly)."""
        query = select(func.count()).select_from(BatchRow).where(*_conditions(where))
        return int(self.session.execute(query).scalar_one())

    def any_before(self, where: BatchFilter, index: int) -> bool:
        """Whether a batch matching ``where`` was recorded at or before ``index``."""
        query = select(exists().where(BatchRow.record_index <= index, *_conditions(where)))
        return bool(self.session.execute(query).scalar())

    def page(self, where: BatchFilter, after_index: int, limit: int) -> list[BatchRow]:
        """Batches in record order after ``after_index`` (keyset pagination)."""
        query = select(BatchRow).where(BatchRow.record_index > after_index, *_conditions(where))
        query = query.order_by(BatchRow.record_index).limit(limit)
        return list(self.session.exec(query).scalars())

    def add_claims(
        self, claims: Sequence[CertificateClaim], smelter_id: str, batch_id: str, index: int
    ) -> None:
        if not claims:
            return
        rows = [
            {
                "claim_key": claim.key,
                "claim_type": claim.kind,
                "first_serial": claim.first,
                "last_serial": claim.last,
                "claimed_kwh": claim.claimed_kwh,
                "total_kwh": claim.total_kwh,
                "smelter_id": smelter_id,
                "batch_id": batch_id,
                "record_index": index,
                "via": claim.via,
            }
            for claim in claims
        ]
        scope = bulk_scope(self.session)
        if scope is not None and self.session.connection().dialect.name == "postgresql":
            for row in rows:
                scope.defer(_INSERT_CLAIMS, row)
            return
        self.session.connection().execute(_INSERT_CLAIMS, rows)

    def claims_of(self, smelter_id: str, batch_id: str) -> list[CertificateClaimRow]:
        query = select(CertificateClaimRow).where(
            CertificateClaimRow.smelter_id == smelter_id,
            CertificateClaimRow.batch_id == batch_id,
        )
        return list(self.session.exec(query).scalars())


def _mark_registered(scope: BulkScope, smelter_id: str, batch_id: str) -> None:
    """What was read ahead of ``(smelter_id, batch_id)`` now that it is registered."""
    key = (_AHEAD_KEY, smelter_id, batch_id)
    known = scope.ahead.get(key)
    if isinstance(known, RegistrationState):
        scope.ahead[key] = replace(known, batch_exists=True, lot_exists=True)


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[at : at + _AHEAD_CHUNK] for at in range(0, len(values), _AHEAD_CHUNK)]


def _conditions(where: BatchFilter) -> list[ColumnElement[bool]]:
    equal = {
        BatchRow.smelter_id: where.smelter_id,
        BatchRow.product_form: where.product_form,
        BatchRow.route: where.route,
        BatchRow.footprint_check: where.footprint_check,
    }
    conditions = [column == value for column, value in equal.items() if value is not None]
    bounds = [
        (BatchRow.period_end, operator.ge, where.period_from),
        (BatchRow.period_start, operator.le, where.period_to),
        (BatchRow.declared_kg_co2e_per_t, operator.ge, where.declared_footprint_min),
        (BatchRow.declared_kg_co2e_per_t, operator.le, where.declared_footprint_max),
        (BatchRow.computed_kg_co2e_per_t, operator.ge, where.computed_footprint_min),
        (BatchRow.computed_kg_co2e_per_t, operator.le, where.computed_footprint_max),
        (BatchRow.renewable_share_ppm, operator.ge, where.renewable_share_min_ppm),
        (BatchRow.recycled_total_ppm, operator.ge, where.recycled_total_min_ppm),
    ]
    conditions += [compare(column, value) for column, compare, value in bounds if value is not None]
    if where.regions is not None:
        conditions.append(BatchRow.region.in_(where.regions))
    if where.holder_id is not None:
        conditions.append(
            exists().where(
                LotRow.ns == BatchRow.smelter_id,
                LotRow.lot_id == BatchRow.batch_id,
                LotRow.holder_id == where.holder_id,
            )
        )
    if where.ruleset_id is not None or where.grade is not None:
        conditions.append(_holds_grade(where))
    return conditions


def _holds_grade(where: BatchFilter) -> ColumnElement[bool]:
    graded = exists().where(
        GradeRow.smelter_id == BatchRow.smelter_id,
        GradeRow.batch_id == BatchRow.batch_id,
        GradeRow.revoked_index.is_(None),
    )
    if where.ruleset_id is not None:
        graded = graded.where(GradeRow.ruleset_id == where.ruleset_id)
    if where.grade is not None:
        graded = graded.where(GradeRow.grade == where.grade)
    if where.grade_day is not None:
        graded = graded.where(GradeRow.expires_on > where.grade_day)
    return graded


class SqlClaimBook:
    """The ledger's certificate claims, as ``check_claims`` asks for them."""

    def __init__(self, session: Session) -> None:
        self.session = session
        flush_deferred(session)  # claims deferred by earlier statements of a bulk count

    def overlapping_ranges(self, key: str, first: int, last: int) -> Sequence[RangeHolding]:
        table = CertificateClaimRow
        query = (
            select(
                table.first_serial, table.last_serial, table.smelter_id, table.batch_id, table.via
            )
            .where(
                and_(
                    table.claim_key == key,
                    table.claim_type == "range",
                    table.first_serial <= last,
                    table.last_serial >= first,
                )
            )
            .order_by(table.first_serial)
        )
        return [
            RangeHolding(low, high, f"{smelter}/{batch}", via)
            for low, high, smelter, batch, via in self.session.execute(query).all()
        ]

    def ranges_via(self, via: str) -> Sequence[tuple[str, int, int]]:
        table = CertificateClaimRow
        query = (
            select(table.claim_key, table.first_serial, table.last_serial)
            .where(table.via == via, table.claim_type == "range")
            .distinct()
        )
        return sorted((key, int(low), int(high)) for key, low, high in self.session.execute(query))

    def id_holding(self, key: str) -> IdHolding | None:
        table = CertificateClaimRow
        query = select(func.max(table.total_kwh), func.sum(table.claimed_kwh)).where(
            table.claim_key == key, table.claim_type == "id"
        )
        total, claimed = self.session.execute(query).one()
        return None if total is None else IdHolding(int(total), int(claimed))
