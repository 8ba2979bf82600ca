"""Recompute a batch's carbon footprint from its activity data, per tonne of batch.

Structure of GB/T 32151.4 and the 2024 national ETS guide CETS-AG-04.01-V01-2024 for the
plant, plus the cradle-to-gate inputs of GB/T 44905-2024:

* fuel combustion      sum(amount x NCV x EF)                              per t batch
* anode consumption    NC x (1 - S - A) x 44/12                            per t own metal
* PFC (slope method)   CF4 = slope x AEM, C2F6 = ratio x CF4, x GWP        per t own metal
  (the Chinese default CF4 and C2F6 emissions when AEM is not measured)
* carbonates           limestone x 0.405                                   per t batch
* electricity          see the two methods below                           actual kWh
* purchased heat       GJ x 0.11 t/GJ                                      per t batch
* upstream alumina     alumina x factor                                    per t own metal
* upstream anodes      NC x anode production factor                        per t own metal
* upstream primary     named ledger lots at their footprint, the rest at   per t batch
                       the conservative 16.5 t/t
* upstream alloying    alloying additions x element factor                 per t batch
* scrap                zero burden (cut-off)

Two methods, each named in every result so a result can always be reproduced:

* ``alu-ledger-footprint/2`` (current): electricity both **market-based** (kWh covered by
  a claim that proves renewable attributes at 0; every other kWh at the residual factor,
  the national average excluding market-traded non-fossil power, own fossil generation
  at least that) and **location-based** (grid kWh at the provincial, else regional, else
  national factor; own renewables at 0 with metering evidence, else the national
  average; captive coal at the fossil-only factor). Totals: market-based and
  location-based cradle-to-gate and Scope 1+2, and the **direct** boundary of the China
  ETS and EU CBAM (anode, fuel and carbonate CO2 plus CF4 and C2F6). An alloy without its
  alloying additions has no cradle-to-gate total (``None``): it would be understated.
* ``alu-ledger-footprint/1`` (batches registered before it): uncertified kWh at the factor
  of their source, certified kWh at 0; purchased primary always at the default. Kept so
  that certificates issued on it keep verifying as they were issued.

Items per tonne of own-electrolysis metal are scaled by own_electrolysis_kg / mass_kg, so
the metal lost in casting is borne by the batch. All arithmetic is Decimal; results are
rounded half-even to whole kg only at the end (each item and each total separately).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final, Literal

from ledger.batches.payload import (
    RENEWABLE_TYPES,
    BatchRegistration,
    ElectricitySource,
    FuelUse,
    LotValues,
    is_alloyed,
)
from ledger.errors import InvalidError
from ledger.footprint.factors import FactorTables, YearlyFactor, load_factor_tables

METHOD_V1: Final = "alu-ledger-footprint/1"
METHOD_V2: Final = "alu-ledger-footprint/2"
METHODS: Final = (METHOD_V1, METHOD_V2)
CURRENT_METHOD: Final = METHOD_V2
#: The table every method-1 result was computed with.
V1_TABLE: Final = "2024.1"

DIRECT_ITEMS: Final = ("fuel_combustion", "anode_consumption", "pfc", "carbonates")
SCOPE1_2_ITEMS: Final = (*DIRECT_ITEMS, "electricity", "purchased_heat")
UPSTREAM_ITEMS: Final = (
    "upstream_alumina",
    "upstream_anode_production",
    "upstream_purchased_primary",
)
BREAKDOWN_ITEMS: Final = SCOPE1_2_ITEMS + UPSTREAM_ITEMS
"""Breakdown items of method 1."""
BREAKDOWN_ITEMS_V2: Final = (
    *DIRECT_ITEMS,
    "electricity_market_based",
    "electricity_location_based",
    "purchased_heat",
    *UPSTREAM_ITEMS,
    "upstream_alloying",
)
RECYCLED_CONTENT_METHOD: Final = "cut_off"
BOUNDARIES: Final = ("cradle_to_gate", "scope1_2")
NUCLEAR: Final = "nuclear"
CAPTIVE_FOSSIL: Final = ("captive_coal", "captive_gas")

FootprintCheck = Literal["consistent", "declared_below_computed", "not_computable"]


LotKey = tuple[str, str]


@dataclass(frozen=True)
class FootprintResult:
    """A recomputed footprint in kg CO2e per tonne of batch, and what it was computed with.

    ``total`` and ``scope1_2`` are market-based under method 2 (what grading and the
    declared-vs-computed check use); ``total`` is None when the cradle-to-gate footprint
    cannot be computed (an alloy without its alloying additions).
    """

    total_kg_co2e_per_t: int | None
    scope1_2_kg_co2e_per_t: int
    breakdown: dict[str, int]
    factor_table_version: str
    gwp_set: str
    method: str = METHOD_V1
    location_based_total_kg_co2e_per_t: int | None = None
    location_based_scope1_2_kg_co2e_per_t: int | None = None
    direct_kg_co2e_per_t: int | None = None
    recycled_content_method: str = RECYCLED_CONTENT_METHOD
    assumptions: tuple[str, ...] = ()
    not_computable: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; integers only, so it can be signed or stored as is."""
        out: dict[str, Any] = {
            "total_kg_co2e_per_t": self.total_kg_co2e_per_t,
            "scope1_2_kg_co2e_per_t": self.scope1_2_kg_co2e_per_t,
            "breakdown": dict(self.breakdown),
            "factor_table_version": self.factor_table_version,
            "gwp_set": self.gwp_set,
            "recycled_content_method": self.recycled_content_method,
            "assumptions": list(self.assumptions),
        }
        if self.method != METHOD_V1:
            out |= {
                "method": self.method,
                "location_based_total_kg_co2e_per_t": self.location_based_total_kg_co2e_per_t,
                "location_based_scope1_2_kg_co2e_per_t": (
                    self.location_based_scope1_2_kg_co2e_per_t
                ),
                "direct_kg_co2e_per_t": self.direct_kg_co2e_per_t,
                "not_computable": list(self.not_computable),
            }
        return out


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
    assumptions: list[str] = field(default_factory=list)


