"""Per-request GraphQL context: who is asking, and batched loaders over the ledger.

Batches are read page-wise by ``types.load_batches`` (rows, lots, grades and records of a
whole page in four queries); what hangs off them (issuers, rule sets) goes through the
strawberry ``DataLoader``s here, which turn the keys one execution asks for into one
query. So a page costs a fixed number of statements however many batches it holds.
Loaders live for one request only: a reader never sees stale grades. The schema's own
reads share one read session per request (``Context.session``, closed when the execution
ends): one transaction, so one ``BEGIN`` (SQLite) or ``SET LOCAL statement_timeout``
(PostgreSQL) per request rather than per resolver.

Nothing here runs on the server's event loop: the whole execution of a request (token
lookup, resolvers, loaders) runs in a worker thread with its own event loop and the
request's time limit (``api/graphql/execution.py``), so resolvers make plain synchronous
SQLAlchemy calls and one expensive query never holds up other requests. The context is
built on the event loop and does no I/O there: the bearer token is looked up on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session
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
    """One DataLoader per kind of row the schema resolves, reading in ``session()``."""

    session: Callable[[], Session]
    participants: DataLoader[str, ParticipantRow | None] = field(init=False)
    rulesets: DataLoader[Key, RulesetRow | None] = field(init=False)

    def __post_init__(self) -> None:
        self.participants = DataLoader(self._participants)
        self.rulesets = DataLoader(self._rulesets)

    async def _participants(self, ids: Sequence[str]) -> list[ParticipantRow | None]:
        found = {row.participant_id: row for row in Repository(self.session()).participants()}
        return [found.get(participant_id) for participant_id in ids]

    async def _rulesets(self, keys: Sequence[Key]) -> list[RulesetRow | None]:
        grading = GradingRepository(self.session())
        return [grading.ruleset(ruleset_id, version) for ruleset_id, version in keys]


class Context(BaseContext):
    """What resolvers reach through ``info.context``.

    ``authorization`` is the request's ``Authorization`` header, authenticated on first
    use (in the worker, under the time limit); ``request_id`` names the request in
    internal-error answers and the server log."""

    def __init__(
        self,
        ledger: Ledger,
        authorization: str | None,
        anonymous_ok: bool,
        request_id: str,
    ) -> None:
        super().__init__()
        self.ledger = ledger
        self.authorization = authorization
        self.anonymous_ok = anonymous_ok
        self.request_id = request_id
        self.loaders = Loaders(lambda: self.session)
        self._viewer: tuple[Viewer, str | None] | None = None
        self._access: Access | None = None
        self._reads = ExitStack()
        self._session: Session | None = None

    @property
    def engine(self) -> Engine:
        return self.ledger.engine

    @property
    def session(self) -> Session:
        """The request's read session, opened on first use (in the worker thread)."""
        if self._session is None:
            self._session = self._reads.enter_context(read_session(self.engine))
        return self._session

    def close(self) -> None:
        """End the request's read session (the schema calls this when execution ends)."""
        self._session = None
        self._reads.close()

    @property
    def viewer(self) -> Viewer:
        return self._authenticated()[0]

    @property
    def refusal(self) -> str | None:
        """Why the ``Authorization`` header does not authenticate (None if it does)."""
        return self._authenticated()[1]

    def _authenticated(self) -> tuple[Viewer, str | None]:
        if self._viewer is None:
            self._viewer = viewer_from_header(self.ledger, self.authorization)
        return self._viewer

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
            self._access = access_for(self.session, self.require_reader(), today())
        return self._access


def viewer_from_header(ledger: Ledger, header: str | None) -> tuple[Viewer, str | None]:
    """The viewer an ``Authorization`` header names, or anonymous with the refusal."""
    try:
        return viewer_from_authorization(ledger.engine, header), None
    except LedgerError as error:
        return Viewer.anonymous(), error.detail
