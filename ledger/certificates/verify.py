"""Verify a certificate bundle offline, trusting nothing but the log's verifier key.

``verify_bundle`` opens no connection. It checks, in order:

1. the checkpoint is signed by the pinned log key, and the genesis record (index 0)
   names that same key, so the bundle belongs to this log;
2. every record's leaf hash and inclusion proof lead to the checkpoint root;
3. every record's statement is signed by a key that an earlier record in the bundle
   added for its author (genesis, ``participant.register`` or ``key.rotate``);
4. the records fit together: the grade names the batch and rule-set version in the
   bundle, the batch was registered by its smelter, the issuer's accreditation was
   granted by the operator, was in force on the grade's day and covers the rule set
   and the batch's product form, and every one of them precedes the grade;
5. the facts the grade states (signed by the centre, checked by the ledger on append)
   agree with everything the batch record shows publicly, and re-evaluating the rule set
   on them supports the grade. Given the batch's disclosures, each is checked against
   the record's digests and all facts are recomputed from the opened payload; any
   difference is named. A grade from before signed facts existed is re-evaluated on
   facts recomputed from its (then plaintext) batch payload;
6. the log's signed status note for this checkpoint says whether the grade was
   revoked, and a revocation it names is in the bundle, signed by the issuer or the
   operator.

A bundle failing any check is ``invalid`` with the reason. Otherwise the grade is
``revoked``, ``expired`` (judged against ``today``) or ``valid`` - as of the
checkpoint's tree size: a newer checkpoint may know of a revocation this one does
not, which is what ``ledger.certificates.freshness`` asks the ledger about.

What the log is trusted for (its signed checkpoint admits records only after its own
append checks): that no key was ended and no accreditation withdrawn before the grade.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from ledger import keys, merkle
from ledger.canonical import canonical_bytes
from ledger.certificates.status import GradeStatus
from ledger.checkpoints import Checkpoint, NoteVerifier, open_checkpoint
from ledger.disclosure.format import Disclosure
from ledger.disclosure.reveal import digests_in, disclose
from ledger.errors import LedgerError
from ledger.footprint import DEFAULT_TOLERANCE
from ledger.grading.evaluate import expires_at, unsupported_reason
from ledger.grading.facts import BatchFacts
from ledger.grading.facts_from_batch import (
    LEGACY,
    PUBLIC_FACTS,
    PUBLIC_FACTS_V2,
    Pins,
    facts_from_registration,
    public_facts,
)
from ledger.grading.rulesets import RuleSet, parse_ruleset
from ledger.grading.scope import scope_covers
from ledger.key_history import KEY_KINDS, key_events
from ledger.kind_names import ACCREDITATION_GRANT as GRANT
from ledger.kind_names import BATCH_REGISTER, GENESIS
from ledger.kind_names import GRADE_ISSUE as ISSUE
from ledger.kind_names import GRADE_REVOKE as REVOKE_GRADE
from ledger.kind_names import RULESET_PUBLISH as PUBLISH
from ledger.statements import Statement, decode_signature

FORMAT = "alu-ledger-certificate/v1"
ROLES = ("genesis", "grade", "batch", "ruleset", "accreditation")
Status = Literal["valid", "revoked", "expired", "invalid"]


class BundleError(Exception):
    """A check failed; the message is the reason shown to the user."""


@dataclass(frozen=True)
class GradeSummary:
    """What the certificate certifies, read from its verified records."""

    grade_index: int
    smelter_id: str
    batch_id: str
    ruleset_id: str
    ruleset_version: str
    grade: str
    issuer_id: str
    issued_on: str
    expires_on: str
    revoked_index: int | None
    revoke_reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Verdict:
    """The outcome: ``status`` and the sentences that explain it."""

    status: Status
    reasons: tuple[str, ...]
    tree_size: int | None = None
    grade: GradeSummary | None = None

    @property
    def valid(self) -> bool:
        return self.status == "valid"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "valid": self.valid,
            "reasons": list(self.reasons),
            "tree_size": self.tree_size,
            "grade": self.grade.to_dict() if self.grade else None,
        }


@dataclass(frozen=True)
class Entry:
    """A bundle record whose inclusion and signature have been verified."""

    role: str
    index: int
    record: dict[str, Any]
    statement: Statement
    author: str

    @property
    def payload(self) -> dict[str, Any]:
        return self.statement.payload

    @property
    def day(self) -> str:
        return str(self.record["integrated_at"])[:10]


@dataclass(frozen=True)
class _Key:
    participant_id: str
    public_key: bytes
    added_index: int


def verify_bundle(
    bundle: Any,
    log_key: str,
    *,
    today: date | None = None,
    footprint_tolerance: Decimal = DEFAULT_TOLERANCE,
    disclosures: Sequence[Disclosure] | None = None,
) -> Verdict:
    """Verify ``bundle`` against the C2SP verifier key ``log_key``; never raises on bad input.

    ``disclosures``: the batch record's disclosures (``GET /v1/records/{i}/disclosures``),
    to recompute the facts from the opened payload too. ``footprint_tolerance`` must be
    the ledger's ``LEDGER_FOOTPRINT_TOLERANCE`` for that recomputation.
    """
    try:
        day = today or datetime.now(UTC).date()
        return _verify(bundle, log_key, day, footprint_tolerance, disclosures)
    except BundleError as exc:
        return Verdict("invalid", (str(exc),))
    except LedgerError as exc:
        return Verdict("invalid", (str(exc),))


def _verify(
    bundle: Any,
    log_key: str,
    today: date,
    tolerance: Decimal,
    disclosures: Sequence[Disclosure] | None,
) -> Verdict:
    _require(isinstance(bundle, dict), "the bundle is not a JSON object")
    _require(bundle.get("format") == FORMAT, f"format is not {FORMAT}")
    verifier = NoteVerifier.parse(log_key.strip())
    checkpoint = open_checkpoint(_text(bundle, "checkpoint"), verifier, origin=verifier.name)
    records = _field(bundle, "records", dict)
    key_records = [
        _included(raw, checkpoint, f"records.keys[{n}]")
        for n, raw in enumerate(_field(records, "keys", list))
    ]
    keyring = _keyring(key_records)
    entries = {role: _entry(records, role, checkpoint, keyring) for role in ROLES}
    revocation = None
    if "revocation" in records:
        revocation = _entry(records, "revocation", checkpoint, keyring)
    _check_genesis(entries["genesis"], log_key.strip(), checkpoint)
    grade_index = _field(bundle, "grade_index", int)
    ruleset = _check_grade_inputs(entries, grade_index)
    _check_accreditation(entries, ruleset)
    notes = _check_evaluation(entries, ruleset, tolerance, disclosures)
    status = _status(bundle, verifier, checkpoint, grade_index)
    _check_revocation(status, revocation, entries)
    summary = _summary(entries, ruleset, status, revocation)
    verdict = _judgement(summary, checkpoint.size, today)
    return Verdict(verdict.status, (*verdict.reasons, *notes), verdict.tree_size, verdict.grade)


# -- records ----------------------------------------------------------------------
def _included(raw: Any, checkpoint: Checkpoint, where: str) -> tuple[dict[str, Any], Statement]:
    """A record proven to be in ``checkpoint``'s tree, with its parsed statement."""
    _require(isinstance(raw, dict), f"{where} is not an object")
    record = _field(raw, "record", dict, where)
    proof = _field(raw, "inclusion_proof", list, where)
    index = _field(record, "index", int, f"{where}.record")
    _require(0 <= index < checkpoint.size, f"{where}: record {index} is beyond the checkpoint")
    try:
        hashes = [bytes.fromhex(h) for h in proof]
    except (TypeError, ValueError):
        raise BundleError(f"{where}.inclusion_proof is not a list of hex hashes") from None
    leaf = merkle.leaf_hash(canonical_bytes(record, f"{where}.record"))
    try:
        merkle.verify_inclusion(leaf, index, checkpoint.size, hashes, checkpoint.root)
    except LedgerError as exc:
        raise BundleError(f"{where}: record {index} is not in the checkpoint: {exc}") from None
    return record, Statement.parse(record.get("statement"), f"{where}.record.statement")


