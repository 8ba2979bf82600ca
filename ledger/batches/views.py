"""What the ledger answers about registered batches, as typed read models.

The REST API answers through these (``ledger/batches/reads.py`` builds the values). The
batch itself is the signed ``batch.register`` payload, opened or not by the read policy,
so it keeps the shape of its JSON Schema (``schemas/batch/batch.register.schema.json``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class BatchFootprint(BaseModel):
    declared_kg_co2e_per_t: int
    declared_boundary: str
    computed: dict[str, Any] | None = Field(
        description="the ledger's computation (total, scope1_2, location-based, direct,"
        " method, factor table, breakdown for readers the read policy allows); null when"
        " it cannot be computed"
    )
    check: str = Field(description="consistent, declared_below_computed or not_computable")


class RecordRef(BaseModel):
    index: int
    leaf_hash: str
    integrated_at: str


class BatchView(BaseModel):
    smelter_id: str
    batch_id: str
    batch: dict[str, Any] = Field(
        description="the signed batch.register payload: confidential members opened for"
        " readers the read policy allows, their commitments for everyone else"
    )
    disclosed: bool
    derived: dict[str, Any] = Field(
        description="values the ledger derived from the payload (shares as decimal strings)"
    )
    footprint: BatchFootprint
    region: str = Field(description="the smelter's region, as its participant signed it")
    record: RecordRef


class BatchPage(BaseModel):
    items: list[BatchView]
    next_cursor: str | None


class ComputedFootprint(BaseModel):
    computed: dict[str, Any] | None = Field(description="null when it cannot be computed")
    check: str


class FootprintPreview(BaseModel):
    """A stored batch's footprint recomputed with another method, factor table or GWP set,
    beside the recorded one."""

    smelter_id: str
    batch_id: str
    recorded: ComputedFootprint
    preview: ComputedFootprint
