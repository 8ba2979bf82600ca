"""What a query costs, computed before anything executes (docs/graphql.md, "Cost").

The operation is walked as parsed, with its variables coerced and every argument's
default applied, through fragments, counting each field node on its own (so aliases of
one field add up):

* every field costs 1 each time it is resolved; introspection (``__schema``...) is free;
* a list multiplies the cost of what is selected inside it by its expected length:
  ``batches(first: n)`` gives ``edges`` n items (default 50; above the page limit of 100
  counts as 100, and the resolver refuses it anyway); ``Lineage.nodes`` and
  ``Lineage.edges`` 10 per level of ``depth``; ``participants`` 50;
  ``heldLineageGrades(first: n)`` 5 n (n at most 20); every other list 5.
  Nested lists multiply;
* fields that do work of their own add a weight each time they are resolved, about one
  unit per 10 microseconds they take: ``Certificate.bundle`` and ``verifyCertificate``
  500 (a bundle is a dozen records with inclusion proofs and a signed status note; a
  verdict checks every signature and proof), ``Batch.lineage`` 500 + 50 per level of
  ``depth`` (the walk over every ancestor and the claim summary), ``Batch.custodyHistory``
  250 (five queries), ``heldLineageGrades`` 10 + 400 per held lot asked for (a walk
  over its whole ancestry each, as ``Batch.lineage``; 5 grades a lot expected),
  ``BatchConnection.totalCount`` 100 (a count),
  ``Record.inclusionProof`` 50, ``Certificate.grade`` 20 (a query each),
  ``Grade.criteria`` 10 (the rule set re-evaluated), and 10 for each query field.

A query over the limit (``DEFAULT_MAX_COST``, or the schema's ``max_cost``) is refused
with ``extensions: {code: "query_too_costly", cost, limit}``, and nothing of it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    get_operation_ast,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.extensions.base_extension import SchemaExtension

DEFAULT_MAX_COST = 10_000
"""About 100 ms of work. Allows a page of 100 batches with grades, electricity and
footprints (about 5,400; 50 of them about 2,700), a product's lineage at depth 5 with its
claim summary (about 1,900), or a batch's certificates with their bundles."""

MAX_PAGE = 100
DEFAULT_PAGE = 50
#: Held lots ``heldLineageGrades`` walks at most, and what each walk weighs (a lineage
#: walk to the end of the ancestry and a grade query: about ``Batch.lineage``'s cost).
MAX_HELD_LOTS = 20
DEFAULT_HELD_LOTS = 10
HELD_LOT = 400
DEFAULT_LIST = 5
LINEAGE_PER_LEVEL = 10
BUNDLE = 500

Arguments = Mapping[str, Any]


def _page(args: Arguments) -> int:
    first = args.get("first", DEFAULT_PAGE)
    return min(max(first, 1), MAX_PAGE) if isinstance(first, int) else DEFAULT_PAGE


def _held(args: Arguments) -> int:
    first = args.get("first", DEFAULT_HELD_LOTS)
    return min(max(first, 1), MAX_HELD_LOTS) if isinstance(first, int) else DEFAULT_HELD_LOTS


def _levels(args: Arguments) -> int:
    depth = args.get("depth", 5)
    return max(depth, 1) if isinstance(depth, int) else 1


#: Expected length of a list field, from the arguments of the field that holds the list.
LIST_LENGTHS: dict[tuple[str, str], Callable[[Arguments], int]] = {
    ("BatchConnection", "edges"): _page,
    ("Lineage", "nodes"): lambda lineage: LINEAGE_PER_LEVEL * _levels(lineage),
    ("Lineage", "edges"): lambda lineage: LINEAGE_PER_LEVEL * _levels(lineage),
    ("Query", "participants"): lambda _: 50,
    ("Query", "heldLineageGrades"): lambda args: 5 * _held(args),
}

#: Work a field does beyond being resolved, from its own arguments.
WEIGHTS: dict[tuple[str, str], Callable[[Arguments], int]] = {
    ("Certificate", "bundle"): lambda _: BUNDLE,
    ("Query", "verifyCertificate"): lambda _: BUNDLE,
    ("Batch", "lineage"): lambda args: 500 + 50 * _levels(args),
    ("Batch", "custodyHistory"): lambda _: 250,
    ("Record", "inclusionProof"): lambda _: 50,
    ("Certificate", "grade"): lambda _: 20,
    ("Grade", "criteria"): lambda _: 10,
    ("BatchConnection", "totalCount"): lambda _: 100,
    ("Query", "heldLineageGrades"): lambda args: 10 + HELD_LOT * _held(args),
    **{
        ("Query", name): lambda _: 10
        for name in ("batch", "batches", "participants", "ruleSets", "certificate", "record")
    },
    ("Query", "checkpoint"): lambda _: 10,
}


