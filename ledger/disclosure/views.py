"""What the ledger answers about a record's disclosures, as a typed read model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class RecordDisclosures(BaseModel):
    format: str
    record_index: int
    leaf_hash: str
    disclosures: list[list[Any]] = Field(
        description="[salt, name, value], [salt, value] or the decoy [salt], as signed"
    )