def _keyring(key_records: list[tuple[dict[str, Any], Statement]]) -> dict[str, _Key]:
    """Keys added by the bundle's key records (checked to be in the log)."""
    keyring: dict[str, _Key] = {}
    for record, statement in key_records:
        _require(statement.kind in KEY_KINDS, f"record {record['index']} adds no key")
        try:
            events = key_events(statement.kind, statement.payload)
        except (KeyError, TypeError, LedgerError):
            raise BundleError(f"key record {record['index']} is malformed") from None
        for event in events:
            if event.action == "add":
                keyring[event.key_id] = _Key(
                    event.participant_id, event.public_key, record["index"]
                )
    return keyring


def _entry(
    records: dict[str, Any], role: str, checkpoint: Checkpoint, keyring: dict[str, _Key]
) -> Entry:
    where = f"records.{role}"
    _require(role in records, f"{where} is missing")
    record, statement = _included(records[role], checkpoint, where)
    index = record["index"]
    key = keyring.get(statement.signer)
    if key is None:
        raise BundleError(f"{where}: no key record in the bundle adds signer key")
    added_before = key.added_index < index or (index == 0 and statement.kind == GENESIS)
    _require(added_before, f"{where}: signer key was added after record {index}")
    signature = decode_signature(record.get("signature"), f"{where}.record.signature")
    try:
        keys.verify(key.public_key, signature, statement.canonical())
    except LedgerError:
        raise BundleError(f"{where}: the statement's signature does not verify") from None
    return Entry(role, index, record, statement, key.participant_id)


