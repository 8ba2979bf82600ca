"""Validate a rule-set payload against its JSON Schema and report one error well.

The schema in ``schemas/ruleset/`` is the published contract (other tools can
validate with it); this module turns jsonschema's best error into the ledger's
refusal: a ``payload....`` field path that points at the offending value and
one sentence saying why. Sentences come from the schema's ``x-errors``
annotations where a generic one would not help, and ``x-class: invalid`` marks
a failure as a broken rule rather than a malformed shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, cast

from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator

from ledger.errors import InvalidError, LedgerError, MalformedError
from ledger.json_schema import make_validator
from ledger.resources import load_json

RULESET_SCHEMA = "ruleset/ruleset.schema.json"

_TYPE_WORDS = {
    "integer": "an integer",
    "string": "a string",
    "object": "an object",
    "array": "an array",
    "boolean": "true or false",
    "number": "a number",
    "null": "null",
}


@cache
def ruleset_schema() -> dict[str, Any]:
    """The rule-set JSON Schema, read once."""
    schema: dict[str, Any] = load_json(RULESET_SCHEMA)
    return schema


@cache
def _validator() -> Validator:
    return make_validator(ruleset_schema(), formats=False)


def field_path(parts: Iterable[str | int]) -> str:
    """``["grades", 1, "grade"]`` -> ``payload.grades[1].grade``."""
    out = "payload"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def check_ruleset_shape(payload: Any) -> None:
    """Raise the ledger error for the most relevant problem, or return if there is none."""
    reject_floats(payload, ())
    error = best_match(_validator().iter_errors(payload))
    if error is not None:
        raise _ledger_error(error)


def reject_floats(value: Any, parts: tuple[str | int, ...]) -> None:
    """Refuse floats anywhere, first in document order.

    Done before schema validation because JSON Schema counts 4000.0 as an
    integer, yet it would be signed as a float and canonicalise differently.
    """
    if isinstance(value, float):
        raise MalformedError(
            "must not be a floating-point number: signed content states quantities as "
            'integers in stated units (4000 kg CO2e per tonne) or decimal strings ("0.75")',
            field=field_path(parts),
        )
    if isinstance(value, dict):
        for key, item in value.items():
            reject_floats(item, (*parts, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            reject_floats(item, (*parts, index))


def _ledger_error(error: ValidationError) -> LedgerError:
    schema = error.schema if isinstance(error.schema, dict) else {}
    parts: list[str | int] = list(error.absolute_path)
    key = _offending_key(error, schema)
    if key is not None:
        parts.append(key)
    kind = InvalidError if schema.get("x-class") == "invalid" else MalformedError
    return kind(_detail(error, schema), field=field_path(parts))


def _offending_key(error: ValidationError, schema: dict[str, Any]) -> str | None:
    """Point at the unknown or missing property itself, not at the object holding it."""
    instance = error.instance
    if not isinstance(instance, dict):
        return None
    if error.validator == "additionalProperties":
        known = schema.get("properties", {})
        return next((str(name) for name in instance if name not in known), None)
    if error.validator == "required":
        required = cast(list[str], error.validator_value)
        return next((name for name in required if name not in instance), None)
    return None


def _detail(error: ValidationError, schema: dict[str, Any]) -> str:
    custom = schema.get("x-errors", {}).get(str(error.validator))
    if isinstance(custom, str):
        return custom
    return _generic_detail(error, schema)


def _generic_detail(error: ValidationError, schema: dict[str, Any]) -> str:
    """Sentences for the keywords this schema uses; jsonschema's own message otherwise."""
    keyword, expected = str(error.validator), cast(Any, error.validator_value)
    sentences: dict[str, Callable[[], str]] = {
        "type": lambda: f"must be {_TYPE_WORDS.get(str(expected), str(expected))}",
        "enum": lambda: "must be one of " + ", ".join(str(item) for item in expected),
        "const": lambda: f"must be {json.dumps(expected)}",
        "required": lambda: "required field is missing",
        "additionalProperties": lambda: (
            "unknown field; allowed here: " + ", ".join(schema.get("properties", {}))
        ),
        "minItems": lambda: f"must list at least {expected} item{'s' * (expected != 1)}",
        "maxItems": lambda: f"must list at most {expected} items",
        "uniqueItems": lambda: "must not list the same item twice",
        "minLength": lambda: (
            "must not be empty" if expected == 1 else f"must be at least {expected} characters"
        ),
        "maxLength": lambda: f"must be at most {expected} characters",
        "pattern": lambda: f"must match the pattern {expected}",
        "minimum": lambda: f"must be at least {expected}",
        "maximum": lambda: f"must be at most {expected}",
    }
    sentence = sentences.get(keyword)
    return sentence() if sentence else error.message
