"""Ed25519 keys of participants and of the log.

A participant's *key id* is the lowercase hex SHA-256 of the raw 32-byte public
key: it names the key in every statement's ``signer`` field and cannot collide with
another key, so a verifier can always tell which public key a signature claims.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ledger.errors import MalformedError, SignatureError
from ledger.secret_files import write_secret_file


def generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def raw_public_key(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> str:
    raw = key if isinstance(key, bytes) else raw_public_key(key)
    return hashlib.sha256(raw).hexdigest()


def public_key_b64(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    return base64.b64encode(raw_public_key(key)).decode()


def parse_public_key(text: str, field: str = "public_key") -> bytes:
    """Decode a base64 raw Ed25519 public key, or raise MalformedError naming ``field``."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise MalformedError("not valid base64", field=field) from exc
    if len(raw) != 32:
        raise MalformedError(f"an Ed25519 public key has 32 bytes, got {len(raw)}", field=field)
    try:
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise MalformedError("not an Ed25519 public key", field=field) from exc
    return raw


def verify(public_raw: bytes, signature: bytes, message: bytes) -> None:
    """Raise SignatureError unless ``signature`` is valid for ``message``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)
    except InvalidSignature as exc:
        raise SignatureError("signature does not verify", field="signature") from exc


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private_key(key: Ed25519PrivateKey, path: Path, *, overwrite: bool = False) -> None:
    """Write a PEM PKCS#8 key readable by its owner only: 0600 from its first byte,
    atomically, never through a symlink (see ``ledger.secret_files``). An existing
    file is refused unless ``overwrite``; a symlink is refused always."""
    write_secret_file(path, private_key_pem(key), overwrite=overwrite)


def read_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise MalformedError(f"cannot read key file: {exc.strerror}", field=str(path)) from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise MalformedError("not a PEM PKCS#8 private key", field=str(path)) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise MalformedError("not an Ed25519 private key", field=str(path))
    return key
