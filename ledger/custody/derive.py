"""What a transform's outputs inherit from its inputs: footprint and recycled content.

Allocation is by mass: every output of one operation gets the same values.

* footprint (kg CO2e per t of output) =
  (sum of consumed lot t x its footprint + sum of external t x its footprint
  + process emissions kg) / output t.
  A lot's footprint is the integer the ledger states for it (a registered batch's
  computed cradle-to-gate total when it has one, else its declared value; a derived lot's
  derived value). An external input without a declared footprint takes the factor
  table's default: zero for scrap (cut-off / recycled-content method) and the
  conservative purchased-primary factor for unregistered primary metal. Process
  emissions are electricity (kWh x the grid or own-generation factor of the record's
  year), fuels (amount x NCV x EF) and any direct emissions declared.
* recycled content (pre- and post-consumer shares of the output's metal) = the
  mass-weighted shares of the inputs, external scrap counting as 100 % of its type.
* certificate-backed renewable share = the mass-weighted share of the lots; external
  inputs count as zero (nothing on the ledger backs their electricity).

Arithmetic is exact Decimal; only what is written out is rounded (kg half-even, shares
to 4 places half-even), each breakdown item separately, so rounded items may differ from
the rounded total by a kilogram or two (as in ``ledger/footprint/calculator.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

from ledger.custody.payloads import (
    PRIMARY,
    SCRAP_POST,
    SCRAP_PRE,
    ElectricityUse,
    ExternalInput,
    FuelBurnt,
    LotRef,
    TransformPayload,
)
from ledger.errors import InvalidError
from ledger.footprint.calculator import check_fuel
from ledger.footprint.factors import FactorTables

SHARE_PLACES: Final = Decimal("0.0001")
KG_PER_T: Final = Decimal(1000)
#: Factor table entries (kg CO2e per kg) of external inputs declared without a footprint.
EXTERNAL_DEFAULTS: Final = {
    SCRAP_PRE: ("upstream", "scrap_kg_co2e_per_kg"),
    SCRAP_POST: ("upstream", "scrap_kg_co2e_per_kg"),
    PRIMARY: ("upstream", "purchased_primary_kg_co2e_per_kg"),
}


@dataclass(frozen=True)
class InputLot:
    """A lot consumed by a transform, with what the ledger states about it."""

    ref: LotRef
    mass_kg: int
    kg_co2e_per_t: int
    basis: str
    recycled_pre: Decimal
    recycled_post: Decimal
    renewable: Decimal


@dataclass(frozen=True)
class Derivation:
    """Derived values of every output of one transform."""

    operation: str
    input_kg: int
    output_kg: int
    kg_co2e_per_t: int
    breakdown: list[dict[str, Any]]
    recycled_pre: Decimal
    recycled_post: Decimal
    renewable: Decimal
    external_kg: dict[str, int]
    factor_table_version: str
    assumptions: list[str] = field(default_factory=list)

    @property
    def process_yield(self) -> Decimal:
        return Decimal(self.output_kg) / Decimal(self.input_kg)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: integers, and decimals as 4-place strings."""
        return {
            "operation": self.operation,
            "input_kg": self.input_kg,
            "output_kg": self.output_kg,
            "yield": share_text(self.process_yield),
            "footprint": {
                "kg_co2e_per_t": self.kg_co2e_per_t,
                "basis": "derived",
                "allocation": "mass",
                "breakdown": self.breakdown,
                "factor_table_version": self.factor_table_version,
                "recycled_content_method": "cut_off",
                "assumptions": self.assumptions,
            },
            "recycled_content": {
                "pre_consumer": share_text(self.recycled_pre),
                "post_consumer": share_text(self.recycled_post),
                "total": share_text(self.recycled_pre + self.recycled_post),
            },
            "renewable_share": share_text(self.renewable),
        }


