"""Recompute a batch's carbon footprint from its activity data, per tonne of batch.

Structure of GB/T 32151.4 and the 2024 national ETS guide CETS-AG-04.01-V01-2024 for the
plant (scope 1 and 2), plus the cradle-to-gate inputs of GB/T 44905-2024:

* fuel combustion      sum(amount x NCV x EF)                              per t batch
* anode consumption    NC x (1 - S - A) x 44/12                            per t own metal
* PFC (slope method)   CF4 = slope x AEM, C2F6 = ratio x CF4, x GWP        per t own metal
  (the Chinese default CF4 and C2F6 emissions when AEM is not measured)
* carbonates           limestone x 0.405                                   per t batch
* electricity          uncertified kWh x factor of the source / batch t    actual kWh
* purchased heat       GJ x 0.11 t/GJ                                      per t batch
* upstream alumina     alumina x factor                                    per t own metal
* upstream anodes      NC x anode production factor                        per t own metal
* upstream primary     purchased primary share x 16.5 t/t (conservative)   per t batch
* scrap                zero burden (cut-off)

Items per tonne of own-electrolysis metal are scaled by own_electrolysis_kg / mass_kg, so
the metal lost in casting is borne by the batch. All arithmetic is Decimal; results are
rounded half-even to whole kg only at the end (each breakdown item and the totals
separately, so the rounded items may differ from the rounded total by a kilogram or two).
The numbers come from a versioned factor table (``factors.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final, Literal

from ledger.batches.payload import BatchRegistration, ElectricitySource, FuelUse
from ledger.errors import InvalidError
from ledger.footprint.factors import FactorTables, load_factor_tables

SCOPE1_2_ITEMS: Final = (
    "fuel_combustion",
    "anode_consumption",
    "pfc",
    "carbonates",
    "electricity",
    "purchased_heat",
)
UPSTREAM_ITEMS: Final = (
    "upstream_alumina",
    "upstream_anode_production",
    "upstream_purchased_primary",
)
BREAKDOWN_ITEMS: Final = SCOPE1_2_ITEMS + UPSTREAM_ITEMS
RECYCLED_CONTENT_METHOD: Final = "cut_off"
BOUNDARIES: Final = ("cradle_to_gate", "scope1_2")

FootprintCheck = Literal["consistent", "declared_below_computed", "not_computable"]


@dataclass(frozen=True)
class FootprintResult:
    """A recomputed footprint in kg CO2e per tonne of batch, and what it was computed with."""

    total_kg_co2e_per_t: int
    scope1_2_kg_co2e_per_t: int
    breakdown: dict[str, int]
    factor_table_version: str
    gwp_set: str
    recycled_content_method: str = RECYCLED_CONTENT_METHOD
    assumptions: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; integers only, so it can be signed or stored as is."""
        return {
            "total_kg_co2e_per_t": self.total_kg_co2e_per_t,
            "scope1_2_kg_co2e_per_t": self.scope1_2_kg_co2e_per_t,
            "breakdown": dict(self.breakdown),
            "factor_table_version": self.factor_table_version,
            "gwp_set": self.gwp_set,
            "recycled_content_method": self.recycled_content_method,
            "assumptions": list(self.assumptions),
        }


@dataclass(frozen=True)
class ResolvedInputs:
    """Activity data with table defaults filled in: what the formulas actually use."""

    own_share: Decimal
    purchased_primary_share: Decimal
    net_anode_kg_per_t: Decimal
    anode_sulphur_pct: Decimal
    anode_ash_pct: Decimal
    cf4_kg_per_t: Decimal
    c2f6_kg_per_t: Decimal
    alumina_kg_per_t: Decimal
    fuels: tuple[FuelUse, ...]
    limestone_kg_per_t: Decimal
    purchased_heat_gj_per_t: Decimal
    electricity_kg_co2: Decimal
    assumptions: tuple[str, ...]


def compute_footprint(
    reg: BatchRegistration, factors: FactorTables | None = None
) -> FootprintResult | None:
    """The footprint of a registered batch, or None when it has no activity data.

    Raises InvalidError (naming the payload field) when the data names something the factor
    table has no factor for: a grid region, a fuel, a cell technology or a GWP set.
    """
    if reg.activity_data is None:
        return None
    tables = factors if factors is not None else load_factor_tables()
    inputs = resolve_inputs(reg, tables)
    exact = _breakdown(reg, tables, inputs)
    return FootprintResult(
        total_kg_co2e_per_t=_kg(sum(exact.values(), Decimal(0))),
        scope1_2_kg_co2e_per_t=_kg(sum((exact[k] for k in SCOPE1_2_ITEMS), Decimal(0))),
        breakdown={item: _kg(value) for item, value in exact.items()},
        factor_table_version=tables.version,
        gwp_set=reg.declared_footprint.gwp_set,
        assumptions=inputs.assumptions,
    )


