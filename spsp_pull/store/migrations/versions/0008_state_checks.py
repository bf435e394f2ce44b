"""CHECK constraints on the ledger's states and kinds: a reservation's state and kind, a pull's kind and a
payout's status hold one of their enum's values (`spsp_pull.domain.states`), on every backend.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The values as of this revision (a later change of an enum is a migration of its own).
_CHECKS: dict[str, dict[str, tuple[str, ...]]] = {
    "reservations": {
        "kind": ("stream", "payout"),
        "state": ("open", "settled", "released", "recovered"),
    },
    "pulls": {"kind": ("stream", "payout", "recovered")},
    "payouts": {
        "status": ("NEW", "QUEUED", "IN_FLIGHT", "SENT", "CONFIRMED", "EXPIRED", "CANCELLED", "FAILED"),
    },
}


def upgrade() -> None:
    for table, columns in _CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for column, values in columns.items():
                allowed = ", ".join(f"'{value}'" for value in values)
                batch.create_check_constraint(op.f(f"ck_{table}_{column}"), f"{column} IN ({allowed})")


def downgrade() -> None:
    for table, columns in reversed(_CHECKS.items()):
        with op.batch_alter_table(table) as batch:
            for column in reversed(columns):
                batch.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
