"""sandbox gateway: sandbox_* tables, and gateway_events for received callbacks

The sandbox processor plays an external system: its instruments (tokens, brand, last
four, behaviour; never a card number), operations, idempotency keys and queued
callbacks live in tables of its own. `gateway_events` is Pacioli's side: each callback
received, stored once per (gateway, event_id).

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-24 18:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        'sandbox_instruments',
        sa.Column('token', sa.Text(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('brand', sa.Text(), nullable=True),
        sa.Column('last4', sa.Text(), nullable=False),
        sa.Column('exp_month', sa.SmallInteger(), nullable=True),
        sa.Column('exp_year', sa.SmallInteger(), nullable=True),
        sa.Column('routing_number', sa.Text(), nullable=True),
        sa.Column('behavior', sa.Text(), nullable=False),
        _timestamp('created_at'),
        sa.CheckConstraint("kind IN ('card', 'bank_account')",
                           name='ck_sandbox_instruments_kind'),
        sa.PrimaryKeyConstraint('token', name='pk_sandbox_instruments'),
    )
    op.create_table(
        'sandbox_operations',
        sa.Column('reference', sa.Text(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('instrument_token', sa.Text(), nullable=False),
        sa.Column('parent_reference', sa.Text(), nullable=True),
        sa.Column('amount_minor', sa.Numeric(39, 0), nullable=False),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('decline_code', sa.Text(), nullable=True),
        sa.Column('captured_minor', sa.Numeric(39, 0), server_default=sa.text('0'),
                  nullable=False),
        sa.Column('refunded_minor', sa.Numeric(39, 0), server_default=sa.text('0'),
                  nullable=False),
        sa.Column('outcome_status', sa.Text(), nullable=True),
        sa.Column('outcome_decline_code', sa.Text(), nullable=True),
        _timestamp('outcome_due_at', nullable=True),
        _timestamp('deadline_at', nullable=True),
        sa.Column('sequence', sa.Integer(), server_default=sa.text('0'), nullable=False),
        _timestamp('created_at'),
        _timestamp('updated_at'),
        sa.CheckConstraint("kind IN ('payment', 'refund', 'payout')",
                           name='ck_sandbox_operations_kind'),
        sa.CheckConstraint('amount_minor > 0', name='ck_sandbox_operations_amount_positive'),
        sa.ForeignKeyConstraint(['instrument_token'], ['sandbox_instruments.token'],
                                name='fk_sandbox_operations_instrument_token'),
        sa.PrimaryKeyConstraint('reference', name='pk_sandbox_operations'),
    )
    op.create_index('ix_sandbox_operations_outcome_due_at', 'sandbox_operations',
                    ['outcome_due_at'], postgresql_where=sa.text('outcome_due_at IS NOT NULL'))
    op.create_table(
        'sandbox_requests',
        sa.Column('idempotency_key', sa.Text(), nullable=False),
        sa.Column('operation', sa.Text(), nullable=False),
        sa.Column('request_hash', sa.LargeBinary(), nullable=False),
        sa.Column('response', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _timestamp('created_at'),
        sa.PrimaryKeyConstraint('idempotency_key', name='pk_sandbox_requests'),
    )
    op.create_table(
        'sandbox_callbacks',
        sa.Column('event_id', sa.Text(), nullable=False),
        sa.Column('gateway_reference', sa.Text(), nullable=False),
        sa.Column('event_type', sa.Text(), nullable=False),
        sa.Column('sequence', sa.Integer(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        _timestamp('due_at'),
        sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('last_status', sa.Integer(), nullable=True),
        _timestamp('delivered_at', nullable=True),
        _timestamp('abandoned_at', nullable=True),
        _timestamp('created_at'),
        sa.PrimaryKeyConstraint('event_id', name='pk_sandbox_callbacks'),
    )
    op.create_index('ix_sandbox_callbacks_due_at', 'sandbox_callbacks', ['due_at'],
                    postgresql_where=sa.text('delivered_at IS NULL AND abandoned_at IS NULL'))
    op.create_index('ix_sandbox_callbacks_gateway_reference', 'sandbox_callbacks',
                    ['gateway_reference', 'sequence'])
    op.create_table(
        'gateway_events',
        sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column('gateway', sa.Text(), nullable=False),
        sa.Column('event_id', sa.Text(), nullable=False),
        sa.Column('event_type', sa.Text(), nullable=False),
        sa.Column('gateway_reference', sa.Text(), nullable=False),
        sa.Column('sequence', sa.Integer(), nullable=False),
        _timestamp('occurred_at'),
        sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _timestamp('received_at'),
        _timestamp('handled_at', nullable=True),
        _timestamp('handling_until', nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_gateway_events'),
        sa.UniqueConstraint('gateway', 'event_id', name='uq_gateway_events_gateway_event_id'),
    )
    op.create_index('ix_gateway_events_reference', 'gateway_events',
                    ['gateway', 'gateway_reference', 'sequence'])


def downgrade() -> None:
    op.drop_index('ix_gateway_events_reference', table_name='gateway_events')
    op.drop_table('gateway_events')
    op.drop_index('ix_sandbox_callbacks_gateway_reference', table_name='sandbox_callbacks')
    op.drop_index('ix_sandbox_callbacks_due_at', table_name='sandbox_callbacks')
    op.drop_table('sandbox_callbacks')
    op.drop_table('sandbox_requests')
    op.drop_index('ix_sandbox_operations_outcome_due_at', table_name='sandbox_operations')
    op.drop_table('sandbox_operations')
    op.drop_table('sandbox_instruments')