# -- how the records fit together -------------------------------------------------------
def _check_genesis(genesis: Entry, log_key: str, checkpoint: Checkpoint) -> None:
    _require(genesis.index == 0 and genesis.statement.kind == GENESIS, "records.genesis: not 0")
    _require(
        genesis.payload.get("log_verifier_key") == log_key,
        "records.genesis: the ledger's genesis names a different log key",
    )
    _require(
        genesis.payload.get("origin") == checkpoint.origin,
        "records.genesis: the ledger's genesis names a different origin",
    )


def _check_grade_inputs(entries: dict[str, Entry], grade_index: int) -> RuleSet:
    grade, batch, published = entries["grade"], entries["batch"], entries["ruleset"]
    _expect_kind(grade, ISSUE)
    _require(
        grade.index == grade_index, f"records.grade is record {grade.index}, not {grade_index}"
    )
    _expect_kind(batch, BATCH_REGISTER)
    _expect_kind(published, PUBLISH)
    names = (grade.payload.get("smelter_id"), grade.payload.get("batch_id"))
    shown = (batch.payload.get("smelter_id"), batch.payload.get("batch_id"))
    _require(
        shown == names,
        f"records.batch is not the batch the grade names: grade record {grade.index} grades"
        f" batch {_batch_name(names)}, but records.batch is record {batch.index}, the"
        f" registration of batch {_batch_name(shown)}",
    )
    _require(batch.author == names[0], "records.batch: not signed by its smelter")
    ruleset = parse_ruleset(published.payload)
    _require(
        (ruleset.ruleset_id, ruleset.version)
        == (grade.payload.get("ruleset_id"), grade.payload.get("ruleset_version")),
        "records.ruleset is not the rule-set version the grade names",
    )
    for entry in (batch, published):
        _require(entry.index < grade.index, f"records.{entry.role} comes after the grade")
    return ruleset


def _check_accreditation(entries: dict[str, Entry], ruleset: RuleSet) -> None:
    grant, grade = entries["accreditation"], entries["grade"]
    _expect_kind(grant, GRANT)
    operator = entries["genesis"].payload["operator"]["participant_id"]
    _require(grant.author == operator, "records.accreditation: not signed by the operator")
    _require(grant.index < grade.index, "records.accreditation comes after the grade")
    _require(
        grant.payload.get("participant_id") == grade.author,
        "records.accreditation is not for the grade's issuer",
    )
    valid_from, valid_until = grant.payload.get("valid_from"), grant.payload.get("valid_until")
    _require(
        isinstance(valid_from, str)
        and isinstance(valid_until, str)
        and valid_from <= grade.day <= valid_until,
        f"records.accreditation is not in force on {grade.day}",
    )
    scope = grant.payload.get("scope") or {}
    _require(
        scope_covers(
            scope.get("rulesets") or [],
            scope.get("product_forms"),
            ruleset.ruleset_id,
            entries["batch"].payload.get("product_form"),
        ),
        "records.accreditation does not cover this rule set and product form",
    )


