"""Lineage of a lot: the graph of lots it descends from (up) or went into (down), and
for ``up`` the claim summary of what its metal is made of.

The claim summary applies the proportional (mass-balance) rule: a lot's metal comes
from each parent in the share ``edge mass / input_kg`` of the operation that made it
(and from external inputs in the share ``external kg / input_kg``); shares multiply
along paths and add up over paths. Walking up to the registered batches (the roots)
gives the share of the lot's metal from each batch and from each kind of external
input; these shares add up to 1. Everything the summary states is a share of metal
times a property of a root:

* graded: per (rule set, version, grade), the share from batches holding that grade
  today (not revoked, not expired), and ``graded_kg`` = share x the lot's *available*
  mass, rounded down: what a lot passed on (a transferred part, metal consumed by a
  transform) is claimed by the lots it went into, never twice. Since a transform's
  outputs weigh at most its inputs, no lot claims more graded metal than went into it;
* recycled content: the roots' own pre-/post-consumer shares plus external scrap;
* certificate-backed renewable electricity, **weighted by kWh**: each root's metal brings
  the kWh behind it (its ``electricity_kwh_per_t``) and their certified share;
  unregistered primary metal brings the default electrolysis intensity, uncertified;
* green-power share of the primary metal: over the primary metal the roots (and
  unregistered primary inputs, at 0) contribute, the roots' green-power shares.

One walk (``CustodyRepository.walk``) reads every ancestor once; ``depth`` only limits
what is shown, never what the summary counts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any, Final

from sqlalchemy import Engine, Row

from ledger.custody.derive import ratio_text, share_text
from ledger.custody.lots import BATCH, ref_of, shares_of
from ledger.custody.payloads import PRIMARY, SCRAP_POST, SCRAP_PRE
from ledger.errors import MalformedError, NotFoundError
from ledger.footprint.factors import load_factor_tables
from ledger.storage.custody import CustodyRepository, Walk
from ledger.storage.db import read_session
from ledger.storage.tables import GradeRow, LotEdgeRow, LotRow

#: A lot or an edge as an ORM object or as a Core row of the same columns (``Walk``).
Lot = LotRow | Row[Any]
Edge = LotEdgeRow | Row[Any]

DEFAULT_DEPTH: Final = 10
MAX_DEPTH: Final = 50
DIRECTIONS: Final = ("up", "down")


def lineage(
    engine: Engine,
    ns: str,
    batch_id: str,
    direction: str = "up",
    depth: int = DEFAULT_DEPTH,
    today: str | None = None,
) -> dict[str, Any]:
    """The lineage graph of lot ``ns/batch_id``; with ``direction`` up, its claim summary.

    ``today`` (ISO date, default the UTC date) decides which grades are in force.
    """
    if direction not in DIRECTIONS:
        raise MalformedError(f"must be one of {', '.join(DIRECTIONS)}", field="direction")
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise MalformedError(f"must be an integer from 1 to {MAX_DEPTH}", field="depth")
    day = today or datetime.now(UTC).date().isoformat()
    upward = direction == "up"
    with read_session(engine) as session:
        custody = CustodyRepository(session)
        start = custody.lot(ns, batch_id)
        if start is None:
            raise NotFoundError(f"no batch or lot {ns}/{batch_id}", field="batch_id")
        # Up: the whole ancestry, which the summary needs; down: only what is shown.
        walk = custody.walk(start.id, upward, None if upward else depth)
        roots = [lot.id for lot in walk.lots.values() if lot.origin == BATCH]
        grades: dict[int, list[GradeRow]] = defaultdict(list)
        for lot_id, grade in custody.active_grades(roots, day):
            grades[lot_id].append(grade)
    shown = {lot_id for lot_id, reached in walk.depths.items() if reached <= depth}
    near = "child" if upward else "parent"
    edges = [
        edge
        for edge in walk.edges
        if getattr(edge, near) in shown and walk.depths[getattr(edge, near)] < depth
    ]
    refs = {lot_id: ref_of(lot) for lot_id, lot in walk.lots.items()}
    nodes = sorted(
        (walk.lots[lot_id] for lot_id in shown),
        key=lambda lot: (walk.depths[lot.id], lot.created_index, lot.ns, lot.lot_id),
    )
    result: dict[str, Any] = {
        "lot": ref_of(start),
        "direction": direction,
        "depth": depth,
        "nodes": [node_view(lot, grades.get(lot.id, []), walk.depths[lot.id]) for lot in nodes],
        "edges": [edge_view(edge, walk.lots, refs) for edge in edges],
    }
    if upward:
        result["truncated"] = len(shown) < len(walk.lots)
        result["claim_summary"] = claim_summary(start, walk, grades)
    return result


def held_lineage_grades(engine: Engine, participant_id: str, limit: int) -> list[dict[str, Any]]:
    """Every grade of the registered batches in the lineage of each lot (of the first
    ``limit``) that ``participant_id`` holds metal of: revoked grades first (what a buyer
    must act on), then the newest first. A grade reached through several held lots is
    listed for each, since each is a product it stands behind."""
    found: list[dict[str, Any]] = []
    with read_session(engine) as session:
        custody = CustodyRepository(session)
        for held in custody.metal_held_by(participant_id, limit):
            walk = custody.walk(held.id, True, None)  # up, to the end
            sources = {lot.id: lot for lot in walk.lots.values() if lot.origin == BATCH}
            for lot_id, grade in custody.every_grade(sources):
                found.append(
                    {"held": ref_of(held), "source": ref_of(sources[lot_id]), **grade_ref(grade)}
                )
    found.sort(key=lambda g: (g["revoked_at_index"] is None, -g["record_index"]))
    return found


def node_view(lot: Lot, grades: list[GradeRow], depth: int | None = None) -> dict[str, Any]:
    pre, post, renewable = shares_of(lot)
    view: dict[str, Any] = {
        **ref_of(lot),
        "origin": lot.origin,
        "created_index": lot.created_index,
        "holder_id": lot.holder_id,
        "pending_to": lot.pending_to,
        "mass_kg": lot.mass_kg,
        "available_kg": lot.available_kg,
        "product_form": lot.product_form,
        "footprint": {"kg_co2e_per_t": lot.footprint_kg_co2e_per_t, "basis": lot.footprint_basis},
        "recycled_content": {
            "pre_consumer": share_text(pre),
            "post_consumer": share_text(post),
            "total": share_text(pre + post),
        },
        "renewable_share": share_text(renewable),
        "grades": [grade_ref(grade) for grade in grades],
    }
    if depth is not None:
        view["depth"] = depth
    return view


def grade_ref(grade: GradeRow) -> dict[str, Any]:
    return {
        "record_index": grade.record_index,
        "ruleset_id": grade.ruleset_id,
        "ruleset_version": grade.ruleset_version,
        "grade": grade.grade,
        "issuer_id": grade.issuer_id,
        "expires_on": grade.expires_on,
        "revoked_at_index": grade.revoked_index,
    }


def edge_view(
    edge: Edge, lots: Mapping[int, Lot], refs: Mapping[int, dict[str, str]] | None = None
) -> dict[str, Any]:
    """An edge, with the share of the child's metal that came from the parent."""
    parent, child = lots[edge.parent], lots[edge.child]
    return {
        "parent": refs[edge.parent] if refs else ref_of(parent),
        "child": refs[edge.child] if refs else ref_of(child),
        "mass_kg": edge.mass_kg,
        "operation": edge.operation,
        "record_index": edge.record_index,
        "fraction": ratio_text(edge.mass_kg, child.input_kg),
    }


