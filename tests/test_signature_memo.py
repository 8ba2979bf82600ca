"""Signatures verified ahead of the head lock: skipped under it only for the exact
(public key, signature, message) that passed, and only once."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from ledger import keys
from ledger.disclosure.sign import sign_statement
from ledger.errors import SignatureError
from ledger.signature_memo import VerifiedSignatures
from ledger.statements import SignedStatement
from tests.conftest import attestation


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The messages ``keys.verify`` checked."""
    seen: list[bytes] = []
    verify = keys.verify

    def counting(public: bytes, signature: bytes, message: bytes) -> None:
        seen.append(message)
        verify(public, signature, message)

    monkeypatch.setattr(keys, "verify", counting)
    return seen


def under_lock(memo: VerifiedSignatures, signed: SignedStatement, key: Any) -> None:
    statement = signed.statement
    public = keys.raw_public_key(key)
    memo.verify(statement.signer, public, signed.signature, statement.canonical())


def test_a_known_signer_is_verified_ahead_once_and_not_again(calls: list[bytes]) -> None:
    key, memo = keys.generate(), VerifiedSignatures()
    under_lock(memo, attestation(key, 0), key)  # learns the key
    signed = attestation(key, 1)

    memo.verify_ahead([signed])
    assert len(calls) == 2
    under_lock(memo, signed, key)
    assert len(calls) == 2  # passed ahead: not verified again
    under_lock(memo, signed, key)
    assert len(calls) == 3  # a remembered success is used once


def test_an_unknown_signer_is_left_to_the_lock(calls: list[bytes]) -> None:
    key, memo = keys.generate(), VerifiedSignatures()
    signed = attestation(key, 1)
    memo.verify_ahead([signed])
    assert calls == []
    under_lock(memo, signed, key)
    assert calls == [signed.statement.canonical()]


def test_a_signature_that_failed_ahead_is_refused_under_the_lock(calls: list[bytes]) -> None:
    key, memo = keys.generate(), VerifiedSignatures()
    under_lock(memo, attestation(key, 0), key)
    forged = SignedStatement(attestation(key, 1).statement, b"\x00" * 64)
    memo.verify_ahead([forged])
    with pytest.raises(SignatureError):
        under_lock(memo, forged, key)


def test_a_signature_passed_ahead_covers_only_its_own_message() -> None:
    key, memo = keys.generate(), VerifiedSignatures()
    under_lock(memo, attestation(key, 0), key)
    signed, other = attestation(key, 1), attestation(key, 2)
    memo.verify_ahead([signed])
    public = keys.raw_public_key(key)
    with pytest.raises(SignatureError):  # the same signature over another message
        memo.verify(other.statement.signer, public, signed.signature, other.statement.canonical())


def test_a_public_key_is_learnt_only_under_its_own_key_id(calls: list[bytes]) -> None:
    """A key id is the SHA-256 of its public key: no other key can be planted under it."""
    key, impostor, memo = keys.generate(), keys.generate(), VerifiedSignatures()
    signed = attestation(key, 0)
    statement = signed.statement
    impostor_signed = attestation(impostor, 0)
    memo.verify(  # verified against the impostor's key, but named as the key's
        statement.signer,
        keys.raw_public_key(impostor),
        impostor_signed.signature,
        impostor_signed.statement.canonical(),
    )
    memo.verify_ahead([attestation(key, 1)])
    assert len(calls) == 1  # nothing learnt for the key id: nothing verified ahead


def test_both_maps_are_bounded(calls: list[bytes]) -> None:
    signers = [keys.generate() for _ in range(3)]
    memo = VerifiedSignatures(capacity=2)
    for key in signers:
        under_lock(memo, attestation(key, 0), key)
    memo.verify_ahead([attestation(key, 1) for key in signers])
    assert len(calls) == 3 + 2  # the first signer was forgotten


def test_a_remembered_success_keeps_no_statement_alive() -> None:
    """A statement may be a megabyte; one refused under the lock before its signature is
    looked at leaves its entry behind, so the entry must not hold the statement."""
    key, memo = keys.generate(), VerifiedSignatures()
    under_lock(memo, attestation(key, 0), key)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        large = [
            sign_statement(
                "document.attest",
                {"sha256": f"{n:064x}", "media_type": "text/plain", "title": "x" * 100_000},
                key,
            )
            for n in range(16)
        ]
        memo.verify_ahead(large)
        del large
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 100_000, kept  # 1.6 MB of statements; each entry a few dozen bytes


def test_a_success_does_not_cover_the_same_bytes_split_another_way() -> None:
    key, memo = keys.generate(), VerifiedSignatures()
    under_lock(memo, attestation(key, 0), key)
    signed = attestation(key, 1)
    memo.verify_ahead([signed])
    public, message = keys.raw_public_key(key), signed.statement.canonical()
    with pytest.raises(SignatureError):  # the signature's bytes plus the message's first
        memo.verify(signed.statement.signer, public, signed.signature + message[:1], message[1:])
