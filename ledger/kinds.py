"""Statement kinds: how each kind of statement is checked and what it changes.

The append pipeline authenticates the signer, then hands the statement to its
kind: ``check`` validates the payload against the ledger's state and decides
whether the author may say it (raising a ``LedgerError`` if not), and ``apply``
writes the read model rows the record implies. Both run inside the append
transaction, in log order, so a check always sees every earlier record.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlmodel import Session

from ledger.disclosure.shapes import Shape, shape_for
from ledger.errors import ForbiddenError, MalformedError
from ledger.statements import Statement
from ledger.storage.repository import Repository

OPERATOR_ROLE = "operator"
PARTICIPANT_ROLES = ("smelter", "evaluation_centre", "manufacturer", "auditor")


@dataclass(frozen=True)
class Author:
    """The participant behind a statement's signing key."""

    participant_id: str
    role: str
    key_id: str


@dataclass(frozen=True)
class SignerKey:
    key_id: str
    participant_id: str
    role: str
    public_key: bytes
    ended_index: int | None
    end_reason: str | None
    #: The record that added the key, and its ``integrated_at`` (None while that record is
    #: in the append being made).
    added_index: int = -1
    added_at: str | None = None


class SignerKeys:
    """Signer keys looked up during one append transaction, cached across its records."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._cache: dict[str, SignerKey | None] = {}

    def get(self, key_id: str) -> SignerKey | None:
        if key_id not in self._cache:
            self._cache[key_id] = self._load(key_id)
        return self._cache[key_id]

    def _load(self, key_id: str) -> SignerKey | None:
        row = self.repo.signer_key(key_id)
        if row is None:
            return None
        return SignerKey(
            row.key_id,
            row.participant_id,
            row.role,
            bytes(row.public_key),
            row.ended_index,
            row.end_reason,
            row.added_index,
            row.added_at,
        )

    def forget(self) -> None:
        self._cache.clear()


@dataclass
class AppendContext:
    """What a kind may use while one record is appended."""

    repo: Repository
    index: int
    integrated_at: str
    operator_id: str
    signer_keys: SignerKeys
    origin: str = ""
    log_verifier_key: str = ""

    def signer_key(self, key_id: str) -> SignerKey | None:
        return self.signer_keys.get(key_id)

    def forget_keys(self) -> None:
        """Called by kinds that change keys, so later statements see the change."""
        self.signer_keys.forget()


class StatementKind(ABC):
    """One kind of statement; subclasses set ``name`` and implement check/apply."""

    name: ClassVar[str]
    #: Genesis carries its own signer's key; every other kind needs a registered key.
    bootstraps: ClassVar[bool] = False

    #: Whether the kind works with an atomic bulk's scope (``ledger.storage.bulk_scope``):
    #: it reads ahead and may defer writes, and flushes them before reading what they
    #: write. The append loop settles the scope before a statement of any other kind.
    uses_bulk_scope: ClassVar[bool] = False

    def read_ahead(self, session: Session, statements: Sequence[Statement]) -> None:  # noqa: B027
        """For a kind that ``uses_bulk_scope``: look up at once what checking these
        statements (the bulk's of this kind, as signed) will need."""

    def visibility(self) -> Shape | None:
        """Which payload members are committed (confidential), from the kind's schema;
        None when nothing is. The pipeline opens them before ``check`` sees the payload."""
        return shape_for(self.name)

    @abstractmethod
    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> Any:
        """Validate and authorise; return whatever ``apply`` needs.

        ``statement.payload`` is the plaintext: confidential members already opened from
        their disclosures (the record keeps only their digests)."""

    def apply(  # noqa: B027 - an optional hook: most kinds only check
        self, ctx: AppendContext, statement: Statement, author: Author, checked: Any
    ) -> None:
        """Write the read model for the record at ``ctx.index`` (default: nothing)."""


class KindRegistry:
    def __init__(self, kinds: Iterable[StatementKind] = ()) -> None:
        self._kinds: dict[str, StatementKind] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: StatementKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"kind {kind.name} registered twice")
        self._kinds[kind.name] = kind

    def get(self, name: str, field: str = "statement.kind") -> StatementKind:
        try:
            return self._kinds[name]
        except KeyError:
            known = ", ".join(sorted(self._kinds))
            raise MalformedError(
                f"unknown kind {name!r}; known kinds: {known}", field=field
            ) from None

    def find(self, name: str) -> StatementKind | None:
        """The kind named ``name``, or None (``get`` refuses an unknown name)."""
        return self._kinds.get(name)

    def names(self) -> list[str]:
        return sorted(self._kinds)


def require_role(author: Author, *roles: str, action: str) -> None:
    if author.role not in roles:
        raise ForbiddenError(
            f"{action} needs role {' or '.join(roles)}; "
            f"signer {author.participant_id} has role {author.role}",
            field="statement.signer",
        )
