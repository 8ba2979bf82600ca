"""The read policy: who may read a batch's disclosures. Every read path asks here.

Records are public: anyone can fetch and audit them, and they carry only the digests of
a smelter's confidential values (docs/confidentiality.md). The values themselves (the
disclosures) and what could reveal them (the computed footprint's breakdown) are read
only by:

* the batch's own smelter;
* the operator and auditors;
* evaluation centres holding an accreditation in force on the day of the read (any
  scope: a centre grades from these values);
* participants the smelter granted access with a signed ``disclosure.grant`` (for that
  batch, or for all its batches) that it has not revoked.

Everyone else, anonymous readers included, sees commitments only. ``Access`` is built
once per request (one query for the viewer's accreditation and grants) and then answers
for every batch the request touches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session

from ledger.kinds import OPERATOR_ROLE
from ledger.storage.disclosures import DisclosureRepository
from ledger.storage.grading import GradingRepository
from ledger.tokens import Viewer

CENTRE_ROLE = "evaluation_centre"
AUDITOR_ROLE = "auditor"
ALL_BATCHES = None


@dataclass(frozen=True)
class Access:
    """What one viewer may read, as of one day."""

    viewer: Viewer
    accredited: bool = False
    #: (smelter id, batch id or None for all its batches) the viewer was granted.
    grants: frozenset[tuple[str, str | None]] = frozenset()

    def sees_disclosures(self, smelter_id: str, batch_id: str) -> bool:
        """Whether the viewer may read the disclosures of batch ``smelter_id/batch_id``."""
        viewer = self.viewer
        if viewer.is_anonymous:
            return False
        if viewer.participant_id == smelter_id or viewer.role in (AUDITOR_ROLE, OPERATOR_ROLE):
            return True
        if viewer.role == CENTRE_ROLE and self.accredited:
            return True
        return (smelter_id, ALL_BATCHES) in self.grants or (smelter_id, batch_id) in self.grants

    @property
    def describe(self) -> str:
        return (
            "the batch's smelter, the operator, auditors, evaluation centres accredited today"
            " and participants the smelter granted access (disclosure.grant)"
        )


def access_for(session: Session, viewer: Viewer, day: str | None = None) -> Access:
    """The access ``viewer`` has on ``day`` (ISO date, default today in UTC)."""
    if viewer.is_anonymous:
        return Access(viewer)
    today = day or datetime.now(UTC).date().isoformat()
    accredited = False
    if viewer.role == CENTRE_ROLE:
        accredited = bool(GradingRepository(session).in_force(viewer.participant_id or "", today))
    grants = frozenset(
        (grant.smelter_id, grant.batch_id)
        for grant in DisclosureRepository(session).grants_to(viewer.participant_id or "")
    )
    return Access(viewer, accredited, grants)


def operator_viewer(operator_id: str) -> Viewer:
    """Who reads through the operator's own database access (the local CLI)."""
    return Viewer(participant_id=operator_id, role=OPERATOR_ROLE)
