"""The one JSON Schema validator class: 2020-12 with ECMA-262 ``pattern`` semantics.

JSON Schema defines ``pattern`` as an ECMA-262 regular expression, but jsonschema
runs it with Python's ``re.search``, where ``$`` also matches before a final newline:
``^[a-z0-9-]+$`` accepts ``"foshan-extrusion\\n"``, a look-alike id. Patterns here run
on ``regress`` (the Rust ECMA-262 engine), so every id pattern matches the whole id.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import regress
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator


@functools.lru_cache(maxsize=512)
def ecma_regex(pattern: str) -> regress.Regex:
    """``pattern`` compiled as an ECMA-262 regular expression (with the ``u`` flag)."""
    return regress.Regex(pattern, "u")


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and ecma_regex(pattern).find(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = validators.extend(Draft202012Validator, {"pattern": _pattern})
"""Draft 2020-12, ``pattern`` as ECMA-262 (module docstring)."""


def make_validator(schema: Mapping[str, Any], *, formats: bool = True) -> Validator:
    """A checked 2020-12 validator with ECMA patterns; ``formats`` also checks ``format``
    (dates)."""
    EcmaValidator.check_schema(schema)
    checker = EcmaValidator.FORMAT_CHECKER if formats else None
    return EcmaValidator(schema, format_checker=checker)
