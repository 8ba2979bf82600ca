"""Per-request GraphQL context: who is asking, and batched loaders over the ledger.

Every loader turns the keys one GraphQL execution asks for into one query (strawberry
``DataLoader``), so a page of 50 batches with grades, records and holders costs a fixed
number of statements however many batches it holds. Loaders live for one request only:
nothing is cached across requests, so a reader never sees stale grades.

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
from ledger.records import Record
from ledger.storage.batches import BatchRepository
from ledger.storage.custody import CustodyRepository
from ledger.storage.db import read_session
from ledger.storage.grading import GradingRepository
from ledger.storage.repository import Repository
from ledger.storage.tables import BatchRow, GradeRow, LotRow, ParticipantRow, RulesetRow
from ledger.tokens import Viewer, authenticate
from ledger.visibility import may_see_activity_data

Key = tuple[str, str]


def today() -> str:
    return datetime.now(UTC).date().isoformat()


@dataclass
class Loaders:
    """One DataLoader per kind of row the schema resolves."""

    engine: Engine
    batches: DataLoader[Key, BatchRow | None] = field(init=False)
    lots: DataLoader[Key, LotRow | None] = field(init=False)
    grades: DataLoader[Key, list[GradeRow]] = field(init=False)
    records: DataLoader[int, Record | None] = field(init=False)
    participants: DataLoader[str, ParticipantRow | None] = field(init=False)
    rulesets: DataLoader[Key, RulesetRow | None] = field(init=False)

    def __post_init__(self) -> None:
        self.batches = DataLoader(self._batches)
        self.lots = DataLoader(self._lots)
        self.grades = DataLoader(self._grades)
        self.records = DataLoader(self._records)
        self.participants = DataLoader(self._participants)
        self.rulesets = DataLoader(self._rulesets)

    async def _batches(self, keys: Sequence[Key]) -> list[BatchRow | None]:
        with read_session(self.engine) as session:
            found = BatchRepository(session).get_many(keys)
        return [found.get(key) for key in keys]

    async def _lots(self, keys: Sequence[Key]) -> list[LotRow | None]:
        with read_session(self.engine) as session:
            found = CustodyRepository(session).lots_by_key(keys)
        return [found.get(key) for key in keys]

    async def _grades(self, keys: Sequence[Key]) -> list[list[GradeRow]]:
        with read_session(self.engine) as session:
            found = GradingRepository(session).grades_of_many(keys)
        return [found[key] for key in keys]

    async def _records(self, indexes: Sequence[int]) -> list[Record | None]:
        with read_session(self.engine) as session:
            found = Repository(session).records(indexes)
        return [found.get(index) for index in indexes]

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
        self._accredited: bool | None = None

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

    def may_see_activity_data(self, smelter_id: str) -> bool:
        viewer = self.require_reader()
        return may_see_activity_data(viewer, smelter_id, self._is_accredited(viewer))

    def _is_accredited(self, viewer: Viewer) -> bool:
        if self._accredited is None:
            with read_session(self.engine) as session:
                grants = GradingRepository(session).in_force(viewer.participant_id, today())
            self._accredited = bool(grants)
        return self._accredited


def viewer_from_header(ledger: Ledger, header: str | None) -> tuple[Viewer, str | None]:
    """The viewer an ``Authorization`` header names, or anonymous with the refusal."""
    if not header:
        return Viewer.anonymous(), None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return Viewer.anonymous(), "the Authorization header must be 'Bearer <token>'"
    try:
        return authenticate(ledger.engine, token.strip()), None
    except LedgerError as error:
        return Viewer.anonymous(), error.detail
