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
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from ledger.errors import NotFoundError
from ledger.json_schema import make_validator, validate
from ledger.resources import load_json, schema_names

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
class YearlyFactor:
    """A factor picked for a production year: the value, the year it is of, and which
    entry (region id or section) it came from."""

    source: str
    year: int
    value: Decimal
    requested_year: int

    def describe(self) -> str:
        return f"{self.value} kg/kWh ({self.source} {self.year})"


_PICKED_KEPT: Final = 4096
"""How many picked yearly factors a table remembers (regions x production years)."""

USABLE: Final = frozenset({"confirmed", "corroborated", "derived", None})
"""Factor statuses the calculation uses; ``unconfirmed`` values are kept for the record only."""


@dataclass(frozen=True)
class FactorTables:
    """One loaded, schema-valid factor table.

    ``data`` never changes once loaded, so the values read from it (decimals, the factor
    picked for a year) are kept and handed out again: every registration reads the same
    few dozen.
    """

    version: str
    data: Mapping[str, Any]
    _values: dict[tuple[str, ...], Decimal] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _picked: dict[tuple[str, str, int], YearlyFactor | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def value(self, *path: str) -> Decimal:
        """The decimal value of the factor at ``path``, e.g. ``value("anode", "ash_pct")``."""
        found = self._values.get(path)
        if found is None:
            node: Any = self.data
            for name in path:
                node = node[name]
            found = self._values[path] = Decimal(node["value"])
        return found

    def _keep(self, key: tuple[str, str, int], picked: YearlyFactor | None) -> YearlyFactor | None:
        """Remember a factor picked for a year; regions and years come from payloads, so
        only so many are kept."""
        if len(self._picked) < _PICKED_KEPT:
            self._picked[key] = picked
        return picked

    def has(self, *path: str) -> bool:
        """Whether the table has an entry at ``path``."""
        node: Any = self.data
        for name in path:
            if not isinstance(node, Mapping) or name not in node:
                return False
            node = node[name]
        return True

    def usable(self, *path: str) -> bool:
        """Whether the factor at ``path`` exists and its status lets the calculation use it."""
        if not self.has(*path):
            return False
        node: Any = self.data
        for name in path:
            node = node[name]
        return node.get("status") in USABLE

    def yearly(self, by_year: Mapping[str, Any], source: str, year: int) -> YearlyFactor | None:
        """The usable value of ``by_year`` for ``year``: the latest published year not after
        it, else the earliest (factors are published years late); None if none is usable."""
        usable = sorted(int(y) for y, f in by_year.items() if f.get("status") in USABLE)
        if not usable:
            return None
        earlier = [y for y in usable if y <= year]
        chosen = earlier[-1] if earlier else usable[0]
        return YearlyFactor(source, chosen, Decimal(by_year[str(chosen)]["value"]), year)

    def national(self, section: str, year: int) -> YearlyFactor | None:
        """A national factor by year from a top-level section (``residual_mix``,
        ``fossil_only``), or the national grid average for ``grid``."""
        key = ("national", section, year)
        if key in self._picked:
            return self._picked[key]
        return self._keep(key, self._national(section, year))

    def _national(self, section: str, year: int) -> YearlyFactor | None:
        if section == "grid":
            return self.yearly(self.data["grid_electricity"]["CN"]["by_year"], "CN", year)
        if section not in self.data:
            return None
        return self.yearly(self.data[section]["by_year"], section, year)

    def location_grid(self, region: str, year: int) -> YearlyFactor | None:
        """Location-based grid factor: the region's own usable value, else its regional
        grid's (``grid_region_aliases``), else the national average; None for an unknown id."""
        key = ("location_grid", region, year)
        if key in self._picked:
            return self._picked[key]
        return self._keep(key, self._location_grid(region, year))

    def _location_grid(self, region: str, year: int) -> YearlyFactor | None:
        grids = self.data["grid_electricity"]
        aliases = self.data["grid_region_aliases"]
        if region not in grids and region not in aliases:
            return None
        for candidate in (region, aliases.get(region, {}).get("region"), "CN"):
            if candidate in grids:
                picked = self.yearly(grids[candidate]["by_year"], candidate, year)
                if picked is not None:
                    return picked
        return None

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
        grids = self.data["grid_electricity"]
        grid_id = region if region in grids else aliases[region]["region"]
        by_year = self.data["grid_electricity"][grid_id]["by_year"]
        years = sorted(int(y) for y in by_year)
        earlier = [y for y in years if y <= year]
        chosen = earlier[-1] if earlier else years[0]
        value = Decimal(by_year[str(chosen)]["value"])
        return GridFactor(grid_id, chosen, value, region, year)


@functools.cache
def _versions() -> tuple[str, ...]:
    found = []
    for name in schema_names(FACTORS_DIR):
        match = _VERSION_FILE.fullmatch(name)
        if match:
            found.append((int(match.group(1)), int(match.group(2))))
    return tuple(f"{year}.{n}" for year, n in sorted(found))


def available_versions() -> list[str]:
    """Versions present in ``schemas/factors/``, oldest first (listed once per process)."""
    return list(_versions())


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
    validate(make_validator(load_json(SCHEMA_FILE)), data)
    if data["version"] != version:
        raise ValueError(f"factor table {version}.json says it is version {data['version']}")
    return FactorTables(version=version, data=data)
