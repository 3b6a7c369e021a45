"""funding: linked cards and bank accounts, top-ups and withdrawals

`funding_instruments` keeps the gateway's token, brand and last four digits of a card or
bank account a user linked (never the number or CVC); `topups` and `withdrawals` record
what a user asked to move and where it stands. The money moves in the ledger.

Revision ID: 0006
Revises: 0001
Create Date: 2026-11-24 18:35:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric(39, 0)
INSTANT = sa.DateTime(timezone=True)


def _flow_columns() -> list[sa.Column]:
    """The columns top-ups and withdrawals share."""
    return [
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('instrument_id', sa.Uuid(), nullable=False),
        sa.Column('gateway', sa.Text(), nullable=False),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('amount_minor', AMOUNT, nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('failure_code', sa.Text(), nullable=True),
        sa.Column('gateway_reference', sa.Text(), nullable=True),
        sa.Column('hold_transfer_id', sa.Uuid(), nullable=True),
        sa.Column('settlement_transfer_id', sa.Uuid(), nullable=True),
        sa.Column('idempotency_key', sa.Text(), nullable=False),
        sa.Column('request_hash', sa.Text(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('updated_at', INSTANT, nullable=False),
        sa.Column('completed_at', INSTANT, nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        'funding_instruments',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('gateway', sa.Text(), nullable=False),
        sa.Column('token', sa.Text(), nullable=False),
        sa.Column('brand', sa.Text(), nullable=True),
        sa.Column('last4', sa.Text(), nullable=False),
        sa.Column('exp_month', sa.Integer(), nullable=True),
        sa.Column('exp_year', sa.Integer(), nullable=True),
        sa.Column('routing_number', sa.Text(), nullable=True),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('idempotency_key', sa.Text(), nullable=False),
        sa.Column('request_hash', sa.Text(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('removed_at', INSTANT, nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_funding_instruments'),
        sa.UniqueConstraint('user_id', 'kind', 'idempotency_key',
                            name='uq_funding_instruments_user_kind_key'),
        sa.UniqueConstraint('gateway', 'token', name='uq_funding_instruments_gateway_token'),
        sa.CheckConstraint("kind IN ('card', 'bank_account')", name='ck_funding_instruments_kind'),
        sa.CheckConstraint("status IN ('active', 'removed')",
                           name='ck_funding_instruments_status'),
        sa.CheckConstraint("last4 ~ '^[0-9]{4}$'", name='ck_funding_instruments_last4'),
    )
    op.create_index('ix_funding_instruments_user_id', 'funding_instruments',
                    ['user_id', 'kind', 'id'])

    op.create_table(
        'topups',
        *_flow_columns(),
        sa.Column('source_kind', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_topups'),
        sa.UniqueConstraint('user_id', 'idempotency_key', name='uq_topups_user_id_key'),
        sa.CheckConstraint('amount_minor > 0', name='ck_topups_amount_positive'),
        sa.CheckConstraint(
            "status IN ('created', 'pending', 'authorized', 'succeeded', 'failed')",
            name='ck_topups_status'),
        sa.CheckConstraint("source_kind IN ('card', 'bank_account')",
                           name='ck_topups_source_kind'),
    )
    op.create_index('ix_topups_gateway_reference', 'topups', ['gateway', 'gateway_reference'],
                    unique=True)
    op.create_index('ix_topups_user_id_id', 'topups', ['user_id', 'id'])

    op.create_table(
        'withdrawals',
        *_flow_columns(),
        sa.PrimaryKeyConstraint('id', name='pk_withdrawals'),
        sa.UniqueConstraint('user_id', 'idempotency_key', name='uq_withdrawals_user_id_key'),
        sa.CheckConstraint('amount_minor > 0', name='ck_withdrawals_amount_positive'),
        sa.CheckConstraint("status IN ('created', 'pending', 'succeeded', 'failed')",
                           name='ck_withdrawals_status'),
    )
    op.create_index('ix_withdrawals_gateway_reference', 'withdrawals',
                    ['gateway', 'gateway_reference'], unique=True)
    op.create_index('ix_withdrawals_user_id_id', 'withdrawals', ['user_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_withdrawals_user_id_id', table_name='withdrawals')
    op.drop_index('ix_withdrawals_gateway_reference', table_name='withdrawals')
    op.drop_table('withdrawals')
    op.drop_index('ix_topups_user_id_id', table_name='topups')
    op.drop_index('ix_topups_gateway_reference', table_name='topups')
    op.drop_table('topups')
    op.drop_index('ix_funding_instruments_user_id', table_name='funding_instruments')
    op.drop_table('funding_instruments')