class UncostableError(Exception):
    """No operation to cost, or variables that do not fit it: execution refuses the
    request before any resolver runs, with graphql's own error."""


@dataclass
class _Walk:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    variables: VariableValues

    def selections(
        self,
        parent: GraphQLObjectType,
        selection_set: SelectionSetNode,
        holder: Arguments,
        fragments_on_path: frozenset[str] = frozenset(),
    ) -> int:
        """Cost of ``selection_set`` on ``parent``, once; ``holder``: the arguments of the
        field that returned ``parent`` (they set the length of its lists)."""
        total = 0
        for node, on, path in self._fields(parent, selection_set, fragments_on_path):
            total += self.field(on, node, holder, path)
        return total

    def _fields(
        self, parent: GraphQLObjectType, selection_set: SelectionSetNode, path: frozenset[str]
    ) -> Iterator[tuple[FieldNode, GraphQLObjectType, frozenset[str]]]:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection, parent, path
            elif isinstance(selection, InlineFragmentNode):
                on = self._type(selection.type_condition, parent)
                yield from self._fields(on, selection.selection_set, path)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in path:  # validation refuses these
                    continue
                on = self._type(fragment.type_condition, parent)
                yield from self._fields(on, fragment.selection_set, path | {name})

    def _type(self, condition: Any, parent: GraphQLObjectType) -> GraphQLObjectType:
        found = self.schema.get_type(condition.name.value) if condition else parent
        return found if isinstance(found, GraphQLObjectType) else parent

    def field(
        self, parent: GraphQLObjectType, node: FieldNode, holder: Arguments, path: frozenset[str]
    ) -> int:
        name = node.name.value
        definition = parent.fields.get(name)
        if name.startswith("__") or definition is None:
            return 0
        args = get_argument_values(definition, node, self.variables)
        key = (parent.name, name)
        cost = 1 + (WEIGHTS[key](args) if key in WEIGHTS else 0)
        inner = get_named_type(definition.type)
        if node.selection_set is None or not isinstance(inner, GraphQLObjectType):
            return cost
        below = self.selections(inner, node.selection_set, args, path)
        if _is_list(definition.type):
            length = LIST_LENGTHS.get(key)
            below *= length(holder) if length else DEFAULT_LIST
        return cost + below


def _is_list(kind: GraphQLOutputType) -> bool:
    if isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    return isinstance(kind, GraphQLList)


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: dict[str, Any] | None = None,
) -> int:
    """The cost of the operation ``document`` and ``operation_name`` name, with
    ``variables``. UncostableError when there is no such operation or the variables do not
    fit it; GraphQLError for an argument that does not (both refused before execution)."""
    operation = get_operation_ast(document, operation_name)
    if not isinstance(operation, OperationDefinitionNode):
        raise UncostableError(operation_name)
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        raise UncostableError("variables")
    root = schema.get_root_type(operation.operation)
    if root is None:
        raise UncostableError(operation.operation)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return _Walk(schema, fragments, coerced).selections(root, operation.selection_set, {})


def too_costly(cost: int, limit: int) -> GraphQLError:
    return GraphQLError(
        f"query_too_costly: this query costs {cost:,}, over the limit of {limit:,}; ask for"
        " fewer items (first), fewer aliases, a smaller lineage depth, or bundles and"
        " lineage on one batch at a time (docs/graphql.md, Cost)",
        extensions={"code": "query_too_costly", "cost": cost, "limit": limit},
    )


class QueryCost(SchemaExtension):
    """Refuse an operation that costs more than ``max_cost`` before it executes."""

    def __init__(self, max_cost: int = DEFAULT_MAX_COST) -> None:
        super().__init__()
        self.max_cost = max_cost

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.result is None and context.graphql_document is not None:
            refusal: GraphQLError | None = None
            try:
                cost = operation_cost(
                    context.schema._schema,
                    context.graphql_document,
                    context.operation_name,
                    context.variables,
                )
            except UncostableError:  # graphql-core refuses it without executing anything
                cost = 0
            except GraphQLError as error:
                refusal = error
            else:
                if cost > self.max_cost:
                    refusal = too_costly(cost, self.max_cost)
            if refusal is not None:
                # Strawberry skips execution when an extension has set the result.
                context.result = GraphQLExecutionResult(data=None, errors=[refusal])
        yield
