"""Assemble a certificate bundle for a grade from the ledger's database.

The bundle holds every record a buyer needs to re-check a grade, each with its
inclusion proof, all against one signed checkpoint (the latest at assembly), plus
the log's signed grade status note for that checkpoint::

    {"format": "alu-ledger-certificate/v1", "grade_index": N,
     "checkpoint": "<signed note>", "status": "<signed note>",
     "records": {"genesis": E, "grade": E, "batch": E, "ruleset": E,
                 "accreditation": E, "revocation": E (only when revoked),
                 "keys": [E, ...]}}

where ``E = {"record": {...}, "inclusion_proof": ["<hex>", ...]}``. ``keys`` holds
the record that added each signing key (genesis, ``participant.register`` or
``key.rotate``). Nothing in the bundle is trusted by ``verify_bundle``: every
claim is re-derived from the records.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from ledger import merkle
from ledger.certificates.status import GradeStatus
from ledger.certificates.verify import FORMAT
from ledger.errors import NotFoundError, ProofError
from ledger.grading.scope import scope_covers
from ledger.log import Ledger
from ledger.storage.batches import BatchRepository
from ledger.storage.db import read_session
from ledger.storage.grading import GradingRepository
from ledger.storage.repository import Repository
from ledger.storage.tables import AccreditationRow, GradeRow

_Row = TypeVar("_Row")


def _stored(row: _Row | None, what: str) -> _Row:
    """A row a recorded grade implies (its batch, rule set, signer keys, a checkpoint):
    missing, the store is broken, and no bundle is made from it."""
    if row is None:
        raise ProofError(f"ledger storage lacks {what}", field="storage")
    return row


def build_bundle(ledger: Ledger, grade_index: int) -> dict[str, Any]:
    """The certificate bundle of the grade recorded at ``grade_index``."""
    with read_session(ledger.engine) as session:
        repo, grading = Repository(session), GradingRepository(session)
        grade = grading.grade(grade_index)
        if grade is None:
            raise NotFoundError(f"no grade at record {grade_index}", field="grade_record_index")
        checkpoint = _stored(repo.latest_checkpoint(), "a checkpoint")
        size = checkpoint.size
        batch = _stored(
            BatchRepository(session).get(grade.smelter_id, grade.batch_id), "the graded batch"
        )
        ruleset = _stored(
            grading.ruleset(grade.ruleset_id, grade.ruleset_version), "the grade's rule set"
        )
        grant = _grant_behind(grading.accreditations_of(grade.issuer_id), grade, batch.product_form)
        revoked = grade.revoked_index if _below(grade.revoked_index, size) else None
        named = {
            "genesis": 0,
            "grade": grade_index,
            "batch": batch.record_index,
            "ruleset": ruleset.record_index,
            "accreditation": grant.granted_index,
        }
        if revoked is not None:
            named["revocation"] = revoked
        records = repo.records(named.values())
        key_indexes = sorted(
            {
                _stored(repo.key(records[i].statement["signer"]), "a signer key").added_index
                for i in named.values()
            }
        )
        records |= repo.records(key_indexes)
        entries = {index: _entry(records[index], size, repo) for index in records}
    status = GradeStatus(ledger.origin, grade_index, size, revoked)
    return {
        "format": FORMAT,
        "grade_index": grade_index,
        "checkpoint": checkpoint.note,
        "status": ledger.signer.sign(status.text()),
        "records": {
            **{role: entries[index] for role, index in named.items()},
            "keys": [entries[index] for index in key_indexes],
        },
    }


def _grant_behind(
    grants: list[AccreditationRow], grade: GradeRow, product_form: str
) -> AccreditationRow:
    """The latest grant that made the issuer accredited for this grade when it was issued."""
    day = grade.issued_at[:10]
    candidates = [
        grant
        for grant in grants
        if grant.granted_index < grade.record_index
        and grant.valid_from <= day <= grant.valid_until
        and not _below(grant.withdrawn_index, grade.record_index)
        and scope_covers(
            json.loads(grant.rulesets),
            None if grant.product_forms is None else json.loads(grant.product_forms),
            grade.ruleset_id,
            product_form,
        )
    ]
    if not candidates:
        # The append path refused grades without such a grant, so the database is damaged.
        raise ProofError(f"no accreditation on the ledger covers grade {grade.record_index}")
    return candidates[-1]


def _below(index: int | None, bound: int) -> bool:
    return index is not None and index < bound


def _entry(record: Any, size: int, repo: Repository) -> dict[str, Any]:
    proof = merkle.inclusion_proof(record.index, size, repo)
    return {"record": record.to_dict(), "inclusion_proof": [h.hex() for h in proof]}
