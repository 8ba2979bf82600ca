"""Participants and their keys: genesis, registration, rotation, revocation.

Key validity is defined once, by ``key_events``: which keys a record adds and which
it ends. The append path applies those events to the database; the offline audit
replays them in memory (``KeyHistory``) to learn which key was valid at each index.
A key is valid for records after the one that added it and before the one that
ended it. Each participant has one active key: rotation ends every active key of
the participant and adds the new one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ledger import keys, payloads
from ledger.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
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

GENESIS = "ledger.genesis"
REGISTER = "participant.register"
ROTATE = "key.rotate"
REVOKE = "key.revoke"
KEY_KINDS = (GENESIS, REGISTER, ROTATE, REVOKE)

COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
KEY_ID_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class KeyEvent:
    action: Literal["add", "end_all", "end"]
    participant_id: str
    key_id: str = ""
    public_key: bytes = b""
    reason: str = ""


def key_events(kind: str, payload: Mapping[str, Any]) -> list[KeyEvent]:
    """The key changes a (valid) record of ``kind`` makes, in order."""
    if kind == GENESIS:
        operator = payload["operator"]
        return [_add(operator["participant_id"], operator["public_key"])]
    if kind == REGISTER:
        return [_add(payload["participant_id"], payload["public_key"])]
    if kind == ROTATE:
        pid = payload["participant_id"]
        return [KeyEvent("end_all", pid, reason="rotated"), _add(pid, payload["new_public_key"])]
    if kind == REVOKE:
        reason = f"revoked: {payload['reason']}"
        return [KeyEvent("end", payload["participant_id"], payload["key_id"], reason=reason)]
    return []


def _add(participant_id: str, public_key_b64: str) -> KeyEvent:
    raw = keys.parse_public_key(public_key_b64)
    return KeyEvent("add", participant_id, keys.key_id(raw), raw)


@dataclass
class KeyState:
    participant_id: str
    public_key: bytes
    added_index: int
    ended_index: int | None = None


class KeyHistory:
    """In-memory key validity, rebuilt from records by the offline audit."""

    def __init__(self) -> None:
        self.keys: dict[str, KeyState] = {}

    def apply(self, index: int, kind: str, payload: Mapping[str, Any]) -> None:
        for event in key_events(kind, payload):
            if event.action == "add":
                self.keys[event.key_id] = KeyState(event.participant_id, event.public_key, index)
            else:
                for key_id, state in self.keys.items():
                    matches = event.action == "end_all" or key_id == event.key_id
                    if matches and state.participant_id == event.participant_id:
                        state.ended_index = state.ended_index or index

    def problem_at(self, key_id: str, index: int) -> str | None:
        """Why ``key_id`` could not sign record ``index``, or None if it could."""
        state = self.keys.get(key_id)
        if state is None or state.added_index > index:
            return "signer key was not registered before this record"
        if state.added_index == index and index != 0:
            return "signer key was registered by this very record"
        if state.ended_index is not None and state.ended_index < index:
            return f"signer key had been ended at record {state.ended_index}"
        return None


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
