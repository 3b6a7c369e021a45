"""workers: the relay's per-aggregate index on the outbox, and the scheduled jobs table

`ix_outbox_unsent_aggregate` lets the relay check, for each event it claims, that no
earlier unsent event of the same aggregate is held elsewhere (pacioli.ledger.storage.
outbox_relay); partial, so sent events cost it nothing. `scheduled_jobs` holds when each
periodic job runs next; workers claim a due run with a conditional UPDATE of its row
(pacioli.workers.scheduler).

The index is built with a plain CREATE INDEX (inside the migration's transaction), which
blocks outbox inserts while it builds: quick on a fresh or small outbox. On a large live
outbox, create it first by hand with CREATE INDEX CONCURRENTLY under the same name.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 21:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.execute(
        'CREATE INDEX IF NOT EXISTS ix_outbox_unsent_aggregate'
        ' ON outbox (aggregate_type, aggregate_id, id) WHERE sent_at IS NULL'
    )
    op.create_table(
        'scheduled_jobs',
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('next_run_at', INSTANT, nullable=False),
        sa.Column('last_started_at', INSTANT, nullable=True),
        sa.Column('last_finished_at', INSTANT, nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduled_jobs')),
    )


def downgrade() -> None:
    op.drop_table('scheduled_jobs')
    op.execute('DROP INDEX IF EXISTS ix_outbox_unsent_aggregate')
