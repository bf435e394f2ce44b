"""CHECK constraints on the two states 0008 left as free text: a webhook message's state and an on-chain
payout batch's state hold one of their enum's values (`spsp_pull.domain.states`), on every backend.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The values as of this revision (a later change of an enum is a migration of its own).
_CHECKS: dict[str, tuple[str, ...]] = {
    "webhook_outbox": ("pending", "delivered", "dead", "withdrawn"),
    "payout_batches": ("building", "signed", "broadcast", "rejected", "abandoned"),
}


def upgrade() -> None:
    for table, values in _CHECKS.items():
        with op.batch_alter_table(table) as batch:
            allowed = ", ".join(f"'{value}'" for value in values)
            batch.create_check_constraint(op.f(f"ck_{table}_state"), f"state IN ({allowed})")


def downgrade() -> None:
    for table in reversed(_CHECKS):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"ck_{table}_state"), type_="check")
