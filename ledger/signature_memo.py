"""Signatures verified before the head lock is taken, so that the time under the lock
(while every other writer waits) is not spent on Ed25519.

A key id is the SHA-256 of its public key, so the public key learnt for a key id is that
key id's for ever. Ahead of the lock, a statement whose signer was seen before is
verified against that public key and the success is remembered. Under the lock the
signer's key is looked up as always (it may have ended since), and ``verify`` skips the
Ed25519 check only for the very (public key, signature, message) that passed it ahead.
A success is remembered as the SHA-256 of that triple, not the triple: a statement may be
a megabyte, and one refused before its signature is looked at under the lock (signed too
long ago, say) leaves its entry behind until it is pushed out. A signature that fails
ahead is not remembered: it is refused under the lock, with the key as stored, exactly as
before.

Invariants: ``verify`` raises unless ``keys.verify`` has accepted this exact triple (up to
a SHA-256 collision), in this process; both maps are bounded (``capacity`` entries of a
few dozen bytes, oldest dropped first), and a remembered success is used at most once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import TypeVar

from ledger import keys
from ledger.errors import SignatureError
from ledger.statements import SignedStatement


class VerifiedSignatures:
    """One per ledger process (module docstring)."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._public_keys: OrderedDict[str, bytes] = OrderedDict()
        self._verified: OrderedDict[bytes, bool] = OrderedDict()
        self._lock = threading.Lock()

    def verify_ahead(self, statements: Iterable[SignedStatement]) -> None:
        """Verify, with no lock held, each statement whose signer's public key is known."""
        for signed in statements:
            statement = signed.statement
            with self._lock:
                public = self._public_keys.get(statement.signer)
            if public is None:
                continue
            message = statement.canonical()
            try:
                keys.verify(public, signed.signature, message)
            except SignatureError:
                continue  # refused under the lock, against the key as stored
            passed = _digest(public, signed.signature, message)
            with self._lock:
                _remember(self._verified, passed, True, self.capacity)

    def verify(self, key_id: str, public: bytes, signature: bytes, message: bytes) -> None:
        """``keys.verify``, unless this exact triple passed it ahead; learns ``key_id``'s
        public key for the statements that come after."""
        digest = _digest(public, signature, message)
        with self._lock:
            passed = self._verified.pop(digest, False)
            known = key_id in self._public_keys
        if not passed:
            keys.verify(public, signature, message)
        if not known and keys.key_id(public) == key_id:  # as the key's registration checked
            with self._lock:
                _remember(self._public_keys, key_id, public, self.capacity)


def _digest(public: bytes, signature: bytes, message: bytes) -> bytes:
    """One value for the triple: the key and the signature each prefixed by its length, so
    that no other split of the same bytes (a longer signature, a shorter message) gives it."""
    digest = hashlib.sha256()
    for part in (public, signature):
        digest.update(len(part).to_bytes(4, "big") + part)
    digest.update(message)
    return digest.digest()


K = TypeVar("K")
V = TypeVar("V")


def _remember(entries: OrderedDict[K, V], key: K, value: V, capacity: int) -> None:
    entries[key] = value
    entries.move_to_end(key)
    while len(entries) > capacity:
        entries.popitem(last=False)
