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
  emissions are electricity (market-based, like the lots' footprints: the process kWh
  carry no certificate, so they count at the residual factor of the record's year, own
  fossil generation at least its own factor), fuels (amount x NCV x EF) and any direct
  emissions declared.
* recycled content (pre- and post-consumer shares of the output's metal) = the
  mass-weighted shares of the inputs, external scrap counting as 100 % of its type.
* electricity behind the metal and its certified share, **weighted by kWh**: the kWh
  behind each lot's metal (its ``electricity_kwh_per_t``), the default intensity behind
  unregistered primary metal, and the process kWh; certified only what the lots' shares
  certify. A tonne of scrap-based metal at 200 kWh/t does not dilute a tonne of coal-grid
  metal at 14,000 kWh/t half and half.
* green-power share of the primary metal: over the primary kilograms (the lots' primary
  shares, plus unregistered primary metal at 0), the lots' own green-power shares.

Arithmetic is exact Decimal; only what is written out is rounded (kg half-even, shares
to 4 places half-even), each breakdown item separately, so rounded items may differ from
the rounded total by a kilogram or two (as in ``ledger/footprint/calculator.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

from ledger.batches.payload import LotValues
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
from ledger.footprint.calculator import METHOD_V2, check_fuel, market_factor
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
    basis: str
    recycled_pre: Decimal
    recycled_post: Decimal
    values: LotValues

    @property
    def kg_co2e_per_t(self) -> int:
        return self.values.kg_co2e_per_t

    @property
    def kwh(self) -> Decimal:
        """kWh behind the kilograms this transform consumes."""
        return self.mass_kg * self.values.electricity_kwh_per_t / KG_PER_T

    @property
    def primary_kg(self) -> Decimal:
        return self.mass_kg * self.values.primary_share


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
    electricity_kwh_per_t: Decimal = Decimal(0)
    primary_share: Decimal = Decimal(0)
    primary_green_share: Decimal = Decimal(0)

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
                "method": METHOD_V2,
                "recycled_content_method": "cut_off",
                "assumptions": self.assumptions,
            },
            "recycled_content": {
                "pre_consumer": share_text(self.recycled_pre),
                "post_consumer": share_text(self.recycled_post),
                "total": share_text(self.recycled_pre + self.recycled_post),
            },
            "renewable_share": share_text(self.renewable),
            "electricity_kwh_per_t": share_text(self.electricity_kwh_per_t),
            "primary_share": share_text(self.primary_share),
            "green_power_share_primary": share_text(self.primary_green_share),
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
    provenance = _provenance(transform, lots, external_kg, tables)
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
        renewable=provenance.renewable_share,
        external_kg=external_kg,
        factor_table_version=tables.version,
        assumptions=assumptions,
        electricity_kwh_per_t=provenance.electricity_kwh_per_t * whole / output_kg,
        primary_share=provenance.primary_share,
        primary_green_share=provenance.primary_green_share,
    )


def _provenance(
    transform: TransformPayload,
    lots: Sequence[InputLot],
    external_kg: dict[str, int],
    tables: FactorTables,
) -> LotValues:
    """Electricity behind the inputs (per t of input) and the provenance of their primary
    metal, weighted by what each measures (module docstring)."""
    external_primary = external_kg[PRIMARY]
    kwh = sum((lot.kwh for lot in lots), Decimal(0))
    certified = sum((lot.kwh * lot.values.renewable_share for lot in lots), Decimal(0))
    kwh += external_primary * tables.value("upstream", "purchased_primary_kwh_per_kg")
    kwh += sum(source.kwh for source in transform.process.electricity)
    primary = sum((lot.primary_kg for lot in lots), Decimal(0)) + external_primary
    green = sum((lot.primary_kg * lot.values.primary_green_share for lot in lots), Decimal(0))
    whole = Decimal(transform.input_kg)
    return LotValues(
        kg_co2e_per_t=0,
        electricity_kwh_per_t=kwh * KG_PER_T / whole,
        renewable_share=certified / kwh if kwh else Decimal(0),
        primary_share=primary / whole,
        primary_green_share=green / primary if primary else Decimal(0),
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
    """Process electricity, market-based: it carries no certificate."""
    entry: dict[str, Any] = {"item": "electricity", "type": source.type, "kwh": source.kwh}
    if source.type == "grid":
        if tables.location_grid(source.grid_region or "", year) is None:
            raise InvalidError(
                f"grid_region {source.grid_region} has no emission factor in factor table"
                f" {tables.version}; known regions: {', '.join(tables.grid_regions())}",
                field=f"payload.process.electricity[{position}].grid_region",
            )
        entry["grid_region"] = source.grid_region
    picked = market_factor(tables, source.type, year)
    note = f"process electricity: market-based {picked.describe()}"
    if note not in assumptions:
        assumptions.append(note)
    entry["kg_co2_per_kwh"] = str(picked.value)
    return entry, source.kwh * picked.value


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
