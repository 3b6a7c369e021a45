"""consumed events: which consumer handled which outbox event

Consumers of relayed events record each event id here in the transaction of their
effect, so an event the relay sends twice has one effect (pacioli.ledger.outbox).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 20:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'consumed_events',
        sa.Column('consumer', sa.Text(), nullable=False),
        sa.Column('event_id', sa.Uuid(), nullable=False),
        sa.Column('consumed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('consumer', 'event_id', name=op.f('pk_consumed_events')),
    )


def downgrade() -> None:
    op.drop_table('consumed_events')