def metal_fractions(start: Lot, walk: Walk) -> tuple[dict[int, Decimal], dict[str, Decimal]]:
    """Share of ``start``'s metal from each root lot (by id) and each external input type.

    Lots are visited children first (a lot is always created after its parents), so a
    lot's share is complete when it is passed on to its parents.
    """
    incoming: dict[int, list[Edge]] = defaultdict(list)
    for edge in walk.edges:
        incoming[edge.child].append(edge)
    share: dict[int, Decimal] = defaultdict(Decimal)
    share[start.id] = Decimal(1)
    roots: dict[int, Decimal] = {}
    external = {SCRAP_PRE: Decimal(0), SCRAP_POST: Decimal(0), PRIMARY: Decimal(0)}
    for lot in sorted(walk.lots.values(), key=lambda r: (r.created_index, r.id), reverse=True):
        mine = share.get(lot.id)
        if not mine:
            continue
        if lot.origin == BATCH:
            roots[lot.id] = mine
            continue
        per_kg = mine / lot.input_kg
        for parent_edge in incoming[lot.id]:
            share[parent_edge.parent] += per_kg * parent_edge.mass_kg
        external[SCRAP_PRE] += per_kg * lot.external_pre_kg
        external[SCRAP_POST] += per_kg * lot.external_post_kg
        external[PRIMARY] += per_kg * lot.external_primary_kg
    return roots, external


