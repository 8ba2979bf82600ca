"""Statements: what a participant signs.

A statement is ``{kind, payload, signer, nonce, signed_at}``; its signature is
Ed25519 over the statement's RFC 8785 bytes. ``signer`` is the key id of the
signing key, ``nonce`` makes every statement unique so that the ledger can refuse
replays, and ``signed_at`` is the signer's RFC 3339 UTC clock.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import keys
from ledger.canonical import canonical_bytes, check_signable
from ledger.disclosure.format import Disclosure, parse_disclosure
from ledger.errors import MalformedError

STATEMENT_FIELDS = ("kind", "payload", "signer", "nonce", "signed_at")
KIND_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
KEY_ID_RE = re.compile(r"^[0-9a-f]{64}$")
NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
UTC_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z", re.ASCII)
#: Most disclosures one statement may carry (a batch needs a few dozen at most).
MAX_DISCLOSURES = 1_000


def utc_now() -> str:
    """RFC 3339 UTC timestamp with microseconds, the form the ledger writes."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str, field: str) -> datetime:
    """Parse an RFC 3339 UTC (``Z``) timestamp or raise MalformedError naming ``field``."""
    if not isinstance(text, str) or not UTC_TIME_RE.fullmatch(text):
        raise MalformedError("must be an RFC 3339 UTC time like 2026-01-31T08:00:00Z", field=field)
    try:
        return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00")
    except ValueError as exc:
        raise MalformedError(f"not a valid time: {exc}", field=field) from exc


@dataclass(frozen=True)
class Statement:
    kind: str
    payload: dict[str, Any]
    signer: str
    nonce: str
    signed_at: str

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in STATEMENT_FIELDS}

    def canonical(self) -> bytes:
        """The exact bytes a signature covers (computed once: appends need them twice)."""
        return self._canonical

    @cached_property
    def _canonical(self) -> bytes:
        return canonical_bytes(self.to_dict())

    @classmethod
    def parse(cls, obj: Any, path: str = "statement") -> Statement:
        """Check the envelope's shape; the payload is checked by its kind."""
        if not isinstance(obj, dict):
            raise MalformedError("must be a JSON object", field=path)
        missing = [name for name in STATEMENT_FIELDS if name not in obj]
        if missing:
            raise MalformedError("required field is missing", field=f"{path}.{missing[0]}")
        extra = sorted(set(obj) - set(STATEMENT_FIELDS))
        if extra:
            raise MalformedError("unknown field", field=f"{path}.{extra[0]}")
        _require(
            obj["kind"], KIND_RE, f"{path}.kind", "a dotted lowercase kind like batch.register"
        )
        _require(obj["signer"], KEY_ID_RE, f"{path}.signer", "the lowercase hex SHA-256 key id")
        _require(obj["nonce"], NONCE_RE, f"{path}.nonce", "8 to 128 characters of [A-Za-z0-9_-]")
        parse_utc(obj["signed_at"], f"{path}.signed_at")
        if not isinstance(obj["payload"], dict):
            raise MalformedError("must be a JSON object", field=f"{path}.payload")
        check_signable(obj, path)
        return cls(**{name: obj[name] for name in STATEMENT_FIELDS})


def _require(value: Any, pattern: re.Pattern[str], field: str, what: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise MalformedError(f"must be {what}", field=field)


@dataclass(frozen=True)
class SignedStatement:
    """A statement with its signature, as submitted to ``POST /v1/statements``.

    ``disclosures`` open the digests of the statement's confidential members
    (docs/confidentiality.md); they travel beside the statement, are not signed (the
    digests they open are) and never enter the record.
    """

    statement: Statement
    signature: bytes
    disclosures: tuple[Disclosure, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "statement": self.statement.to_dict(),
            "signature": base64.b64encode(self.signature).decode(),
        }
        if self.disclosures:
            body["disclosures"] = [d.to_json() for d in self.disclosures]
        return body

    @classmethod
    def parse(cls, obj: Any, path: str = "") -> SignedStatement:
        prefix = f"{path}." if path else ""
        if not isinstance(obj, dict):
            raise MalformedError("must be a JSON object", field=path or "body")
        extra = sorted(set(obj) - {"statement", "signature", "disclosures"})
        if extra:
            raise MalformedError("unknown field", field=prefix + extra[0])
        if "signature" not in obj:
            raise MalformedError("required field is missing", field=prefix + "signature")
        return cls(
            statement=Statement.parse(obj.get("statement"), prefix + "statement"),
            signature=decode_signature(obj["signature"], prefix + "signature"),
            disclosures=parse_disclosures(obj.get("disclosures", []), prefix + "disclosures"),
        )


def parse_disclosures(value: Any, field: str) -> tuple[Disclosure, ...]:
    if not isinstance(value, list):
        raise MalformedError("must be a list of disclosures", field=field)
    if len(value) > MAX_DISCLOSURES:
        raise MalformedError(f"at most {MAX_DISCLOSURES} disclosures per statement", field=field)
    return tuple(parse_disclosure(item, f"{field}[{n}]") for n, item in enumerate(value))


def decode_signature(text: Any, field: str = "signature") -> bytes:
    if not isinstance(text, str):
        raise MalformedError("must be a base64 string", field=field)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedError("not valid base64", field=field) from exc
    if len(raw) != 64:
        raise MalformedError(f"an Ed25519 signature has 64 bytes, got {len(raw)}", field=field)
    return raw


def make_statement(
    kind: str,
    payload: dict[str, Any],
    key: Ed25519PrivateKey,
    *,
    nonce: str | None = None,
    signed_at: str | None = None,
) -> Statement:
    return Statement(
        kind=kind,
        payload=payload,
        signer=keys.key_id(key),
        nonce=nonce or secrets.token_urlsafe(16),
        signed_at=signed_at or utc_now()[:-8] + "Z",
    )


def sign(statement: Statement, key: Ed25519PrivateKey) -> SignedStatement:
    return SignedStatement(statement, key.sign(statement.canonical()))


def sign_new(kind: str, payload: dict[str, Any], key: Ed25519PrivateKey) -> SignedStatement:
    """Build, canonicalise and sign a fresh statement in one step."""
    return sign(make_statement(kind, payload, key), key)
