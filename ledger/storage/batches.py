"""Queries for batches and certificate claims.

``SqlClaimBook`` answers ``batches.certificates.ClaimBook`` inside the append
transaction; since appends are serialised by the log-head lock, a claim checked
here cannot be taken by a concurrent writer before it is recorded.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, func, insert, or_, select
from sqlmodel import Session

from ledger.batches.certificates import CertificateClaim, IdHolding, RangeHolding
from ledger.storage.tables import BatchRow, CertificateClaimRow, GradeRow, LotRow


@dataclass(frozen=True)
class BatchFilter:
    """Conditions on registered batches; None means "any". Shares are in ppm (integers)."""

    smelter_id: str | None = None
    product_form: str | None = None
    period_from: str | None = None
    period_to: str | None = None
    region: str | None = None
    route: str | None = None
    declared_footprint_min: int | None = None
    declared_footprint_max: int | None = None
    renewable_share_min_ppm: int | None = None
    recycled_total_min_ppm: int | None = None
    holder_id: str | None = None
    #: Only batches holding a grade that is not revoked (and, with ``grade``, that grade).
    ruleset_id: str | None = None
    grade: str | None = None
    #: Grades count only if they have not expired by this ISO date.
    grade_day: str | None = None


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

    def add(self, row: BatchRow) -> None:
        self.session.add(row)
        self.session.flush()

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
        self.session.execute(insert(CertificateClaimRow), rows)

    def claims_of(self, smelter_id: str, batch_id: str) -> list[CertificateClaimRow]:
        query = select(CertificateClaimRow).where(
            CertificateClaimRow.smelter_id == smelter_id,
            CertificateClaimRow.batch_id == batch_id,
        )
        return list(self.session.exec(query).scalars())


def _conditions(where: BatchFilter) -> list[ColumnElement[bool]]:
    equal = {
        BatchRow.smelter_id: where.smelter_id,
        BatchRow.product_form: where.product_form,
        BatchRow.region: where.region,
        BatchRow.route: where.route,
    }
    conditions = [column == value for column, value in equal.items() if value is not None]
    bounds = [
        (BatchRow.period_end, operator.ge, where.period_from),
        (BatchRow.period_start, operator.le, where.period_to),
        (BatchRow.declared_kg_co2e_per_t, operator.ge, where.declared_footprint_min),
        (BatchRow.declared_kg_co2e_per_t, operator.le, where.declared_footprint_max),
        (BatchRow.renewable_share_ppm, operator.ge, where.renewable_share_min_ppm),
        (BatchRow.recycled_total_ppm, operator.ge, where.recycled_total_min_ppm),
    ]
    conditions += [compare(column, value) for column, compare, value in bounds if value is not None]
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
