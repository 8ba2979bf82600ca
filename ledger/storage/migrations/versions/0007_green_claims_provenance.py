"""green claims: lots carry the electricity behind their metal; contracts claim GECs

Lots gain the kWh behind each tonne of their metal, the share of it that is primary and
the green-power share of that primary metal (kWh-weighted shares through custody,
footprint method alu-ledger-footprint/2). Lots of registered batches are backfilled from
their derived values; lots made by splits, transfers and transforms before this change
carry no provenance ("0"), so they never inflate a share. Certificate claims gain ``via``:
the contract a GEC serial was claimed through, and GEC range claims are re-keyed to the
code layout of schemas/certificates/gec-code.json (project, production month and classes;
the sequence is the serial) so that old and new claims of one certificate meet.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 17:30:00
"""

import json
from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The layout of the 15 digits after a GEC code's 17-digit project (gec-code.json).
MONTH, SEQUENCE = 6, 7


def upgrade() -> None:
    with op.batch_alter_table("lots", schema=None) as batch_op:
        for column in ("electricity_kwh_per_t", "primary_share", "primary_green_share"):
            batch_op.add_column(
                sa.Column(
                    column, sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default="0"
                )
            )
    with op.batch_alter_table("certificate_claims", schema=None) as batch_op:
        batch_op.add_column(sa.Column("via", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index("ix_certificate_claims_via", ["via"], unique=False)
    _backfill_batch_lots()
    _rekey_gec_claims()


def _backfill_batch_lots() -> None:
    bind = op.get_bind()
    lots, batches = (
        sa.table(
            "lots",
            sa.column("ns"),
            sa.column("lot_id"),
            sa.column("origin"),
            sa.column("electricity_kwh_per_t"),
            sa.column("primary_share"),
        ),
        sa.table("batches", sa.column("smelter_id"), sa.column("batch_id"), sa.column("derived")),
    )
    for smelter_id, batch_id, derived in bind.execute(sa.select(batches)).all():
        values = json.loads(derived)
        primary = Decimal(1) - Decimal(values["recycled_content_total"])
        bind.execute(
            lots.update()
            .where(lots.c.ns == smelter_id, lots.c.lot_id == batch_id, lots.c.origin == "batch")
            .values(
                electricity_kwh_per_t=values["electricity_kwh_per_t"], primary_share=str(primary)
            )
        )


def _rekey_gec_claims() -> None:
    bind = op.get_bind()
    claims = sa.table(
        "certificate_claims",
        sa.column("id"),
        sa.column("claim_key"),
        sa.column("claim_type"),
        sa.column("first_serial"),
        sa.column("last_serial"),
    )
    query = sa.select(claims).where(
        claims.c.claim_type == "range", claims.c.claim_key.like("GEC:%")
    )
    for row in bind.execute(query).all():
        project = row.claim_key[4:]
        if len(project) != 17:
            continue  # already in the new layout
        first, last = f"{row.first_serial:015d}", f"{row.last_serial:015d}"
        head = (first[:MONTH], first[MONTH + SEQUENCE :])
        if head != (last[:MONTH], last[MONTH + SEQUENCE :]):
            continue  # not one month and class: left under its old key
        bind.execute(
            claims.update()
            .where(claims.c.id == row.id)
            .values(
                claim_key=f"GEC:{project}{head[0]}/{head[1]}",
                first_serial=int(first[MONTH : MONTH + SEQUENCE]),
                last_serial=int(last[MONTH : MONTH + SEQUENCE]),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("certificate_claims", schema=None) as batch_op:
        batch_op.drop_index("ix_certificate_claims_via")
        batch_op.drop_column("via")
    with op.batch_alter_table("lots", schema=None) as batch_op:
        for column in ("primary_green_share", "primary_share", "electricity_kwh_per_t"):
            batch_op.drop_column(column)
