"""The GraphQL schema: queries for buyers, with the limits that keep them cheap.

Reading needs a participant's API token (``Authorization: Bearer <token>``); the schema
itself is public, so introspection and GraphiQL work without one. Certificates may be
opened to anonymous readers by setting ``LEDGER_GRAPHQL_ANONYMOUS_CERTIFICATES``.

Limits: depth, aliases and tokens are validation rules; the cost of an operation
(``cost.py``) is computed with its variables before it executes; each execution runs in a
worker thread under a time limit (``execution.py``). Errors carry only a code, a field and
our own messages: ``extensions: {code, field}`` with the REST API's codes for refusals,
``timeout`` for a request past its time limit, ``query_too_costly``, ``malformed`` for a
query graphql itself refuses, and ``internal`` with a request id (the exception goes to the
server log under that id, never into the answer).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

import strawberry
from graphql import GraphQLError, StringValueNode, ValidationRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.extensions.query_depth_limiter import IgnoreContext
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult

from api.graphql.context import Context, today
from api.graphql.cost import DEFAULT_MAX_COST, MAX_HELD_LOTS, MAX_PAGE, QueryCost
from api.graphql.enums import FootprintCheck, ProductForm, RegionId
from api.graphql.execution import DEFAULT_TIME_LIMIT_S, run_off_loop
from api.graphql.scalars import SCALARS, Long
from api.graphql.types import (
    Batch,
    Certificate,
    CertificateVerdict,
    Checkpoint,
    GraphInfo,
    HeldGrade,
    Participant,
    Record,
    RuleSet,
    checkpoint_of,
    load_batches,
)
from ledger.batches.reads import decode_cursor, encode_cursor
from ledger.batches.registration import footprint_tolerance
from ledger.certificates import verify_bundle
from ledger.custody.lineage import held_lineage_grades
from ledger.errors import LedgerError, MalformedError
from ledger.regions import signed_forms
from ledger.storage.batches import BatchFilter, BatchRepository
from ledger.storage.db import is_timeout
from ledger.storage.grading import GradingRepository
from ledger.storage.repository import Repository

MAX_DEPTH = 10
MAX_ALIASES = 20
MAX_TOKENS = 4_000
PPM = Decimal(1_000_000)

log = logging.getLogger("api.graphql")

__all__ = [
    "DEFAULT_MAX_COST",
    "DEFAULT_TIME_LIMIT_S",
    "MAX_PAGE",
    "LedgerSchema",
    "make_schema",
    "schema",
]


@strawberry.input(description="Every condition given must hold; shares are decimal strings.")
class BatchFilterInput:
    smelter_id: str | None = None
    region: RegionId | None = strawberry.field(
        default=None, description="the smelter's region, by id (as electricity lines name it)"
    )
    product_form: ProductForm | None = None
    route: str | None = None
    period_from: str | None = None
    period_to: str | None = None
    rule_set_id: str | None = strawberry.field(default=None, description="holds a grade under it")
    grade: str | None = strawberry.field(default=None, description="holds this grade, in force")
    footprint_min: Long | None = strawberry.field(default=None, description="declared kg CO2e/t")
    footprint_max: Long | None = strawberry.field(default=None, description="declared kg CO2e/t")
    computed_footprint_min: Long | None = strawberry.field(
        default=None, description="computed (market-based) cradle-to-gate kg CO2e/t"
    )
    computed_footprint_max: Long | None = strawberry.field(
        default=None,
        description="computed (market-based) cradle-to-gate kg CO2e/t; a batch whose"
        " footprint cannot be computed does not match",
    )
    footprint_check: FootprintCheck | None = strawberry.field(
        default=None,
        description="how the declared footprint compares with the computed one",
    )
    renewable_share_min: str | None = None
    recycled_content_min: str | None = None
    holder_id: str | None = None

    def to_filter(self) -> BatchFilter:
        graded = self.rule_set_id is not None or self.grade is not None
        return BatchFilter(
            smelter_id=self.smelter_id,
            product_form=self.product_form.value if self.product_form else None,
            period_from=self.period_from,
            period_to=self.period_to,
            regions=tuple(signed_forms(self.region.value)) if self.region else None,
            route=self.route,
            declared_footprint_min=self.footprint_min,
            declared_footprint_max=self.footprint_max,
            computed_footprint_min=self.computed_footprint_min,
            computed_footprint_max=self.computed_footprint_max,
            footprint_check=self.footprint_check.value if self.footprint_check else None,
            renewable_share_min_ppm=_ppm(self.renewable_share_min, "filter.renewableShareMin"),
            recycled_total_min_ppm=_ppm(self.recycled_content_min, "filter.recycledContentMin"),
            holder_id=self.holder_id,
            ruleset_id=self.rule_set_id,
            grade=self.grade,
            grade_day=today() if graded else None,
        )


def _ppm(share: str | None, field: str) -> int | None:
    if share is None:
        return None
    try:
        value = Decimal(share)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or not 0 <= value <= 1:
        raise MalformedError('must be a decimal string from 0 to 1, e.g. "0.5"', field=field)
    return int(value * PPM)


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(
        description="whether batches matching the filter come before this page"
    )
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class BatchEdge:
    cursor: str
    node: Batch


@strawberry.type
class BatchConnection:
    edges: list[BatchEdge]
    page_info: PageInfo
    where: strawberry.Private[BatchFilter]

    @strawberry.field(description="How many batches match the filter, on every page.")
    def total_count(self, info: GraphInfo) -> int:
        return BatchRepository(info.context.session).count(self.where)


@strawberry.type
class Query:
    @strawberry.field(description="A registered batch or a lot, by namespace and id.")
    def batch(self, info: GraphInfo, smelter_id: str, batch_id: str) -> Batch | None:
        context = info.context
        return load_batches(context.session, context.access, [(smelter_id, batch_id)])[0]

    @strawberry.field(description="Registered batches in ledger order (Relay-style pages).")
    def batches(
        self,
        info: GraphInfo,
        filter: BatchFilterInput | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> BatchConnection:
        info.context.require_reader()
        if not 1 <= first <= MAX_PAGE:
            raise MalformedError(f"must be between 1 and {MAX_PAGE}", field="first")
        where = (filter or BatchFilterInput()).to_filter()
        try:
            after_index = decode_cursor(after)
        except MalformedError as error:
            raise MalformedError(error.detail, field="after") from None
        session = info.context.session
        rows = BatchRepository(session).page(where, after_index, first + 1)
        page = rows[:first]
        keys = [(row.smelter_id, row.batch_id) for row in page]
        nodes = load_batches(session, info.context.access, keys, page)
        edges = [
            BatchEdge(cursor=encode_cursor(row.record_index), node=node)
            for row, node in zip(page, nodes, strict=True)
        ]
        repo = BatchRepository(session)
        page_info = PageInfo(
            has_next_page=len(rows) > first,
            has_previous_page=after_index > 0 and repo.any_before(where, after_index),
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        )
        return BatchConnection(edges=edges, page_info=page_info, where=where)

    @strawberry.field(
        description="The grades behind the metal your participant holds: every grade of the"
        " registered batches in the lineage of each lot you hold metal of (the first"
        f" `first`, at most {MAX_HELD_LOTS}: each is a walk over its whole ancestry),"
        " revoked ones first, then the newest."
    )
    def held_lineage_grades(self, info: GraphInfo, first: int = 10) -> list[HeldGrade]:
        viewer = info.context.require_reader()
        if not 1 <= first <= MAX_HELD_LOTS:
            raise MalformedError(f"must be between 1 and {MAX_HELD_LOTS}", field="first")
        if viewer.participant_id is None:
            return []
        found = held_lineage_grades(info.context.engine, viewer.participant_id, first)
        return [HeldGrade.of(item) for item in found]

    @strawberry.field
    def participants(self, info: GraphInfo, role: str | None = None) -> list[Participant]:
        info.context.require_reader()
        rows = Repository(info.context.session).participants(role)
        return [Participant.of(row) for row in rows]

    @strawberry.field
    def rule_sets(self, info: GraphInfo) -> list[RuleSet]:
        info.context.require_reader()
        rows = GradingRepository(info.context.session).rulesets()
        return [RuleSet.of(row) for row in rows]

    @strawberry.field(description="A grade's certificate (anonymous readers too, if enabled).")
    def certificate(self, info: GraphInfo, grade_index: int) -> Certificate | None:
        info.context.require_certificate_reader()
        found = GradingRepository(info.context.session).grade(grade_index) is not None
        return Certificate(grade_index=grade_index) if found else None

    @strawberry.field(description="Verify a bundle against this ledger's key, as the CLI does.")
    def verify_certificate(self, info: GraphInfo, bundle: JSON) -> CertificateVerdict:
        info.context.require_certificate_reader()
        ledger = info.context.ledger
        verdict = verify_bundle(
            bundle, ledger.verifier_key, footprint_tolerance=footprint_tolerance(ledger.kinds)
        ).to_dict()
        return CertificateVerdict(**verdict)

    @strawberry.field
    def checkpoint(self, info: GraphInfo) -> Checkpoint:
        info.context.require_reader()
        return checkpoint_of(info.context.ledger)

    @strawberry.field
    def record(self, info: GraphInfo, index: int) -> Record | None:
        info.context.require_reader()
        stored = Repository(info.context.session).record(index)
        return Record.of(stored) if stored else None


def _introspection(context: IgnoreContext) -> bool:
    """Introspection is public and deep by nature; only data queries are depth-limited."""
    return context.field_name.startswith("__")


def _path(error: GraphQLError) -> str | None:
    return ".".join(str(part) for part in error.path) if error.path else None


class LedgerSchema(strawberry.Schema):
    """The schema, its limits (``max_cost``, ``time_limit_s``) and its error policy.

    ``execute`` runs the whole execution off the event loop (``execution.py``);
    ``process_errors`` gives every error its code and keeps exception text out of answers.
    """

    def __init__(
        self,
        *args: Any,
        max_cost: int = DEFAULT_MAX_COST,
        time_limit_s: float = DEFAULT_TIME_LIMIT_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_cost = max_cost
        self.time_limit_s = time_limit_s

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[Any] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        parent = super()

        async def execution() -> ExecutionResult:
            try:
                return await parent.execute(
                    query,
                    variable_values,
                    context_value,
                    root_value,
                    operation_name,
                    allowed_operation_types,
                    operation_extensions,
                )
            finally:
                if isinstance(context_value, Context):
                    context_value.close()

        return await run_off_loop(execution, self.time_limit_s)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Give each error its code; log only what is unexpected, under the request id."""
        context = execution_context.context if execution_context else None
        request_id = getattr(context, "request_id", None) or "-"
        for error in errors:
            self._shape(error, request_id)

    def _shape(self, error: GraphQLError, request_id: str) -> None:
        original = error.original_error
        if isinstance(original, LedgerError):
            error.extensions = {"code": original.code, "field": original.field}
        elif original is not None and is_timeout(original):
            field = _path(error)
            log.warning("GraphQL request %s: time limit reached at %s", request_id, field)
            error.message = (
                f"timeout: the request ran past its time limit of {self.time_limit_s:g} s;"
                " ask for less (docs/graphql.md, Cost)"
            )
            error.extensions = {"code": "timeout", "field": field}
        elif error.extensions and "code" in error.extensions:
            return  # ours already (query_too_costly)
        elif error.path is None and (original is None or isinstance(original, GraphQLError)):
            # graphql's own refusal of the request (syntax, validation, variables, limits)
            error.extensions = {"code": "malformed", "field": None}
        else:
            log.error(
                "GraphQL request %s: internal error at %s",
                request_id,
                _path(error) or "(request)",
                exc_info=original or error,
            )
            error.message = f"internal error; quote request id {request_id}"
            error.extensions = {"code": "internal", "request_id": request_id}


