"""Footprint of a standalone document, for ``alu-ledger footprint FILE.json``.

Accepted input: a JSON object that is either a full ``batch.register`` payload or a statement
whose ``payload`` member is one (``{"kind": "batch.register", "payload": {...}, ...}``; other
members such as signer, nonce or signature are ignored, the signature is not checked). The
payload is checked exactly as on append, so the file must be a registrable batch; floats
are refused, decimals must be strings. The report gives the recomputed footprint, the
declared one and their comparison.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ledger.batches.payload import parse_registration
from ledger.errors import MalformedError, NotFoundError
from ledger.footprint.calculator import (
    FootprintCheck,
    FootprintResult,
    compute_footprint,
    footprint_check,
)
from ledger.footprint.factors import FactorTables
from ledger.strict_json import parse_json

KIND: Final = "batch.register"


@dataclass(frozen=True)
class FootprintReport:
    """Recomputed against declared footprint of one batch."""

    smelter_id: str
    batch_id: str
    declared_kg_co2e_per_t: int
    boundary: str
    computed: FootprintResult | None
    check: FootprintCheck

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report."""
        return {
            "smelter_id": self.smelter_id,
            "batch_id": self.batch_id,
            "declared_kg_co2e_per_t": self.declared_kg_co2e_per_t,
            "boundary": self.boundary,
            "computed": None if self.computed is None else self.computed.to_dict(),
            "check": self.check,
        }


def footprint_report(
    document: Mapping[str, Any], factors: FactorTables | None = None
) -> FootprintReport:
    """Check the payload in ``document`` and compare its declared and computed footprints."""
    reg = parse_registration(_payload_of(document))
    computed = compute_footprint(reg, factors)
    declared = reg.declared_footprint
    return FootprintReport(
        smelter_id=reg.smelter_id,
        batch_id=reg.batch_id,
        declared_kg_co2e_per_t=declared.kg_co2e_per_t,
        boundary=declared.boundary,
        computed=computed,
        check=footprint_check(declared.kg_co2e_per_t, computed, declared.boundary),
    )


def footprint_report_from_file(
    path: str | os.PathLike[str], factors: FactorTables | None = None
) -> FootprintReport:
    """Read a JSON file (see the module docstring for what it may hold) and report on it."""
    return footprint_report(read_document(path), factors)


def read_document(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    """Parse a JSON file with the strict reader; the payload check names any float."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no such file: {file}") from None
    document = parse_json(data, where=str(file))
    if not isinstance(document, Mapping):
        raise MalformedError(f"{file} must hold a JSON object")
    return document


def _payload_of(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """The payload itself, or the ``payload`` member of a statement."""
    if "batch_id" in document or not isinstance(document.get("payload"), Mapping):
        return document
    kind = document.get("kind", KIND)
    if kind != KIND:
        raise MalformedError(f"statement kind is {kind!r}, not {KIND!r}", field="kind")
    payload: Mapping[str, Any] = document["payload"]
    return payload
