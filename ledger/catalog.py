"""Every statement kind the ledger accepts, in one registry."""

from __future__ import annotations

from ledger.documents import AttestDocument
from ledger.kinds import KindRegistry
from ledger.participants import participant_kinds


def default_kinds() -> KindRegistry:
    return KindRegistry([*participant_kinds(), AttestDocument()])