def claim_summary(start: Lot, walk: Walk, grades: dict[int, list[GradeRow]]) -> dict[str, Any]:
    """What ``start``'s metal is made of, by the proportional rule (module docstring)."""
    roots, external = metal_fractions(start, walk)
    mass = Decimal(start.available_kg)
    graded: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    smelters: dict[str, Decimal] = defaultdict(Decimal)
    pre, post = external[SCRAP_PRE], external[SCRAP_POST]
    kwh = external[PRIMARY] * _primary_kwh_per_t()
    certified = Decimal(0)
    primary, green = external[PRIMARY], Decimal(0)
    batches = []
    for lot_id, share in roots.items():
        root = walk.lots[lot_id]
        root_pre, root_post, root_renewable = shares_of(root)
        pre += share * root_pre
        post += share * root_post
        root_kwh = share * Decimal(root.electricity_kwh_per_t)
        kwh += root_kwh
        certified += root_kwh * root_renewable
        root_primary = share * Decimal(root.primary_share)
        primary += root_primary
        green += root_primary * Decimal(root.primary_green_share)
        smelters[root.ns] += share
        held = sorted({(g.ruleset_id, g.ruleset_version, g.grade) for g in grades.get(lot_id, [])})
        for key in held:
            graded[key] += share
        batches.append((share, root, held))
    batches.sort(key=lambda item: (-item[0], item[1].ns, item[1].lot_id))
    return {
        "mass_kg": start.mass_kg,
        "available_kg": start.available_kg,
        "footprint": {
            "kg_co2e_per_t": start.footprint_kg_co2e_per_t,
            "basis": start.footprint_basis,
        },
        "metal": {
            "registered_batches": share_text(sum(roots.values(), Decimal(0))),
            SCRAP_PRE: share_text(external[SCRAP_PRE]),
            SCRAP_POST: share_text(external[SCRAP_POST]),
            PRIMARY: share_text(external[PRIMARY]),
        },
        "graded": [
            {
                "ruleset_id": ruleset_id,
                "ruleset_version": version,
                "grade": grade,
                "share": share_text(share),
                "graded_kg": _kg_down(share * mass),
            }
            for (ruleset_id, version, grade), share in sorted(graded.items())
        ],
        "recycled_content": {
            "pre_consumer": share_text(pre),
            "post_consumer": share_text(post),
            "total": share_text(pre + post),
        },
        "renewable_electricity_share": share_text(certified / kwh if kwh else Decimal(0)),
        "green_power_share_primary": share_text(green / primary if primary else Decimal(0)),
        "smelters": [
            {"smelter_id": smelter, "share": share_text(share), "kg": _kg_down(share * mass)}
            for smelter, share in sorted(smelters.items(), key=lambda item: (-item[1], item[0]))
        ],
        "root_batches": [
            {
                "smelter_id": root.ns,
                "batch_id": root.lot_id,
                "share": share_text(share),
                "kg": _kg_down(share * mass),
                "grades": [{"ruleset_id": r, "ruleset_version": v, "grade": g} for r, v, g in held],
            }
            for share, root, held in batches
        ],
    }


def _primary_kwh_per_t() -> Decimal:
    """kWh behind a tonne of unregistered primary metal (the factor table's default)."""
    return load_factor_tables().value("upstream", "purchased_primary_kwh_per_kg") * 1000


def _kg_down(value: Decimal) -> int:
    """Whole kilograms, rounded down: a claim never rounds up."""
    return int(value.to_integral_value(rounding=ROUND_DOWN))
