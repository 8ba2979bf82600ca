"""Region ids: the province codes (ISO 3166-2:CN) that electricity lines name grids by.

The table is the newest factor table's ``grid_region_aliases`` (id and name, with the
source of the grouping), so a region is spelt one way across the ledger. A participant
signs its region as text (``"Yunnan"`` or ``"CN-YN"``); ``region_id`` maps what was
signed to its id when it is read, and ``signed_forms`` gives back what may have been
signed for an id, for filters on the stored text.
"""

from __future__ import annotations

from functools import cache

from ledger.footprint import load_factor_tables


@cache
def provinces() -> dict[str, str]:
    """Region id -> name (``CN-YN`` -> ``Yunnan``), in the table's order."""
    aliases = load_factor_tables().data["grid_region_aliases"]
    return {region: entry["name"] for region, entry in aliases.items()}


@cache
def _by_text() -> dict[str, str]:
    known = {region.casefold(): region for region in provinces()}
    known.update({name.casefold(): region for region, name in provinces().items()})
    return known


def region_id(signed: str) -> str | None:
    """The id a signed region names (an id or a name, in any case), or None."""
    return _by_text().get(signed.strip().casefold())


def signed_forms(region: str) -> list[str]:
    """The texts that name ``region`` as stored: its id and its name."""
    return [region, provinces()[region]]