def compute_footprint(
    reg: BatchRegistration,
    factors: FactorTables | None = None,
    *,
    method: str = CURRENT_METHOD,
    gwp_set: str | None = None,
    lots: Mapping[LotKey, LotValues] | None = None,
) -> FootprintResult | None:
    """The footprint of a registered batch, or None when it has no activity data.

    ``gwp_set`` overrides the declared one (a rule set pins its own); ``lots`` gives what
    the ledger states about the lots named in ``purchased_primary_batches`` (method 2;
    lots not given count at the default). Raises InvalidError (naming the payload field)
    when the data names something the factor table has no factor for.
    """
    if reg.activity_data is None:
        return None
    if method not in METHODS:
        raise InvalidError(f"unknown footprint method {method}", field="method")
    tables = factors or load_factor_tables(V1_TABLE if method == METHOD_V1 else None)
    gwp = gwp_set or reg.declared_footprint.gwp_set
    inputs = resolve_inputs(reg, tables, gwp)
    if method == METHOD_V1:
        return _result_v1(reg, tables, inputs, gwp)
    return _result_v2(reg, tables, inputs, gwp, lots or {})


def exact_breakdown(reg: BatchRegistration, tables: FactorTables) -> dict[str, Decimal]:
    """Unrounded kg CO2e per tonne of batch by method-1 item (``BREAKDOWN_ITEMS`` order)."""
    gwp = reg.declared_footprint.gwp_set
    inputs = resolve_inputs(reg, tables, gwp)
    return _breakdown_v1(reg, tables, inputs, gwp)


# -- the items both methods share ---------------------------------------------------------
def _plant_items(tables: FactorTables, i: ResolvedInputs, gwp_set: str) -> dict[str, Decimal]:
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
    }


def _potroom_upstream(tables: FactorTables, i: ResolvedInputs) -> dict[str, Decimal]:
    return {
        "upstream_alumina": i.own_share
        * i.alumina_kg_per_t
        * tables.value("upstream", "alumina_kg_co2e_per_kg"),
        "upstream_anode_production": i.own_share
        * i.net_anode_kg_per_t
        * tables.value("upstream", "anode_production_kg_co2e_per_kg"),
    }


