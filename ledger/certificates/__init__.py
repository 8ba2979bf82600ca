"""Certificates: a grade with every record behind it, verifiable offline.

``build_bundle`` (server side) gathers a grade's records, inclusion proofs, one signed
checkpoint and the log's signed status note into one JSON document;
``verify_bundle`` re-checks all of it with nothing but the log's verifier key;
``check_freshness`` asks a ledger whether a newer checkpoint knows more (a
revocation), proving the new checkpoint consistent with the bundle's.
See docs/grading.md ("Certificates").
"""

from ledger.certificates.bundle import build_bundle
from ledger.certificates.freshness import check_freshness
from ledger.certificates.verify import FORMAT, GradeSummary, Verdict, verify_bundle

__all__ = ["FORMAT", "GradeSummary", "Verdict", "build_bundle", "check_freshness", "verify_bundle"]
