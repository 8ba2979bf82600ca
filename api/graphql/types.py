"""GraphQL object types. Each wraps a read-model row and resolves the rest through the
request's loaders (``context.py``), never with a query of its own per item."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry
from sqlmodel import Session
from strawberry.scalars import JSON
from strawberry.types import Info

from api.graphql.context import Context, Key, today
from api.graphql.scalars import Long
from ledger.certificates.cache import cached_bundle
from ledger.custody import views
from ledger.custody.derive import share_text
from ledger.custody.lineage import lineage as lineage_graph
from ledger.custody.reads import custody_view
from ledger.disclosure.reveal import disclose
from ledger.grading.evaluate import evaluate
from ledger.grading.facts import BatchFacts
from ledger.grading.kinds import stored_ruleset
from ledger.grading.reads import grade_view
from ledger.records import Record as StoredRecord
from ledger.regions import region_id
from ledger.storage.batches import BatchRepository
from ledger.storage.custody import CustodyRepository
from ledger.storage.db import read_session
from ledger.storage.disclosures import DisclosureRepository
from ledger.storage.grading import GradingRepository
from ledger.storage.repository import Repository
from ledger.storage.tables import BatchRow, GradeRow, LotRow, ParticipantRow, RulesetRow
from ledger.visibility import Access

GraphInfo = Info[Context, None]


@strawberry.enum
class Direction(Enum):
    UP = "up"
    DOWN = "down"


@strawberry.type
class Participant:
    participant_id: str
    legal_name: str
    role: str
    country: str
    region: str
    registered_index: Long

    @classmethod
    def of(cls, row: ParticipantRow) -> Participant:
        return cls(
            participant_id=row.participant_id,
            legal_name=row.legal_name,
            role=row.role,
            country=row.country,
            region=row.region,
            registered_index=row.registered_index,
        )


@strawberry.type
class InclusionProof:
    tree_size: Long
    hashes: list[str]


@strawberry.type
class Record:
    """A ledger record: the signed statement and where it sits in the Merkle tree."""

    index: Long
    leaf_hash: str
    integrated_at: str
    kind: str
    signer: str
    statement: JSON
    signature: str

    @classmethod
    def of(cls, record: StoredRecord) -> Record:
        data = record.to_dict()
        return cls(
            index=record.index,
            leaf_hash=record.leaf_hash.hex(),
            integrated_at=data["integrated_at"],
            kind=data["statement"]["kind"],
            signer=data["statement"]["signer"],
            statement=data["statement"],
            signature=data["signature"],
        )

    @strawberry.field(description="Inclusion proof against the latest checkpoint (or tree_size).")
    def inclusion_proof(self, info: GraphInfo, tree_size: int | None = None) -> InclusionProof:
        proof = info.context.ledger.inclusion_proof(self.index, tree_size)
        return InclusionProof(tree_size=proof.tree_size, hashes=[h.hex() for h in proof.hashes])


@strawberry.type
class Checkpoint:
    origin: str
    tree_size: Long
    root_hash: str
    note: str = strawberry.field(description="The C2SP signed note, verifiable offline.")


@strawberry.type
class RuleSet:
    ruleset_id: str
    version: str
    title: str
    publisher_id: str
    record_index: Long
    published_at: str
    illustrative: bool
    grades: list[str]
    validity_days: Long
    document: JSON

    @classmethod
    def of(cls, row: RulesetRow) -> RuleSet:
        parsed = stored_ruleset(row)
        return cls(
            ruleset_id=row.ruleset_id,
            version=row.version,
            title=parsed.title,
            publisher_id=row.publisher_id,
            record_index=row.record_index,
            published_at=row.published_at,
            illustrative=parsed.illustrative,
            grades=list(parsed.grade_names),
            validity_days=parsed.validity_days,
            document=json.loads(row.document),
        )


@strawberry.type
class CriterionResult:
    criterion: str
    path: str
    value: str
    threshold: str
    passed: bool


@strawberry.type
class Grade:
    record_index: Long
    smelter_id: str
    batch_id: str
    rule_set_id: str
    rule_set_version: str
    grade: str
    issuer_id: str
    issued_at: str
    expires_on: str
    evaluation_date: str | None
    revoked: bool
    revoked_at_index: Long | None
    revoke_reason: str | None
    row: strawberry.Private[GradeRow]

    expired: bool
    row: strawberry.Private[GradeRow]

    @classmethod
    def of(cls, row: GradeRow) -> Grade:
        """From the REST API's read model (``ledger.grading.views.GradeView``), so both
        APIs state a grade's status the same way."""
        view = grade_view(row, date.fromisoformat(today()))
        return cls(
            record_index=view.record_index,
            smelter_id=view.smelter_id,
            batch_id=view.batch_id,
            rule_set_id=view.ruleset_id,
            rule_set_version=view.ruleset_version,
            grade=view.grade,
            issuer_id=view.issuer_id,
            issued_at=view.issued_at,
            expires_on=view.expires_on,
            evaluation_date=view.evaluation_date,
            revoked=view.revoked,
            revoked_at_index=view.revoked_at_index,
            revoke_reason=view.revoke_reason,
            expired=view.expired,
            row=row,
        )

    @strawberry.field
    async def rule_set(self, info: GraphInfo) -> RuleSet | None:
        row = await info.context.loaders.rulesets.load((self.rule_set_id, self.rule_set_version))
        return RuleSet.of(row) if row else None

    @strawberry.field
    async def issuer(self, info: GraphInfo) -> Participant | None:
        row = await info.context.loaders.participants.load(self.issuer_id)
        return Participant.of(row) if row else None

    @strawberry.field(
        description="This grade's criteria re-evaluated on the facts it was issued on."
    )
    async def criteria(self, info: GraphInfo) -> list[CriterionResult]:
        ruleset_row = await info.context.loaders.rulesets.load(
            (self.rule_set_id, self.rule_set_version)
        )
        facts = BatchFacts.from_dict(json.loads(self.row.facts))
        result = evaluate(stored_ruleset(ruleset_row), facts)
        issued = next(item for item in result.grades if item.grade == self.grade)
        return [CriterionResult(**row.to_dict()) for row in issued.criteria]

    @strawberry.field
    def certificate(self) -> Certificate:
        return Certificate(grade_index=self.record_index)


