"""The one JSON Schema validator class: 2020-12 with ECMA-262 ``pattern`` semantics.

JSON Schema defines ``pattern`` as an ECMA-262 regular expression, but jsonschema
runs it with Python's ``re.search``, where ``$`` also matches before a final newline:
``^[a-z0-9-]+$`` accepts ``"foshan-extrusion\\n"``, a look-alike id. Patterns here run
on ``regress`` (the Rust ECMA-262 engine), so every id pattern matches the whole id.

Each schema is compiled once (``make_validator`` hands out the same validator for the same
schema document) together with a fast twin in ``jsonschema_rs`` that only *accepts*:
``accepts`` answers whether an instance is valid in microseconds, and anything it does not
accept goes to the jsonschema validator, which names the failure exactly as before. The
twin decides nothing on its own terms where the two engines could differ: its ``pattern``
keyword runs the same ECMA-262 ``regress`` expression, its ``format`` checks call the same
jsonschema format checker, and a schema using anything else whose meaning it might read
differently (``patternProperties``, which jsonschema runs as a Python expression; content
keywords; references outside the document; another draft; an unknown keyword) gets no
twin at all.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

import jsonschema_rs
import regress
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

DRAFT_2020_12: Final = "https://json-schema.org/draft/2020-12/schema"


@functools.lru_cache(maxsize=512)
def ecma_regex(pattern: str) -> regress.Regex:
    """``pattern`` compiled as an ECMA-262 regular expression (with the ``u`` flag)."""
    return regress.Regex(pattern, "u")


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and ecma_regex(pattern).find(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = validators.extend(  # type: ignore[no-untyped-call]  # untyped in the stubs
    Draft202012Validator, {"pattern": _pattern}
)
"""Draft 2020-12, ``pattern`` as ECMA-262 (module docstring)."""


class _Compiled:
    """One schema document compiled: its jsonschema validator and its fast twin (or None)."""

    def __init__(self, schema: Mapping[str, Any], formats: bool) -> None:
        EcmaValidator.check_schema(schema)
        checker = EcmaValidator.FORMAT_CHECKER if formats else None
        self.schema = schema  # held so that the id keying the cache stays this document's
        self.validator: Validator = EcmaValidator(schema, format_checker=checker)
        self.twin = _twin(schema, formats)


_lock = threading.Lock()
#: (id of the schema document, formats) -> its compiled form. Schemas are data files
#: read once (``load_json``), so this holds a handful of entries for the process.
_by_schema: dict[tuple[int, bool], _Compiled] = {}
#: id of a validator ``make_validator`` handed out -> its compiled form.
_by_validator: dict[int, _Compiled] = {}
#: How many schema documents were compiled (tests check that each is compiled once).
compilations = 0


def make_validator(schema: Mapping[str, Any], *, formats: bool = True) -> Validator:
    """A checked 2020-12 validator with ECMA patterns; ``formats`` also checks ``format``
    (dates). Compiled once per schema document: the same document gets the same validator."""
    global compilations
    key = (id(schema), formats)
    with _lock:
        compiled = _by_schema.get(key)
        if compiled is None or compiled.schema is not schema:
            compiled = _Compiled(schema, formats)
            compilations += 1
            _by_schema[key] = compiled
            _by_validator[id(compiled.validator)] = compiled
    return compiled.validator


def validate(validator: Validator, instance: Any) -> None:
    """``validator.validate(instance)``, the twin answering first for a plain instance:
    raises jsonschema's error for an invalid one, as ``validate`` does."""
    if not (is_plain_json(instance) and accepts(validator, instance)):
        validator.validate(instance)


def is_plain_json(value: Any) -> bool:
    """Whether ``value`` is made of exactly what a JSON parser makes (dict with string
    keys, list, str, int, bool, None): nothing a float check refuses, nothing the twin
    could read otherwise than jsonschema (a tuple). Anything else (a float, a tuple, a
    subclass) answers False, for a careful walk to judge, and so does a value too big
    to be parsed JSON (a structure that contains itself)."""
    stack = [value]
    budget = _PLAIN_NODES
    while stack:
        budget -= 1
        if budget < 0:
            return False
        node = stack.pop()
        kind = type(node)
        if kind is dict:
            for key, item in node.items():
                if type(key) is not str:
                    return False
                stack.append(item)
        elif kind is list:
            stack.extend(node)
        elif kind is not str and kind is not int and kind is not bool and node is not None:
            return False
    return True


