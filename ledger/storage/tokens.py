"""Queries for API tokens (see ledger/tokens.py).

Authentication runs on every authenticated request, so a token is read together with
its participant's role in one primary-key lookup joined to ``participants``.
"""

from __future__ import annotations

from sqlalchemy import Row, select, update
from sqlmodel import Session

from ledger.storage.tables import ApiTokenRow, ParticipantRow


class TokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: ApiTokenRow) -> None:
        self.session.add(row)
        self.session.flush()

    def token(self, token_id: str) -> ApiTokenRow | None:
        return self.session.get(ApiTokenRow, token_id)

    def credential(self, token_id: str) -> Row | None:
        """The columns authentication needs, and the holder's role (None if unregistered)."""
        query = (
            select(
                ApiTokenRow.participant_id,
                ApiTokenRow.secret_sha256,
                ApiTokenRow.expires_at,
                ApiTokenRow.revoked_at,
                ParticipantRow.role,
            )
            .outerjoin(ParticipantRow, ParticipantRow.participant_id == ApiTokenRow.participant_id)
            .where(ApiTokenRow.token_id == token_id)
        )
        return self.session.execute(query).first()

    def tokens(self, participant_id: str | None = None) -> list[ApiTokenRow]:
        query = select(ApiTokenRow).order_by(ApiTokenRow.created_at, ApiTokenRow.token_id)
        if participant_id is not None:
            query = query.where(ApiTokenRow.participant_id == participant_id)
        return list(self.session.exec(query).scalars())

    def revoke(self, token_id: str, revoked_at: str) -> None:
        """Mark the token revoked unless it already is (the first revocation time stays)."""
        self.session.execute(
            update(ApiTokenRow)
            .where(ApiTokenRow.token_id == token_id, ApiTokenRow.revoked_at.is_(None))
            .values(revoked_at=revoked_at)
        )
        self.session.expire_all()
