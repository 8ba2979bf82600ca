"""Errors the ledger raises when it refuses something.

Every refusal names *what* was wrong (``field``, a dotted path such as
``statement.payload.mass_kg``) and *why* (``detail``). The HTTP layer maps each
class to one status code; the CLI prints ``error: detail`` and exits non-zero.
Nothing here knows about HTTP: the mapping lives in ``api/errors.py``.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class: a request the ledger refuses, with a stable machine-readable code."""

    code = "ledger_error"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}" if self.field else self.detail


class MalformedError(LedgerError):
    """The input does not have the required shape (missing field, wrong type, float...)."""

    code = "malformed"


class InvalidError(LedgerError):
    """Well-formed input that breaks a domain rule (dates out of order, mass mismatch...)."""

    code = "invalid"


class SignatureError(LedgerError):
    """The signature does not verify against the signer's public key (or an API token
    does not authenticate)."""

    code = "bad_signature"


class ForbiddenError(LedgerError):
    """The signer is unknown, revoked, or not allowed to make this statement."""

    code = "forbidden"


class NotFoundError(LedgerError):
    """The thing asked for does not exist (yet)."""

    code = "not_found"


class ConflictError(LedgerError):
    """The statement conflicts with what the ledger holds (replay, double claim...)."""

    code = "conflict"


class ProofError(LedgerError):
    """A Merkle proof, checkpoint or note does not verify."""

    code = "proof_invalid"


def error_class(code: str) -> type[LedgerError]:
    """The error class for a machine-readable ``code`` (as sent in API error bodies)."""
    classes = [
        MalformedError,
        InvalidError,
        SignatureError,
        ForbiddenError,
        NotFoundError,
        ConflictError,
        ProofError,
    ]
    return next((cls for cls in classes if cls.code == code), LedgerError)