#: More nodes than any body the ledger accepts parses into (``LEDGER_MAX_BULK_BODY_BYTES``).
_PLAIN_NODES: Final = 1 << 24


def accepts(validator: Validator, instance: Any) -> bool:
    """Whether the fast twin of ``validator`` (one ``make_validator`` made) accepts
    ``instance``. False means "ask ``validator``", never "invalid": only jsonschema's
    verdict names a failure. ``instance`` must be plain JSON (dict, list, str, int, bool,
    None), as parsed: the twin would read a tuple as an array."""
    compiled = _by_validator.get(id(validator))
    if compiled is None or compiled.validator is not validator or compiled.twin is None:
        return False
    try:
        return bool(compiled.twin.is_valid(instance))
    except Exception:  # anything the twin cannot take is for jsonschema to judge
        return False


class _TwinPattern:
    """``pattern`` for the twin: the same ECMA-262 expression ``EcmaValidator`` runs."""

    def __init__(self, _parent: Any, value: Any, _path: Any) -> None:
        self.regex = ecma_regex(value)

    def validate(self, instance: Any) -> None:
        if isinstance(instance, str) and self.regex.find(instance) is None:
            raise ValueError("does not match")


def _twin(schema: Mapping[str, Any], formats: bool) -> Any | None:
    """The jsonschema_rs validator that accepts what ``EcmaValidator`` accepts, or None
    when the schema uses something the two might read differently."""
    found = _survey(schema)
    if found is None:
        return None
    checks: dict[str, Callable[[str], bool]] | None = None
    if formats:
        checker = EcmaValidator.FORMAT_CHECKER
        checks = {name: functools.partial(_conforms, checker, name) for name in found}
    try:
        return jsonschema_rs.Draft202012Validator(
            dict(schema),
            formats=checks,
            validate_formats=formats,
            ignore_unknown_formats=True,
            keywords={"pattern": _TwinPattern},
        )
    except Exception:  # a schema the twin cannot compile is validated by jsonschema alone
        return None


def _conforms(checker: Any, name: str, instance: Any) -> bool:
    return bool(checker.conforms(instance, name))


def _survey(schema: Any) -> set[str] | None:
    """The format names a schema uses, or None if it must have no twin: another draft, a
    keyword outside ``_TWINNED``, a reference to anything but a subschema of the document.

    Only subschema positions are walked (a property *named* ``$schema`` is no keyword)."""
    if not isinstance(schema, Mapping):
        return None
    names: set[str] = set()
    refs: list[str] = []
    seen: set[int] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, bool):
            continue
        if not isinstance(node, Mapping):
            return None
        seen.add(id(node))
        for key, value in node.items():
            if key.startswith("x-") or key in _ANNOTATIONS or key in _ASSERTIONS:
                if key == "format" and isinstance(value, str):
                    names.add(value)
            elif key == "$schema":
                if value != DRAFT_2020_12:
                    return None
            elif key == "$ref":
                if not isinstance(value, str):
                    return None
                refs.append(value)
            elif key in _ONE_SUBSCHEMA:
                stack.append(value)
            elif key in _SUBSCHEMA_MAPS and isinstance(value, Mapping):
                stack.extend(value.values())
            elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
                stack.extend(value)
            else:
                return None
    for ref in refs:
        target = _local_target(schema, ref)
        if target is None or (not isinstance(target, bool) and id(target) not in seen):
            return None
    return names


def _local_target(document: Mapping[str, Any], ref: str) -> Any | None:
    """What a local JSON Pointer reference (``#`` or ``#/$defs/name``) points to."""
    if ref == "#":
        return document
    if not ref.startswith("#/"):
        return None
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


#: Draft 2020-12 keywords the twin reads as jsonschema does (``pattern`` and ``format``
#: by calling the same code); any other keyword in a schema means no twin for it.
_ONE_SUBSCHEMA: Final = frozenset(
    {
        "not",
        "if",
        "then",
        "else",
        "items",
        "contains",
        "additionalProperties",
        "propertyNames",
        "unevaluatedItems",
        "unevaluatedProperties",
    }
)
_SUBSCHEMA_MAPS: Final = frozenset({"properties", "$defs", "dependentSchemas"})
_SUBSCHEMA_LISTS: Final = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_ASSERTIONS: Final = frozenset(
    {
        "type",
        "enum",
        "const",
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "maxContains",
        "minContains",
        "maxProperties",
        "minProperties",
        "required",
        "dependentRequired",
        "format",
    }
)
_ANNOTATIONS: Final = frozenset(
    {
        "$id",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