def exact_breakdown(reg: BatchRegistration, tables: FactorTables) -> dict[str, Decimal]:
    """Unrounded kg CO2e per tonne of batch, by item (in BREAKDOWN_ITEMS order)."""
    return _breakdown(reg, tables, resolve_inputs(reg, tables))


def _breakdown(
    reg: BatchRegistration, tables: FactorTables, i: ResolvedInputs
) -> dict[str, Decimal]:
    gwp_set = reg.declared_footprint.gwp_set
    anode_carbon = Decimal(1) - (i.anode_sulphur_pct + i.anode_ash_pct) / 100
    co2_per_c = tables.value("anode", "co2_molar_mass") / tables.value("anode", "c_molar_mass")
    pfc_per_t_own = i.cf4_kg_per_t * tables.value("gwp", gwp_set, "CF4") + (
        i.c2f6_kg_per_t * tables.value("gwp", gwp_set, "C2F6")
    )
    return {
        "fuel_combustion": sum((_fuel_co2(f, tables) for f in i.fuels), Decimal(0)),
        "anode_consumption": i.own_share * i.net_anode_kg_per_t * anode_carbon * co2_per_c,
        "pfc": i.own_share * pfc_per_t_own,
        "carbonates": i.limestone_kg_per_t * tables.value("carbonates", "limestone_kg_co2_per_kg"),
        "electricity": i.electricity_kg_co2 * 1000 / reg.mass_kg,
        "purchased_heat": i.purchased_heat_gj_per_t
        * tables.value("purchased_heat", "kg_co2_per_gj"),
        "upstream_alumina": i.own_share
        * i.alumina_kg_per_t
        * tables.value("upstream", "alumina_kg_co2e_per_kg"),
        "upstream_anode_production": i.own_share
        * i.net_anode_kg_per_t
        * tables.value("upstream", "anode_production_kg_co2e_per_kg"),
        "upstream_purchased_primary": i.purchased_primary_share
        * 1000
        * tables.value("upstream", "purchased_primary_kg_co2e_per_kg"),
    }


def resolve_inputs(reg: BatchRegistration, tables: FactorTables) -> ResolvedInputs:
    """Fill absent activity data from the table's defaults, noting each default that matters.

    Potroom defaults are noted only when the batch has own-electrolysis metal: without it
    they are multiplied by zero.
    """
    activity = reg.activity_data
    if activity is None:
        raise ValueError("resolve_inputs needs activity data")
    _require_gwp_set(reg, tables)
    _check_fuels(reg, tables)
    inputs = reg.metal_inputs
    potroom = inputs.own_electrolysis_kg > 0
    notes: list[str] = []

    def pick(given: int | Decimal | None, name: str, group: str, entry: str) -> Decimal:
        if given is None and potroom:
            notes.append(f"{name}: default {tables.data[group][entry]['value']} of the table")
        return tables.value(group, entry) if given is None else Decimal(given)

    cf4, c2f6 = _pfc_emissions(reg, tables, notes if potroom else [])
    return ResolvedInputs(
        own_share=Decimal(inputs.own_electrolysis_kg) / reg.mass_kg,
        purchased_primary_share=Decimal(inputs.purchased_primary_kg) / reg.mass_kg,
        net_anode_kg_per_t=pick(
            activity.net_anode_consumption_kg_per_t,
            "net_anode_consumption_kg_per_t",
            "anode",
            "net_consumption_kg_per_t",
        ),
        anode_sulphur_pct=pick(
            activity.anode_sulphur_pct, "anode_sulphur_pct", "anode", "sulphur_pct"
        ),
        anode_ash_pct=pick(activity.anode_ash_pct, "anode_ash_pct", "anode", "ash_pct"),
        cf4_kg_per_t=cf4,
        c2f6_kg_per_t=c2f6,
        alumina_kg_per_t=pick(
            activity.alumina_kg_per_t, "alumina_kg_per_t", "upstream", "alumina_kg_per_t"
        ),
        fuels=activity.fuels,
        limestone_kg_per_t=Decimal(activity.limestone_kg_per_t or 0),
        purchased_heat_gj_per_t=activity.purchased_heat_gj_per_t or Decimal(0),
        electricity_kg_co2=_electricity_co2(reg, tables, notes),
        assumptions=tuple(notes),
    )


def _require_gwp_set(reg: BatchRegistration, tables: FactorTables) -> None:
    gwp_set = reg.declared_footprint.gwp_set
    if not tables.has("gwp", gwp_set):
        raise InvalidError(
            f"gwp_set {gwp_set} has no GWP values in factor table {tables.version}",
            field="payload.declared_footprint.gwp_set",
        )