def derive_transform(
    transform: TransformPayload, lots: Sequence[InputLot], tables: FactorTables, year: int
) -> Derivation:
    """The values of the outputs of ``transform``, which consumes ``lots`` (in input order)."""
    input_kg, output_kg = transform.input_kg, transform.output_kg
    items: list[tuple[dict[str, Any], Decimal]] = []
    for lot in lots:
        entry = {
            "item": "input",
            "ns": lot.ref.ns,
            "batch_id": lot.ref.batch_id,
            "mass_kg": lot.mass_kg,
            "input_kg_co2e_per_t": lot.kg_co2e_per_t,
            "basis": lot.basis,
        }
        items.append((entry, lot.mass_kg * Decimal(lot.kg_co2e_per_t) / KG_PER_T))
    for external in transform.external_inputs:
        items.append(_external_item(external, tables))
    assumptions: list[str] = []
    for position, source in enumerate(transform.process.electricity):
        items.append(_electricity_item(source, position, tables, year, assumptions))
    for position, fuel in enumerate(transform.process.fuels):
        items.append(_fuel_item(fuel, position, tables))
    direct = transform.process.direct_emissions_kg_co2e
    if direct:
        items.append(({"item": "direct_emissions"}, Decimal(direct)))
    total = sum((kg for _, kg in items), Decimal(0))
    breakdown = [
        {**entry, "kg_co2e": _kg(kg), "kg_co2e_per_t": _kg(kg * KG_PER_T / output_kg)}
        for entry, kg in items
    ]
    external_kg = {kind: 0 for kind in EXTERNAL_DEFAULTS}
    for external in transform.external_inputs:
        external_kg[external.type] += external.mass_kg
    whole = Decimal(input_kg)
    return Derivation(
        operation=transform.operation,
        input_kg=input_kg,
        output_kg=output_kg,
        kg_co2e_per_t=_kg(total * KG_PER_T / output_kg),
        breakdown=breakdown,
        recycled_pre=(sum(lot.mass_kg * lot.recycled_pre for lot in lots) + external_kg[SCRAP_PRE])
        / whole,
        recycled_post=(
            sum(lot.mass_kg * lot.recycled_post for lot in lots) + external_kg[SCRAP_POST]
        )
        / whole,
        renewable=sum((lot.mass_kg * lot.renewable for lot in lots), Decimal(0)) / whole,
        external_kg=external_kg,
        factor_table_version=tables.version,
        assumptions=assumptions,
    )


def _external_item(external: ExternalInput, tables: FactorTables) -> tuple[dict[str, Any], Decimal]:
    entry: dict[str, Any] = {"item": "external", "type": external.type, "mass_kg": external.mass_kg}
    if external.kg_co2e_per_t is not None:
        factor = Decimal(external.kg_co2e_per_t)
        entry.update(input_kg_co2e_per_t=external.kg_co2e_per_t, basis="declared")
    else:
        path = EXTERNAL_DEFAULTS[external.type]
        factor = tables.value(*path) * KG_PER_T
        entry.update(
            input_kg_co2e_per_t=_kg(factor),
            basis=f"default: factor table {tables.version} {'.'.join(path)}",
        )
    if external.description:
        entry["description"] = external.description
    return entry, external.mass_kg * factor / KG_PER_T


def _electricity_item(
    source: ElectricityUse,
    position: int,
    tables: FactorTables,
    year: int,
    assumptions: list[str],
) -> tuple[dict[str, Any], Decimal]:
    entry: dict[str, Any] = {"item": "electricity", "type": source.type, "kwh": source.kwh}
    if source.type != "grid":
        factor = tables.value("own_generation", source.type)
    else:
        region = source.grid_region or ""
        try:
            picked = tables.grid_factor(region, year)
        except KeyError:
            raise InvalidError(
                f"grid_region {region} has no emission factor in factor table {tables.version};"
                f" known regions: {', '.join(tables.grid_regions())}",
                field=f"payload.process.electricity[{position}].grid_region",
            ) from None
        factor = picked.kg_co2_per_kwh
        entry["grid_region"] = region
        if picked.region != region or picked.year != year:
            assumptions.append(
                f"electricity[{position}]: grid factor of {picked.region} {picked.year}"
                f" used for {region} in {year}"
            )
    entry["kg_co2_per_kwh"] = str(factor)
    return entry, source.kwh * factor


def _fuel_item(
    fuel: FuelBurnt, position: int, tables: FactorTables
) -> tuple[dict[str, Any], Decimal]:
    check_fuel(fuel.fuel, fuel.unit, tables, f"payload.process.fuels[{position}]")
    kg = (
        fuel.amount
        * tables.value("fuels", fuel.fuel, "ncv_gj_per_unit")
        * tables.value("fuels", fuel.fuel, "ef_kg_co2_per_gj")
    )
    entry = {"item": "fuel", "fuel": fuel.fuel, "amount": str(fuel.amount), "unit": fuel.unit}
    return entry, kg


def exact_text(value: Decimal) -> str:
    """A stored share: every digit Decimal computed, never an exponent."""
    return format(value, "f")


def share_text(value: Decimal | None) -> str | None:
    """Four decimals, half-even, as a string; None stays None."""
    if value is None:
        return None
    return str(value.quantize(SHARE_PLACES, rounding=ROUND_HALF_EVEN))


def ratio_text(part: int, whole: int) -> str:
    """``part / whole`` as a 4-decimal string, half-even, in integer arithmetic (the same
    digits as ``share_text(Decimal(part) / whole)``; lineage writes thousands of them)."""
    quotient, remainder = divmod(part * 10_000, whole)
    if 2 * remainder > whole or (2 * remainder == whole and quotient % 2):
        quotient += 1
    return f"{quotient // 10_000}.{quotient % 10_000:04d}"


def _kg(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
