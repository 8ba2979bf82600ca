"""The ledger's tables.

``records``, ``merkle_nodes`` and ``checkpoints`` are the log itself; everything
else is a read model derived from records by the statement kinds, rebuilt only by
appending. ``log_head`` is a single row that every writer locks, which serialises
appends across threads and processes (``SELECT ... FOR UPDATE`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite). ``api_tokens`` is neither: it is the operator's
off-log access control for authenticated reads (``ledger/tokens.py``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, LargeBinary, SmallInteger, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _bigint_pk() -> Column:
    return Column(BigInteger, primary_key=True, autoincrement=False)


class RecordRow(SQLModel, table=True):
    __tablename__ = "records"
    __table_args__ = (UniqueConstraint("signer", "nonce", name="uq_records_signer_nonce"),)

    idx: int = Field(sa_column=_bigint_pk())
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    kind: str = Field(index=True)
    signer: str  # looked up through the (signer, nonce) index: its leading column
    nonce: str
    integrated_at: str


class MerkleNodeRow(SQLModel, table=True):
    """Hash of the complete subtree of 2**level leaves starting at leaf idx * 2**level."""

    __tablename__ = "merkle_nodes"

    level: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=_bigint_pk())
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class CheckpointRow(SQLModel, table=True):
    __tablename__ = "checkpoints"

    size: int = Field(sa_column=_bigint_pk())
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    created_at: str


class LogHeadRow(SQLModel, table=True):
    __tablename__ = "log_head"

    id: int = Field(primary_key=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    last_leaf_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class MetaRow(SQLModel, table=True):
    """Facts fixed at init: origin, log verifier key, operator id."""

    __tablename__ = "ledger_meta"

    name: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))


class ParticipantRow(SQLModel, table=True):
    __tablename__ = "participants"

    participant_id: str = Field(primary_key=True)
    legal_name: str
    role: str = Field(index=True)
    country: str
    region: str
    registered_index: int = Field(sa_column=Column(BigInteger, nullable=False))


class ParticipantKeyRow(SQLModel, table=True):
    """A participant's key, valid for records after ``added_index`` up to ``ended_index``."""

    __tablename__ = "participant_keys"
    __table_args__ = (Index("ix_participant_keys_participant", "participant_id"),)

    key_id: str = Field(primary_key=True)
    participant_id: str
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    added_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    ended_index: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    end_reason: str | None = None


class BatchRow(SQLModel, table=True):
    """Read model of a registered batch; the record itself holds the signed payload."""

    __tablename__ = "batches"
    __table_args__ = (
        Index("ix_batches_product_form", "product_form"),
        Index("ix_batches_period", "period_start", "period_end"),
    )

    smelter_id: str = Field(primary_key=True)
    batch_id: str = Field(primary_key=True)
    record_index: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    product_form: str
    alloy: str
    route: str
    mass_kg: int = Field(sa_column=Column(BigInteger, nullable=False))
    period_start: str
    period_end: str
    site: str
    region: str
    declared_kg_co2e_per_t: int
    declared_boundary: str
    computed_kg_co2e_per_t: int | None = None
    computed_scope1_2_kg_co2e_per_t: int | None = None
    footprint_check: str
    #: Certificate-backed renewable share and total recycled share, in parts per million,
    #: so they can be filtered and sorted as integers.
    renewable_share_ppm: int
    recycled_total_ppm: int
    derived: str = Field(sa_column=Column(Text, nullable=False))
    footprint: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    registered_at: str


class CertificateClaimRow(SQLModel, table=True):
    """Green-electricity certificate energy claimed by a batch (see batches/certificates.py)."""

    __tablename__ = "certificate_claims"
    __table_args__ = (Index("ix_certificate_claims_key", "claim_key", "claim_type"),)

    id: int | None = Field(default=None, primary_key=True)
    claim_key: str
    claim_type: str  # "range" (serial interval) or "id" (amounts add up)
    first_serial: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    last_serial: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    claimed_kwh: int = Field(sa_column=Column(BigInteger, nullable=False))
    total_kwh: int = Field(sa_column=Column(BigInteger, nullable=False))
    smelter_id: str
    batch_id: str
    record_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    #: For the GEC serials a contract carried: the contract (``SCHEME:id``) claimed with them.
    via: str | None = Field(default=None, index=True)


