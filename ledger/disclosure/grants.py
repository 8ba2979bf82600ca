"""``disclosure.grant`` / ``disclosure.revoke``: a smelter lets a participant read its
confidential batch values, and takes that back.

- ``disclosure.grant`` (a smelter) ``{grantee_id, batch_id?}``: the grantee may read the
  disclosures of the named batch of the signer, or of all its batches when ``batch_id``
  is absent (batches registered later included).
- ``disclosure.revoke`` (the smelter that granted) ``{grant_index}``: the grant ends.

Grants are records like any other, so who was let in, and when, is itself auditable.
The read policy (``ledger/visibility.py``) consults the grants in force at each read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger import payloads
from ledger.errors import ConflictError, ForbiddenError, InvalidError, MalformedError, NotFoundError
from ledger.kinds import AppendContext, Author, StatementKind, require_role
from ledger.statements import Statement
from ledger.storage.batches import BatchRepository
from ledger.storage.disclosures import DisclosureRepository
from ledger.storage.tables import DisclosureGrantRow

GRANT = "disclosure.grant"
REVOKE = "disclosure.revoke"


@dataclass(frozen=True)
class CheckedGrant:
    grantee_id: str
    batch_id: str | None


class GrantDisclosure(StatementKind):
    name = GRANT

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> CheckedGrant:
        require_role(author, "smelter", action="granting access to disclosures")
        payload = statement.payload
        payloads.exact_fields(payload, ("grantee_id",), ("batch_id",))
        grantee_id = payloads.participant_id(payload, "grantee_id")
        batch_id = None
        if "batch_id" in payload:
            batch_id = payloads.matching(payload, "batch_id", payloads.BATCH_ID_RE, "a batch id")
        if grantee_id == author.participant_id:
            raise InvalidError("a smelter always reads its own batches", field="payload.grantee_id")
        if ctx.repo.participant(grantee_id) is None:
            raise NotFoundError(f"no participant {grantee_id}", field="payload.grantee_id")
        smelter = author.participant_id
        if batch_id is not None and not BatchRepository(ctx.repo.session).exists(smelter, batch_id):
            raise NotFoundError(f"no batch {smelter}/{batch_id}", field="payload.batch_id")
        existing = DisclosureRepository(ctx.repo.session).active_grant(
            smelter, grantee_id, batch_id
        )
        if existing is not None:
            raise ConflictError(
                f"{grantee_id} already holds this grant (record {existing.granted_index})",
                field="payload.grantee_id",
            )
        return CheckedGrant(grantee_id, batch_id)

    def apply(
        self, ctx: AppendContext, statement: Statement, author: Author, checked: CheckedGrant
    ) -> None:
        DisclosureRepository(ctx.repo.session).add_grant(
            DisclosureGrantRow(
                granted_index=ctx.index,
                smelter_id=author.participant_id,
                grantee_id=checked.grantee_id,
                batch_id=checked.batch_id,
            )
        )


class RevokeDisclosure(StatementKind):
    name = REVOKE

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> int:
        payload = statement.payload
        payloads.exact_fields(payload, ("grant_index",))
        target = _record_index(payload.get("grant_index"))
        grant = DisclosureRepository(ctx.repo.session).grant(target)
        if grant is None:
            raise NotFoundError(
                f"no disclosure.grant at record {target}", field="payload.grant_index"
            )
        if grant.smelter_id != author.participant_id:
            raise ForbiddenError(
                f"only {grant.smelter_id}, who granted it, may revoke this grant",
                field="statement.signer",
            )
        if grant.revoked_index is not None:
            raise ConflictError(
                f"the grant was already revoked at record {grant.revoked_index}",
                field="payload.grant_index",
            )
        return target

    def apply(self, ctx: AppendContext, statement: Statement, author: Author, checked: int) -> None:
        DisclosureRepository(ctx.repo.session).revoke_grant(checked, ctx.index)


def _record_index(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedError(
            "must be the record index of a disclosure.grant", field="payload.grant_index"
        )
    return value


def disclosure_kinds() -> list[StatementKind]:
    return [GrantDisclosure(), RevokeDisclosure()]
