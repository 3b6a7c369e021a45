"""bill payments: bill_payments, and sandbox_biller_payments (the sandbox billers' state)

`bill_payments` records what a user asked to pay a biller and where it stands; the money
moves in the ledger (a pending transfer, posted or voided). `sandbox_biller_payments`
plays the billers' side: the payments submitted to the sandbox billers.

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-24 18:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric(39, 0)
INSTANT = sa.DateTime(timezone=True)
STATUSES = "('created', 'pending', 'succeeded', 'failed', 'refunded')"


def upgrade() -> None:
    op.create_table(
        'bill_payments',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('biller_id', sa.Text(), nullable=False),
        sa.Column('amount_rule', sa.Text(), nullable=False),
        sa.Column('customer_reference', sa.Text(), nullable=False),
        sa.Column('bill_reference', sa.Text(), nullable=True),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('amount_minor', AMOUNT, nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('failure_code', sa.Text(), nullable=True),
        sa.Column('biller_reference', sa.Text(), nullable=True),
        sa.Column('hold_transfer_id', sa.Uuid(), nullable=True),
        sa.Column('settlement_transfer_id', sa.Uuid(), nullable=True),
        sa.Column('idempotency_key', sa.Text(), nullable=False),
        sa.Column('request_hash', sa.Text(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('held_at', INSTANT, nullable=True),
        sa.Column('submitted_at', INSTANT, nullable=True),
        sa.Column('checked_at', INSTANT, nullable=True),
        sa.Column('completed_at', INSTANT, nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_bill_payments'),
        sa.UniqueConstraint('user_id', 'idempotency_key',
                            name='uq_bill_payments_user_id_idempotency_key'),
        sa.UniqueConstraint('hold_transfer_id', name='uq_bill_payments_hold_transfer_id'),
        sa.CheckConstraint('amount_minor > 0', name='ck_bill_payments_amount_positive'),
        sa.CheckConstraint(f'status IN {STATUSES}', name='ck_bill_payments_status'),
        sa.CheckConstraint("amount_rule IN ('exact', 'minimum', 'any')",
                           name='ck_bill_payments_amount_rule'),
    )
    op.create_index('ix_bill_payments_user_id_id', 'bill_payments', ['user_id', 'id'])
    # A bill that must be paid in full is paid by at most one live payment, whoever pays.
    op.create_index(
        'ux_bill_payments_live_exact_bill', 'bill_payments', ['biller_id', 'bill_reference'],
        unique=True,
        postgresql_where=sa.text(
            "amount_rule = 'exact' AND status IN ('created', 'pending', 'succeeded')"
        ),
    )
    # Unsettled payments, least recently checked first, for a sweep that refreshes them.
    op.create_index(
        'ix_bill_payments_unsettled', 'bill_payments',
        [sa.text('checked_at NULLS FIRST'), 'created_at'],
        postgresql_where=sa.text("status IN ('created', 'pending')"),
    )
    op.create_table(
        'sandbox_biller_payments',
        sa.Column('biller_reference', sa.Text(), nullable=False),
        sa.Column('biller_id', sa.Text(), nullable=False),
        sa.Column('payment_reference', sa.Text(), nullable=False),
        sa.Column('customer_reference', sa.Text(), nullable=False),
        sa.Column('bill_reference', sa.Text(), nullable=True),
        sa.Column('amount_minor', AMOUNT, nullable=False),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('behavior', sa.Text(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('failure_code', sa.Text(), nullable=True),
        sa.Column('request_hash', sa.Text(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('updated_at', INSTANT, nullable=False),
        sa.PrimaryKeyConstraint('biller_reference', name='pk_sandbox_biller_payments'),
        sa.UniqueConstraint('biller_id', 'payment_reference',
                            name='uq_sandbox_biller_payments_payment_reference'),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')",
                           name='ck_sandbox_biller_payments_status'),
    )


def downgrade() -> None:
    op.drop_table('sandbox_biller_payments')
    op.drop_index('ix_bill_payments_unsettled', table_name='bill_payments')
    op.drop_index('ux_bill_payments_live_exact_bill', table_name='bill_payments')
    op.drop_index('ix_bill_payments_user_id_id', table_name='bill_payments')
    op.drop_table('bill_payments')
