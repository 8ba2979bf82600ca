"""Key validity, defined once: which keys a record adds and which it ends (``key_events``),
and the validity that follows from replaying records in order (``KeyHistory``).

Pure: it reads record payloads, never storage, so the append path (``participants.py``,
which writes the events to the database), the audit and the offline certificate
verifier share it. A key is valid for records after the one that added it and before the
one that ended it. Each participant has one active key: rotation ends every active key of
the participant and adds the new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ledger import keys
from ledger.kind_names import GENESIS, KEY_REVOKE, KEY_ROTATE, PARTICIPANT_REGISTER

REGISTER = PARTICIPANT_REGISTER
ROTATE = KEY_ROTATE
REVOKE = KEY_REVOKE
KEY_KINDS = (GENESIS, REGISTER, ROTATE, REVOKE)


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
