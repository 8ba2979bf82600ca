"""Fill ``BatchFacts`` for a registered batch: from the read model, or from the record alone.

The one place that maps batches to grading facts, so that append-time checks, previews,
GraphQL and offline certificate checks grade from the same numbers. Shares come from
the derived values at 4 places, half-even, the numbers a reader of the batch sees.

``batch_facts`` reads what the ledger stored when the batch was appended;
``facts_from_registration`` recomputes the same facts from the plaintext payload (the
signed one opened with its disclosures) with the shipped factor tables, for verifiers that
hold nothing but records and disclosures. The two agree as long as the footprint
tolerance is the ledger's (a test holds them together). ``public_facts`` are the facts
anyone can recompute from the signed payload alone, without a disclosure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ledger.batches.derived import derive
from ledger.batches.payload import parse_registration
from ledger.disclosure.reveal import strip_commitments
from ledger.footprint import DEFAULT_TOLERANCE, compute_footprint, footprint_check
from ledger.grading.facts import BatchFacts
from ledger.storage.tables import BatchRow


def batch_facts(row: BatchRow, record_payload: Mapping[str, Any]) -> BatchFacts:
    """Facts of a registered batch; ``record_payload`` is its ``batch.register`` payload."""
    derived = json.loads(row.derived)
    declared = record_payload.get("declared_footprint") or {}
    return BatchFacts(
        product_form=row.product_form,
        route=row.route,
        declared_kg_co2e_per_t=row.declared_kg_co2e_per_t,
        declared_boundary=row.declared_boundary,
        computed_total_kg_co2e_per_t=row.computed_kg_co2e_per_t,
        computed_scope1_2_kg_co2e_per_t=row.computed_scope1_2_kg_co2e_per_t,
        renewable_share_certified=_share(derived.get("renewable_share")),
        recycled_pre=_share(derived.get("recycled_content_pre_consumer")),
        recycled_post=_share(derived.get("recycled_content_post_consumer")),
        recycled_total=_share(derived.get("recycled_content_total")),
        third_party_verified=declared.get("verification") is not None,
        footprint_check=row.footprint_check,
        activity_data_present=record_payload.get("activity_data") is not None,
    )


def facts_from_registration(
    payload: Mapping[str, Any], footprint_tolerance: Decimal = DEFAULT_TOLERANCE
) -> BatchFacts:
    """Facts recomputed from a ``batch.register`` payload, without the ledger's database."""
    reg = parse_registration(payload)
    derived = derive(reg).to_dict()
    computed = compute_footprint(reg)
    declared = reg.declared_footprint
    return BatchFacts(
        product_form=reg.product_form,
        route=reg.route,
        declared_kg_co2e_per_t=declared.kg_co2e_per_t,
        declared_boundary=declared.boundary,
        computed_total_kg_co2e_per_t=computed.total_kg_co2e_per_t if computed else None,
        computed_scope1_2_kg_co2e_per_t=computed.scope1_2_kg_co2e_per_t if computed else None,
        renewable_share_certified=_share(derived["renewable_share"]),
        recycled_pre=_share(derived["recycled_content_pre_consumer"]),
        recycled_post=_share(derived["recycled_content_post_consumer"]),
        recycled_total=_share(derived["recycled_content_total"]),
        third_party_verified=(payload.get("declared_footprint") or {}).get("verification")
        is not None,
        footprint_check=footprint_check(
            declared.kg_co2e_per_t, computed, declared.boundary, footprint_tolerance
        ),
        activity_data_present=payload.get("activity_data") is not None,
    )


PUBLIC_FACTS = (
    "product_form",
    "route",
    "declared_kg_co2e_per_t",
    "declared_boundary",
    "renewable_share_certified",
    "recycled_pre",
    "recycled_post",
    "recycled_total",
    "third_party_verified",
    "activity_data_present",
)
"""Facts that follow from a batch's public members; the rest need its activity data."""


def public_facts(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The public facts of a signed ``batch.register`` payload (committed or not), in the
    form of ``BatchFacts.to_dict``; nothing confidential is needed or used."""
    public = strip_commitments(payload)
    reg = parse_registration(public)
    derived = derive(reg).to_dict()
    declared = reg.declared_footprint
    return {
        "product_form": reg.product_form,
        "route": reg.route,
        "declared_kg_co2e_per_t": declared.kg_co2e_per_t,
        "declared_boundary": declared.boundary,
        "renewable_share_certified": str(_share(derived["renewable_share"])),
        "recycled_pre": str(_share(derived["recycled_content_pre_consumer"])),
        "recycled_post": str(_share(derived["recycled_content_post_consumer"])),
        "recycled_total": str(_share(derived["recycled_content_total"])),
        "third_party_verified": declared.verification is not None,
        "activity_data_present": payload.get("activity_data") is not None,
    }


def _share(value: str | None) -> Decimal:
    """A stored share string; None (no electricity at all) counts as no share."""
    return Decimal(0) if value is None else Decimal(value)
