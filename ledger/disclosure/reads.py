"""Reading the disclosures of a record, through the read policy.

The answer is the proof material a reader needs to check a batch's confidential values
against its signed record offline (``alu-ledger certificate verify --disclosures``)::

    {"format": "alu-ledger-disclosures/v1", "record_index": N, "leaf_hash": "<hex>",
     "disclosures": [[salt, name, value], [salt, value], ...]}

Decoys are never served: they open nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from ledger.disclosure.format import DOCUMENT_FORMAT
from ledger.errors import ForbiddenError, NotFoundError
from ledger.storage.batches import BatchRepository
from ledger.storage.db import read_session
from ledger.storage.disclosures import DisclosureRepository
from ledger.storage.repository import Repository
from ledger.tokens import Viewer
from ledger.visibility import access_for


def record_disclosures(engine: Engine, viewer: Viewer, index: int) -> dict[str, Any]:
    """The disclosures of record ``index`` if ``viewer`` may read them; ForbiddenError if not."""
    with read_session(engine) as session:
        record = Repository(session).record(index)
        if record is None:
            raise NotFoundError(f"no record with index {index}", field="index")
        stored = DisclosureRepository(session).of_records([index]).get(index, [])
        if stored:
            batch = BatchRepository(session).by_record_index(index)
            access = access_for(session, viewer)
            owner = (batch.smelter_id, batch.batch_id) if batch else ("", "")
            if not access.sees_disclosures(*owner):
                raise ForbiddenError(
                    f"the disclosures of record {index} are for {access.describe}",
                    field="authorization",
                )
    return {
        "format": DOCUMENT_FORMAT,
        "record_index": index,
        "leaf_hash": record.leaf_hash.hex(),
        "disclosures": [disclosure.to_json() for disclosure in stored],
    }
