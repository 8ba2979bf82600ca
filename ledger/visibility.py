"""Who may read what: the rule behind the read APIs' access checks.

Everything on the ledger is signed and provable, but not everything is for everyone:
a smelter's activity data (fuel, anode and electrolysis figures) and the digests of its
evidence documents are commercially sensitive. They are shown to the batch's own
smelter, to evaluation centres accredited today (who grade from them), to auditors and
to the operator. Every authenticated participant sees the rest: identity, masses,
electricity and certificates, declared and computed footprints, grades and
certificates. An anonymous reader, where the deployment allows one, sees certificates
only.
"""

from __future__ import annotations

from ledger.kinds import OPERATOR_ROLE
from ledger.tokens import Viewer

CENTRE_ROLE = "evaluation_centre"
AUDITOR_ROLE = "auditor"


def may_see_activity_data(viewer: Viewer, smelter_id: str, accredited: bool) -> bool:
    """Whether ``viewer`` may see a batch's activity data and evidence digests;
    ``accredited``: whether the viewer holds an accreditation in force today."""
    if viewer.is_anonymous:
        return False
    if viewer.participant_id == smelter_id or viewer.role in (AUDITOR_ROLE, OPERATOR_ROLE):
        return True
    return viewer.role == CENTRE_ROLE and accredited
