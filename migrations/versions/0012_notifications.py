"""notifications: the in-app feed, channel deliveries and low-balance alerts

`notifications` is each user's feed, unique on (user, source event, kind) so a re-sent
event notifies once; `notification_deliveries` has one row per notification and outside
channel, retried independently; `low_balance_alerts` keeps a user's threshold per currency
and whether an alert is outstanding (pacioli/payments/notification_tables.py).

Revision ID: 0012
Revises: 0009
Create Date: 2026-11-24 21:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0012'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'notifications',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('data', postgresql.JSONB(), nullable=False),
        sa.Column('source_event_id', sa.Uuid(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('read_at', INSTANT, nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_notifications'),
        sa.UniqueConstraint('user_id', 'source_event_id', 'kind',
                            name='uq_notifications_user_source_kind'),
    )
    # The feed, newest first; and the unread part of it (the badge count, the filter).
    op.create_index('ix_notifications_user_id_id', 'notifications', ['user_id', 'id'])
    op.create_index('ix_notifications_unread', 'notifications', ['user_id', 'id'],
                    postgresql_where=sa.text('read_at IS NULL'))

    op.create_table(
        'notification_deliveries',
        sa.Column('notification_id', sa.Uuid(), nullable=False),
        sa.Column('channel', sa.Text(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', INSTANT, nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('sent_at', INSTANT, nullable=True),
        sa.PrimaryKeyConstraint('notification_id', 'channel', name='pk_notification_deliveries'),
        sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'],
                                name='fk_notification_deliveries_notification_id'),
        sa.CheckConstraint("channel IN ('email', 'sms', 'push')",
                           name='ck_notification_deliveries_channel'),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')",
                           name='ck_notification_deliveries_status'),
        sa.CheckConstraint('attempts >= 0', name='ck_notification_deliveries_attempts'),
    )
    # What the delivery job claims: pending rows whose next attempt is due.
    op.create_index('ix_notification_deliveries_due', 'notification_deliveries',
                    ['next_attempt_at'], postgresql_where=sa.text("status = 'pending'"))

    op.create_table(
        'low_balance_alerts',
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('threshold_minor', sa.Numeric(39, 0), nullable=True),
        sa.Column('alerted_at', INSTANT, nullable=True),
        sa.Column('updated_at', INSTANT, nullable=False),
        sa.PrimaryKeyConstraint('user_id', 'currency', name='pk_low_balance_alerts'),
        sa.CheckConstraint('threshold_minor >= 0', name='ck_low_balance_alerts_threshold'),
    )


def downgrade() -> None:
    op.drop_table('low_balance_alerts')
    op.drop_index('ix_notification_deliveries_due', table_name='notification_deliveries')
    op.drop_table('notification_deliveries')
    op.drop_index('ix_notifications_unread', table_name='notifications')
    op.drop_index('ix_notifications_user_id_id', table_name='notifications')
    op.drop_table('notifications')