@strawberry.type
class Certificate:
    grade_index: Long

    @strawberry.field(
        description="The self-contained bundle; verify it with verifyCertificate "
        "or offline with `alu-ledger certificate verify`."
    )
    def bundle(self, info: GraphInfo) -> JSON:
        # The same per-process cache as GET /v1/certificates/{n}; status read in the
        # request's session.
        context = info.context
        return cached_bundle(context.ledger, self.grade_index, context.session).bundle

    @strawberry.field
    def grade(self, info: GraphInfo) -> Grade | None:
        row = GradingRepository(info.context.session).grade(self.grade_index)
        return Grade.of(row) if row else None


@strawberry.type
class CertificateVerdict:
    status: str
    valid: bool
    reasons: list[str]
    tree_size: Long | None
    grade: JSON | None


@strawberry.type
class RecycledContent:
    pre_consumer: str
    post_consumer: str
    total: str


@strawberry.type
class ElectricitySource:
    source: str
    kwh: Long
    grid_region: str | None
    certificate_scheme: str | None
    certificate: JSON | None


@strawberry.type
class Footprint:
    """kg CO2e per tonne. A registered batch has declared and computed values; a lot made
    by a transform has only the derived one (``kg_co2e_per_t`` with basis ``derived``).
    ``computed*`` are market-based (what grading uses); batches registered before method 2
    (``method`` null: alu-ledger-footprint/1) have no location-based or direct figures."""

    kg_co2e_per_t: Long
    basis: str
    declared_kg_co2e_per_t: Long | None
    declared_boundary: str | None
    computed_kg_co2e_per_t: Long | None
    computed_scope1_2_kg_co2e_per_t: Long | None
    check: str | None
    breakdown: JSON | None
    method: str | None = None
    factor_table_version: str | None = None
    gwp_set: str | None = None
    location_based_kg_co2e_per_t: Long | None = None
    location_based_scope1_2_kg_co2e_per_t: Long | None = None
    direct_kg_co2e_per_t: Long | None = strawberry.field(
        default=None,
        description="Direct emissions (anode, fuel and carbonate CO2, CF4, C2F6): the"
        " boundary of the China ETS and EU CBAM.",
    )
    not_computable: list[str] = strawberry.field(
        default_factory=list,
        description="Why there is no cradle-to-gate figure (an alloy without its additions).",
    )