def _heat(tables: FactorTables, i: ResolvedInputs) -> Decimal:
    return i.purchased_heat_gj_per_t * tables.value("purchased_heat", "kg_co2_per_gj")


# -- method 1 -----------------------------------------------------------------------------
def _breakdown_v1(
    reg: BatchRegistration, tables: FactorTables, i: ResolvedInputs, gwp_set: str
) -> dict[str, Decimal]:
    plant = _plant_items(tables, i, gwp_set)
    electricity = _electricity_v1(reg, tables, i.assumptions)
    return {
        **plant,
        "electricity": electricity * 1000 / reg.mass_kg,
        "purchased_heat": _heat(tables, i),
        **_potroom_upstream(tables, i),
        "upstream_purchased_primary": i.purchased_primary_share
        * 1000
        * tables.value("upstream", "purchased_primary_kg_co2e_per_kg"),
    }


def _result_v1(
    reg: BatchRegistration, tables: FactorTables, i: ResolvedInputs, gwp_set: str
) -> FootprintResult:
    exact = _breakdown_v1(reg, tables, i, gwp_set)
    return FootprintResult(
        total_kg_co2e_per_t=_kg(sum(exact.values(), Decimal(0))),
        scope1_2_kg_co2e_per_t=_kg(sum((exact[k] for k in SCOPE1_2_ITEMS), Decimal(0))),
        breakdown={item: _kg(value) for item, value in exact.items()},
        factor_table_version=tables.version,
        gwp_set=gwp_set,
        assumptions=tuple(i.assumptions),
    )


def _electricity_v1(reg: BatchRegistration, tables: FactorTables, notes: list[str]) -> Decimal:
    """kg CO2 of the whole batch's electricity; certificate-backed kWh count as zero."""
    total = Decimal(0)
    for index, source in enumerate(reg.electricity):
        uncovered = source.kwh - _v1_covered(source)
        if uncovered:
            total += uncovered * _source_factor_v1(reg, tables, source, index, notes)
    return total


def _v1_covered(source: ElectricitySource) -> int:
    """Method 1 counted every certificate or contract as covering its kWh."""
    cert = source.certificate
    return 0 if cert is None else min(source.kwh, cert.claimed_kwh)


def _source_factor_v1(
    reg: BatchRegistration,
    tables: FactorTables,
    source: ElectricitySource,
    index: int,
    notes: list[str],
) -> Decimal:
    if source.type != "grid":
        return tables.value("own_generation", source.type)
    region = source.grid_region or ""
    year = reg.production_period.end.year
    try:
        picked = tables.grid_factor(region, year)
    except KeyError:
        raise _unknown_region(tables, region, f"payload.electricity[{index}]") from None
    if picked.region != region or picked.year != year:
        notes.append(
            f"electricity[{index}]: grid factor {picked.kg_co2_per_kwh} kg/kWh of"
            f" {picked.region} {picked.year} used for {region} in {year}"
        )
    return picked.kg_co2_per_kwh


# -- method 2 -----------------------------------------------------------------------------
@dataclass
class _Electricity:
    market: Decimal = Decimal(0)
    location: Decimal = Decimal(0)


