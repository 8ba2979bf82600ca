"""Batches: the ``batch.register`` payload, the values derived from it, certificate claims.

Pure domain logic: nothing here touches storage or the network. The append pipeline calls
``parse_registration`` (shape and domain rules), ``certificate_claims`` + ``check_claims``
(double claims, against a storage-backed ``ClaimBook``) and ``derive`` (recycled content,
renewable share) and stores what they return.
"""

from ledger.batches.certificates import (
    CertificateClaim,
    ClaimBook,
    IdHolding,
    MemoryClaimBook,
    RangeHolding,
    certificate_claims,
    check_claims,
)
from ledger.batches.derived import DerivedValues, derive
from ledger.batches.payload import BatchRegistration, parse_registration

__all__ = [
    "BatchRegistration",
    "CertificateClaim",
    "ClaimBook",
    "DerivedValues",
    "IdHolding",
    "MemoryClaimBook",
    "RangeHolding",
    "certificate_claims",
    "check_claims",
    "derive",
    "parse_registration",
]