@strawberry.type
class Evidence:
    sha256: str
    media_type: str
    description: str | None


@strawberry.type
class CustodyEvent:
    record_index: Long
    kind: str
    role: str
    mass_kg: Long | None
    counterpart: str | None
    detail: JSON | None


@strawberry.type
class GradeRef:
    record_index: Long
    rule_set_id: str
    rule_set_version: str
    grade: str
    issuer_id: str
    expires_on: str
    revoked: bool
    revoked_at_index: Long | None

    @classmethod
    def of(cls, ref: views.GradeRefView) -> GradeRef:
        """From the read model of a grade reference (``ledger.custody.views``)."""
        return cls(
            record_index=ref.record_index,
            rule_set_id=ref.ruleset_id,
            rule_set_version=ref.ruleset_version,
            grade=ref.grade,
            issuer_id=ref.issuer_id,
            expires_on=ref.expires_on,
            revoked=ref.revoked_at_index is not None,
            revoked_at_index=ref.revoked_at_index,
        )


@strawberry.type(description="A grade behind metal a participant holds.")
class HeldGrade:
    held_smelter_id: str = strawberry.field(description="namespace of the lot held")
    held_batch_id: str
    source_smelter_id: str = strawberry.field(description="the graded batch in its lineage")
    source_batch_id: str
    grade: GradeRef

    @classmethod
    def of(cls, found: dict[str, Any]) -> HeldGrade:
        """From ``ledger.custody.lineage.held_lineage_grades``."""
        return cls(
            held_smelter_id=found["held"]["ns"],
            held_batch_id=found["held"]["batch_id"],
            source_smelter_id=found["source"]["ns"],
            source_batch_id=found["source"]["batch_id"],
            grade=GradeRef.of(views.GradeRefView.model_validate(found)),
        )


@strawberry.type
class LineageNode:
    smelter_id: str
    batch_id: str
    origin: str
    created_index: Long
    holder_id: str
    mass_kg: Long
    available_kg: Long
    product_form: str
    footprint_kg_co2e_per_t: Long
    footprint_basis: str
    recycled_content: RecycledContent
    renewable_share: str
    grades: list[GradeRef]
    depth: int | None


@strawberry.type
class LineageEdge:
    parent_smelter_id: str
    parent_batch_id: str
    child_smelter_id: str
    child_batch_id: str
    mass_kg: Long
    operation: str
    record_index: Long
    fraction: str


@strawberry.type
class GradedShare:
    rule_set_id: str
    rule_set_version: str
    grade: str
    share: str
    graded_kg: Long


@strawberry.type
class SmelterShare:
    smelter_id: str
    share: str
    kg: Long


@strawberry.type
class ClaimSummary:
    """What a lot's metal is made of, by the proportional (mass-balance) rule."""

    mass_kg: Long
    footprint_kg_co2e_per_t: Long
    footprint_basis: str
    graded: list[GradedShare]
    recycled_pre: str
    recycled_post: str
    recycled_total: str
    renewable_electricity_share: str
    green_power_share_of_primary: str
    smelters: list[SmelterShare]
    metal: JSON


@strawberry.type
class Lineage:
    direction: Direction
    depth: int
    nodes: list[LineageNode]
    edges: list[LineageEdge]
    truncated: bool
    claim_summary: ClaimSummary | None


