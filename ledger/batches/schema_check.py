"""JSON Schema verdicts as ledger errors: a dotted ``payload...`` field and one readable reason.

jsonschema reports every failure with paths and terse messages meant for developers. A
smelter needs the *one* failure to fix first, named by the field it typed. We pick the
shallowest failure (a missing object matters more than a bad value inside it) and phrase it
from the keyword, or from the schema's own ``x-errors`` sentence for that keyword.
Out-of-range numbers and failures in subschemas marked ``"x-class": "invalid"`` are broken
domain rules (InvalidError); everything else is a malformed shape (MalformedError).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, cast

from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from ledger.errors import InvalidError, LedgerError, MalformedError
from ledger.json_schema import accepts, is_plain_json

_RANGE_KEYWORDS = frozenset({"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"})
_WEAK_KEYWORDS = frozenset({"anyOf", "oneOf", "not"})
_VALUE_KEYWORDS = frozenset({"type", "pattern", "const", "format", "enum"})
_TYPE_NAMES = {
    "integer": "an integer",
    "string": "a string",
    "object": "an object",
    "array": "a list",
    "boolean": "true or false",
    "number": "a number",
}


def field_path(root: str, parts: Iterable[str | int]) -> str:
    """Dotted path with list indexes in brackets: ``payload.electricity[2].kwh``."""
    path = root
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def reject_floats(value: Any, path: str = "payload") -> None:
    """Refuse floats anywhere: they do not survive RFC 8785 canonicalisation unchanged.

    ``Decimal`` is refused too: it is what a JSON parser with ``parse_float=Decimal`` makes
    of a float literal.
    """
    if not is_plain_json(value):
        _refuse_floats(value, path)


def _refuse_floats(value: Any, path: str) -> None:
    """``reject_floats`` naming the field: the walk for values that are not plain JSON."""
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float | Decimal):
        raise MalformedError(
            f"{_leaf(path)} is the floating-point number {value}; write quantities as integers"
            ' in the unit the field names or as decimal strings such as "0.42"',
            field=path,
        )
    if isinstance(value, Mapping):
        for key, item in value.items():
            _refuse_floats(item, field_path(path, [str(key)]))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _refuse_floats(item, field_path(path, [index]))
    else:
        raise MalformedError(f"{_leaf(path)} is not a JSON value", field=path)


def check_against_schema(instance: Any, validator: Validator, root: str = "payload") -> None:
    """Raise the ledger error for the most useful schema failure, if there is one.

    A plain JSON instance the validator's compiled twin accepts is valid; any other goes
    through jsonschema, which finds and names every failure (``ledger/json_schema.py``).
    """
    _check(instance, validator, root, is_plain_json(instance))


def check_payload(payload: Any, validator: Validator, root: str = "payload") -> None:
    """``reject_floats`` then ``check_against_schema``, walking a plain payload once."""
    plain = is_plain_json(payload)
    if not plain:
        _refuse_floats(payload, root)
    _check(payload, validator, root, plain)


def _check(instance: Any, validator: Validator, root: str, plain: bool) -> None:
    if plain and accepts(validator, instance):
        return
    errors = list(validator.iter_errors(instance))
    if errors:
        raise to_ledger_error(pick_error(errors), root)


def pick_error(errors: list[ValidationError]) -> ValidationError:
    """The failure to report first.

    Shallowest in the instance first (a missing object matters more than a bad value in
    it), then strong keywords before anyOf/oneOf/not, then the most specific subschema (a
    GEC code's own pattern before the generic id pattern), then schema order.
    """
    ranked = sorted(
        enumerate(errors),
        key=lambda item: (
            len(item[1].absolute_path),
            item[1].validator in _WEAK_KEYWORDS,
            -len(item[1].absolute_schema_path),
            item[0],
        ),
    )
    return ranked[0][1]


def to_ledger_error(error: ValidationError, root: str = "payload") -> LedgerError:
    """Name the field and phrase the reason for one jsonschema failure."""
    parts: list[str | int] = list(error.absolute_path)
    keyword = str(error.validator)
    extra = _named_property(error)
    if extra is not None:
        parts.append(extra)
    field = field_path(root, parts)
    reason = _custom_sentence(error, keyword) or _default_sentence(error, keyword)
    detail = f"{_leaf(field)} {reason}"
    if keyword in _RANGE_KEYWORDS or _schema_of(error).get("x-class") == "invalid":
        return InvalidError(detail, field=field)
    return MalformedError(detail, field=field)


def _schema_of(error: ValidationError) -> Mapping[str, Any]:
    schema = error.schema
    return schema if isinstance(schema, Mapping) else {}


def _custom_sentence(error: ValidationError, keyword: str) -> str | None:
    """The schema's own ``x-errors`` sentence, with the offending value where it helps."""
    sentences = _schema_of(error).get("x-errors", {})
    sentence = sentences.get(keyword) if isinstance(sentences, Mapping) else None
    if sentence is None or keyword not in _VALUE_KEYWORDS:
        return sentence
    return f"{sentence} (got {_show(error.instance)})"


def _named_property(error: ValidationError) -> str | None:
    """For failures about a property of an object (missing, unknown), that property's name."""
    instance = error.instance
    if not isinstance(instance, Mapping):
        return None
    expected = cast(Any, error.validator_value)  # what the failed keyword asked for
    if error.validator == "required":
        return next((n for n in expected if n not in instance), None)
    if error.validator == "dependentRequired":
        needed = (n for deps in expected.values() for n in deps)
        return next((n for n in needed if n not in instance), None)
    if error.validator == "additionalProperties":
        known = _schema_of(error).get("properties", {})
        return next((str(n) for n in instance if n not in known), None)
    return None


def _default_sentence(error: ValidationError, keyword: str) -> str:
    value = error.validator_value
    got = _show(error.instance)
    sentences = {
        "required": "is required but missing",
        "dependentRequired": "is required here but missing",
        "additionalProperties": "is not a known field here; unknown fields are refused",
        "type": f"must be {_TYPE_NAMES.get(str(value), str(value))} (got {got})",
        "enum": f"must be one of {', '.join(map(repr, _listed(value)))} (got {got})",
        "const": f"must be {value!r} (got {got})",
        "pattern": f"does not have the required format {value} (got {got})",
        "format": f"must be a valid {value} (got {got})",
        "minimum": f"must be at least {value} (got {got})",
        "exclusiveMinimum": f"must be greater than {value} (got {got})",
        "maximum": f"must be at most {value} (got {got})",
        "exclusiveMaximum": f"must be less than {value} (got {got})",
        "minLength": f"must not be shorter than {value} characters",
        "maxLength": f"must not be longer than {value} characters",
        "minItems": f"must have at least {value} entries",
        "maxItems": f"must have at most {value} entries",
    }
    return sentences.get(keyword, f"does not match the allowed forms ({keyword})")


def _listed(value: Any) -> list[Any]:
    """The values of an ``enum``; the sentences are built for every keyword, so this must
    not fail on another keyword's value (an integer for ``minItems``)."""
    return list(value) if isinstance(value, list) else []


def _show(value: Any) -> str:
    """A short rendering of an offending value for the error sentence."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _leaf(path: str) -> str:
    """Last name in a dotted path, keeping its index: ``electricity[2]``, ``mass_kg``."""
    return path.rsplit(".", 1)[-1]
