"""What the ledger answers about lots: lineage graphs and custody, as typed read models.

The REST API returns these as its response models (``ledger/custody/lineage.py`` and
``reads.py`` build the plain values they validate). Shares are exact decimal strings;
masses are integer kilograms.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

_SHARE = "a decimal string from 0 to 1"


class LotRef(BaseModel):
    ns: str = Field(description="namespace: the smelter id of a batch, else the lot's maker")
    batch_id: str


class LotFootprint(BaseModel):
    kg_co2e_per_t: int | None
    basis: str | None


class RecycledShares(BaseModel):
    pre_consumer: str = Field(description=_SHARE)
    post_consumer: str = Field(description=_SHARE)
    total: str = Field(description=_SHARE)


class GradeRefView(BaseModel):
    record_index: int
    ruleset_id: str
    ruleset_version: str
    grade: str
    issuer_id: str
    expires_on: str
    revoked_at_index: int | None


class LotView(LotRef):
    origin: str
    created_index: int
    holder_id: str
    pending_to: str | None
    mass_kg: int
    available_kg: int
    product_form: str
    footprint: LotFootprint
    recycled_content: RecycledShares
    renewable_share: str = Field(description=_SHARE)
    grades: list[GradeRefView] = Field(description="grades in force")


class LineageNode(LotView):
    depth: int = Field(description="levels from the lot asked about")


class EdgeView(BaseModel):
    parent: LotRef
    child: LotRef
    mass_kg: int
    operation: str
    record_index: int
    fraction: str = Field(description="share of the child's metal from the parent")


class MetalShares(BaseModel):
    """Where the metal came from, by share: registered batches and what entered outside
    them (external scrap, primary metal from no registered batch)."""

    registered_batches: str
    pre_consumer_scrap: str
    post_consumer_scrap: str
    primary_unregistered: str


class GradedShare(BaseModel):
    ruleset_id: str
    ruleset_version: str
    grade: str
    share: str
    graded_kg: int


class SmelterShare(BaseModel):
    smelter_id: str
    share: str
    kg: int


class HeldGradeName(BaseModel):
    ruleset_id: str
    ruleset_version: str
    grade: str


class RootBatch(BaseModel):
    smelter_id: str
    batch_id: str
    share: str
    kg: int
    grades: list[HeldGradeName]


class ClaimSummary(BaseModel):
    mass_kg: int
    available_kg: int
    footprint: LotFootprint
    metal: MetalShares
    graded: list[GradedShare]
    recycled_content: RecycledShares
    renewable_electricity_share: str
    green_power_share_primary: str
    smelters: list[SmelterShare]
    root_batches: list[RootBatch]


class Lineage(BaseModel):
    lot: LotRef
    direction: str
    depth: int
    nodes: list[LineageNode]
    edges: list[EdgeView]
    truncated: bool | None = Field(default=None, description="up only: ancestors not shown")
    claim_summary: ClaimSummary | None = Field(default=None, description="up only")


class PendingTransfer(BaseModel):
    transfer_index: int
    from_id: str
    to_id: str
    mass_kg: int


class CustodyEvent(BaseModel):
    record_index: int
    kind: str
    role: str
    mass_kg: int | None
    counterpart: str | None
    detail: Any = Field(description="what the record said of the lot (JSON)")


class CustodyLot(LotView):
    derivation: Any = Field(description="how the lot was derived (JSON), null for batches")


class Custody(BaseModel):
    lot: CustodyLot
    holder_id: str
    available_kg: int
    pending_transfer: PendingTransfer | None
    parents: list[EdgeView]
    children: list[EdgeView]
    history: list[CustodyEvent]
