"""Versioned factor tables: the numbers a footprint is computed with, and where they come from.

A table is ``schemas/factors/<version>.json`` (version ``YEAR.N``), checked against
``schemas/factors/factor-table.schema.json`` when loaded. Every value is a decimal string
with a unit and a source; the code reads values by path and never holds a factor itself,
so publishing a new table changes results without a software release, and every result
names the table version it used.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from jsonschema import Draft202012Validator

from ledger.batches.resources import SCHEMAS_DIR, load_json
from ledger.errors import NotFoundError

FACTORS_DIR: Final = "factors"
SCHEMA_FILE: Final = "factors/factor-table.schema.json"
_VERSION_FILE: Final = re.compile(r"^([0-9]{4})\.([0-9]+)\.json$")


@dataclass(frozen=True)
class GridFactor:
    """The grid factor picked for a region and production year, and what was substituted."""

    region: str
    year: int
    kg_co2_per_kwh: Decimal
    requested_region: str
    requested_year: int


@dataclass(frozen=True)
class FactorTables:
    """One loaded, schema-valid factor table."""

    version: str
    data: Mapping[str, Any]

    def value(self, *path: str) -> Decimal:
        """The decimal value of the factor at ``path``, e.g. ``value("anode", "ash_pct")``."""
        node: Any = self.data
        for name in path:
            node = node[name]
        return Decimal(node["value"])

    def has(self, *path: str) -> bool:
        """Whether the table has an entry at ``path``."""
        node: Any = self.data
        for name in path:
            if not isinstance(node, Mapping) or name not in node:
                return False
            node = node[name]
        return True

    def grid_regions(self) -> list[str]:
        """Region ids with factors of their own, then aliases."""
        return [*self.data["grid_electricity"], *self.data["grid_region_aliases"]]

    def grid_factor(self, region: str, year: int) -> GridFactor:
        """Factor of ``region`` (or the grid an alias points to) for ``year``.

        The year is the latest the table has up to ``year``, else its earliest: grid
        factors are published years late, so a 2025 batch uses the newest published value.
        Raises KeyError for a region the table does not know.
        """
        aliases = self.data["grid_region_aliases"]
        grid_id = aliases[region]["region"] if region in aliases else region
        by_year = self.data["grid_electricity"][grid_id]["by_year"]
        years = sorted(int(y) for y in by_year)
        earlier = [y for y in years if y <= year]
        chosen = earlier[-1] if earlier else years[0]
        value = Decimal(by_year[str(chosen)]["value"])
        return GridFactor(grid_id, chosen, value, region, year)


def available_versions() -> list[str]:
    """Versions present in ``schemas/factors/``, oldest first."""
    found = []
    for path in (SCHEMAS_DIR / FACTORS_DIR).iterdir():
        match = _VERSION_FILE.match(path.name)
        if match:
            found.append((int(match.group(1)), int(match.group(2))))
    return [f"{year}.{n}" for year, n in sorted(found)]


def load_factor_tables(version: str | None = None) -> FactorTables:
    """The factor table ``version``, or the newest one when None."""
    versions = available_versions()
    chosen = versions[-1] if version is None else version
    if chosen not in versions:
        raise NotFoundError(
            f"factor table version {chosen} does not exist; available: {', '.join(versions)}",
            field="factor_table_version",
        )
    return _load(chosen)


@functools.cache
def _load(version: str) -> FactorTables:
    data = load_json(f"{FACTORS_DIR}/{version}.json")
    Draft202012Validator(load_json(SCHEMA_FILE)).validate(data)
    if data["version"] != version:
        raise ValueError(f"factor table {version}.json says it is version {data['version']}")
    return FactorTables(version=version, data=data)