def _result_v2(
    reg: BatchRegistration,
    tables: FactorTables,
    i: ResolvedInputs,
    gwp_set: str,
    lots: Mapping[LotKey, LotValues],
) -> FootprintResult:
    notes, blockers = i.assumptions, list[str]()
    electricity = _electricity_v2(reg, tables, notes)
    per_t = Decimal(1000) / reg.mass_kg
    alloying = _alloying(reg, tables, blockers)
    exact = {
        **_plant_items(tables, i, gwp_set),
        "electricity_market_based": electricity.market * per_t,
        "electricity_location_based": electricity.location * per_t,
        "purchased_heat": _heat(tables, i),
        **_potroom_upstream(tables, i),
        "upstream_purchased_primary": _purchased_primary(reg, tables, lots, notes),
        "upstream_alloying": alloying or Decimal(0),
    }
    direct = sum((exact[k] for k in DIRECT_ITEMS), Decimal(0))
    market = direct + exact["electricity_market_based"] + exact["purchased_heat"]
    location = direct + exact["electricity_location_based"] + exact["purchased_heat"]
    upstream_total = sum((exact[k] for k in (*UPSTREAM_ITEMS, "upstream_alloying")), Decimal(0))
    computable = not blockers
    return FootprintResult(
        total_kg_co2e_per_t=_kg(market + upstream_total) if computable else None,
        scope1_2_kg_co2e_per_t=_kg(market),
        breakdown={item: _kg(value) for item, value in exact.items()},
        factor_table_version=tables.version,
        gwp_set=gwp_set,
        method=METHOD_V2,
        location_based_total_kg_co2e_per_t=_kg(location + upstream_total) if computable else None,
        location_based_scope1_2_kg_co2e_per_t=_kg(location),
        direct_kg_co2e_per_t=_kg(direct),
        assumptions=tuple(notes),
        not_computable=tuple(blockers),
    )


def _electricity_v2(reg: BatchRegistration, tables: FactorTables, notes: list[str]) -> _Electricity:
    """kg CO2 of the batch's electricity, market-based and location-based."""
    year = reg.production_period.end.year
    residual = _required(tables, "residual_mix", year, notes, "market-based residual factor")
    result = _Electricity()
    for index, source in enumerate(reg.electricity):
        uncertified = source.kwh - source.certified_kwh
        result.market += uncertified * _market_factor(tables, source.type, residual, year)
        result.location += source.kwh * _location_factor(
            reg, tables, source, index, residual, notes
        )
    return result


def market_factor(tables: FactorTables, source_type: str, year: int) -> YearlyFactor:
    """The market-based factor of uncertified kWh of ``source_type`` produced in ``year``
    (custody transforms use it for their process electricity)."""
    residual = tables.national("residual_mix", year)
    if residual is None:
        raise InvalidError(
            f"factor table {tables.version} has no usable residual factor",
            field="factor_table_version",
        )
    value = _market_factor(tables, source_type, residual, year)
    return YearlyFactor(residual.source, residual.year, value, year)


def _market_factor(
    tables: FactorTables, source_type: str, residual: YearlyFactor, year: int
) -> Decimal:
    """Uncertified kWh, whatever their label, at the residual factor; own fossil generation
    at its own factor when that is higher (it is Scope 1 in both methods)."""
    if source_type == "captive_coal":
        fossil = tables.national("fossil_only", year)
        return max(residual.value, fossil.value) if fossil else residual.value
    if source_type == "captive_gas" and tables.usable("own_generation", "captive_gas"):
        return max(residual.value, tables.value("own_generation", "captive_gas"))
    return residual.value


def _location_factor(
    reg: BatchRegistration,
    tables: FactorTables,
    source: ElectricitySource,
    index: int,
    residual: YearlyFactor,
    notes: list[str],
) -> Decimal:
    year = reg.production_period.end.year
    where = f"electricity[{index}]"
    if source.type == "grid":
        picked = tables.location_grid(source.grid_region or "", year)
        if picked is None:
            raise _unknown_region(tables, source.grid_region or "", f"payload.{where}")
        if picked.source != source.grid_region or picked.year != year:
            notes.append(
                f"{where}: location-based grid factor {picked.describe()} used for"
                f" {source.grid_region} in {year}"
            )
        return picked.value
    if source.type in RENEWABLE_TYPES or source.type == NUCLEAR:
        if source.metering_evidence is not None:
            return Decimal(0)
        national = _required(tables, "grid", year, notes, "national average")
        notes.append(
            f"{where}: {source.type} without metering evidence counted location-based at the"
            f" national average {national.describe()}"
        )
        return national.value
    if source.type == "captive_coal":
        return _required(tables, "fossil_only", year, notes, "fossil-only factor").value
    if source.type == "captive_gas" and tables.usable("own_generation", "captive_gas"):
        return tables.value("own_generation", "captive_gas")
    notes.append(f"{where}: {source.type} counted at the residual factor {residual.describe()}")
    return residual.value


