"""``Long``: the integer scalar for ledger values (masses, kWh, indexes, tree sizes...).

GraphQL's ``Int`` is 32-bit: a batch of 3,176,300,000 kWh would make its ``kwh`` field an
error and the whole object null. ``Long`` is a JSON number like ``Int``, but carries every
integer a JSON parser reads exactly, |n| <= 2^53 - 1: the range the ledger itself accepts
in signed statements (``ledger/canonical.py``). Anything else is refused by name, never
rounded.
"""

from __future__ import annotations

from typing import Any, NewType

import strawberry
from graphql import GraphQLError, IntValueNode, ValueNode, print_ast

MAX_LONG = 2**53 - 1
DESCRIPTION = (
    "An integer from -(2^53 - 1) to 2^53 - 1, as a JSON number: every integer a JSON"
    " parser reads exactly (GraphQL's Int stops at 2^31 - 1). Used for masses, energies,"
    " footprints, record indexes and tree sizes; other values are refused, never rounded."
)


def _checked(value: Any, what: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise GraphQLError(f"Long cannot represent a non-integer value: {what}")
    if abs(value) > MAX_LONG:
        raise GraphQLError(
            f"Long cannot represent {what}: integers are limited to"
            f" -(2^53 - 1)..2^53 - 1 ({MAX_LONG:,})"
        )
    return value


def serialize(value: Any) -> int:
    return _checked(value, repr(value))


def parse_value(value: Any) -> int:
    return _checked(value, repr(value))


def parse_literal(node: ValueNode, _variables: Any = None) -> int:
    if not isinstance(node, IntValueNode):
        raise GraphQLError(f"Long cannot represent a non-integer value: {print_ast(node)}")
    return _checked(int(node.value), node.value)


Long = NewType("Long", int)

#: Give the schema ``StrawberryConfig(scalar_map=SCALARS)``.
SCALARS = {
    Long: strawberry.scalar(
        name="Long",
        description=DESCRIPTION,
        serialize=serialize,
        parse_value=parse_value,
        parse_literal=parse_literal,
    )
}
