"""settlement: items, batches, schedules, QR refunds, payout tokens, expired QR codes

`settlement_items` queues what merchants are owed (one row per payment or refund);
`settlement_batches` records each settlement and its payout; `settlement_schedules`
keeps a merchant's own cycle. `qr_refunds` records refunds of QR payments. The
merchant's settlement account gains the gateway's payout token and a destination id,
and a dynamic QR code can now be `expired` by the sweep. Money moves in the ledger.

Revision ID: 0013
Revises: 0009
Create Date: 2026-11-24 20:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric(39, 0)
INSTANT = sa.DateTime(timezone=True)
UNFINISHED = "status IN ('created', 'moved', 'payout_pending')"


def upgrade() -> None:
    _batches_and_items()
    op.create_table(
        'settlement_schedules',
        sa.Column('merchant_id', sa.Uuid(), nullable=False),
        sa.Column('cycle_days', sa.Integer(), nullable=False),
        sa.Column('updated_at', INSTANT, nullable=False),
        sa.PrimaryKeyConstraint('merchant_id', name='pk_settlement_schedules'),
        sa.CheckConstraint('cycle_days BETWEEN 0 AND 30',
                           name='ck_settlement_schedules_cycle_days'),
    )
    _qr_refunds()
    _payout_tokens()
    _expired_qr_codes()


def _batches_and_items() -> None:
    op.create_table(
        'settlement_batches',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('merchant_id', sa.Uuid(), nullable=False),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('cutoff_at', INSTANT, nullable=False),
        sa.Column('gross_minor', AMOUNT, nullable=False),
        sa.Column('fees_minor', AMOUNT, nullable=False),
        sa.Column('refunds_minor', AMOUNT, nullable=False),
        sa.Column('net_minor', AMOUNT, nullable=False),
        sa.Column('item_count', sa.Integer(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('waiting_reason', sa.Text(), nullable=True),
        sa.Column('gateway', sa.Text(), nullable=True),
        sa.Column('destination_id', sa.Uuid(), nullable=True),
        sa.Column('payout_token', sa.Text(), nullable=True),
        sa.Column('move_transfer_id', sa.Uuid(), nullable=True),
        sa.Column('hold_transfer_id', sa.Uuid(), nullable=True),
        sa.Column('resolution_transfer_id', sa.Uuid(), nullable=True),
        sa.Column('payout_reference', sa.Text(), nullable=True),
        sa.Column('failure_code', sa.Text(), nullable=True),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('updated_at', INSTANT, nullable=False),
        sa.Column('completed_at', INSTANT, nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_settlement_batches'),
        sa.UniqueConstraint('gateway', 'payout_reference',
                            name='uq_settlement_batches_gateway_payout_reference'),
        sa.CheckConstraint(
            "status IN ('created', 'moved', 'payout_pending', 'paid', 'failed')",
            name='ck_settlement_batches_status'),
        sa.CheckConstraint('gross_minor - fees_minor - refunds_minor = net_minor',
                           name='ck_settlement_batches_adds_up'),
        sa.CheckConstraint('net_minor > 0 AND item_count > 0',
                           name='ck_settlement_batches_net_positive'),
    )
    op.create_index('ix_settlement_batches_merchant', 'settlement_batches',
                    ['merchant_id', 'id'])
    op.create_index('ix_settlement_batches_unfinished', 'settlement_batches', ['id'],
                    postgresql_where=sa.text(UNFINISHED))
    op.create_table(
        'settlement_items',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('merchant_id', sa.Uuid(), nullable=False),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('source_kind', sa.Text(), nullable=False),
        sa.Column('source_id', sa.Uuid(), nullable=False),
        sa.Column('gross_minor', AMOUNT, nullable=False),
        sa.Column('fee_minor', AMOUNT, nullable=False),
        sa.Column('net_minor', AMOUNT, nullable=False),
        sa.Column('completed_at', INSTANT, nullable=False),
        sa.Column('batch_id', sa.Uuid(), nullable=True),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_settlement_items'),
        sa.ForeignKeyConstraint(['batch_id'], ['settlement_batches.id'],
                                name='fk_settlement_items_batch_id'),
        sa.UniqueConstraint('source_kind', 'source_id',
                            name='uq_settlement_items_source_kind_source_id'),
        sa.CheckConstraint('gross_minor - fee_minor = net_minor',
                           name='ck_settlement_items_adds_up'),
        sa.CheckConstraint("source_kind ~ '^[a-z][a-z0-9_]{0,63}$'",
                           name='ck_settlement_items_source_kind'),
    )
    op.create_index('ix_settlement_items_unbatched', 'settlement_items',
                    ['merchant_id', 'currency', 'completed_at'],
                    postgresql_where=sa.text('batch_id IS NULL'))
    op.create_index('ix_settlement_items_batch', 'settlement_items', ['batch_id', 'id'])


def _qr_refunds() -> None:
    op.create_table(
        'qr_refunds',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('payment_id', sa.Uuid(), nullable=False),
        sa.Column('merchant_id', sa.Uuid(), nullable=False),
        sa.Column('payer_user_id', sa.Uuid(), nullable=False),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('amount_minor', AMOUNT, nullable=False),
        sa.Column('fee_returned_minor', AMOUNT, nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('failure_code', sa.Text(), nullable=True),
        sa.Column('transfer_id', sa.Uuid(), nullable=True),
        sa.Column('idempotency_key', sa.Text(), nullable=False),
        sa.Column('request_hash', sa.Text(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('completed_at', INSTANT, nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_qr_refunds'),
        sa.UniqueConstraint('transfer_id', name='uq_qr_refunds_transfer_id'),
        sa.UniqueConstraint('merchant_id', 'idempotency_key',
                            name='uq_qr_refunds_merchant_id_idempotency_key'),
        sa.CheckConstraint('amount_minor > 0 AND fee_returned_minor >= 0 '
                           'AND fee_returned_minor <= amount_minor',
                           name='ck_qr_refunds_amounts'),
        sa.CheckConstraint("source IN ('pending_settlement', 'merchant_balance')",
                           name='ck_qr_refunds_source'),
        sa.CheckConstraint("status IN ('created', 'succeeded', 'failed')",
                           name='ck_qr_refunds_status'),
    )
    op.create_index('ix_qr_refunds_payment', 'qr_refunds', ['payment_id', 'id'])


def _payout_tokens() -> None:
    table = 'merchant_settlement_accounts'
    op.add_column(table, sa.Column('payout_gateway', sa.Text(), nullable=True))
    op.add_column(table, sa.Column('payout_token', sa.Text(), nullable=True))
    op.add_column(table, sa.Column('destination_id', sa.Uuid(), nullable=True))
    op.execute(f'UPDATE {table} SET destination_id = gen_random_uuid()')
    op.alter_column(table, 'destination_id', nullable=False)


def _expired_qr_codes() -> None:
    op.drop_constraint('ck_merchant_qr_codes_status', 'merchant_qr_codes', type_='check')
    op.create_check_constraint('ck_merchant_qr_codes_status', 'merchant_qr_codes',
                               "status IN ('active', 'used', 'revoked', 'expired')")
    # The expiry sweep's scan: active codes with a deadline, by deadline.
    op.create_index('ix_merchant_qr_codes_expiring', 'merchant_qr_codes', ['expires_at'],
                    postgresql_where=sa.text("status = 'active' AND expires_at IS NOT NULL"))


def downgrade() -> None:
    op.drop_index('ix_merchant_qr_codes_expiring', table_name='merchant_qr_codes')
    op.drop_constraint('ck_merchant_qr_codes_status', 'merchant_qr_codes', type_='check')
    # An expired code was active past its deadline, which the payment flow also refuses.
    op.execute("UPDATE merchant_qr_codes SET status = 'active' WHERE status = 'expired'")
    op.create_check_constraint('ck_merchant_qr_codes_status', 'merchant_qr_codes',
                               "status IN ('active', 'used', 'revoked')")
    for column in ('destination_id', 'payout_token', 'payout_gateway'):
        op.drop_column('merchant_settlement_accounts', column)
    op.drop_index('ix_qr_refunds_payment', table_name='qr_refunds')
    op.drop_table('qr_refunds')
    op.drop_table('settlement_schedules')
    op.drop_index('ix_settlement_items_batch', table_name='settlement_items')
    op.drop_index('ix_settlement_items_unbatched', table_name='settlement_items')
    op.drop_table('settlement_items')
    op.drop_index('ix_settlement_batches_unfinished', table_name='settlement_batches')
    op.drop_index('ix_settlement_batches_merchant', table_name='settlement_batches')
    op.drop_table('settlement_batches')
