"""Queries for batches and certificate claims.

``SqlClaimBook`` answers ``batches.certificates.ClaimBook`` inside the append
transaction; since appends are serialised by the log-head lock, a claim checked
here cannot be taken by a concurrent writer before it is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, insert, select
from sqlmodel import Session

from ledger.batches.certificates import CertificateClaim, IdHolding, RangeHolding
from ledger.storage.tables import BatchRow, CertificateClaimRow


@dataclass(frozen=True)
class BatchFilter:
    smelter_id: str | None = None
    product_form: str | None = None
    period_from: str | None = None
    period_to: str | None = None


class BatchRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, smelter_id: str, batch_id: str) -> BatchRow | None:
        return self.session.get(BatchRow, (smelter_id, batch_id))

    def exists(self, smelter_id: str, batch_id: str) -> bool:
        query = select(BatchRow.record_index).where(
            BatchRow.smelter_id == smelter_id, BatchRow.batch_id == batch_id
        )
        return self.session.execute(query).first() is not None

    def add(self, row: BatchRow) -> None:
        self.session.add(row)
        self.session.flush()

    def page(self, where: BatchFilter, after_index: int, limit: int) -> list[BatchRow]:
        """Batches in record order after ``after_index`` (keyset pagination)."""
        query = select(BatchRow).where(BatchRow.record_index > after_index)
        if where.smelter_id:
            query = query.where(BatchRow.smelter_id == where.smelter_id)
        if where.product_form:
            query = query.where(BatchRow.product_form == where.product_form)
        if where.period_from:
            query = query.where(BatchRow.period_end >= where.period_from)
        if where.period_to:
            query = query.where(BatchRow.period_start <= where.period_to)
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


class SqlClaimBook:
    """The ledger's certificate claims, as ``check_claims`` asks for them."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def overlapping_ranges(self, key: str, first: int, last: int) -> Sequence[RangeHolding]:
        table = CertificateClaimRow
        query = (
            select(table.first_serial, table.last_serial, table.smelter_id, table.batch_id)
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
            RangeHolding(low, high, f"{smelter}/{batch}")
            for low, high, smelter, batch in self.session.execute(query).all()
        ]

    def id_holding(self, key: str) -> IdHolding | None:
        table = CertificateClaimRow
        query = select(func.max(table.total_kwh), func.sum(table.claimed_kwh)).where(
            table.claim_key == key, table.claim_type == "id"
        )
        total, claimed = self.session.execute(query).one()
        return None if total is None else IdHolding(int(total), int(claimed))