@strawberry.type
class Batch:
    """A registered batch, or a lot made from batches (split, transferred, transformed).

    Registration fields (alloy, period, route, electricity, activity data...) are null for
    lots that no smelter registered. Confidential values (``activityData``, evidence
    descriptions, the footprint breakdown) follow the read policy (``disclosed``).
    Built by ``load_batches``, which reads everything the fields need for a whole page at
    once, so the fields themselves never query.
    """

    smelter_id: str
    batch_id: str
    row: strawberry.Private[BatchRow | None]
    lot: strawberry.Private[LotRow | None]
    grade_rows: strawberry.Private[list[GradeRow]]
    stored: strawberry.Private[StoredRecord | None]
    #: The opened payload when the reader may see disclosures, else the signed one.
    payload: strawberry.Private[dict[str, Any] | None]
    opened: strawberry.Private[bool] = False

    @strawberry.field
    def registered(self) -> bool:
        return self.row is not None

    @strawberry.field
    def mass_kg(self) -> Long:
        return self.row.mass_kg if self.row else self.lot.mass_kg

    @strawberry.field
    def product_form(self) -> str:
        return self.row.product_form if self.row else self.lot.product_form

    @strawberry.field
    def alloy(self) -> str | None:
        return self.row.alloy if self.row else None

    @strawberry.field
    def route(self) -> str | None:
        return self.row.route if self.row else None

    @strawberry.field
    def period_start(self) -> str | None:
        return self.row.period_start if self.row else None

    @strawberry.field
    def period_end(self) -> str | None:
        return self.row.period_end if self.row else None

    @strawberry.field(
        description="The smelter's region as an id (CN-YN), mapped from the region its"
        " participant signed; the signed text itself when it names no known region."
    )
    def region(self) -> str | None:
        if not self.row:
            return None
        return region_id(self.row.region) or self.row.region

    @strawberry.field(description="The region as the smelter's participant signed it.")
    def region_name(self) -> str | None:
        return self.row.region if self.row else None

    @strawberry.field
    def site(self) -> str | None:
        return self.row.site if self.row else None

    @strawberry.field
    def holder_id(self) -> str | None:
        return self.lot.holder_id if self.lot else None

    @strawberry.field
    async def holder(self, info: GraphInfo) -> Participant | None:
        if self.lot is None:
            return None
        row = await info.context.loaders.participants.load(self.lot.holder_id)
        return Participant.of(row) if row else None

    @strawberry.field
    def available_kg(self) -> Long | None:
        return self.lot.available_kg if self.lot else None

    @strawberry.field
    def recycled_content(self) -> RecycledContent:
        if self.row is not None:
            derived = json.loads(self.row.derived)
            return RecycledContent(
                pre_consumer=derived["recycled_content_pre_consumer"],
                post_consumer=derived["recycled_content_post_consumer"],
                total=derived["recycled_content_total"],
            )
        pre, post = Decimal(self.lot.recycled_pre_share), Decimal(self.lot.recycled_post_share)
        return RecycledContent(
            pre_consumer=share_text(pre),
            post_consumer=share_text(post),
            total=share_text(pre + post),
        )

    @strawberry.field(description="Certificate-backed renewable electricity share (4 places).")
    def renewable_share(self) -> str | None:
        if self.row is not None:
            return json.loads(self.row.derived)["renewable_share"]
        return share_text(Decimal(self.lot.renewable_share))

    @strawberry.field(
        description="Own-electrolysis metal over all metal input (4 places); null for lots"
        " and batches registered before method 2."
    )
    def own_electrolysis_share(self) -> str | None:
        return self._derived("own_electrolysis_share")

    @strawberry.field(
        description="Green-power share of primary metal: over the primary kilograms, the"
        " certified share of the electrolysis electricity behind each (4 places)."
    )
    def green_power_share_of_primary(self) -> str | None:
        if self.row is None:
            return share_text(Decimal(self.lot.primary_green_share))
        return self._derived("green_power_share_primary")

    @strawberry.field(description="kWh of electricity per tonne of batch.")
    def electricity_kwh_per_t(self) -> str | None:
        if self.row is None:
            return share_text(Decimal(self.lot.electricity_kwh_per_t))
        return self._derived("electricity_kwh_per_t")

    @strawberry.field(
        description="How closely certificates match the production period: same_month,"
        " same_year, within_validity or none."
    )
    def certificate_time_matching(self) -> str | None:
        return self._derived("certificate_time_matching")

    def _derived(self, name: str) -> str | None:
        return json.loads(self.row.derived).get(name) if self.row is not None else None

    @strawberry.field
    def electricity(self) -> list[ElectricitySource]:
        return [_source(item) for item in (self.payload or {}).get("electricity", [])]

    @strawberry.field
    def footprint(self) -> Footprint:
        lot, row = self.lot, self.row
        if row is None:
            derivation = json.loads(lot.derivation) if lot.derivation else None
            return Footprint(
                kg_co2e_per_t=lot.footprint_kg_co2e_per_t,
                basis=lot.footprint_basis,
                declared_kg_co2e_per_t=None,
                declared_boundary=None,
                computed_kg_co2e_per_t=None,
                computed_scope1_2_kg_co2e_per_t=None,
                check=None,
                breakdown=derivation,
            )
        computed = json.loads(row.footprint) if row.footprint else None
        return Footprint(
            kg_co2e_per_t=lot.footprint_kg_co2e_per_t if lot else row.declared_kg_co2e_per_t,
            basis=lot.footprint_basis if lot else "declared",
            declared_kg_co2e_per_t=row.declared_kg_co2e_per_t,
            declared_boundary=row.declared_boundary,
            computed_kg_co2e_per_t=row.computed_kg_co2e_per_t,
            computed_scope1_2_kg_co2e_per_t=row.computed_scope1_2_kg_co2e_per_t,
            check=row.footprint_check,
            breakdown=computed["breakdown"] if computed and self.opened else None,
            method=(computed or {}).get("method"),
            factor_table_version=(computed or {}).get("factor_table_version"),
            gwp_set=(computed or {}).get("gwp_set"),
            location_based_kg_co2e_per_t=(computed or {}).get("location_based_total_kg_co2e_per_t"),
            location_based_scope1_2_kg_co2e_per_t=(computed or {}).get(
                "location_based_scope1_2_kg_co2e_per_t"
            ),
            direct_kg_co2e_per_t=(computed or {}).get("direct_kg_co2e_per_t"),
            not_computable=(computed or {}).get("not_computable", []),
        )

    @strawberry.field(
        description="Whether this reader sees the batch's confidential values (activity data,"
        " evidence descriptions, footprint breakdown): the batch's smelter, the operator,"
        " auditors, evaluation centres accredited today and participants the smelter granted"
        " access. Everyone else reads their commitments only."
    )
    def disclosed(self) -> bool:
        return self.opened

    @strawberry.field(description="Confidential: null unless `disclosed`.")
    def activity_data(self) -> JSON | None:
        if self.payload is None or not self.opened:
            return None
        return self.payload.get("activity_data")

    @strawberry.field(
        description="Evidence documents by digest (public); descriptions only when `disclosed`."
    )
    def evidence(self) -> list[Evidence]:
        return [
            Evidence(
                sha256=e["sha256"], media_type=e["media_type"], description=e.get("description")
            )
            for e in (self.payload or {}).get("evidence", [])
        ]

    @strawberry.field
    def grades(self) -> list[Grade]:
        return [Grade.of(row) for row in self.grade_rows]

    @strawberry.field(description="Certificates of this batch's grades that are not revoked.")
    def certificates(self) -> list[Certificate]:
        return [
            Certificate(grade_index=row.record_index)
            for row in self.grade_rows
            if row.revoked_index is None
        ]

    @strawberry.field(description="Every transfer, split and transform that touched it.")
    def custody_history(self, info: GraphInfo) -> list[CustodyEvent]:
        view = custody_view(info.context.engine, self.smelter_id, self.batch_id)
        return [CustodyEvent(**event) for event in view["history"]]

    @strawberry.field
    def lineage(
        self, info: GraphInfo, direction: Direction = Direction.UP, depth: int = 5
    ) -> Lineage:
        graph = lineage_graph(
            info.context.engine, self.smelter_id, self.batch_id, direction.value, depth
        )
        return _lineage(graph, direction)

    @strawberry.field
    def record(self) -> Record | None:
        return Record.of(self.stored) if self.stored else None


