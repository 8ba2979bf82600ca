"""records without their signer index

``ix_records_signer`` repeated the leading column of the unique ``(signer, nonce)`` index,
which answers every lookup by signer as well: a second B-tree written on every append
and read by no query.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 20:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_index("ix_records_signer")


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.create_index("ix_records_signer", ["signer"], unique=False)