class AccreditationRow(SQLModel, table=True):
    """An operator's grant of accreditation to an evaluation centre (``accreditation.grant``).

    ``rulesets`` and ``product_forms`` are JSON lists (``["*"]`` means every rule set;
    ``product_forms`` None means every form). A withdrawal ends every grant in force.
    """

    __tablename__ = "accreditations"
    __table_args__ = (Index("ix_accreditations_participant", "participant_id"),)

    granted_index: int = Field(sa_column=_bigint_pk())
    participant_id: str
    rulesets: str = Field(sa_column=Column(Text, nullable=False))
    product_forms: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    valid_from: str
    valid_until: str
    withdrawn_index: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    withdraw_reason: str | None = None


class RulesetRow(SQLModel, table=True):
    """A published rule set version; (ruleset_id, version) is unique forever."""

    __tablename__ = "rulesets"

    ruleset_id: str = Field(primary_key=True)
    version: str = Field(primary_key=True)
    publisher_id: str
    record_index: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    document: str = Field(sa_column=Column(Text, nullable=False))
    published_at: str


class GradeRow(SQLModel, table=True):
    """A grade issued to a batch (``grade.issue``), with the facts it was checked against."""

    __tablename__ = "grades"
    __table_args__ = (Index("ix_grades_batch", "smelter_id", "batch_id"),)

    record_index: int = Field(sa_column=_bigint_pk())
    smelter_id: str
    batch_id: str
    ruleset_id: str
    ruleset_version: str
    grade: str
    issuer_id: str
    issued_at: str
    expires_on: str
    evaluation_date: str | None = None
    facts: str = Field(sa_column=Column(Text, nullable=False))
    revoked_index: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    revoke_reason: str | None = None


class LotRow(SQLModel, table=True):
    """A lot: metal addressable as ``(ns, lot_id)`` with a holder and an available mass.

    Every registered batch is a lot in its smelter's namespace; child lots (splits,
    partial transfers) and transform outputs are lots in their creator's namespace. The
    integer ``id`` is what ``lot_edges`` link, so lineage walks compare integers.
    Shares are exact decimal strings (rounded only when shown); see ledger/custody/.
    """

    __tablename__ = "lots"
    __table_args__ = (
        UniqueConstraint("ns", "lot_id", name="uq_lots_ns_lot_id"),
        Index("ix_lots_holder", "holder_id"),
    )

    # Typed as stored rows have it (the database assigns it when the row is flushed; no
    # code reads the id of a lot it has not yet added and flushed).
    id: int = Field(default=None, primary_key=True)
    ns: str
    lot_id: str
    origin: str  # batch | split | transfer | transform
    created_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    holder_id: str
    mass_kg: int = Field(sa_column=Column(BigInteger, nullable=False))
    available_kg: int = Field(sa_column=Column(BigInteger, nullable=False))
    #: The record index and recipient of a transfer of this lot awaiting acceptance.
    pending_index: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    pending_to: str | None = None
    product_form: str
    footprint_kg_co2e_per_t: int
    footprint_basis: str  # computed | declared | declared_scope1_2 | derived
    #: Metal that went into the operation that made the lot (all of it for a transform,
    #: lots and external inputs), and the external part of it by type.
    input_kg: int = Field(sa_column=Column(BigInteger, nullable=False))
    external_pre_kg: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    external_post_kg: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    external_primary_kg: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    recycled_pre_share: str
    recycled_post_share: str
    #: Certificate-backed share of the electricity behind the lot's metal (kWh-weighted).
    renewable_share: str
    #: kWh of electricity behind each tonne of the lot's metal (own, upstream, process).
    electricity_kwh_per_t: str = "0"
    #: Share of the lot's metal that is primary, and the green-power share of that primary
    #: metal (the certified share of the electrolysis kWh behind it).
    primary_share: str = "0"
    primary_green_share: str = "0"
    derivation: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class LotEdgeRow(SQLModel, table=True):
    """Metal of ``parent`` that went into ``child`` (split, partial transfer, transform).

    For a transform, ``mass_kg`` is what the operation consumed of the parent, the same on
    every output; the child's share of it is ``mass_kg / child.input_kg``.
    """

    __tablename__ = "lot_edges"
    __table_args__ = (
        Index("ix_lot_edges_child", "child", "parent"),
        Index("ix_lot_edges_parent", "parent", "child"),
    )

    id: int | None = Field(default=None, primary_key=True)
    parent: int = Field(foreign_key="lots.id")
    child: int = Field(foreign_key="lots.id")
    mass_kg: int = Field(sa_column=Column(BigInteger, nullable=False))
    operation: str  # split | transfer | remelt | cast | roll | extrude
    record_index: int = Field(sa_column=Column(BigInteger, nullable=False))


