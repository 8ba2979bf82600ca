"""Every statement kind the ledger accepts, in one registry."""

from __future__ import annotations

from decimal import Decimal

from ledger.batches.registration import RegisterBatch
from ledger.custody.kinds import custody_kinds
from ledger.disclosure.grants import disclosure_kinds
from ledger.documents import AttestDocument
from ledger.footprint import DEFAULT_TOLERANCE
from ledger.grading.kinds import grading_kinds
from ledger.kinds import KindRegistry
from ledger.participants import participant_kinds


def default_kinds(footprint_tolerance: Decimal = DEFAULT_TOLERANCE) -> KindRegistry:
    return KindRegistry(
        [
            *participant_kinds(),
            AttestDocument(),
            RegisterBatch(footprint_tolerance),
            *grading_kinds(footprint_tolerance),
            *custody_kinds(),
            *disclosure_kinds(),
        ]
    )
