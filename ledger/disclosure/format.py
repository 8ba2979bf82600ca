"""The commitment format: salted disclosures and their digests (SD-JWT over RFC 8785).

Modelled on SD-JWT (RFC 9901), with RFC 8785 JSON where SD-JWT has base64url-encoded
JSON, so that a disclosure has exactly one byte form whatever spacing it travelled in:

* an object member becomes the disclosure ``[salt, name, value]``;
* an array item becomes ``[salt, value]``;
* a decoy is ``[salt]``: it discloses nothing and lets the signer pad ``_sd`` arrays so
  that the number of digests says nothing about the number of members.

``salt`` is base64url (no padding) of at least 128 random bits. The digest of a
disclosure is base64url (no padding) of SHA-256 over its RFC 8785 bytes. In the signed
payload a committed member is replaced by its digest in the object's ``_sd`` array
(sorted, no repeats) and a committed array item by ``{"...": digest}``.
docs/confidentiality.md states the rules with a worked example.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

import rfc8785

from ledger.canonical import canonical_bytes, check_signable
from ledger.errors import MalformedError

SD: Final = "_sd"
"""The object member that lists the digests of its committed members."""
ELLIPSIS: Final = "..."
"""The only member of an object that stands for a committed array item."""
SALT_BYTES: Final = 16
"""128 random bits per salt, the least RFC 9901 recommends."""
SALT_RE: Final = re.compile(r"^[A-Za-z0-9_-]{22,86}$")
"""base64url without padding of 16 to 64 bytes."""
DIGEST_RE: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")
"""base64url without padding of a SHA-256 digest (32 bytes)."""
RESERVED_NAMES: Final = frozenset({SD, ELLIPSIS})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def new_salt() -> str:
    return b64url(secrets.token_bytes(SALT_BYTES))


@dataclass(frozen=True)
class Disclosure:
    """One disclosure. ``name`` is None for an array item, and ``decoy`` has no value."""

    salt: str
    name: str | None = None
    value: Any = None
    decoy: bool = False
    item: bool = False
    #: Already checked signable (``parse_disclosure``): its bytes need no second check.
    signable: bool = field(default=False, repr=False, compare=False)

    def to_json(self) -> list[Any]:
        """The JSON array this disclosure is."""
        if self.decoy:
            return [self.salt]
        if self.item:
            return [self.salt, self.value]
        return [self.salt, self.name, self.value]

    @cached_property
    def canonical(self) -> bytes:
        """RFC 8785 bytes of the array: what the digest covers."""
        if self.signable:
            return rfc8785.dumps(self.to_json())
        return canonical_bytes(self.to_json(), "disclosure")

    @cached_property
    def digest(self) -> str:
        return b64url(hashlib.sha256(self.canonical).digest())

    @property
    def what(self) -> str:
        """How messages name it: ``member fuels``, ``an array item``, ``a decoy``."""
        if self.decoy:
            return "a decoy"
        return "an array item" if self.item else f"member {self.name}"


def member(name: str, value: Any, salt: str | None = None) -> Disclosure:
    return Disclosure(salt or new_salt(), name, value)


def item(value: Any, salt: str | None = None) -> Disclosure:
    return Disclosure(salt or new_salt(), None, value, item=True)


def decoy(salt: str | None = None) -> Disclosure:
    return Disclosure(salt or new_salt(), decoy=True)


def parse_disclosure(raw: Any, field: str) -> Disclosure:
    """A disclosure as sent beside a statement, or MalformedError naming ``field``."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= 3:
        raise MalformedError(
            "must be a disclosure: [salt, name, value], [salt, value] or the decoy [salt]",
            field=field,
        )
    salt = raw[0]
    if not isinstance(salt, str) or not SALT_RE.fullmatch(salt):
        raise MalformedError(
            "salt must be base64url without padding of at least 128 random bits"
            " (22 to 86 characters)",
            field=f"{field}[0]",
        )
    if len(raw) == 1:
        disclosure = Disclosure(salt, decoy=True, signable=True)
    elif len(raw) == 2:
        disclosure = Disclosure(salt, None, raw[1], item=True, signable=True)
    else:
        name = raw[1]
        if not isinstance(name, str) or not name or name in RESERVED_NAMES:
            raise MalformedError(
                "member name must be a non-empty string other than '_sd' and '...'",
                field=f"{field}[1]",
            )
        disclosure = Disclosure(salt, name, raw[2], signable=True)
    check_signable(raw, field)  # what ``canonical`` would check again: the same values
    return disclosure


def is_digest(value: Any) -> bool:
    return isinstance(value, str) and DIGEST_RE.fullmatch(value) is not None


def is_committed_item(value: Any) -> bool:
    """Whether an array item stands for a disclosure: an object with a ``...`` member."""
    return isinstance(value, dict) and ELLIPSIS in value


DOCUMENT_FORMAT: Final = "alu-ledger-disclosures/v1"


def parse_document(obj: Any, field: str = "disclosures") -> tuple[Disclosure, ...]:
    """The disclosures of a document served by ``GET /v1/records/{i}/disclosures``
    (``{"format": "alu-ledger-disclosures/v1", "disclosures": [...]}``), or a bare list."""
    if isinstance(obj, dict):
        if obj.get("format") != DOCUMENT_FORMAT:
            raise MalformedError(f"format must be {DOCUMENT_FORMAT}", field=f"{field}.format")
        obj = obj.get("disclosures")
    if not isinstance(obj, list):
        raise MalformedError("must be a list of disclosures", field=field)
    return tuple(parse_disclosure(raw, f"{field}[{n}]") for n, raw in enumerate(obj))
