"""The facts a rule set grades a batch on: what ``grade.issue`` must state and previews show.

A rule set that pins its evaluation (method, factor table, GWP set) grades every batch on
facts recomputed with exactly those, from the batch's plaintext (the record opened with
its stored disclosures) and what the ledger stated about the lots it named. A rule set
without pins, or whose pins are what the batch was computed with, grades on the facts
stored when the batch was registered. Recomputing a batch registered before method 2
under a pinned rule set is a new evaluation, never a change to what was recorded.
"""

from __future__ import annotations

import json
from decimal import Decimal

from sqlmodel import Session

from ledger.disclosure.reveal import disclose
from ledger.errors import InvalidError, LedgerError
from ledger.grading.facts import BatchFacts
from ledger.grading.facts_from_batch import (
    Pins,
    batch_facts,
    computed_with,
    facts_from_registration,
)
from ledger.grading.rulesets import RuleSet
from ledger.storage.disclosures import DisclosureRepository
from ledger.storage.repository import Repository
from ledger.storage.tables import BatchRow


def pins_of(ruleset: RuleSet) -> Pins | None:
    evaluation = ruleset.evaluation
    if evaluation is None:
        return None
    return Pins(evaluation.method, evaluation.factor_table_version, evaluation.gwp_set)


def ruleset_facts(
    session: Session, batch: BatchRow, ruleset: RuleSet, tolerance: Decimal
) -> BatchFacts:
    """The facts ``ruleset`` grades ``batch`` on (module docstring)."""
    record = Repository(session).record(batch.record_index)
    assert record is not None, "a batch row always has its record"
    payload = record.statement["payload"]
    derived = json.loads(batch.derived)
    pins = pins_of(ruleset)
    if pins is None or pins == computed_with(derived):
        return batch_facts(batch, payload)
    opened = DisclosureRepository(session).of_records([batch.record_index])
    plain = disclose(payload, opened.get(batch.record_index, []))
    try:
        return facts_from_registration(
            plain, tolerance, pins=pins, ledger_lots=derived.get("ledger_lots", [])
        )
    except LedgerError as exc:
        raise InvalidError(
            f"batch {batch.smelter_id}/{batch.batch_id} cannot be evaluated with"
            f" {pins.method}, factor table {pins.factor_table_version}: {exc}",
            field="payload.batch_id",
        ) from None
