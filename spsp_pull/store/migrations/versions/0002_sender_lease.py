"""The sending-stream lease on pointers (one stream sends per pointer at a time, across instances), and the
schedule origin of agreement versions (month-end boundaries stay put across revisions).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import spsp_pull.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pointers") as batch:
        batch.add_column(sa.Column("sender", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("sender_until", spsp_pull.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("schedule_origin", spsp_pull.store.types.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("pointer_versions") as batch:
        batch.add_column(
            sa.Column("schedule_origin", spsp_pull.store.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("pointer_versions") as batch:
        batch.drop_column("schedule_origin")
    with op.batch_alter_table("pointers") as batch:
        batch.drop_column("schedule_origin")
        batch.drop_column("sender_until")
        batch.drop_column("sender")
