"""Values the ledger derives from a registered batch: shares, intensities, time matching.

They are stored next to the statement so that grading rules and buyers read the same numbers.
Shares are Decimal, rounded half-even to 4 places only when written out; a share whose
denominator is zero (a batch without electricity) is ``None`` rather than a made-up 0.

Shares are weighted by what they measure: the certified renewable share is certified kWh
over all kWh; the green-power share of primary metal is, over the primary kilograms, the
certified share of the electrolysis electricity behind each (the batch's own for its own
electrolysis, a named ledger lot's for its metal, 0 for metal nobody vouches for).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

from ledger.batches.payload import (
    RENEWABLE_TYPES,
    BatchRegistration,
    LotValues,
    month_span,
)

SHARE_PLACES: Final = Decimal("0.0001")
#: Time matching of certified electricity with the production period, best first.
TIME_MATCHING: Final = ("same_month", "same_year", "within_validity", "none")

LotKey = tuple[str, str]


def stated_lot_values(ledger_lots: Sequence[Mapping[str, Any]]) -> dict[LotKey, LotValues]:
    """What the ledger stated about the lots a batch named (its derived ``ledger_lots``),
    keyed by (ns, batch id): the values its footprint was computed with."""
    return {
        (lot["ns"], lot["batch_id"]): LotValues(
            kg_co2e_per_t=lot["kg_co2e_per_t"],
            electricity_kwh_per_t=Decimal(lot["electricity_kwh_per_t"]),
            renewable_share=Decimal(lot["renewable_share"]),
            primary_share=Decimal(lot["primary_share"]),
            primary_green_share=Decimal(lot["primary_green_share"]),
        )
        for lot in ledger_lots
    }


@dataclass(frozen=True)
class DerivedValues:
    """Recycled content, electricity figures and the metal's provenance of a batch."""

    metal_input_kg: int
    recycled_content_pre_consumer: Decimal
    recycled_content_post_consumer: Decimal
    recycled_content_total: Decimal
    electricity_total_kwh: int
    electricity_kwh_per_t: Decimal
    renewable_kwh_certified: int
    renewable_share: Decimal | None
    renewable_kwh_uncertified: int
    renewable_share_uncertified: Decimal | None
    own_electrolysis_share: Decimal | None = None
    green_power_share_primary: Decimal | None = None
    certificate_time_matching: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: integers stay integers, decimals become 4-place strings."""
        out = {
            "metal_input_kg": self.metal_input_kg,
            "recycled_content_pre_consumer": _fixed(self.recycled_content_pre_consumer),
            "recycled_content_post_consumer": _fixed(self.recycled_content_post_consumer),
            "recycled_content_total": _fixed(self.recycled_content_total),
            "electricity_total_kwh": self.electricity_total_kwh,
            "electricity_kwh_per_t": _fixed(self.electricity_kwh_per_t),
            "renewable_kwh_certified": self.renewable_kwh_certified,
            "renewable_share": _fixed(self.renewable_share),
            "renewable_kwh_uncertified": self.renewable_kwh_uncertified,
            "renewable_share_uncertified": _fixed(self.renewable_share_uncertified),
        }
        if self.own_electrolysis_share is not None:
            out |= {
                "own_electrolysis_share": _fixed(self.own_electrolysis_share),
                "green_power_share_primary": _fixed(self.green_power_share_primary),
                "certificate_time_matching": self.certificate_time_matching,
            }
        return out


def derive(
    reg: BatchRegistration, lots: Mapping[LotKey, LotValues] | None = None, *, legacy: bool = False
) -> DerivedValues:
    """Compute the derived values of a parsed registration (exact Decimal arithmetic).

    Renewable share counts only kWh a certificate proves renewable: a source counts for
    min(kwh, claimed MWh x 1000). Hydro, wind and solar kWh without one are reported apart
    as ``renewable_share_uncertified``, because nothing stops them being sold twice.
    ``lots``: what the ledger states about the lots named as purchased primary metal.
    ``legacy``: the values ledgers derived before footprint method 2 (no provenance).
    """
    inputs = reg.metal_inputs
    total_kwh = reg.total_kwh
    certified = sum(source.certified_kwh for source in reg.electricity)
    uncertified = sum(
        source.uncertified_kwh for source in reg.electricity if source.type in RENEWABLE_TYPES
    )
    renewable = _share_or_none(certified, total_kwh)
    values = DerivedValues(
        metal_input_kg=inputs.total_kg,
        recycled_content_pre_consumer=_share(inputs.pre_consumer_scrap_kg, inputs.total_kg),
        recycled_content_post_consumer=_share(inputs.post_consumer_scrap_kg, inputs.total_kg),
        recycled_content_total=_share(inputs.scrap_kg, inputs.total_kg),
        electricity_total_kwh=total_kwh,
        electricity_kwh_per_t=Decimal(total_kwh) * 1000 / reg.mass_kg,
        renewable_kwh_certified=certified,
        renewable_share=renewable,
        renewable_kwh_uncertified=uncertified,
        renewable_share_uncertified=_share_or_none(uncertified, total_kwh),
    )
    if legacy:
        return values
    return replace(
        values,
        own_electrolysis_share=_share(inputs.own_electrolysis_kg, inputs.total_kg),
        green_power_share_primary=green_power_share_primary(reg, renewable, lots or {}),
        certificate_time_matching=time_matching(reg),
    )


def green_power_share_primary(
    reg: BatchRegistration, own_share: Decimal | None, lots: Mapping[LotKey, LotValues]
) -> Decimal:
    """Sum over primary inputs of kg x certified share of the electrolysis kWh behind them,
    over all primary kg (0 when the batch has no primary metal)."""
    inputs = reg.metal_inputs
    if inputs.primary_kg == 0:
        return Decimal(0)
    green = inputs.own_electrolysis_kg * (own_share or Decimal(0))
    for ref in inputs.purchased_primary_batches:
        lot = lots.get((ref.smelter_id, ref.batch_id))
        if lot is not None:
            green += ref.mass_kg * lot.primary_green_share
    return green / inputs.primary_kg


def time_matching(reg: BatchRegistration) -> str:
    """How closely the certified electricity's production matches the batch's: every
    certificate in the period's months, in its calendar years, or only within validity."""
    period = reg.production_period
    start = period.start.year * 12 + period.start.month - 1
    end = period.end.year * 12 + period.end.month - 1
    spans = [
        month_span(produced)
        for source in reg.electricity
        if source.certified_kwh and source.certificate is not None
        for produced in source.certificate.production_months
    ]
    if not spans:
        return "none"
    if all(start <= first and last <= end for first, last in spans):
        return "same_month"
    years = range(period.start.year, period.end.year + 1)
    if all(first // 12 in years and last // 12 in years for first, last in spans):
        return "same_year"
    return "within_validity"


def metal_values(
    reg: BatchRegistration,
    derived: DerivedValues,
    lots: Mapping[LotKey, LotValues],
    primary_kwh_per_kg: Decimal,
) -> LotValues:
    """What the batch's own lot states for custody: the electricity behind each tonne of
    its metal (its own, the named lots', and the default behind unnamed primary metal,
    uncertified) and the certified share of it."""
    inputs = reg.metal_inputs
    kwh = Decimal(reg.total_kwh)
    certified = Decimal(derived.renewable_kwh_certified)
    named = 0
    for ref in inputs.purchased_primary_batches:
        lot = lots.get((ref.smelter_id, ref.batch_id))
        if lot is None:
            continue
        behind = ref.mass_kg * lot.electricity_kwh_per_t / 1000
        kwh += behind
        certified += behind * lot.renewable_share
        named += ref.mass_kg
    kwh += (inputs.purchased_primary_kg - named) * primary_kwh_per_kg
    return LotValues(
        kg_co2e_per_t=0,  # set by the caller from the footprint
        electricity_kwh_per_t=kwh * 1000 / reg.mass_kg,
        renewable_share=certified / kwh if kwh else Decimal(0),
        primary_share=Decimal(inputs.primary_kg) / inputs.total_kg,
        primary_green_share=derived.green_power_share_primary or Decimal(0),
    )


def _share(part: int, whole: int) -> Decimal:
    """part / whole; the metal balance rule guarantees whole > 0."""
    return Decimal(part) / Decimal(whole)


def _share_or_none(part: int, whole: int) -> Decimal | None:
    return None if whole == 0 else Decimal(part) / Decimal(whole)


def _fixed(value: Decimal | None) -> str | None:
    """Four decimals, half-even, as a string; None stays None."""
    if value is None:
        return None
    return str(value.quantize(SHARE_PLACES, rounding=ROUND_HALF_EVEN))
