"""Filter vocabularies as GraphQL enums, built from the data that defines them, so an
unknown value is refused by GraphQL instead of silently matching nothing."""

from __future__ import annotations

from enum import Enum

import strawberry

from ledger.grading.facts import FOOTPRINT_CHECKS
from ledger.regions import provinces
from ledger.resources import load_json


def _names(values: list[str]) -> dict[str, str]:
    return {value.upper().replace("-", "_"): value for value in values}


_FORMS = load_json("batch/batch.register.schema.json")["properties"]["product_form"]["enum"]

ProductForm = strawberry.enum(
    Enum("ProductForm", _names(_FORMS)),  # type: ignore[misc]
    description="The form of the cast product (schemas/batch/batch.register.schema.json).",
)
RegionId = strawberry.enum(
    Enum("RegionId", _names(list(provinces()))),  # type: ignore[misc]
    description="A province by its ISO 3166-2:CN code, as electricity lines name grids"
    " (the newest factor table's grid_region_aliases): CN_YN is CN-YN, Yunnan.",
)
FootprintCheck = strawberry.enum(
    Enum("FootprintCheck", _names(list(FOOTPRINT_CHECKS))),  # type: ignore[misc]
    description="How a batch's declared footprint compares with the computed one.",
)