def _check_evaluation(
    entries: dict[str, Entry],
    ruleset: RuleSet,
    tolerance: Decimal,
    disclosures: Sequence[Disclosure] | None,
) -> list[str]:
    """Check the grade's facts against the batch record and re-evaluate the rule set on
    them; return notes on what was recomputed."""
    grade, batch = entries["grade"], entries["batch"]
    payload = batch.payload
    plaintext = _opened(payload, disclosures, batch.index)
    signed = grade.payload.get("facts")
    notes: list[str] = []
    if signed is None:
        # A grade from before grades carried their facts: its batch payload is plaintext,
        # evaluated as it was then (footprint method 1, factor table 2024.1).
        if plaintext is None:
            raise BundleError("the grade states no facts and the batch is committed")
        facts = facts_from_registration(plaintext, tolerance, pins=LEGACY)
    else:
        _require(isinstance(signed, dict), "records.grade: facts is not an object")
        facts = BatchFacts.from_dict(signed)
        _check_public_facts(facts, payload, batch.index)
        if plaintext is not None:
            _check_recomputed(facts, plaintext, tolerance)
            if disclosures:
                notes.append(f"facts recomputed from {len(disclosures)} disclosures agree")
    reason = unsupported_reason(ruleset, facts, grade.payload.get("grade", ""))
    _require(reason is None, f"re-evaluation does not support the grade: {reason}")
    return notes


def _check_recomputed(facts: BatchFacts, plaintext: dict[str, Any], tolerance: Decimal) -> None:
    """Every fact recomputed from the opened payload, with what the facts were computed
    with (method, factor table, GWP set, the lots the batch named), must be the same."""
    pins = Pins(facts.method, facts.factor_table_version, facts.gwp_set) if facts.method else LEGACY
    lots = list(facts.ledger_lots or ())
    recomputed = facts_from_registration(plaintext, tolerance, pins=pins, ledger_lots=lots)
    mine = recomputed.to_dict()
    for name, value in facts.to_dict().items():
        _require(
            mine[name] == value,
            f"fact {name} of the grade is {value}, but the batch's disclosed values give"
            f" {mine[name]}",
        )


def _opened(
    payload: dict[str, Any], disclosures: Sequence[Disclosure] | None, index: int
) -> dict[str, Any] | None:
    """The batch payload opened with ``disclosures`` (each checked against the record's
    digests), the payload itself if it commits nothing, else None."""
    known = set(digests_in(payload))
    if disclosures is None:
        return None if known else payload
    matched: set[str] = set()
    while True:  # disclosures can carry digests of their own (one fuel line of fuels)
        grown = [d for d in disclosures if d.digest in known and d.digest not in matched]
        if not grown:
            break
        for disclosure in grown:
            matched.add(disclosure.digest)
            known.update(digests_in(disclosure.value))
    for position, disclosure in enumerate(disclosures):
        _require(
            disclosure.digest in matched,
            f"disclosure {position} ({disclosure.what}) does not match any digest of the batch"
            f" record {index}",
        )
    opened: dict[str, Any] = disclose(payload, disclosures)
    return opened


def _check_public_facts(facts: BatchFacts, payload: dict[str, Any], index: int) -> None:
    """Facts that follow from the record's public members must be what the record says,
    and the lots the facts name must be the ones the record names, with their masses."""
    lots = list(facts.ledger_lots or ()) if facts.is_v2 else None
    try:
        shown = public_facts(payload, lots)
    except LedgerError as exc:
        raise BundleError(f"records.batch: record {index} is not a batch: {exc}") from None
    stated = facts.to_dict()
    for name in PUBLIC_FACTS_V2 if facts.is_v2 else PUBLIC_FACTS:
        _require(
            stated[name] == shown[name],
            f"the grade's fact {name} is {stated[name]}, but the batch record {index} shows"
            f" {shown[name]}: the grade is not about this batch",
        )
    if lots is not None:
        named = sorted(
            (ref.get("smelter_id"), ref.get("batch_id"), ref.get("mass_kg"))
            for ref in (payload.get("metal_inputs") or {}).get("purchased_primary_batches", [])
        )
        _require(
            named == sorted((lot["ns"], lot["batch_id"], lot["mass_kg"]) for lot in lots),
            f"the grade's facts name other ledger lots than the batch record {index}",
        )


