"""``batch.register``: a smelter records a batch it cast.

Checked on append: the signer is a smelter registering its own batch under a new
batch id; the payload passes the schema and domain rules; purchased primary metal
names batches that exist; no certificate energy is claimed twice. Applied: the
batch read model with its derived values, the recomputed footprint and the
footprint check, and the certificate claims.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from ledger.batches.certificates import CertificateClaim, certificate_claims, check_claims
from ledger.batches.derived import DerivedValues, derive
from ledger.batches.payload import BatchRegistration, parse_registration
from ledger.custody.lots import add_root_lot
from ledger.errors import ConflictError, ForbiddenError, InvalidError
from ledger.footprint import (
    DEFAULT_TOLERANCE,
    FootprintResult,
    compute_footprint,
    footprint_check,
)
from ledger.kinds import AppendContext, Author, KindRegistry, StatementKind, require_role
from ledger.statements import Statement
from ledger.storage.batches import BatchRepository, SqlClaimBook
from ledger.storage.tables import BatchRow

KIND = "batch.register"
PPM = Decimal(1_000_000)


@dataclass(frozen=True)
class CheckedBatch:
    registration: BatchRegistration
    derived: DerivedValues
    footprint: FootprintResult | None
    footprint_check: str
    claims: list[CertificateClaim]


class RegisterBatch(StatementKind):
    name = KIND

    def __init__(self, footprint_tolerance: Decimal = DEFAULT_TOLERANCE) -> None:
        self.footprint_tolerance = footprint_tolerance

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> CheckedBatch:
        require_role(author, "smelter", action="registering a batch")
        reg = parse_registration(statement.payload)
        if reg.smelter_id != author.participant_id:
            raise ForbiddenError(
                f"a smelter registers only its own batches; signer is {author.participant_id}",
                field="payload.smelter_id",
            )
        batches = BatchRepository(ctx.repo.session)
        if batches.exists(reg.smelter_id, reg.batch_id):
            raise ConflictError(
                f"batch {reg.smelter_id}/{reg.batch_id} is already registered",
                field="payload.batch_id",
            )
        _check_purchased_batches(batches, reg)
        claims = certificate_claims(reg)
        check_claims(claims, SqlClaimBook(ctx.repo.session))
        computed = compute_footprint(reg)
        declared = reg.declared_footprint
        check = footprint_check(
            declared.kg_co2e_per_t, computed, declared.boundary, self.footprint_tolerance
        )
        return CheckedBatch(reg, derive(reg), computed, check, claims)

    def apply(
        self, ctx: AppendContext, statement: Statement, author: Author, checked: CheckedBatch
    ) -> None:
        participant = ctx.repo.participant(author.participant_id)
        batches = BatchRepository(ctx.repo.session)
        batches.add(batch_row(checked, ctx.index, participant.region, ctx.integrated_at))
        reg = checked.registration
        batches.add_claims(checked.claims, reg.smelter_id, reg.batch_id, ctx.index)
        add_root_lot(ctx.repo.session, batches.get(reg.smelter_id, reg.batch_id))


def footprint_tolerance(kinds: KindRegistry) -> Decimal:
    """The tolerance this ledger's ``batch.register`` checks declarations with."""
    kind = kinds.get(KIND)
    assert isinstance(kind, RegisterBatch)
    return kind.footprint_tolerance


def _check_purchased_batches(batches: BatchRepository, reg: BatchRegistration) -> None:
    for position, ref in enumerate(reg.metal_inputs.purchased_primary_batches):
        if not batches.exists(ref.smelter_id, ref.batch_id):
            raise InvalidError(
                f"no batch {ref.smelter_id}/{ref.batch_id} on the ledger",
                field=f"payload.metal_inputs.purchased_primary_batches[{position}]",
            )


def batch_row(checked: CheckedBatch, index: int, region: str, at: str) -> BatchRow:
    reg, derived, computed = checked.registration, checked.derived, checked.footprint
    return BatchRow(
        smelter_id=reg.smelter_id,
        batch_id=reg.batch_id,
        record_index=index,
        product_form=reg.product_form,
        alloy=reg.alloy,
        route=reg.route,
        mass_kg=reg.mass_kg,
        period_start=reg.production_period.start.isoformat(),
        period_end=reg.production_period.end.isoformat(),
        site=reg.site,
        region=region,
        declared_kg_co2e_per_t=reg.declared_footprint.kg_co2e_per_t,
        declared_boundary=reg.declared_footprint.boundary,
        computed_kg_co2e_per_t=computed.total_kg_co2e_per_t if computed else None,
        computed_scope1_2_kg_co2e_per_t=computed.scope1_2_kg_co2e_per_t if computed else None,
        footprint_check=checked.footprint_check,
        renewable_share_ppm=_ppm(derived.renewable_share),
        recycled_total_ppm=_ppm(derived.recycled_content_total),
        derived=json.dumps(derived.to_dict()),
        footprint=json.dumps(computed.to_dict()) if computed else None,
        registered_at=at,
    )


def _ppm(share: Decimal | None) -> int:
    return int((share or Decimal(0)) * PPM)
