"""``batch.register``: a smelter records a batch it cast.

Checked on append: the signer is a smelter registering its own batch under a new batch
id; the payload passes the schema and domain rules; the lots named as purchased primary
metal are held by the signer and have the kilograms named available; certificates meet
the registry policies for the smelter's country; no certificate energy is claimed twice.
Applied: the batch read model with its derived values (provenance of the metal included),
the recomputed footprint (method ``alu-ledger-footprint/2``) and the footprint check, the
certificate claims, and the batch's own lot, which consumes the named lots exactly as a
transform does (so one lot's metal cannot be named twice).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from sqlmodel import Session

from ledger.batches.certificates import CertificateClaim, certificate_claims, check_claims
from ledger.batches.derived import DerivedValues, LotKey, derive, metal_values
from ledger.batches.payload import BatchRegistration, LotValues, parse_registration
from ledger.batches.policies import check_registry_policies
from ledger.custody.lots import (
    add_batch_with_root_lot,
    held_lot,
    lot_values,
    require_available,
    taken_id_error,
)
from ledger.custody.payloads import LotRef
from ledger.errors import ConflictError, ForbiddenError
from ledger.footprint import (
    DEFAULT_TOLERANCE,
    FootprintResult,
    compute_footprint,
    footprint_check,
    load_factor_tables,
)
from ledger.footprint.calculator import CURRENT_METHOD
from ledger.kind_names import BATCH_REGISTER
from ledger.kinds import AppendContext, Author, KindRegistry, StatementKind, require_role
from ledger.statements import Statement
from ledger.storage.batches import BatchRepository, SqlClaimBook
from ledger.storage.bulk_scope import flush_deferred
from ledger.storage.custody import CustodyRepository
from ledger.storage.tables import LotRow

KIND: Final = BATCH_REGISTER
PPM: Final = Decimal(1_000_000)
#: A bulk reads ahead from this many registrations (the read-ahead is three queries per
#: smelter, where each registration alone reads once).
READ_AHEAD_FROM: Final = 4


@dataclass(frozen=True)
class CheckedBatch:
    registration: BatchRegistration
    derived: DerivedValues
    footprint: FootprintResult | None
    footprint_check: str
    claims: list[CertificateClaim]
    #: The lots named as purchased primary metal, and what the ledger states about them.
    inputs: dict[LotKey, tuple[LotRow, LotValues]]
    metal: LotValues
    factor_table_version: str
    #: The smelter's region, and whether check found the batch id free as a lot id (both
    #: read with the batch's own existence, in one query); None: apply looks them up.
    region: str | None = None
    lot_id_free: bool | None = None


class RegisterBatch(StatementKind):
    name = KIND
    uses_bulk_scope = True

    def __init__(self, footprint_tolerance: Decimal = DEFAULT_TOLERANCE) -> None:
        self.footprint_tolerance = footprint_tolerance

    def read_ahead(self, session: Session, statements: Sequence[Statement]) -> None:
        """Every batch's registration state in a few queries (by the ids as signed: a
        payload too malformed to name them is looked up, and refused, on its own)."""
        keys = [
            (payload["smelter_id"], payload["batch_id"])
            for payload in (statement.payload for statement in statements)
            if isinstance(payload.get("smelter_id"), str)
            and isinstance(payload.get("batch_id"), str)
        ]
        if len(keys) >= READ_AHEAD_FROM:
            BatchRepository(session).read_ahead_registrations(keys)

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> CheckedBatch:
        require_role(author, "smelter", action="registering a batch")
        reg = parse_registration(statement.payload)
        if reg.smelter_id != author.participant_id:
            raise ForbiddenError(
                f"a smelter registers only its own batches; signer is {author.participant_id}",
                field="payload.smelter_id",
            )
        state = BatchRepository(ctx.repo.session).registration_state(reg.smelter_id, reg.batch_id)
        if state.batch_exists:
            raise ConflictError(
                f"batch {reg.smelter_id}/{reg.batch_id} is already registered",
                field="payload.batch_id",
            )
        inputs = _named_lots(ctx, reg, author)
        check_registry_policies(reg, state.country or "")
        claims = certificate_claims(reg)
        if claims:
            check_claims(claims, SqlClaimBook(ctx.repo.session))
        lots = {key: values for key, (_, values) in inputs.items()}
        tables = load_factor_tables()
        computed = compute_footprint(reg, tables, lots=lots)
        declared = reg.declared_footprint
        check = footprint_check(
            declared.kg_co2e_per_t, computed, declared.boundary, self.footprint_tolerance
        )
        derived = derive(reg, lots)
        primary_kwh = tables.value("upstream", "purchased_primary_kwh_per_kg")
        metal = metal_values(reg, derived, lots, primary_kwh)
        if state.lot_exists:  # refused after every check above, where applying refused it
            raise taken_id_error(reg.smelter_id, reg.batch_id, "payload.batch_id")
        return CheckedBatch(
            reg,
            derived,
            computed,
            check,
            claims,
            inputs,
            metal,
            tables.version,
            region=state.region,
            lot_id_free=not state.lot_exists,
        )

    def apply(
        self, ctx: AppendContext, statement: Statement, author: Author, checked: CheckedBatch
    ) -> None:
        region = checked.region
        if region is None:
            participant = ctx.repo.participant(author.participant_id)
            assert participant is not None
            region = participant.region
        derived = _derived_column(checked)
        values = batch_values(checked, ctx.index, region, ctx.integrated_at, derived)
        reg = checked.registration
        consumed = [
            (lot, ref.mass_kg)
            for ref in reg.metal_inputs.purchased_primary_batches
            for lot, _ in [checked.inputs[(ref.smelter_id, ref.batch_id)]]
        ]
        add_batch_with_root_lot(
            ctx.repo.session,
            values,
            derived,
            checked.metal,
            consumed,
            id_checked=checked.lot_id_free is True,
        )
        BatchRepository(ctx.repo.session).add_claims(
            checked.claims, reg.smelter_id, reg.batch_id, ctx.index
        )


def footprint_tolerance(kinds: KindRegistry) -> Decimal:
    """The tolerance this ledger's ``batch.register`` checks declarations with."""
    kind = kinds.get(KIND)
    assert isinstance(kind, RegisterBatch)
    return kind.footprint_tolerance


