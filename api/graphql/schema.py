"""The GraphQL schema: queries for buyers, with the limits that keep them cheap.

Reading needs a participant's API token (``Authorization: Bearer <token>``); the schema
itself is public, so introspection and GraphiQL work without one. Certificates may be
opened to anonymous readers by setting ``LEDGER_GRAPHQL_ANONYMOUS_CERTIFICATES``.
Errors carry ``extensions: {code, field}`` with the same codes as the REST API.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.extensions.base_extension import SchemaExtension
from strawberry.extensions.query_depth_limiter import IgnoreContext
from strawberry.scalars import JSON
from strawberry.types import ExecutionContext

from api.graphql.context import today
from api.graphql.types import (
    Batch,
    Certificate,
    CertificateVerdict,
    Checkpoint,
    GraphInfo,
    Participant,
    Record,
    RuleSet,
    checkpoint_of,
    load_batches,
)
from ledger.batches.reads import decode_cursor, encode_cursor
from ledger.batches.registration import footprint_tolerance
from ledger.certificates import verify_bundle
from ledger.errors import LedgerError, MalformedError
from ledger.storage.batches import BatchFilter, BatchRepository
from ledger.storage.db import read_session
from ledger.storage.grading import GradingRepository
from ledger.storage.repository import Repository

MAX_PAGE = 100
MAX_DEPTH = 10
MAX_ALIASES = 20
MAX_TOKENS = 4_000
PPM = Decimal(1_000_000)


@strawberry.input(description="Every condition given must hold; shares are decimal strings.")
class BatchFilterInput:
    smelter_id: str | None = None
    region: str | None = None
    product_form: str | None = None
    route: str | None = None
    period_from: str | None = None
    period_to: str | None = None
    rule_set_id: str | None = strawberry.field(default=None, description="holds a grade under it")
    grade: str | None = strawberry.field(default=None, description="holds this grade, in force")
    footprint_min: int | None = strawberry.field(default=None, description="declared kg CO2e/t")
    footprint_max: int | None = strawberry.field(default=None, description="declared kg CO2e/t")
    renewable_share_min: str | None = None
    recycled_content_min: str | None = None
    holder_id: str | None = None

    def to_filter(self) -> BatchFilter:
        graded = self.rule_set_id is not None or self.grade is not None
        return BatchFilter(
            smelter_id=self.smelter_id,
            product_form=self.product_form,
            period_from=self.period_from,
            period_to=self.period_to,
            region=self.region,
            route=self.route,
            declared_footprint_min=self.footprint_min,
            declared_footprint_max=self.footprint_max,
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


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class BatchEdge:
    cursor: str
    node: Batch


@strawberry.type
class BatchConnection:
    edges: list[BatchEdge]
    page_info: PageInfo


@strawberry.type
class Query:
    @strawberry.field(description="A registered batch or a lot, by namespace and id.")
    def batch(self, info: GraphInfo, smelter_id: str, batch_id: str) -> Batch | None:
        return load_batches(info.context.engine, info.context.access, [(smelter_id, batch_id)])[0]

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
        with read_session(info.context.engine) as session:
            rows = BatchRepository(session).page(where, decode_cursor(after), first + 1)
        page = rows[:first]
        keys = [(row.smelter_id, row.batch_id) for row in page]
        nodes = load_batches(info.context.engine, info.context.access, keys, page)
        edges = [
            BatchEdge(cursor=encode_cursor(row.record_index), node=node)
            for row, node in zip(page, nodes, strict=True)
        ]
        end = edges[-1].cursor if edges else None
        return BatchConnection(
            edges=edges, page_info=PageInfo(has_next_page=len(rows) > first, end_cursor=end)
        )

    @strawberry.field
    def participants(self, info: GraphInfo, role: str | None = None) -> list[Participant]:
        info.context.require_reader()
        with read_session(info.context.engine) as session:
            rows = Repository(session).participants(role)
        return [Participant.of(row) for row in rows]

    @strawberry.field
    def rule_sets(self, info: GraphInfo) -> list[RuleSet]:
        info.context.require_reader()
        with read_session(info.context.engine) as session:
            rows = GradingRepository(session).rulesets()
        return [RuleSet.of(row) for row in rows]

    @strawberry.field(description="A grade's certificate (anonymous readers too, if enabled).")
    def certificate(self, info: GraphInfo, grade_index: int) -> Certificate | None:
        info.context.require_certificate_reader()
        with read_session(info.context.engine) as session:
            found = GradingRepository(session).grade(grade_index) is not None
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
        with read_session(info.context.engine) as session:
            stored = Repository(session).record(index)
        return Record.of(stored) if stored else None


class LedgerErrorCodes(SchemaExtension):
    """Give refusals the REST API's machine-readable code and field."""

    def on_execute(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        for error in (result.errors or []) if result else []:
            original = error.original_error
            if isinstance(original, LedgerError):
                error.extensions = {"code": original.code, "field": original.field}


def _introspection(context: IgnoreContext) -> bool:
    """Introspection is public and deep by nature; only data queries are depth-limited."""
    return context.field_name.startswith("__")


class LedgerSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only unexpected errors: a refusal is an answer, not a server fault."""
        unexpected = [e for e in errors if not isinstance(e.original_error, LedgerError)]
        super().process_errors(unexpected, execution_context)


schema = LedgerSchema(
    query=Query,
    extensions=[
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH, should_ignore=_introspection),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        # Buyers' systems send the same few queries again and again: parse and validate
        # each text once (the limits above are validation rules, so they stay enforced).
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
        LedgerErrorCodes,
    ],
)
