"""Per-participant API tokens: who is reading, for reads that depend on it.

Writes need no token: every statement is signed with the participant's key. Some reads
are only for the participant they concern, and asking for a signature on every query
would be heavy for clients, so the operator issues bearer tokens instead:

* Format ``alt_<token_id>_<secret>``: ``token_id`` is 12 lowercase hex digits, public
  (it names the token in listings and revocations and is the lookup key); ``secret`` is
  ``secrets.token_urlsafe(32)`` (256 random bits, 43 characters).
* Only SHA-256 of the secret is stored, and compared with ``hmac.compare_digest``. A
  slow password KDF (scrypt, Argon2) defends low-entropy secrets against guessing; a
  256-bit random secret cannot be guessed, so one hash is enough and keeps every
  authenticated request cheap. Whoever reads the table gets no usable token.
* The plain token is returned once by ``issue_token`` and never stored or shown again.
* Issuing and revoking need database access (``alu-ledger token ...`` on the operator's
  machine): that is what makes them operator-only. Nothing here writes to the log.

Every refusal to authenticate is a ``SignatureError`` (HTTP 401) with field
``authorization``. An unknown token id and a wrong secret get the same answer, and
whether a token is revoked or expired is told only to whoever holds its secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from ledger.errors import InvalidError, MalformedError, NotFoundError, SignatureError
from ledger.storage.db import read_session, write_session
from ledger.storage.repository import Repository
from ledger.storage.tables import ApiTokenRow
from ledger.storage.tokens import TokenRepository

PREFIX = "alt_"
TOKEN_RE = re.compile(r"alt_(?P<token_id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})")
TOKEN_ID_RE = re.compile(r"[0-9a-f]{12}")
SECRET_BYTES = 32
MAX_LABEL = 200
FIELD = "authorization"
#: Compared against when the token id is unknown, so both refusals cost the same.
_NO_SECRET = bytes(32)


@dataclass(frozen=True)
class Viewer:
    """Who is making a request: a token's participant, or nobody (anonymous)."""

    participant_id: str | None = None
    #: The participant's role (``participants.role``), e.g. ``smelter``.
    role: str | None = None
    token_id: str | None = None

    @classmethod
    def anonymous(cls) -> Viewer:
        return cls()

    @property
    def is_anonymous(self) -> bool:
        return self.participant_id is None


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token: everything but its secret and hash."""

    token_id: str
    participant_id: str
    label: str | None
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    status: str  # active | revoked | expired

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IssuedToken:
    """A newly issued token; ``token`` exists only here (kept out of ``repr`` and logs)."""

    token: str = field(repr=False)
    info: TokenInfo


def issue_token(
    engine: Engine,
    participant_id: str,
    *,
    label: str | None = None,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> IssuedToken:
    """Issue a token for a registered participant; the plain token is returned only here."""
    moment = now or datetime.now(UTC)
    if label is not None:
        _check_label(label)
    expires = None
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise MalformedError("must be a timezone-aware time", field="expires_at")
        if expires_at <= moment:
            raise InvalidError("must be in the future", field="expires_at")
        expires = _utc_text(expires_at)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    with write_session(engine) as session:
        if Repository(session).participant(participant_id) is None:
            raise NotFoundError(f"no participant {participant_id}", field="participant_id")
        tokens = TokenRepository(session)
        token_id = secrets.token_hex(6)
        while tokens.token(token_id) is not None:  # 48 random bits: practically never
            token_id = secrets.token_hex(6)
        row = ApiTokenRow(
            token_id=token_id,
            participant_id=participant_id,
            secret_sha256=_digest(secret),
            label=label,
            created_at=_utc_text(moment),
            expires_at=expires,
        )
        tokens.add(row)
        info = _info(row, _utc_text(moment))
    return IssuedToken(token=f"{PREFIX}{token_id}_{secret}", info=info)


def authenticate(
    engine_or_session: Engine | Session, token_text: str, *, now: datetime | None = None
) -> Viewer:
    """The participant a token speaks for, or SignatureError (field ``authorization``)."""
    match = TOKEN_RE.fullmatch(token_text) if isinstance(token_text, str) else None
    if match is None:
        raise SignatureError(
            "not an API token (expected alt_<12 hex digits>_<43-character secret>)", field=FIELD
        )
    token_id = match["token_id"]
    if isinstance(engine_or_session, Session):
        found = TokenRepository(engine_or_session).credential(token_id)
    else:
        with read_session(engine_or_session) as session:
            found = TokenRepository(session).credential(token_id)
    expected = bytes(found.secret_sha256) if found is not None else _NO_SECRET
    matches = hmac.compare_digest(expected, _digest(match["secret"]))
    if found is None or not matches or found.role is None:
        raise SignatureError("unknown token or wrong secret", field=FIELD)
    if found.revoked_at is not None:
        raise SignatureError(f"token {token_id} was revoked at {found.revoked_at}", field=FIELD)
    if found.expires_at is not None and found.expires_at <= _utc_text(now or datetime.now(UTC)):
        raise SignatureError(f"token {token_id} expired at {found.expires_at}", field=FIELD)
    return Viewer(participant_id=found.participant_id, role=found.role, token_id=token_id)


def viewer_from_authorization(engine: Engine, header: str | None) -> Viewer:
    """The viewer an HTTP ``Authorization`` header names: anonymous without one,
    SignatureError (401) for one that is not a valid ``Bearer <token>``."""
    if not header:
        return Viewer.anonymous()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SignatureError("the Authorization header must be 'Bearer <token>'", field=FIELD)
    return authenticate(engine, token.strip())


def revoke_token(engine: Engine, token_id: str, *, now: datetime | None = None) -> TokenInfo:
    """Revoke a token from its next use on; revoking it again changes nothing."""
    _check_token_id(token_id)
    moment = _utc_text(now or datetime.now(UTC))
    with write_session(engine) as session:
        tokens = TokenRepository(session)
        if tokens.token(token_id) is None:
            raise NotFoundError(f"no token {token_id}", field="token_id")
        tokens.revoke(token_id, moment)
        revoked = tokens.token(token_id)
        assert revoked is not None  # found above, in this transaction
        return _info(revoked, moment)


def list_tokens(
    engine: Engine, participant_id: str | None = None, *, now: datetime | None = None
) -> list[TokenInfo]:
    """Every token (or one participant's), oldest first, without secrets or hashes."""
    moment = _utc_text(now or datetime.now(UTC))
    with read_session(engine) as session:
        if participant_id is not None and Repository(session).participant(participant_id) is None:
            raise NotFoundError(f"no participant {participant_id}", field="participant_id")
        return [_info(row, moment) for row in TokenRepository(session).tokens(participant_id)]


def _info(row: ApiTokenRow, now: str) -> TokenInfo:
    if row.revoked_at is not None:
        status = "revoked"
    elif row.expires_at is not None and row.expires_at <= now:
        status = "expired"
    else:
        status = "active"
    return TokenInfo(
        token_id=row.token_id,
        participant_id=row.participant_id,
        label=row.label,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        status=status,
    )


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def _utc_text(moment: datetime) -> str:
    """The fixed-width form of ``statements.utc_now()``, so stored times compare as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_token_id(token_id: str) -> None:
    if not isinstance(token_id, str) or not TOKEN_ID_RE.fullmatch(token_id):
        raise MalformedError("must be 12 lowercase hex digits", field="token_id")


def _check_label(label: str) -> None:
    if not label or len(label) > MAX_LABEL:
        raise MalformedError(f"must be 1 to {MAX_LABEL} characters", field="label")
    if not label.isprintable():
        raise MalformedError("must be printable text on one line", field="label")