def _named_lots(
    ctx: AppendContext, reg: BatchRegistration, author: Author
) -> dict[LotKey, tuple[LotRow, LotValues]]:
    """The lots named as purchased primary metal: held by the signer, with the kilograms
    named available (checked again, and taken, in the append transaction)."""
    if not reg.metal_inputs.purchased_primary_batches:
        return {}
    flush_deferred(ctx.repo.session)  # lots registered earlier in a bulk count
    custody = CustodyRepository(ctx.repo.session)
    found: dict[LotKey, tuple[LotRow, LotValues]] = {}
    for position, ref in enumerate(reg.metal_inputs.purchased_primary_batches):
        field = f"payload.metal_inputs.purchased_primary_batches[{position}]"
        lot = held_lot(custody, LotRef(ref.smelter_id, ref.batch_id), author, field)
        require_available(lot, ref.mass_kg, f"{field}.mass_kg")
        found[(ref.smelter_id, ref.batch_id)] = (lot, lot_values(lot))
    return found


def _derived_column(checked: CheckedBatch) -> dict[str, Any]:
    """The derived values a batch stores (its ``derived`` column, as a dict)."""
    reg, derived = checked.registration, checked.derived
    values = derived.to_dict()
    if derived.own_electrolysis_share is not None:  # what method-2 facts are computed with
        values |= {
            "method": CURRENT_METHOD,
            "factor_table_version": checked.factor_table_version,
            "gwp_set": reg.declared_footprint.gwp_set,
        }
    masses = {
        (r.smelter_id, r.batch_id): r.mass_kg for r in reg.metal_inputs.purchased_primary_batches
    }
    if checked.inputs:
        values["ledger_lots"] = [
            {
                "ns": ns,
                "batch_id": batch_id,
                "mass_kg": masses[(ns, batch_id)],
                "kg_co2e_per_t": lot.kg_co2e_per_t,
                "electricity_kwh_per_t": str(lot.electricity_kwh_per_t),
                "renewable_share": str(lot.renewable_share),
                "primary_share": str(lot.primary_share),
                "primary_green_share": str(lot.primary_green_share),
            }
            for (ns, batch_id), (_, lot) in checked.inputs.items()
        ]
    return values


def batch_values(
    checked: CheckedBatch,
    index: int,
    region: str,
    at: str,
    derived: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every column of the batch's ``batches`` row. ``derived``: ``_derived_column`` of
    ``checked``, when the caller has it already."""
    reg, computed = checked.registration, checked.footprint
    values = _derived_column(checked) if derived is None else derived
    return {
        "smelter_id": reg.smelter_id,
        "batch_id": reg.batch_id,
        "record_index": index,
        "product_form": reg.product_form,
        "alloy": reg.alloy,
        "route": reg.route,
        "mass_kg": reg.mass_kg,
        "period_start": reg.production_period.start.isoformat(),
        "period_end": reg.production_period.end.isoformat(),
        "site": reg.site,
        "region": region,
        "declared_kg_co2e_per_t": reg.declared_footprint.kg_co2e_per_t,
        "declared_boundary": reg.declared_footprint.boundary,
        "computed_kg_co2e_per_t": computed.total_kg_co2e_per_t if computed else None,
        "computed_scope1_2_kg_co2e_per_t": computed.scope1_2_kg_co2e_per_t if computed else None,
        "footprint_check": checked.footprint_check,
        "renewable_share_ppm": _ppm(checked.derived.renewable_share),
        "recycled_total_ppm": _ppm(checked.derived.recycled_content_total),
        "derived": json.dumps(values),
        "footprint": json.dumps(computed.to_dict()) if computed else None,
        "registered_at": at,
    }


def _ppm(share: Decimal | None) -> int:
    return int((share or Decimal(0)) * PPM)