def _pfc_emissions(
    reg: BatchRegistration, tables: FactorTables, notes: list[str]
) -> tuple[Decimal, Decimal]:
    """(CF4, C2F6) kg per t of own metal: slope method if AEM is given, else the defaults."""
    activity = reg.activity_data
    aem = None if activity is None else activity.anode_effect_minutes_per_cell_day
    tech = None if activity is None else activity.cell_technology
    if aem is None or tech is None:
        notes.append("pfc: Chinese default CF4 and C2F6 emissions (anode effects not measured)")
        default = ("pfc", "default_emissions")
        return tables.value(*default, "cf4_kg_per_t"), tables.value(*default, "c2f6_kg_per_t")
    if not tables.has("pfc", "slope_method", tech):
        raise InvalidError(
            f"cell_technology {tech} has no PFC slope coefficients in factor table"
            f" {tables.version}",
            field="payload.activity_data.cell_technology",
        )
    slope = ("pfc", "slope_method", tech)
    cf4 = tables.value(*slope, "cf4_slope") * aem
    return cf4, cf4 * tables.value(*slope, "c2f6_cf4_ratio")


def _fuel_co2(fuel: FuelUse, tables: FactorTables) -> Decimal:
    """kg CO2 per t of batch from one fuel: amount x NCV x EF."""
    entry = ("fuels", fuel.fuel)
    return (
        fuel.amount
        * tables.value(*entry, "ncv_gj_per_unit")
        * tables.value(*entry, "ef_kg_co2_per_gj")
    )


def _electricity_co2(reg: BatchRegistration, tables: FactorTables, notes: list[str]) -> Decimal:
    """kg CO2 of the whole batch's electricity; certificate-backed kWh count as zero."""
    total = Decimal(0)
    for index, source in enumerate(reg.electricity):
        if source.uncertified_kwh:
            factor = _source_factor(reg, tables, source, index, notes)
            total += source.uncertified_kwh * factor
    return total


def _source_factor(
    reg: BatchRegistration,
    tables: FactorTables,
    source: ElectricitySource,
    index: int,
    notes: list[str],
) -> Decimal:
    """kg CO2/kWh of an uncertified source: its grid's factor, or the own-generation one."""
    if source.type != "grid":
        return tables.value("own_generation", source.type)
    region = source.grid_region or ""
    year = reg.production_period.end.year
    try:
        picked = tables.grid_factor(region, year)
    except KeyError:
        raise InvalidError(
            f"grid_region {region} has no emission factor in factor table {tables.version};"
            f" known regions: {', '.join(tables.grid_regions())}",
            field=f"payload.electricity[{index}].grid_region",
        ) from None
    if picked.region != region or picked.year != year:
        notes.append(
            f"electricity[{index}]: grid factor {picked.kg_co2_per_kwh} kg/kWh of"
            f" {picked.region} {picked.year} used for {region} in {year}"
        )
    return picked.kg_co2_per_kwh


def _check_fuels(reg: BatchRegistration, tables: FactorTables) -> None:
    """Every fuel needs a factor, stated in the table's unit."""
    activity = reg.activity_data
    for index, fuel in enumerate(() if activity is None else activity.fuels):
        check_fuel(fuel.fuel, fuel.unit, tables, f"payload.activity_data.fuels[{index}]")


def check_fuel(fuel: str, unit: str, tables: FactorTables, field: str) -> None:
    """Refuse a fuel the factor table does not know, or one given in another unit."""
    if not tables.has("fuels", fuel):
        raise InvalidError(
            f"fuel {fuel} has no factors in factor table {tables.version}", field=f"{field}.fuel"
        )
    expected = tables.data["fuels"][fuel]["unit"]
    if unit != expected:
        raise InvalidError(
            f"unit {unit} does not match the {expected} of {fuel} in factor table {tables.version}",
            field=f"{field}.unit",
        )


DEFAULT_TOLERANCE = Decimal("0.10")
"""How far below the recomputed footprint a declaration may be before it is flagged."""


def footprint_check(
    declared: int,
    computed: FootprintResult | None,
    boundary: str,
    tolerance: Decimal = DEFAULT_TOLERANCE,
) -> FootprintCheck:
    """Compare a declared footprint with the recomputed one for the same boundary.

    Only a declaration more than ``tolerance`` below the computed value is flagged: declaring
    more than the default-based computation (e.g. from measured upstream data) is allowed.
    """
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, not {boundary!r}")
    if computed is None:
        return "not_computable"
    reference = (
        computed.total_kg_co2e_per_t
        if boundary == "cradle_to_gate"
        else computed.scope1_2_kg_co2e_per_t
    )
    if Decimal(declared) < reference * (1 - tolerance):
        return "declared_below_computed"
    return "consistent"


def _kg(value: Decimal) -> int:
    """Round half-even to whole kilograms: the only rounding in the computation."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
