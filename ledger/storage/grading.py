"""Queries for accreditations, rule sets and grades (see ledger/grading/kinds.py)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import and_, bindparam, or_, select, update
from sqlmodel import Session

from ledger.storage.tables import AccreditationRow, GradeRow, RulesetRow

_GRADES = GradeRow.__table__  # type: ignore[attr-defined]
#: ``GradingRepository.revocation`` and ``revocations``: built once.
_REVOCATION = select(_GRADES.c.revoked_index).where(_GRADES.c.record_index == bindparam("index"))
_REVOCATIONS = select(_GRADES.c.record_index, _GRADES.c.revoked_index).where(
    _GRADES.c.record_index.in_(bindparam("indexes", expanding=True))
)


class GradingRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- accreditations ---------------------------------------------------
    def add_accreditation(self, row: AccreditationRow) -> None:
        self.session.add(row)
        self.session.flush()

    def accreditations_of(self, participant_id: str) -> list[AccreditationRow]:
        query = (
            select(AccreditationRow)
            .where(AccreditationRow.participant_id == participant_id)
            .order_by(AccreditationRow.granted_index)
        )
        return list(self.session.exec(query).scalars())

    def in_force(self, participant_id: str, day: str) -> list[AccreditationRow]:
        """Grants to ``participant_id`` valid on ``day`` (ISO date) and not withdrawn."""
        query = (
            select(AccreditationRow)
            .where(
                AccreditationRow.participant_id == participant_id,
                AccreditationRow.withdrawn_index.is_(None),
                AccreditationRow.valid_from <= day,
                AccreditationRow.valid_until >= day,
            )
            .order_by(AccreditationRow.granted_index)
        )
        return list(self.session.exec(query).scalars())

    def withdraw(self, participant_id: str, index: int, reason: str) -> int:
        """End every not yet withdrawn grant of ``participant_id``; how many were ended."""
        result = self.session.execute(
            update(AccreditationRow)
            .where(
                AccreditationRow.participant_id == participant_id,
                AccreditationRow.withdrawn_index.is_(None),
            )
            .values(withdrawn_index=index, withdraw_reason=reason)
        )
        self.session.expire_all()
        return result.rowcount

    # -- rule sets --------------------------------------------------------
    def ruleset(self, ruleset_id: str, version: str) -> RulesetRow | None:
        return self.session.get(RulesetRow, (ruleset_id, version))

    def rulesets(self) -> list[RulesetRow]:
        query = select(RulesetRow).order_by(RulesetRow.record_index)
        return list(self.session.exec(query).scalars())

    def add_ruleset(self, row: RulesetRow) -> None:
        self.session.add(row)
        self.session.flush()

    # -- grades -----------------------------------------------------------
    def grade(self, record_index: int) -> GradeRow | None:
        return self.session.get(GradeRow, record_index)

    def revocation(self, record_index: int) -> tuple[bool, int | None]:
        """Whether grade ``record_index`` exists, and the index of the record that revoked
        it (None: active): one primary-key read of one column, no ORM object."""
        row = self.session.connection().execute(_REVOCATION, {"index": record_index}).first()
        return (False, None) if row is None else (True, row[0])

    def revocations(self, record_indexes: Collection[int]) -> dict[int, int | None]:
        """``revocation`` of several grades in one query: the revoking record's index (None:
        active) by grade record index, for those of ``record_indexes`` that are grades."""
        if not record_indexes:
            return {}
        rows = self.session.connection().execute(_REVOCATIONS, {"indexes": list(record_indexes)})
        return {index: revoked for index, revoked in rows}

    def grades_of(self, smelter_id: str, batch_id: str) -> list[GradeRow]:
        query = (
            select(GradeRow)
            .where(GradeRow.smelter_id == smelter_id, GradeRow.batch_id == batch_id)
            .order_by(GradeRow.record_index)
        )
        return list(self.session.exec(query).scalars())

    def grades_of_many(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], list[GradeRow]]:
        """The grades of several batches in one query, each list in ledger order."""
        found: dict[tuple[str, str], list[GradeRow]] = {key: [] for key in keys}
        if not keys:
            return found
        query = (
            select(GradeRow)
            .where(or_(*(and_(GradeRow.smelter_id == s, GradeRow.batch_id == b) for s, b in keys)))
            .order_by(GradeRow.record_index)
        )
        for row in self.session.exec(query).scalars():
            found[(row.smelter_id, row.batch_id)].append(row)
        return found

    def add_grade(self, row: GradeRow) -> None:
        self.session.add(row)
        self.session.flush()

    def revoke_grade(self, record_index: int, index: int, reason: str) -> None:
        self.session.execute(
            update(GradeRow)
            .where(GradeRow.record_index == record_index)
            .values(revoked_index=index, revoke_reason=reason)
        )
        self.session.expire_all()
