"""Certificates: a grade with every record behind it, verifiable offline.

``build_bundle`` (server side) gathers a grade's records, inclusion proofs, one signed
checkpoint and the log's signed status note into one JSON document;
``verify_bundle`` re-checks all of it with nothing but the log's verifier key;
``check_freshness`` asks a ledger whether a newer checkpoint knows more (a
revocation), proving the new checkpoint consistent with the bundle's.
See docs/grading.md ("Certificates").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger.certificates.verify import FORMAT, GradeSummary, Verdict, verify_bundle

if TYPE_CHECKING:
    from ledger.certificates.bundle import build_bundle
    from ledger.certificates.freshness import check_freshness


def __getattr__(name: str) -> Any:
    """``build_bundle`` (storage) and ``check_freshness`` (HTTP) load on first use, so that
    importing the verifier brings in neither (``tests/test_offline_verifier.py``)."""
    if name == "build_bundle":
        from ledger.certificates.bundle import build_bundle

        return build_bundle
    if name == "check_freshness":
        from ledger.certificates.freshness import check_freshness

        return check_freshness
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FORMAT", "GradeSummary", "Verdict", "build_bundle", "check_freshness", "verify_bundle"]
