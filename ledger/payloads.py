"""Small shape checks shared by the core kinds' payloads.

Richer payloads (batches, rule sets) are described by JSON Schemas in ``schemas/``;
these helpers keep the handful of core payloads just as strict without one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ledger.errors import MalformedError

PARTICIPANT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
#: A batch or lot id, as ``batch.register`` requires it.
BATCH_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def exact_fields(
    payload: Mapping[str, Any], required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> None:
    """Refuse missing and unknown fields, naming the first of each."""
    for name in required:
        if name not in payload:
            raise MalformedError("required field is missing", field=f"payload.{name}")
    for name in payload:
        if name not in required and name not in optional:
            raise MalformedError("unknown field", field=f"payload.{name}")


def text(payload: Mapping[str, Any], name: str, *, max_length: int = 200) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        raise MalformedError("must be a non-empty string", field=f"payload.{name}")
    if len(value) > max_length:
        raise MalformedError(f"must be at most {max_length} characters", field=f"payload.{name}")
    return value


def matching(payload: Mapping[str, Any], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise MalformedError(f"must be {what}", field=f"payload.{name}")
    return value


def one_of(payload: Mapping[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or value not in choices:
        raise MalformedError(f"must be one of {', '.join(choices)}", field=f"payload.{name}")
    return value


def participant_id(payload: Mapping[str, Any], name: str = "participant_id") -> str:
    return matching(
        payload, name, PARTICIPANT_ID_RE, "2-64 characters of [a-z0-9._-] starting alphanumeric"
    )
