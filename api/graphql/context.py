"""Per-request GraphQL context: who is asking, and batched loaders over the ledger.

Batches are read page-wise by ``types.load_batches`` (rows, lots, grades and records of a
whole page in four queries); what hangs off them (issuers, rule sets) goes through the
strawberry ``DataLoader``s here, which turn the keys one execution asks for into one
query. So a page costs a fixed number of statements however many batches it holds.
Loaders live for one request only: a reader never sees stale grades.

Queries are synchronous SQLAlchemy calls made from the event loop; each is one indexed
statement of a few milliseconds, which keeps this simpler than a thread hop per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from ledger.errors import LedgerError, SignatureError
from ledger.log import Ledger
from ledger.storage.db import read_session
from ledger.storage.grading import GradingRepository
from ledger.storage.repository import Repository
from ledger.storage.tables import ParticipantRow, RulesetRow
from ledger.tokens import Viewer, viewer_from_authorization
from ledger.visibility import Access, access_for

Key = tuple[str, str]


def today() -> str:
    return datetime.now(UTC).date().isoformat()


@dataclass
class Loaders:
    """One DataLoader per kind of row the schema resolves."""

    engine: Engine
    participants: DataLoader[str, ParticipantRow | None] = field(init=False)
    rulesets: DataLoader[Key, RulesetRow | None] = field(init=False)

    def __post_init__(self) -> None:
        self.participants = DataLoader(self._participants)
        self.rulesets = DataLoader(self._rulesets)

    async def _participants(self, ids: Sequence[str]) -> list[ParticipantRow | None]:
        with read_session(self.engine) as session:
            found = {row.participant_id: row for row in Repository(session).participants()}
        return [found.get(participant_id) for participant_id in ids]

    async def _rulesets(self, keys: Sequence[Key]) -> list[RulesetRow | None]:
        with read_session(self.engine) as session:
            grading = GradingRepository(session)
            return [grading.ruleset(ruleset_id, version) for ruleset_id, version in keys]


class Context(BaseContext):
    """What resolvers reach through ``info.context``."""

    def __init__(
        self, ledger: Ledger, viewer: Viewer, refusal: str | None, anonymous_ok: bool
    ) -> None:
        super().__init__()
        self.ledger = ledger
        self.viewer = viewer
        self.refusal = refusal
        self.anonymous_ok = anonymous_ok
        self.loaders = Loaders(ledger.engine)
        self._access: Access | None = None

    @property
    def engine(self) -> Engine:
        return self.ledger.engine

    def require_reader(self) -> Viewer:
        """The authenticated viewer, or a refusal saying how to authenticate."""
        if self.refusal is not None:
            raise SignatureError(self.refusal, field="authorization")
        if self.viewer.is_anonymous:
            raise SignatureError(
                "reading needs an API token: send 'Authorization: Bearer <token>'",
                field="authorization",
            )
        return self.viewer

    def require_certificate_reader(self) -> None:
        """Certificates are for every authenticated reader, and anonymous ones if allowed."""
        if self.viewer.is_anonymous and self.refusal is None and self.anonymous_ok:
            return
        self.require_reader()

    @property
    def access(self) -> Access:
        """What the viewer may read (the one read policy), worked out once per request."""
        if self._access is None:
            with read_session(self.engine) as session:
                self._access = access_for(session, self.require_reader(), today())
        return self._access


def viewer_from_header(ledger: Ledger, header: str | None) -> tuple[Viewer, str | None]:
    """The viewer an ``Authorization`` header names, or anonymous with the refusal."""
    try:
        return viewer_from_authorization(ledger.engine, header), None
    except LedgerError as error:
        return Viewer.anonymous(), error.detail
