"""Queries for stored disclosures and disclosure grants (see ledger/disclosure/)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence

from sqlalchemy import insert, or_, select, update
from sqlmodel import Session

from ledger.disclosure.format import Disclosure, parse_disclosure
from ledger.storage.tables import DisclosureGrantRow, DisclosureRow

#: Rows per chunk when the audit streams every disclosure.
STREAM_CHUNK = 5_000


class DisclosureRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- disclosures --------------------------------------------------------
    def add(self, record_index: int, disclosures: Sequence[Disclosure]) -> None:
        """Store the disclosures that opened record ``record_index``, in submission order."""
        if disclosures:
            self.session.execute(insert(DisclosureRow), _rows(record_index, disclosures))

    def of_records(self, indexes: Iterable[int]) -> dict[int, list[Disclosure]]:
        """The non-decoy disclosures of each record, in submission order; records without
        any are absent. Stored disclosures were checked on append, so they parse."""
        wanted = sorted(set(indexes))
        if not wanted:
            return {}
        rows = self.session.execute(
            select(DisclosureRow.record_index, DisclosureRow.disclosure)
            .where(DisclosureRow.record_index.in_(wanted), DisclosureRow.decoy.is_(False))
            .order_by(DisclosureRow.record_index, DisclosureRow.position)
        ).all()
        found: dict[int, list[Disclosure]] = {}
        for index, text in rows:
            found.setdefault(index, []).append(parse_disclosure(json.loads(text), "disclosure"))
        return found

    def stream(self) -> Iterator[list[tuple[int, int, str, str]]]:
        """Every stored disclosure as ``(record_index, position, digest, text)``, in
        chunks ordered by record index and position (decoys included)."""
        last = (-1, -1)
        table = DisclosureRow
        while True:
            query = (
                select(table.record_index, table.position, table.digest, table.disclosure)
                .where(
                    or_(
                        table.record_index > last[0],
                        (table.record_index == last[0]) & (table.position > last[1]),
                    )
                )
                .order_by(table.record_index, table.position)
                .limit(STREAM_CHUNK)
            )
            chunk = [tuple(row) for row in self.session.execute(query).all()]
            if not chunk:
                return
            yield chunk  # type: ignore[misc]
            last = (chunk[-1][0], chunk[-1][1])

    # -- grants -------------------------------------------------------------
    def add_grant(self, row: DisclosureGrantRow) -> None:
        self.session.add(row)
        self.session.flush()

    def grant(self, granted_index: int) -> DisclosureGrantRow | None:
        return self.session.get(DisclosureGrantRow, granted_index)

    def revoke_grant(self, granted_index: int, revoked_index: int) -> None:
        self.session.execute(
            update(DisclosureGrantRow)
            .where(DisclosureGrantRow.granted_index == granted_index)
            .values(revoked_index=revoked_index)
        )

    def grants_to(self, grantee_id: str) -> list[DisclosureGrantRow]:
        """Grants in force for ``grantee_id`` (not revoked), oldest first."""
        query = (
            select(DisclosureGrantRow)
            .where(
                DisclosureGrantRow.grantee_id == grantee_id,
                DisclosureGrantRow.revoked_index.is_(None),
            )
            .order_by(DisclosureGrantRow.granted_index)
        )
        return list(self.session.exec(query).scalars())

    def active_grant(
        self, smelter_id: str, grantee_id: str, batch_id: str | None
    ) -> DisclosureGrantRow | None:
        """The grant in force with exactly this scope, if any."""
        query = select(DisclosureGrantRow).where(
            DisclosureGrantRow.smelter_id == smelter_id,
            DisclosureGrantRow.grantee_id == grantee_id,
            DisclosureGrantRow.revoked_index.is_(None),
            DisclosureGrantRow.batch_id.is_(None)
            if batch_id is None
            else DisclosureGrantRow.batch_id == batch_id,
        )
        return self.session.exec(query).scalars().first()


def _rows(record_index: int, disclosures: Sequence[Disclosure]) -> list[dict[str, object]]:
    return [
        {
            "record_index": record_index,
            "position": position,
            "digest": disclosure.digest,
            "decoy": disclosure.decoy,
            "disclosure": disclosure.canonical.decode(),
        }
        for position, disclosure in enumerate(disclosures)
    ]