def load_batches(
    session: Session, access: Access, keys: list[Key], rows: list[BatchRow] | None = None
) -> list[Batch | None]:
    """Batches (or lots) for ``keys`` with everything their fields need, read in
    ``session``: a fixed number of queries for a whole page. ``rows``: the batch rows, if
    already read. ``access`` decides whose confidential values are opened (the one read
    policy)."""
    found = (
        {(r.smelter_id, r.batch_id): r for r in rows}
        if rows is not None
        else BatchRepository(session).get_many(keys)
    )
    lots = CustodyRepository(session).lots_by_key(keys)
    grades = GradingRepository(session).grades_of_many(keys)
    indexes = {
        key: found[key].record_index if key in found else lots[key].created_index
        for key in keys
        if key in found or key in lots
    }
    records = Repository(session).records(indexes.values())
    visible = {
        row.record_index
        for row in found.values()
        if access.sees_disclosures(row.smelter_id, row.batch_id)
    }
    opened = DisclosureRepository(session).of_records(visible)
    batches: list[Batch | None] = []
    for key in keys:
        if key not in indexes:
            batches.append(None)
            continue
        stored = records.get(indexes[key])
        row = found.get(key)
        payload = stored.statement["payload"] if stored is not None and row else None
        disclosed = row is not None and row.record_index in visible
        if payload is not None and disclosed:
            payload = disclose(payload, opened.get(indexes[key], []))
        batches.append(
            Batch(
                smelter_id=key[0],
                batch_id=key[1],
                row=row,
                lot=lots.get(key),
                grade_rows=grades[key],
                stored=stored,
                payload=payload,
                opened=disclosed,
            )
        )
    return batches


