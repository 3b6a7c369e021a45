"""merge the payments branches into one head; index received FX transfers

The identity, sandbox, payment flows, bills, funding and offers migrations each grew from
0001 on a branch of their own; this revision joins them so `alembic upgrade head`
works again, and adds the index the history read model needs to list the FX transfers
a user received (`fx_quotes` is in 0004, the history in 0007).

Revision ID: 0008
Revises: 0002, 0003, 0004, 0005, 0006, 0007
Create Date: 2026-11-24 19:30:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0008'
down_revision: tuple[str, ...] = ('0002', '0003', '0004', '0005', '0006', '0007')
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_fx_quotes_recipient_created", "fx_quotes", ["recipient_user_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_fx_quotes_recipient_created", table_name="fx_quotes")
