"""Fill ``BatchFacts`` from the ledger's batch read model and the signed registration.

The one place that maps stored batches to grading facts, so that append-time checks,
previews and anything later (GraphQL, certificates) grade from the same numbers.
Shares come from the stored derived values (4 places, half-even), the numbers a
reader of the batch sees.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

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


def _share(value: str | None) -> Decimal:
    """A stored share string; None (no electricity at all) counts as no share."""
    return Decimal(0) if value is None else Decimal(value)