class NoNulInStrings(ValidationRule):
    """A string literal in the query may not hold NUL: PostgreSQL text cannot, and both
    databases must answer the same queries (variables are read by the strict JSON reader,
    ``ledger/strict_json.py``, which refuses it there)."""

    def enter_string_value(self, node: StringValueNode, *_: object) -> None:
        if "\x00" in node.value:
            self.report_error(
                GraphQLError("a string holds a NUL character (\\u0000), which is not allowed", node)
            )


def make_schema(
    *, max_cost: int = DEFAULT_MAX_COST, time_limit_s: float = DEFAULT_TIME_LIMIT_S
) -> LedgerSchema:
    """The schema with these limits (the module's ``schema`` has the defaults)."""
    return LedgerSchema(
        query=Query,
        config=StrawberryConfig(scalar_map=SCALARS),
        max_cost=max_cost,
        time_limit_s=time_limit_s,
        extensions=[
            lambda: QueryDepthLimiter(max_depth=MAX_DEPTH, should_ignore=_introspection),
            lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            lambda: AddValidationRules([NoNulInStrings]),
            # Buyers' systems send the same few queries again and again: parse and validate
            # each text once (the limits above are validation rules, so they stay enforced).
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
            # The cost depends on the variables, so it is computed per execution.
            lambda: QueryCost(max_cost),
        ],
    )


schema = make_schema()
