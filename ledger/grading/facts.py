"""What a batch offers for grading, independent of how the ledger stores batches.

The grading engine never reads the batch read model: the ledger fills a
``BatchFacts`` from it and hands it over. Keeping this seam small lets rule sets
be evaluated offline (an auditor re-checks a grade from the facts recorded with
it) and keeps grading free of storage concerns. Shares are ``Decimal`` and
footprints integers because everything here may end up in signed content,
where floats do not survive canonicalisation.

Facts computed with footprint method ``alu-ledger-footprint/2`` carry the method, factor
table and GWP set they were computed with, the location-based and direct footprints, the
provenance of the metal (own-electrolysis share, green-power share of the primary metal,
kWh per tonne, certificate time matching) and the ledger lots the batch named. Facts of
grades recorded before (method 1) have none of these: they stay ``None`` and criteria on
them fail rather than guess.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Any

from ledger.errors import InvalidError, MalformedError

BOUNDARIES = ("cradle_to_gate", "scope1_2")
ROUTES = ("primary", "secondary", "mixed")
FOOTPRINT_CHECKS = ("consistent", "declared_below_computed", "not_computable")

TIME_MATCHING = ("same_month", "same_year", "within_validity", "none")

_SHARES = ("renewable_share_certified", "recycled_pre", "recycled_post", "recycled_total")
_OPTIONAL_SHARES = ("own_electrolysis_share", "green_power_share_primary")
_OPTIONAL_INTS = (
    "computed_total_kg_co2e_per_t",
    "computed_scope1_2_kg_co2e_per_t",
    "location_total_kg_co2e_per_t",
    "location_scope1_2_kg_co2e_per_t",
    "direct_kg_co2e_per_t",
    "electricity_kwh_per_t",
)
_BOOLS = ("third_party_verified", "activity_data_present")
#: Facts a method-1 grade does not state; absent from its facts, None here.
V2_FACTS = (
    "own_electrolysis_share",
    "green_power_share_primary",
    "electricity_kwh_per_t",
    "certificate_time_matching",
    "location_total_kg_co2e_per_t",
    "location_scope1_2_kg_co2e_per_t",
    "direct_kg_co2e_per_t",
    "method",
    "factor_table_version",
    "gwp_set",
    "ledger_lots",
)
LOT_FACT_KEYS = (
    "ns",
    "batch_id",
    "mass_kg",
    "kg_co2e_per_t",
    "electricity_kwh_per_t",
    "renewable_share",
    "primary_share",
    "primary_green_share",
)


@dataclass(frozen=True)
class BatchFacts:
    """The facts of one batch that grading criteria look at.

    Footprints are kg CO2e per tonne of batch. ``computed_*`` are the ledger's
    own recomputations from activity data (None when it could not compute
    them); ``footprint_check`` is the ledger's verdict on the declaration.
    """

    product_form: str
    route: str
    declared_kg_co2e_per_t: int
    declared_boundary: str
    computed_total_kg_co2e_per_t: int | None
    computed_scope1_2_kg_co2e_per_t: int | None
    renewable_share_certified: Decimal
    recycled_pre: Decimal
    recycled_post: Decimal
    recycled_total: Decimal
    third_party_verified: bool
    footprint_check: str
    activity_data_present: bool
    own_electrolysis_share: Decimal | None = None
    green_power_share_primary: Decimal | None = None
    electricity_kwh_per_t: int | None = None
    certificate_time_matching: str | None = None
    location_total_kg_co2e_per_t: int | None = None
    location_scope1_2_kg_co2e_per_t: int | None = None
    direct_kg_co2e_per_t: int | None = None
    method: str | None = None
    factor_table_version: str | None = None
    gwp_set: str | None = None
    #: The ledger lots named as purchased primary metal, with what the ledger stated
    #: about each when the batch was registered (``LOT_FACT_KEYS``).
    ledger_lots: tuple[dict[str, Any], ...] | None = None

    def __post_init__(self) -> None:
        """Refuse impossible facts here, so that no criterion has to guard against them."""
        _check_text(self.product_form, "product_form")
        _check_choice(self.route, "route", ROUTES)
        _check_choice(self.declared_boundary, "declared_boundary", BOUNDARIES)
        _check_choice(self.footprint_check, "footprint_check", FOOTPRINT_CHECKS)
        _check_footprint(self.declared_kg_co2e_per_t, "declared_kg_co2e_per_t")
        for name in _OPTIONAL_INTS:
            value = getattr(self, name)
            if value is not None:
                _check_footprint(value, name)
        for name in _SHARES:
            _check_share(getattr(self, name), name)
        for name in _OPTIONAL_SHARES:
            if getattr(self, name) is not None:
                _check_share(getattr(self, name), name)
        if self.certificate_time_matching is not None:
            _check_choice(
                self.certificate_time_matching, "certificate_time_matching", TIME_MATCHING
            )
        for name in ("method", "factor_table_version", "gwp_set"):
            if getattr(self, name) is not None:
                _check_text(getattr(self, name), name)
        for position, lot in enumerate(self.ledger_lots or ()):
            if not isinstance(lot, dict) or sorted(lot) != sorted(LOT_FACT_KEYS):
                raise MalformedError(
                    f"must be an object with {', '.join(LOT_FACT_KEYS)}",
                    field=f"facts.ledger_lots[{position}]",
                )
        for name in _BOOLS:
            if not isinstance(getattr(self, name), bool):
                raise MalformedError("must be true or false", field=f"facts.{name}")

    def computed_for(self, boundary: str) -> int | None:
        """The ledger's computed footprint in ``boundary``, or None when not computable."""
        if boundary == "cradle_to_gate":
            return self.computed_total_kg_co2e_per_t
        return self.computed_scope1_2_kg_co2e_per_t

    @property
    def is_v2(self) -> bool:
        return self.method is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; decimals become strings so the dict may be signed. Facts of
        method 1 keep their method-1 shape (no method-2 members)."""
        out: dict[str, Any] = {}
        for item in fields(self):
            if item.name in V2_FACTS and not self.is_v2:
                continue
            value = getattr(self, item.name)
            if isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[item.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchFacts:
        """Inverse of ``to_dict``; shares must be decimal strings, never floats."""
        names = tuple(item.name for item in fields(cls))
        required = [n for n in names if n not in V2_FACTS or "method" in data]
        for name in required:
            if name not in data:
                raise MalformedError("required field is missing", field=f"facts.{name}")
        for name in data:
            if name not in names:
                raise MalformedError("unknown field", field=f"facts.{name}")
        values = dict(data)
        for name in _SHARES:
            values[name] = _parse_share(data[name], name)
        for name in _OPTIONAL_SHARES:
            if data.get(name) is not None:
                values[name] = _parse_share(data[name], name)
        if isinstance(values.get("ledger_lots"), list):
            values["ledger_lots"] = tuple(values["ledger_lots"])
        return cls(**values)


def check_attested_facts(claimed: Any, facts: BatchFacts, root: str = "payload.facts") -> None:
    """Refuse facts a grade states unless they are exactly the ledger's, naming the first
    that differs: a grade is only as good as the accounting it was evaluated on."""
    if not isinstance(claimed, dict):
        raise MalformedError("must be an object of the batch's facts", field=root)
    expected = facts.to_dict()
    for name in claimed:
        if name not in expected:
            raise MalformedError("is not a fact of a batch", field=f"{root}.{name}")
    for name, value in expected.items():
        if name not in claimed:
            raise MalformedError(
                f"is required: the ledger's value is {json.dumps(value)}", field=f"{root}.{name}"
            )
        if claimed[name] != value or type(claimed[name]) is not type(value):
            raise InvalidError(
                f"is {json.dumps(claimed[name])}, but the ledger computes {json.dumps(value)}"
                " for this batch; grade on the ledger's facts (POST /v1/evaluations/preview)",
                field=f"{root}.{name}",
            )


def _check_text(value: object, name: str) -> None:
    if not isinstance(value, str) or not value:
        raise MalformedError("must be a non-empty string", field=f"facts.{name}")


def _check_choice(value: object, name: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise MalformedError(f"must be one of {', '.join(choices)}", field=f"facts.{name}")


def _check_footprint(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedError(
            "must be a non-negative integer number of kg CO2e per tonne", field=f"facts.{name}"
        )


def _check_share(value: object, name: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or not 0 <= value <= 1:
        raise MalformedError("must be a Decimal share from 0 to 1", field=f"facts.{name}")


def _parse_share(value: object, name: str) -> Decimal:
    """Decimal strings only: a float share would already have lost its exact value."""
    if not isinstance(value, str):
        raise MalformedError('must be a decimal string such as "0.75"', field=f"facts.{name}")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise MalformedError(
            'must be a decimal string such as "0.75"', field=f"facts.{name}"
        ) from None
