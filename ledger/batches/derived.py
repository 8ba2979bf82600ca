"""Values the ledger derives from a registered batch: recycled content, renewable share.

They are stored next to the statement so that grading rules and buyers read the same numbers.
Shares are Decimal, rounded half-even to 4 places only when written out; a share whose
denominator is zero (a batch without electricity) is ``None`` rather than a made-up 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

from ledger.batches.payload import RENEWABLE_TYPES, BatchRegistration

SHARE_PLACES: Final = Decimal("0.0001")


@dataclass(frozen=True)
class DerivedValues:
    """Recycled content (shares of total metal input) and electricity figures of a batch."""

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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: integers stay integers, decimals become 4-place strings."""
        return {
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


def derive(reg: BatchRegistration) -> DerivedValues:
    """Compute the derived values of a parsed registration (exact Decimal arithmetic).

    Renewable share counts only certificate-backed kWh: a source counts for
    min(kwh, claimed MWh x 1000). Hydro, wind and solar kWh without a certificate are reported
    apart as ``renewable_share_uncertified``, because nothing stops them being sold twice.
    """
    inputs = reg.metal_inputs
    total_kwh = reg.total_kwh
    certified = sum(source.certified_kwh for source in reg.electricity)
    uncertified = sum(
        source.uncertified_kwh for source in reg.electricity if source.type in RENEWABLE_TYPES
    )
    return DerivedValues(
        metal_input_kg=inputs.total_kg,
        recycled_content_pre_consumer=_share(inputs.pre_consumer_scrap_kg, inputs.total_kg),
        recycled_content_post_consumer=_share(inputs.post_consumer_scrap_kg, inputs.total_kg),
        recycled_content_total=_share(inputs.scrap_kg, inputs.total_kg),
        electricity_total_kwh=total_kwh,
        electricity_kwh_per_t=Decimal(total_kwh) * 1000 / reg.mass_kg,
        renewable_kwh_certified=certified,
        renewable_share=_share_or_none(certified, total_kwh),
        renewable_kwh_uncertified=uncertified,
        renewable_share_uncertified=_share_or_none(uncertified, total_kwh),
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
