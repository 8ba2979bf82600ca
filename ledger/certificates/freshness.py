"""Is an offline-verified certificate still current? Ask a ledger, trust only proofs.

An older bundle proves a grade "valid as of checkpoint N". ``check_freshness``
fetches the grade's current bundle from a ledger server, proves the server's
newer checkpoint consistent with checkpoint N (so the server cannot hide a
revocation behind a forked history), checks it still holds the same grade
record, and verifies the current bundle in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from ledger.certificates.verify import Verdict, verify_bundle
from ledger.client import LedgerClient
from ledger.disclosure.format import Disclosure
from ledger.errors import ProofError
from ledger.footprint import DEFAULT_TOLERANCE


def check_freshness(
    bundle: dict[str, Any],
    log_key: str,
    base_url: str,
    *,
    http: httpx.Client | None = None,
    today: date | None = None,
    footprint_tolerance: Decimal = DEFAULT_TOLERANCE,
    disclosures: Sequence[Disclosure] | None = None,
) -> Verdict:
    """The grade's verdict at the ledger's current checkpoint, or why it cannot be trusted."""
    options: dict[str, Any] = {
        "today": today,
        "footprint_tolerance": footprint_tolerance,
        "disclosures": disclosures,
    }
    offline = verify_bundle(bundle, log_key, **options)
    if offline.status == "invalid":
        return offline
    with LedgerClient(base_url, log_key.strip(), http=http) as client:
        try:
            client.accept_checkpoint(bundle["checkpoint"])
            current = client.certificate(bundle["grade_index"])
        except ProofError as exc:
            return Verdict(
                "invalid", (f"the ledger's history does not extend the bundle's: {exc}",)
            )
    online = verify_bundle(current, log_key, **options)
    if online.status == "invalid":
        reasons = tuple(f"the ledger's current bundle does not verify: {r}" for r in online.reasons)
        return Verdict("invalid", reasons)
    if current["records"]["grade"]["record"] != bundle["records"]["grade"]["record"]:
        return Verdict("invalid", ("the ledger now holds a different grade record",))
    proven = (
        f"checkpoint {offline.tree_size} of the bundle is consistent with the ledger's "
        f"checkpoint {online.tree_size}"
    )
    return Verdict(online.status, (*online.reasons, proven), online.tree_size, online.grade)
