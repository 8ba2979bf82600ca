"""Queries for stored disclosures and disclosure grants (see ledger/disclosure/)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence

from sqlalchemy import insert, select, update
from sqlmodel import Session

from ledger.disclosure.format import Disclosure, parse_disclosure
from ledger.storage.tables import DisclosureGrantRow, DisclosureRow

#: Records per chunk when the audit streams every record's disclosures.
STREAM_CHUNK = 1_000


class DisclosureRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- disclosures --------------------------------------------------------
    def insert(self, rows: Sequence[dict[str, object]]) -> None:
        """Store disclosures (``disclosure_rows``) in one statement."""
        if rows:
            self.session.execute(insert(DisclosureRow.__table__), list(rows))

    def of_records(self, indexes: Iterable[int]) -> dict[int, list[Disclosure]]:
        """The disclosures of each record, in submission order; records without any are
        absent. Stored disclosures were checked on append, so they parse."""
        wanted = sorted(set(indexes))
        if not wanted:
            return {}
        rows = self.session.execute(
            select(DisclosureRow.record_index, DisclosureRow.disclosures).where(
                DisclosureRow.record_index.in_(wanted)
            )
        ).all()
        return {
            int(index): [parse_disclosure(raw, "disclosure") for raw in json.loads(text)]
            for index, text in rows
        }

    def stream(self) -> Iterator[list[tuple[int, str]]]:
        """Every record's stored disclosures as ``(record_index, JSON text)``, in chunks
        ordered by record index."""
        after = -1
        while True:
            query = (
                select(DisclosureRow.record_index, DisclosureRow.disclosures)
                .where(DisclosureRow.record_index > after)
                .order_by(DisclosureRow.record_index)
                .limit(STREAM_CHUNK)
            )
            rows = [(int(index), str(text)) for index, text in self.session.execute(query)]
            if not rows:
                return
            yield rows
            after = rows[-1][0]

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


def disclosure_rows(
    record_index: int, disclosures: Sequence[Disclosure]
) -> list[dict[str, object]]:
    """The row storing what opened record ``record_index`` (none when nothing did):
    decoys are left out, they open nothing."""
    kept = [d.canonical.decode() for d in disclosures if not d.decoy]
    if not kept:
        return []
    return [{"record_index": record_index, "disclosures": f"[{','.join(kept)}]"}]
