"""Grading statement kinds: accreditation, rule-set publication, grades.

- ``accreditation.grant`` / ``accreditation.withdraw`` (operator): which evaluation
  centres may publish rule sets and grade, for which rule sets and product forms, and
  from when to when. A grant is in force on a day between ``valid_from`` and
  ``valid_until`` (inclusive) until withdrawn; a withdrawal ends every grant in force.
- ``ruleset.publish`` (accredited centre): a rule-set document; (id, version) is
  unique forever.
- ``grade.issue`` (accredited centre whose scope covers the rule set and the batch's
  product form): carries the facts the centre evaluated (``facts``, as
  ``BatchFacts.to_dict``); the ledger refuses facts that differ from its own, naming the
  fact, and a grade the rule set does not support on them. Signed facts let anyone
  re-evaluate the grade offline without the smelter's confidential values.
- ``grade.revoke`` (the issuer or the operator): the grade stays readable, revoked.

"The statement's date" is the date of the record's ``integrated_at`` (UTC).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from ledger import payloads
from ledger.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    MalformedError,
    NotFoundError,
)
from ledger.footprint.calculator import DEFAULT_TOLERANCE
from ledger.grading.evaluate import expires_at, unsupported_reason
from ledger.grading.facts import BatchFacts, check_attested_facts
from ledger.grading.ruleset_facts import ruleset_facts
from ledger.grading.rulesets import RuleSet, parse_ruleset
from ledger.grading.scope import ALL_RULESETS, scope_covers
from ledger.kind_names import (
    ACCREDITATION_GRANT,
    ACCREDITATION_WITHDRAW,
    GRADE_ISSUE,
    GRADE_REVOKE,
    RULESET_PUBLISH,
)
from ledger.kinds import OPERATOR_ROLE, AppendContext, Author, StatementKind, require_role
from ledger.statements import Statement
from ledger.storage.batches import BatchRepository
from ledger.storage.grading import GradingRepository
from ledger.storage.tables import AccreditationRow, GradeRow, RulesetRow

GRANT = ACCREDITATION_GRANT
WITHDRAW = ACCREDITATION_WITHDRAW
PUBLISH = RULESET_PUBLISH
ISSUE = GRADE_ISSUE
REVOKE = GRADE_REVOKE
CENTRE_ROLE = "evaluation_centre"

DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
RULESET_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
BATCH_ID_RE = re.compile(r"^\S{1,64}$")
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
GRADE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PRODUCT_FORMS = ("liquid", "remelt_ingot", "alloy_ingot", "billet", "slab", "wire_rod", "other")


def statement_day(ctx: AppendContext) -> str:
    """The ISO date of the record being appended."""
    return ctx.integrated_at[:10]


def _date(payload: Mapping[str, Any], name: str) -> date:
    value = payload.get(name)
    if isinstance(value, str) and DATE_RE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise MalformedError("must be a date YYYY-MM-DD", field=f"payload.{name}")


def _string_list(value: Any, field: str, pattern: re.Pattern[str] | None = None) -> list[str]:
    if not isinstance(value, list) or not value:
        raise MalformedError("must be a non-empty list of strings", field=field)
    for position, item in enumerate(value):
        if not isinstance(item, str) or (pattern is not None and not pattern.fullmatch(item)):
            raise MalformedError("must be a rule-set id", field=f"{field}[{position}]")
    if len(set(value)) != len(value):
        raise MalformedError("must not repeat an entry", field=field)
    return list(value)


# -- accreditation ------------------------------------------------------------
@dataclass(frozen=True)
class CheckedGrant:
    participant_id: str
    rulesets: list[str]
    product_forms: list[str] | None
    valid_from: date
    valid_until: date


class GrantAccreditation(StatementKind):
    name = GRANT

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> CheckedGrant:
        require_role(author, OPERATOR_ROLE, action="granting accreditation")
        payload = statement.payload
        payloads.exact_fields(payload, ("participant_id", "scope", "valid_from", "valid_until"))
        participant_id = payloads.participant_id(payload)
        scope = payload["scope"]
        if not isinstance(scope, dict):
            raise MalformedError("must be an object", field="payload.scope")
        payloads.exact_fields(scope, ("rulesets",), ("product_forms",))
        rulesets = _scope_rulesets(scope["rulesets"])
        product_forms = None
        if "product_forms" in scope:
            product_forms = _string_list(scope["product_forms"], "payload.scope.product_forms")
            for position, form in enumerate(product_forms):
                if form not in PRODUCT_FORMS:
                    raise MalformedError(
                        f"must be one of {', '.join(PRODUCT_FORMS)}",
                        field=f"payload.scope.product_forms[{position}]",
                    )
        valid_from, valid_until = _date(payload, "valid_from"), _date(payload, "valid_until")
        if valid_until < valid_from:
            raise InvalidError("must not be before valid_from", field="payload.valid_until")
        participant = ctx.repo.participant(participant_id)
        if participant is None:
            raise NotFoundError(f"no participant {participant_id}", field="payload.participant_id")
        if participant.role != CENTRE_ROLE:
            raise InvalidError(
                f"only an evaluation_centre can be accredited; {participant_id} is a "
                f"{participant.role}",
                field="payload.participant_id",
            )
        return CheckedGrant(participant_id, rulesets, product_forms, valid_from, valid_until)

    def apply(
        self, ctx: AppendContext, statement: Statement, author: Author, checked: CheckedGrant
    ) -> None:
        GradingRepository(ctx.repo.session).add_accreditation(
            AccreditationRow(
                granted_index=ctx.index,
                participant_id=checked.participant_id,
                rulesets=json.dumps(checked.rulesets),
                product_forms=(
                    None if checked.product_forms is None else json.dumps(checked.product_forms)
                ),
                valid_from=checked.valid_from.isoformat(),
                valid_until=checked.valid_until.isoformat(),
            )
        )


def _scope_rulesets(value: Any) -> list[str]:
    field = "payload.scope.rulesets"
    if value == [ALL_RULESETS]:
        return [ALL_RULESETS]
    return _string_list(value, field, RULESET_ID_RE)


class WithdrawAccreditation(StatementKind):
    name = WITHDRAW

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> str:
        require_role(author, OPERATOR_ROLE, action="withdrawing accreditation")
        payload = statement.payload
        payloads.exact_fields(payload, ("participant_id", "reason"))
        participant_id = payloads.participant_id(payload)
        payloads.text(payload, "reason")
        grants = GradingRepository(ctx.repo.session).accreditations_of(participant_id)
        if not any(grant.withdrawn_index is None for grant in grants):
            raise InvalidError(
                f"{participant_id} holds no accreditation to withdraw",
                field="payload.participant_id",
            )
        return participant_id

    def apply(self, ctx: AppendContext, statement: Statement, author: Author, checked: str) -> None:
        GradingRepository(ctx.repo.session).withdraw(
            checked, ctx.index, statement.payload["reason"]
        )


def require_accredited(
    ctx: AppendContext,
    author: Author,
    action: str,
    ruleset_id: str | None = None,
    product_form: str | None = None,
) -> None:
    """Refuse unless ``author`` is an evaluation centre accredited today for this scope."""
    require_role(author, CENTRE_ROLE, action=action)
    day = statement_day(ctx)
    grants = GradingRepository(ctx.repo.session).in_force(author.participant_id, day)
    if not grants:
        raise ForbiddenError(
            f"{action} needs an accreditation in force; {author.participant_id} holds none "
            f"on {day}",
            field="statement.signer",
        )
    if any(_covers(grant, ruleset_id, product_form) for grant in grants):
        return
    what = f"rule set {ruleset_id}" + (f" for {product_form}" if product_form else "")
    raise ForbiddenError(
        f"{author.participant_id}'s accreditation does not cover {what}",
        field="statement.signer",
    )


def _covers(grant: AccreditationRow, ruleset_id: str | None, product_form: str | None) -> bool:
    forms = None if grant.product_forms is None else json.loads(grant.product_forms)
    return scope_covers(json.loads(grant.rulesets), forms, ruleset_id, product_form)


# -- rule sets ------------------------------------------------------------------
class PublishRuleset(StatementKind):
    name = PUBLISH

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> RuleSet:
        require_accredited(ctx, author, "publishing a rule set")
        ruleset = parse_ruleset(statement.payload)
        existing = GradingRepository(ctx.repo.session).ruleset(ruleset.ruleset_id, ruleset.version)
        if existing is not None:
            raise ConflictError(
                f"rule set {ruleset.ruleset_id} {ruleset.version} was already published at "
                f"record {existing.record_index}; publish a new version",
                field="payload.version",
            )
        return ruleset

    def apply(
        self, ctx: AppendContext, statement: Statement, author: Author, checked: RuleSet
    ) -> None:
        GradingRepository(ctx.repo.session).add_ruleset(
            RulesetRow(
                ruleset_id=checked.ruleset_id,
                version=checked.version,
                publisher_id=author.participant_id,
                record_index=ctx.index,
                document=json.dumps(statement.payload),
                published_at=ctx.integrated_at,
            )
        )


def stored_ruleset(row: RulesetRow) -> RuleSet:
    """The parsed rule set of a stored row (it was valid when published)."""
    return parse_ruleset(json.loads(row.document))


# -- grades -------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckedGrade:
    smelter_id: str
    batch_id: str
    ruleset: RuleSet
    grade: str
    evaluation_date: str | None
    facts: BatchFacts


class IssueGrade(StatementKind):
    name = ISSUE
    FIELDS = ("smelter_id", "batch_id", "ruleset_id", "ruleset_version", "grade", "facts")

    def __init__(self, footprint_tolerance: Decimal = DEFAULT_TOLERANCE) -> None:
        self.footprint_tolerance = footprint_tolerance

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> CheckedGrade:
        require_role(author, CENTRE_ROLE, action="issuing a grade")
        payload = statement.payload
        payloads.exact_fields(payload, self.FIELDS, ("evaluation_date",))
        smelter_id = payloads.participant_id(payload, "smelter_id")
        batch_id = payloads.matching(payload, "batch_id", BATCH_ID_RE, "a batch id")
        ruleset_id = payloads.matching(payload, "ruleset_id", RULESET_ID_RE, "a rule-set id")
        version = payloads.matching(payload, "ruleset_version", VERSION_RE, "a version X.Y.Z")
        grade = payloads.matching(payload, "grade", GRADE_RE, "a grade name")
        evaluation_date = None
        if "evaluation_date" in payload:
            evaluated = _date(payload, "evaluation_date")
            if evaluated.isoformat() > statement_day(ctx):
                raise InvalidError(
                    "must not be after the day the grade is recorded",
                    field="payload.evaluation_date",
                )
            evaluation_date = evaluated.isoformat()
        if smelter_id == author.participant_id:
            raise ForbiddenError("a participant may not grade its own batch", field="payload")
        batch = BatchRepository(ctx.repo.session).get(smelter_id, batch_id)
        if batch is None:
            raise NotFoundError(f"no batch {smelter_id}/{batch_id}", field="payload.batch_id")
        require_accredited(ctx, author, "issuing a grade", ruleset_id, batch.product_form)
        row = GradingRepository(ctx.repo.session).ruleset(ruleset_id, version)
        if row is None:
            raise NotFoundError(
                f"no rule set {ruleset_id} {version} on the ledger",
                field="payload.ruleset_version",
            )
        ruleset = stored_ruleset(row)
        facts = ruleset_facts(ctx.repo.session, batch, ruleset, self.footprint_tolerance)
        check_attested_facts(payload["facts"], facts)
        reason = unsupported_reason(ruleset, facts, grade)
        if reason is not None:
            raise InvalidError(reason, field="payload.grade")
        return CheckedGrade(smelter_id, batch_id, ruleset, grade, evaluation_date, facts)

    def apply(
        self, ctx: AppendContext, statement: Statement, author: Author, checked: CheckedGrade
    ) -> None:
        issued = date.fromisoformat(statement_day(ctx))
        GradingRepository(ctx.repo.session).add_grade(
            GradeRow(
                record_index=ctx.index,
                smelter_id=checked.smelter_id,
                batch_id=checked.batch_id,
                ruleset_id=checked.ruleset.ruleset_id,
                ruleset_version=checked.ruleset.version,
                grade=checked.grade,
                issuer_id=author.participant_id,
                issued_at=ctx.integrated_at,
                expires_on=expires_at(issued, checked.ruleset).isoformat(),
                evaluation_date=checked.evaluation_date,
                facts=json.dumps(checked.facts.to_dict()),
            )
        )


class RevokeGrade(StatementKind):
    name = REVOKE

    def check(self, ctx: AppendContext, statement: Statement, author: Author) -> int:
        payload = statement.payload
        payloads.exact_fields(payload, ("grade_record_index", "reason"))
        target = payload["grade_record_index"]
        if isinstance(target, bool) or not isinstance(target, int) or target < 0:
            raise MalformedError(
                "must be a non-negative integer record index", field="payload.grade_record_index"
            )
        payloads.text(payload, "reason")
        row = GradingRepository(ctx.repo.session).grade(target)
        if row is None:
            raise NotFoundError(f"no grade at record {target}", field="payload.grade_record_index")
        if author.role != OPERATOR_ROLE and author.participant_id != row.issuer_id:
            raise ForbiddenError(
                f"only the issuer {row.issuer_id} or the operator may revoke this grade",
                field="statement.signer",
            )
        if row.revoked_index is not None:
            raise InvalidError(
                f"grade already revoked at record {row.revoked_index}",
                field="payload.grade_record_index",
            )
        return target

    def apply(self, ctx: AppendContext, statement: Statement, author: Author, checked: int) -> None:
        GradingRepository(ctx.repo.session).revoke_grade(
            checked, ctx.index, statement.payload["reason"]
        )


def grading_kinds(footprint_tolerance: Decimal = DEFAULT_TOLERANCE) -> list[StatementKind]:
    return [
        GrantAccreditation(),
        WithdrawAccreditation(),
        PublishRuleset(),
        IssueGrade(footprint_tolerance),
        RevokeGrade(),
    ]
