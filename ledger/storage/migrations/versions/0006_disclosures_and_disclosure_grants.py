"""disclosures and disclosure grants

Disclosures of committed (confidential) payload members, kept apart from the records
they open, and the smelters' grants of read access to them (docs/confidentiality.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "disclosures",
        sa.Column("record_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("disclosures", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("record_index"),
    )
    op.create_table(
        "disclosure_grants",
        sa.Column("granted_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("smelter_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("grantee_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("batch_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("revoked_index", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("granted_index"),
    )
    with op.batch_alter_table("disclosure_grants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_disclosure_grants_grantee", ["grantee_id", "smelter_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("disclosure_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_disclosure_grants_grantee")
    op.drop_table("disclosure_grants")
    op.drop_table("disclosures")