def _required(
    tables: FactorTables, section: str, year: int, notes: list[str], what: str
) -> YearlyFactor:
    picked = tables.national(section, year)
    if picked is None:
        raise InvalidError(
            f"factor table {tables.version} has no usable {what}; method {METHOD_V2} needs one",
            field="factor_table_version",
        )
    note = f"{what}: {picked.describe()}"
    if picked.year != year:
        note += f", the latest published for production in {year}"
    if note not in notes:
        notes.append(note)
    return picked


def _purchased_primary(
    reg: BatchRegistration,
    tables: FactorTables,
    lots: Mapping[LotKey, LotValues],
    notes: list[str],
) -> Decimal:
    """Named ledger lots at their own footprint, the rest at the conservative default."""
    inputs = reg.metal_inputs
    kg_co2e = Decimal(0)
    named_kg = 0
    for ref in inputs.purchased_primary_batches:
        lot = lots.get((ref.smelter_id, ref.batch_id))
        if lot is None:
            notes.append(
                f"purchased primary {ref.smelter_id}/{ref.batch_id}: its footprint was not"
                " given, counted at the default"
            )
            continue
        kg_co2e += Decimal(ref.mass_kg) * lot.kg_co2e_per_t / 1000
        named_kg += ref.mass_kg
    default = tables.value("upstream", "purchased_primary_kg_co2e_per_kg")
    kg_co2e += (inputs.purchased_primary_kg - named_kg) * default
    return kg_co2e * 1000 / reg.mass_kg


def _alloying(reg: BatchRegistration, tables: FactorTables, blockers: list[str]) -> Decimal | None:
    """kg CO2e per t batch of the alloying additions; a reason in ``blockers`` when an
    alloy states none, or an element has no usable factor."""
    activity = reg.activity_data
    additions = None if activity is None else activity.alloying_additions
    if additions is None:
        if is_alloyed(reg):
            blockers.append(
                f"alloy {reg.alloy} ({reg.product_form}) states no alloying_additions: its"
                " cradle-to-gate footprint would be understated"
            )
        return None
    total = Decimal(0)
    for addition in additions:
        if not tables.usable("alloying", addition.element):
            blockers.append(
                f"alloying element {addition.element} has no confirmed factor in factor table"
                f" {tables.version}"
            )
            continue
        total += addition.kg_per_t * tables.value("alloying", addition.element)
    return total


# -- inputs ---------------------------------------------------------------------------------
def resolve_inputs(reg: BatchRegistration, tables: FactorTables, gwp_set: str) -> ResolvedInputs:
    """Fill absent activity data from the table's defaults, noting each default that matters.

    Potroom defaults are noted only when the batch has own-electrolysis metal: without it
    they are multiplied by zero.
    """
    activity = reg.activity_data
    if activity is None:
        raise ValueError("resolve_inputs needs activity data")
    _require_gwp_set(gwp_set, tables)
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
        assumptions=notes,
    )


def _require_gwp_set(gwp_set: str, tables: FactorTables) -> None:
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


def _unknown_region(tables: FactorTables, region: str, where: str) -> InvalidError:
    return InvalidError(
        f"grid_region {region} has no emission factor in factor table {tables.version};"
        f" known regions: {', '.join(tables.grid_regions())}",
        field=f"{where}.grid_region",
    )


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
    """Compare a declared footprint with the recomputed one (market-based) for its boundary.

    Only a declaration more than ``tolerance`` below the computed value is flagged: declaring
    more than the default-based computation (e.g. from measured upstream data) is allowed.
    """
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, not {boundary!r}")
    reference = None
    if computed is not None:
        reference = (
            computed.total_kg_co2e_per_t
            if boundary == "cradle_to_gate"
            else computed.scope1_2_kg_co2e_per_t
        )
    if reference is None:
        return "not_computable"
    if Decimal(declared) < reference * (1 - tolerance):
        return "declared_below_computed"
    return "consistent"


def _kg(value: Decimal) -> int:
    """Round half-even to whole kilograms: the only rounding in the computation."""
    return int(value.quantize(_WHOLE, rounding=ROUND_HALF_EVEN))


_WHOLE: Final = Decimal(1)