class LotEventRow(SQLModel, table=True):
    """One record touching one lot: the lot's custody history, in record order."""

    __tablename__ = "lot_events"
    __table_args__ = (Index("ix_lot_events_lot", "lot", "record_index"),)

    id: int | None = Field(default=None, primary_key=True)
    lot: int = Field(foreign_key="lots.id")
    record_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    kind: str
    role: str
    mass_kg: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    counterpart: str | None = None
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class TransferRow(SQLModel, table=True):
    """A ``custody.transfer``: ``lot`` (the lot handed over) from one holder to another."""

    __tablename__ = "custody_transfers"
    __table_args__ = (Index("ix_custody_transfers_lot", "lot", "record_index"),)

    record_index: int = Field(sa_column=_bigint_pk())
    lot: int = Field(foreign_key="lots.id")
    from_id: str
    to_id: str
    mass_kg: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str  # pending | accepted | cancelled | done (no acceptance asked)
    settled_index: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class CustodyPolicyRow(SQLModel, table=True):
    """A participant's custody policy (``custody.policy``); the latest one is in force."""

    __tablename__ = "custody_policies"

    participant_id: str = Field(primary_key=True)
    require_acceptance: bool
    record_index: int = Field(sa_column=Column(BigInteger, nullable=False))


class ApiTokenRow(SQLModel, table=True):
    """An API token a participant reads with; only the SHA-256 of its secret is stored.

    Times are ``statements.utc_now()`` strings (fixed width, so they compare as text).
    Not part of the log: issuing or revoking a token writes no record.
    """

    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_participant", "participant_id"),)

    token_id: str = Field(primary_key=True)
    participant_id: str
    secret_sha256: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    label: str | None = None
    created_at: str
    expires_at: str | None = None
    revoked_at: str | None = None


class DisclosureRow(SQLModel, table=True):
    """The disclosures that opened the digests of record ``record_index``
    (docs/confidentiality.md), decoys left out.

    Never part of a record, a proof or a checkpoint: served only to readers the read
    policy lets see them (``ledger/visibility.py``). ``disclosures`` is a JSON array of the
    disclosure arrays in submission order; each one's digest is SHA-256 over its RFC 8785
    bytes, which the audit recomputes.
    """

    __tablename__ = "disclosures"

    record_index: int = Field(sa_column=_bigint_pk())
    disclosures: str = Field(sa_column=Column(Text, nullable=False))


class DisclosureGrantRow(SQLModel, table=True):
    """A smelter's ``disclosure.grant``: ``grantee_id`` may read the disclosures of its
    batch ``batch_id`` (None: of all its batches) until ``revoked_index``."""

    __tablename__ = "disclosure_grants"
    __table_args__ = (Index("ix_disclosure_grants_grantee", "grantee_id", "smelter_id"),)

    granted_index: int = Field(sa_column=_bigint_pk())
    smelter_id: str
    grantee_id: str
    batch_id: str | None = None
    revoked_index: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
