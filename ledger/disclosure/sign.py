"""Commit and sign in one step: what every client that makes statements calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.disclosure.commit import commit
from ledger.disclosure.shapes import shape_for
from ledger.statements import SignedStatement, make_statement


def sign_statement(
    kind: str,
    payload: Mapping[str, Any],
    key: Ed25519PrivateKey,
    *,
    nonce: str | None = None,
    signed_at: str | None = None,
    salt: Callable[[], str] | None = None,
) -> SignedStatement:
    """Commit ``payload``'s confidential members (per ``kind``'s schema), sign the result,
    and return it with its disclosures, ready to submit."""
    committed = commit(payload, shape_for(kind), salt=salt)
    statement = make_statement(kind, committed.payload, key, nonce=nonce, signed_at=signed_at)
    return SignedStatement(statement, key.sign(statement.canonical()), committed.disclosures)
