"""Participants and their keys: genesis, registration, rotation, revocation.

Key validity is defined once, by ``ledger/key_history.py`` (``key_events``: which keys
a record adds and which it ends). This module applies those events to the database as
records are appended; the audit and the offline verifier replay them in memory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ledger import keys, payloads
from ledger.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from ledger.key_history import REGISTER, REVOKE, ROTATE, KeyEvent, key_events
from ledger.kind_names import GENESIS
from ledger.kinds import (
    OPERATOR_ROLE,
    PARTICIPANT_ROLES,
    AppendContext,
    Author,
    StatementKind,
    require_role,
)
from ledger.statements import Statement
from ledger.storage.tables import ParticipantKeyRow, ParticipantRow

COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
KEY_ID_RE = re.compile(r"^[0-9a-f]{64}$")


def _apply_events(ctx: AppendContext, events: list[KeyEvent]) -> None:
    for event in events:
        if event.action == "add":
            ctx.repo.add_key(
                ParticipantKeyRow(
                    key_id=event.key_id,
                    participant_id=event.participant_id,
                    public_key=event.public_key,
                    added_index=ctx.index,
                )
            )
        elif event.action == "end":
            ctx.repo.end_key(event.key_id, ctx.index, event.reason)
        else:
            for row in ctx.repo.keys_of(event.participant_id):
                if row.ended_index is None:
                    ctx.repo.end_key(row.key_id, ctx.index, event.reason)
    ctx.forget_keys()


def _refuse_known_key(ctx: AppendContext, public_key_b64: str, field: str) -> None:
    raw = keys.parse_public_key(public_key_b64, field=field)
    if ctx.repo.key(keys.key_id(raw)) is not None:
        raise ConflictError("this public key is already registered", field=field)


def _participant_fields(payload: Mapping[str, Any]) -> dict[str, str]:
    return {
        "participant_id": payloads.participant_id(payload),
        "legal_name": payloads.text(payload, "legal_name"),
        "country": payloads.matching(payload, "country", COUNTRY_RE, "an ISO 3166-1 alpha-2 code"),
        "region": payloads.text(payload, "region", max_length=100),
    }


class Genesis(StatementKind):
    """Record 0: names the log and its operator, signed by the operator's own key."""

    name = GENESIS
    bootstraps = True
    FIELDS = ("origin", "log_verifier_key", "operator")

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> dict[str, str]:
        if ctx.index != 0:
            raise ConflictError("the ledger already has a genesis record", field="statement.kind")
        payloads.exact_fields(statement.payload, self.FIELDS)
        operator = statement.payload["operator"]
        payloads.exact_fields(
            operator, ("participant_id", "legal_name", "country", "region", "public_key")
        )
        fields = _participant_fields(operator)
        expected = {"origin": ctx.origin, "log_verifier_key": ctx.log_verifier_key}
        for name, value in expected.items():
            if statement.payload[name] != value:
                raise InvalidError(f"must be this log's {name}: {value}", field=f"payload.{name}")
        raw = keys.parse_public_key(operator["public_key"], field="payload.operator.public_key")
        if keys.key_id(raw) != statement.signer:
            raise ForbiddenError("genesis must be signed by the operator key it names")
        return fields

    def apply(self, ctx: AppendContext, statement: Statement, author: Author, checked: Any) -> None:
        ctx.repo.add_participant(
            ParticipantRow(**checked, role=OPERATOR_ROLE, registered_index=ctx.index)
        )
        ctx.repo.set_meta(
            {
                "origin": ctx.origin,
                "log_verifier_key": ctx.log_verifier_key,
                "operator_id": checked["participant_id"],
            }
        )
        _apply_events(ctx, key_events(self.name, statement.payload))


class RegisterParticipant(StatementKind):
    name = REGISTER
    FIELDS = ("participant_id", "legal_name", "role", "country", "region", "public_key")

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> dict[str, str]:
        require_role(author, OPERATOR_ROLE, action="registering a participant")
        payload = statement.payload
        payloads.exact_fields(payload, self.FIELDS)
        fields = _participant_fields(payload)
        fields["role"] = payloads.one_of(payload, "role", PARTICIPANT_ROLES)
        if ctx.repo.participant(fields["participant_id"]) is not None:
            raise ConflictError(
                f"participant {fields['participant_id']} is already registered",
                field="payload.participant_id",
            )
        _refuse_known_key(ctx, payload["public_key"], "payload.public_key")
        return fields

    def apply(self, ctx: AppendContext, statement: Statement, author: Author, checked: Any) -> None:
        ctx.repo.add_participant(ParticipantRow(**checked, registered_index=ctx.index))
        _apply_events(ctx, key_events(self.name, statement.payload))


def _may_manage_keys(ctx: AppendContext, author: Author, participant_id: str) -> None:
    if ctx.repo.participant(participant_id) is None:
        raise NotFoundError(f"no participant {participant_id}", field="payload.participant_id")
    if author.role != OPERATOR_ROLE and author.participant_id != participant_id:
        raise ForbiddenError(
            f"only {participant_id} or the operator may manage its keys",
            field="statement.signer",
        )


class RotateKey(StatementKind):
    name = ROTATE

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> None:
        payload = statement.payload
        payloads.exact_fields(payload, ("participant_id", "new_public_key"), ("reason",))
        _may_manage_keys(ctx, author, payloads.participant_id(payload))
        _refuse_known_key(ctx, payload["new_public_key"], "payload.new_public_key")

    def apply(self, ctx: AppendContext, statement: Statement, author: Author, checked: Any) -> None:
        _apply_events(ctx, key_events(self.name, statement.payload))


class RevokeKey(StatementKind):
    name = REVOKE

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> None:
        payload = statement.payload
        payloads.exact_fields(payload, ("participant_id", "key_id", "reason"))
        participant_id = payloads.participant_id(payload)
        key_id = payloads.matching(payload, "key_id", KEY_ID_RE, "a 64-hex-digit key id")
        payloads.text(payload, "reason")
        _may_manage_keys(ctx, author, participant_id)
        row = ctx.repo.key(key_id)
        if row is None or row.participant_id != participant_id:
            raise NotFoundError(f"{participant_id} has no key {key_id}", field="payload.key_id")
        if row.ended_index is not None:
            raise InvalidError(
                f"key already ended at record {row.ended_index}", field="payload.key_id"
            )

    def apply(self, ctx: AppendContext, statement: Statement, author: Author, checked: Any) -> None:
        _apply_events(ctx, key_events(self.name, statement.payload))


def participant_kinds() -> list[StatementKind]:
    return [Genesis(), RegisterParticipant(), RotateKey(), RevokeKey()]