def _status(
    bundle: dict[str, Any], verifier: NoteVerifier, checkpoint: Checkpoint, grade_index: int
) -> GradeStatus:
    status = GradeStatus.parse(verifier.verify(_text(bundle, "status")))
    expected = (checkpoint.origin, grade_index, checkpoint.size)
    _require(
        (status.origin, status.grade_index, status.tree_size) == expected,
        "status note is for another log, grade or checkpoint",
    )
    return status


def _check_revocation(
    status: GradeStatus, revocation: Entry | None, entries: dict[str, Entry]
) -> None:
    if status.revoked_index is None:
        _require(revocation is None, "records.revocation is present but the status says active")
        return
    if revocation is None:
        raise BundleError("the status says revoked but records.revocation is missing")
    _expect_kind(revocation, REVOKE_GRADE)
    _require(revocation.index == status.revoked_index, "records.revocation is not the one named")
    _require(
        revocation.payload.get("grade_record_index") == entries["grade"].index,
        "records.revocation revokes another grade",
    )
    operator = entries["genesis"].payload["operator"]["participant_id"]
    _require(
        revocation.author in (entries["grade"].author, operator),
        "records.revocation is signed by neither the issuer nor the operator",
    )


# -- verdict ----------------------------------------------------------------------
def _summary(
    entries: dict[str, Entry], ruleset: RuleSet, status: GradeStatus, revocation: Entry | None
) -> GradeSummary:
    grade = entries["grade"]
    issued = date.fromisoformat(grade.day)
    return GradeSummary(
        grade_index=grade.index,
        smelter_id=grade.payload["smelter_id"],
        batch_id=grade.payload["batch_id"],
        ruleset_id=ruleset.ruleset_id,
        ruleset_version=ruleset.version,
        grade=grade.payload["grade"],
        issuer_id=grade.author,
        issued_on=issued.isoformat(),
        expires_on=expires_at(issued, ruleset).isoformat(),
        revoked_index=status.revoked_index,
        revoke_reason=revocation.payload.get("reason") if revocation else None,
    )


def _judgement(summary: GradeSummary, size: int, today: date) -> Verdict:
    what = (
        f"grade {summary.grade} of {summary.ruleset_id} {summary.ruleset_version} for batch "
        f"{summary.smelter_id}/{summary.batch_id}, issued {summary.issued_on} by "
        f"{summary.issuer_id}"
    )
    if summary.revoked_index is not None:
        reason = f"{what}: revoked at record {summary.revoked_index}: {summary.revoke_reason}"
        return Verdict("revoked", (reason,), size, summary)
    if today.isoformat() >= summary.expires_on:
        reason = f"{what}: expired on {summary.expires_on}"
        return Verdict("expired", (reason,), size, summary)
    reason = f"{what}: valid as of checkpoint {size}, until {summary.expires_on}"
    return Verdict("valid", (reason,), size, summary)


# -- small helpers --------------------------------------------------------------------
def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise BundleError(reason)


def _batch_name(names: tuple[Any, Any]) -> str:
    return "/".join(str(name) for name in names)


def _expect_kind(entry: Entry, kind: str) -> None:
    _require(entry.statement.kind == kind, f"records.{entry.role} is a {entry.statement.kind}")


def _field(obj: dict[str, Any], name: str, kind: type, where: str = "bundle") -> Any:
    value = obj.get(name)
    is_int = kind is int and isinstance(value, bool)
    _require(
        isinstance(value, kind) and not is_int, f"{where}.{name} is missing or not {kind.__name__}"
    )
    return value


def _text(bundle: dict[str, Any], name: str) -> str:
    text: str = _field(bundle, name, str)
    return text