def _source(item: dict[str, Any]) -> ElectricitySource:
    certificate = item.get("certificate")
    return ElectricitySource(
        source=item["type"],
        kwh=item["kwh"],
        grid_region=item.get("grid_region"),
        certificate_scheme=certificate["scheme"] if certificate else None,
        certificate=certificate,
    )


def _lineage(graph: dict[str, Any], direction: Direction) -> Lineage:
    """From the REST API's read model (``ledger.custody.views.Lineage``)."""
    view = views.Lineage.model_validate(graph)
    return Lineage(
        direction=direction,
        depth=view.depth,
        nodes=[_node(node) for node in view.nodes],
        edges=[_edge(edge) for edge in view.edges],
        truncated=bool(view.truncated),
        claim_summary=_summary(view.claim_summary) if view.claim_summary else None,
    )


def _node(node: views.LineageNode) -> LineageNode:
    recycled = node.recycled_content
    return LineageNode(
        smelter_id=node.ns,
        batch_id=node.batch_id,
        origin=node.origin,
        created_index=node.created_index,
        holder_id=node.holder_id,
        mass_kg=node.mass_kg,
        available_kg=node.available_kg,
        product_form=node.product_form,
        footprint_kg_co2e_per_t=node.footprint.kg_co2e_per_t,
        footprint_basis=node.footprint.basis,
        recycled_content=RecycledContent(
            pre_consumer=recycled.pre_consumer,
            post_consumer=recycled.post_consumer,
            total=recycled.total,
        ),
        renewable_share=node.renewable_share,
        grades=[GradeRef.of(grade) for grade in node.grades],
        depth=node.depth,
    )


def _edge(edge: views.EdgeView) -> LineageEdge:
    return LineageEdge(
        parent_smelter_id=edge.parent.ns,
        parent_batch_id=edge.parent.batch_id,
        child_smelter_id=edge.child.ns,
        child_batch_id=edge.child.batch_id,
        mass_kg=edge.mass_kg,
        operation=edge.operation,
        record_index=edge.record_index,
        fraction=edge.fraction,
    )


def _summary(summary: views.ClaimSummary) -> ClaimSummary:
    recycled = summary.recycled_content
    return ClaimSummary(
        mass_kg=summary.mass_kg,
        footprint_kg_co2e_per_t=summary.footprint.kg_co2e_per_t,
        footprint_basis=summary.footprint.basis,
        graded=[
            GradedShare(
                rule_set_id=g.ruleset_id,
                rule_set_version=g.ruleset_version,
                grade=g.grade,
                share=g.share,
                graded_kg=g.graded_kg,
            )
            for g in summary.graded
        ],
        recycled_pre=recycled.pre_consumer,
        recycled_post=recycled.post_consumer,
        recycled_total=recycled.total,
        renewable_electricity_share=summary.renewable_electricity_share,
        green_power_share_of_primary=summary.green_power_share_primary,
        smelters=[SmelterShare(**s.model_dump()) for s in summary.smelters],
        metal=summary.metal.model_dump(),
    )


def checkpoint_of(ledger: Any) -> Checkpoint:
    with read_session(ledger.engine) as session:
        row = Repository(session).latest_checkpoint()
    return Checkpoint(
        origin=ledger.origin, tree_size=row.size, root_hash=bytes(row.root).hex(), note=row.note
    )
