"""Fill ``BatchFacts`` for a registered batch: from the read model, or from the record alone.

The one place that maps batches to grading facts, so that append-time checks, previews,
GraphQL and offline certificate checks grade from the same numbers. Shares come from
the derived values at 4 places, half-even, the numbers a reader of the batch sees.

* ``batch_facts`` reads what the ledger stored when the batch was appended (its own
  computation: the declared GWP set, the factor table then newest);
* ``facts_from_registration`` recomputes the facts from the plaintext payload (the signed
  one opened with its disclosures) under a given method, factor table and GWP set (what
  a rule set pins), with what the ledger stated about the lots the batch named. The two
  agree for the same parameters (a test holds them together);
* ``public_facts`` are the facts anyone can recompute from the signed payload alone,
  without a disclosure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from ledger.batches.derived import derive, stated_lot_values
from ledger.batches.payload import parse_registration
from ledger.disclosure.reveal import strip_commitments
from ledger.footprint import (
    DEFAULT_TOLERANCE,
    compute_footprint,
    footprint_check,
    load_factor_tables,
)
from ledger.footprint.calculator import CURRENT_METHOD, METHOD_V1, V1_TABLE
from ledger.grading.facts import BatchFacts

if TYPE_CHECKING:  # a type only: the verifier imports this module and no storage
    from ledger.storage.tables import BatchRow


@dataclass(frozen=True)
class Pins:
    """What facts are computed with: footprint method, factor table, GWP set (None: the
    batch's declared GWP set)."""

    method: str = CURRENT_METHOD
    factor_table_version: str | None = None
    gwp_set: str | None = None


LEGACY = Pins(METHOD_V1, V1_TABLE)


def batch_facts(row: BatchRow, record_payload: Mapping[str, Any]) -> BatchFacts:
    """Facts of a registered batch; ``record_payload`` is its ``batch.register`` payload."""
    derived = json.loads(row.derived)
    declared = record_payload.get("declared_footprint") or {}
    footprint = json.loads(row.footprint) if row.footprint else {}
    base = BatchFacts(
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
    if "method" not in derived:  # registered before method 2
        return base
    return _with_v2(base, derived, footprint)


def _with_v2(
    base: BatchFacts, derived: Mapping[str, Any], footprint: Mapping[str, Any]
) -> BatchFacts:
    return replace(
        base,
        own_electrolysis_share=_share(derived["own_electrolysis_share"]),
        green_power_share_primary=_share(derived["green_power_share_primary"]),
        electricity_kwh_per_t=_whole(derived["electricity_kwh_per_t"]),
        certificate_time_matching=derived["certificate_time_matching"],
        location_total_kg_co2e_per_t=footprint.get("location_based_total_kg_co2e_per_t"),
        location_scope1_2_kg_co2e_per_t=footprint.get("location_based_scope1_2_kg_co2e_per_t"),
        direct_kg_co2e_per_t=footprint.get("direct_kg_co2e_per_t"),
        method=derived["method"],
        factor_table_version=derived["factor_table_version"],
        gwp_set=derived["gwp_set"],
        ledger_lots=tuple(derived.get("ledger_lots", ())),
    )


def computed_with(derived: Mapping[str, Any]) -> Pins:
    """The parameters the ledger computed a batch's stored facts with."""
    if "method" not in derived:
        return LEGACY
    return Pins(derived["method"], derived["factor_table_version"], derived["gwp_set"])


def facts_from_registration(
    payload: Mapping[str, Any],
    footprint_tolerance: Decimal = DEFAULT_TOLERANCE,
    *,
    pins: Pins = Pins(),
    ledger_lots: Sequence[Mapping[str, Any]] = (),
) -> BatchFacts:
    """Facts recomputed from a plaintext ``batch.register`` payload under ``pins``, without
    the ledger's database; ``ledger_lots`` is what the ledger stated about the lots the
    batch named (``BatchFacts.ledger_lots``)."""
    legacy = pins.method == METHOD_V1
    reg = parse_registration(payload, legacy=legacy)
    lots = stated_lot_values(ledger_lots)
    derived = derive(reg, lots, legacy=legacy).to_dict()
    tables = load_factor_tables(V1_TABLE if legacy else pins.factor_table_version)
    gwp_set = pins.gwp_set or reg.declared_footprint.gwp_set
    computed = compute_footprint(reg, tables, method=pins.method, gwp_set=gwp_set, lots=lots)
    declared = reg.declared_footprint
    base = BatchFacts(
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
    if legacy:
        return base
    stated = {
        **derived,
        "method": pins.method,
        "factor_table_version": tables.version,
        "gwp_set": gwp_set,
        "ledger_lots": list(ledger_lots),
    }
    return _with_v2(base, stated, computed.to_dict() if computed else {})


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
PUBLIC_FACTS_V2 = (
    *PUBLIC_FACTS,
    "own_electrolysis_share",
    "green_power_share_primary",
    "electricity_kwh_per_t",
    "certificate_time_matching",
)
"""Method 2 adds the provenance of the metal (given what the ledger stated of named lots)."""


def public_facts(
    payload: Mapping[str, Any],
    ledger_lots: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The public facts of a signed ``batch.register`` payload (committed or not), in the
    form of ``BatchFacts.to_dict``; nothing confidential is needed or used. ``ledger_lots``
    None: the facts of a batch registered before method 2."""
    legacy = ledger_lots is None
    reg = parse_registration(strip_commitments(payload), legacy=legacy, rules=False)
    derived = derive(reg, stated_lot_values(ledger_lots or ()), legacy=legacy).to_dict()
    declared = reg.declared_footprint
    facts = {
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
    if legacy:
        return facts
    return facts | {
        "own_electrolysis_share": str(_share(derived["own_electrolysis_share"])),
        "green_power_share_primary": str(_share(derived["green_power_share_primary"])),
        "electricity_kwh_per_t": _whole(derived["electricity_kwh_per_t"]),
        "certificate_time_matching": derived["certificate_time_matching"],
    }


def _share(value: str | None) -> Decimal:
    """A stored share string; None (no electricity at all) counts as no share."""
    return Decimal(0) if value is None else Decimal(value)


def _whole(value: str) -> int:
    """kWh per tonne, whole, half-even."""
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
