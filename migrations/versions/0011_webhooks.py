"""webhooks: merchants' endpoints, one delivery per (endpoint, event), and every attempt

`webhook_endpoints` holds a merchant's URL, the event types it wants (NULL: all), its
health and its signing secrets (the current one and, during a rotation's grace period,
the previous one); the secrets are stored as they are, since signing needs them.
`webhook_deliveries` is one event for one endpoint with its retry state (the schedule
lives here, not in the broker); UNIQUE (endpoint_id, event_id) makes a re-sent event one
delivery. `webhook_attempts` logs every HTTP attempt with its status code or error and
its latency.

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-24 21:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0011'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'webhook_endpoints',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('merchant_id', sa.Uuid(), sa.ForeignKey('merchants.id'), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('event_types', postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('disabled_reason', sa.Text(), nullable=True),
        sa.Column('secret', sa.Text(), nullable=False),
        sa.Column('previous_secret', sa.Text(), nullable=True),
        sa.Column('previous_secret_expires_at', INSTANT, nullable=True),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('updated_at', INSTANT, nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_webhook_endpoints'),
        sa.CheckConstraint("status IN ('active', 'failing', 'disabled')",
                           name='ck_webhook_endpoints_status'),
        sa.CheckConstraint(
            "(status = 'disabled' AND disabled_reason IN ('merchant', 'gone'))"
            " OR (status <> 'disabled' AND disabled_reason IS NULL)",
            name='ck_webhook_endpoints_disabled_reason'),
        sa.CheckConstraint(
            '(previous_secret IS NULL) = (previous_secret_expires_at IS NULL)',
            name='ck_webhook_endpoints_previous_secret'),
    )
    op.create_index('ix_webhook_endpoints_merchant_id', 'webhook_endpoints',
                    ['merchant_id', 'id'])

    op.create_table(
        'webhook_deliveries',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('endpoint_id', sa.Uuid(), nullable=False),
        sa.Column('merchant_id', sa.Uuid(), nullable=False),
        sa.Column('event_id', sa.Uuid(), nullable=False),
        sa.Column('event_type', sa.Text(), nullable=False),
        sa.Column('payload', postgresql.JSONB(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('attempt_count', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', INSTANT, nullable=True),
        sa.Column('last_attempt_at', INSTANT, nullable=True),
        sa.Column('last_status_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('updated_at', INSTANT, nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_webhook_deliveries'),
        sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], ondelete='CASCADE',
                                name='fk_webhook_deliveries_endpoint_id'),
        sa.UniqueConstraint('endpoint_id', 'event_id', name='uq_webhook_deliveries_endpoint_event'),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')",
                           name='ck_webhook_deliveries_status'),
        sa.CheckConstraint("(status = 'pending') = (next_attempt_at IS NOT NULL)",
                           name='ck_webhook_deliveries_next_attempt'),
        sa.CheckConstraint('attempt_count >= 0', name='ck_webhook_deliveries_attempt_count'),
    )
    # The retry job's scan: pending deliveries in the order they fall due.
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['next_attempt_at'],
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index('ix_webhook_deliveries_endpoint_id', 'webhook_deliveries',
                    ['endpoint_id', 'id'])

    op.create_table(
        'webhook_attempts',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('delivery_id', sa.Uuid(), nullable=False),
        sa.Column('trigger', sa.Text(), nullable=False),
        sa.Column('attempted_at', INSTANT, nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('latency_ms', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_webhook_attempts'),
        sa.ForeignKeyConstraint(['delivery_id'], ['webhook_deliveries.id'], ondelete='CASCADE',
                                name='fk_webhook_attempts_delivery_id'),
        sa.CheckConstraint("trigger IN ('scheduled', 'manual')",
                           name='ck_webhook_attempts_trigger'),
        sa.CheckConstraint('status_code IS NOT NULL OR error IS NOT NULL',
                           name='ck_webhook_attempts_outcome'),
    )
    op.create_index('ix_webhook_attempts_delivery_id', 'webhook_attempts',
                    ['delivery_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_webhook_attempts_delivery_id', table_name='webhook_attempts')
    op.drop_table('webhook_attempts')
    op.drop_index('ix_webhook_deliveries_endpoint_id', table_name='webhook_deliveries')
    op.drop_index('ix_webhook_deliveries_due', table_name='webhook_deliveries')
    op.drop_table('webhook_deliveries')
    op.drop_index('ix_webhook_endpoints_merchant_id', table_name='webhook_endpoints')
    op.drop_table('webhook_endpoints')
