"""Grading: rule sets evaluation centres publish, and the evaluation of batches against them.

Pure domain logic: no storage, no web. The ledger parses a ``ruleset.publish``
payload with ``parse_ruleset``, fills ``BatchFacts`` from its batch read model,
and calls ``evaluate`` (to show a grade and why) or ``supports`` (to accept or
refuse a ``grade.issue``). See docs/grading.md.
"""

from ledger.grading.evaluate import (
    CriterionResult,
    Evaluation,
    GradeResult,
    evaluate,
    expires_at,
    not_applicable_reason,
    supports,
    unsupported_reason,
)
from ledger.grading.facts import BatchFacts
from ledger.grading.rulesets import Grade, RuleSet, parse_ruleset
from ledger.grading.shipped import load_shipped_rulesets

__all__ = [
    "BatchFacts",
    "CriterionResult",
    "Evaluation",
    "Grade",
    "GradeResult",
    "RuleSet",
    "evaluate",
    "expires_at",
    "load_shipped_rulesets",
    "not_applicable_reason",
    "parse_ruleset",
    "supports",
    "unsupported_reason",
]
