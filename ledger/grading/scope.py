"""What an accreditation's scope covers: the one rule the ledger and offline verifiers share."""

from __future__ import annotations

from collections.abc import Sequence

ALL_RULESETS = "*"


def scope_covers(
    rulesets: Sequence[str],
    product_forms: Sequence[str] | None,
    ruleset_id: str | None,
    product_form: str | None,
) -> bool:
    """True when a grant for ``rulesets`` and ``product_forms`` (None: every form) covers
    grading under ``ruleset_id`` a batch of ``product_form`` (None: not asked)."""
    if ruleset_id is not None and ALL_RULESETS not in rulesets and ruleset_id not in rulesets:
        return False
    return product_form is None or product_forms is None or product_form in product_forms
