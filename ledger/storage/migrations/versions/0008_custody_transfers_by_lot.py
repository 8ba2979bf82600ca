"""custody transfers by lot

An index on ``custody_transfers (lot, record_index)``: a lot's transfers were found by
scanning the table, a cost that grew with the log.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 18:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("custody_transfers", schema=None) as batch_op:
        batch_op.create_index("ix_custody_transfers_lot", ["lot", "record_index"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("custody_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_custody_transfers_lot")
