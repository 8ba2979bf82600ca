"""Records: what the ledger stores, one Merkle leaf each.

A record is ``{index, prev, integrated_at, statement, signature}``. ``prev`` is the
leaf hash of record ``index - 1`` (64 zeros for genesis), so the records form a hash
chain as well as a Merkle tree. The leaf bytes are the record's RFC 8785 form and
the leaf hash is SHA-256(0x00 || leaf bytes).

Invariant used for speed: ``statement`` sorts last among the record's keys, and JCS
serialises a nested object exactly as it would serialise it alone, so the signed
statement bytes are a slice of the leaf bytes. Appends build the leaf by
concatenation and the audit slices it back out, neither re-serialising the payload.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import rfc8785

from ledger.merkle import leaf_hash

GENESIS_PREV = "0" * 64
_STATEMENT_KEY = b',"statement":'


def leaf_bytes(
    index: int, prev: str, integrated_at: str, signature: bytes, statement_bytes: bytes
) -> bytes:
    """RFC 8785 bytes of the record, given the statement's canonical bytes."""
    head = rfc8785.dumps(
        {
            "index": index,
            "integrated_at": integrated_at,
            "prev": prev,
            "signature": base64.b64encode(signature).decode(),
        }
    )
    return head[:-1] + _STATEMENT_KEY + statement_bytes + b"}"


def statement_slice(leaf: bytes) -> bytes:
    """The statement's canonical bytes inside canonical leaf bytes."""
    start = leaf.index(_STATEMENT_KEY) + len(_STATEMENT_KEY)
    return leaf[start:-1]


@dataclass(frozen=True)
class Record:
    """A stored record with its leaf bytes (the exact bytes the tree commits to)."""

    index: int
    leaf: bytes

    @property
    def leaf_hash(self) -> bytes:
        return leaf_hash(self.leaf)

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = json.loads(self.leaf)
        return record

    def with_leaf_hash(self) -> dict[str, Any]:
        """``{record, leaf_hash}``: how the API and the CLI show a record."""
        return {"record": self.to_dict(), "leaf_hash": self.leaf_hash.hex()}

    @property
    def statement(self) -> dict[str, Any]:
        statement: dict[str, Any] = self.to_dict()["statement"]
        return statement
