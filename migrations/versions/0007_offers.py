"""offers and cashback: offers, offer_uses, promotion_fundings, cashbacks

An offer is a cashback rule funded by the platform or a merchant; `promotion_fundings`
records money moved into a promotions pool; `cashbacks` records what each qualifying
payment earned and whether the pool paid it; `offer_uses` counts uses per user. The
money moves in the ledger.

Revision ID: 0007
Revises: 0001
Create Date: 2026-11-24 18:55:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric(39, 0)
INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'offers',
        sa.Column('id', sa.Uuid(), primary_key=True),
        sa.Column('funder', sa.Text(), nullable=False),
        sa.Column('merchant_id', sa.Uuid(), nullable=True),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('cashback_bps', sa.Integer(), nullable=False),
        sa.Column('cap_minor', AMOUNT, nullable=False),
        sa.Column('min_payment_minor', AMOUNT, nullable=False),
        sa.Column('uses_per_user_max', sa.Integer(), nullable=True),
        sa.Column('starts_at', INSTANT, nullable=False),
        sa.Column('ends_at', INSTANT, nullable=True),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('idempotency_key', sa.Text(), nullable=False),
        sa.Column('request_hash', sa.Text(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('ended_at', INSTANT, nullable=True),
        sa.UniqueConstraint('funder', 'idempotency_key', name='uq_offers_funder_idempotency_key'),
        sa.CheckConstraint('cashback_bps BETWEEN 1 AND 10000', name='ck_offers_cashback_bps'),
        sa.CheckConstraint('cap_minor > 0 AND min_payment_minor >= 0', name='ck_offers_amounts'),
        sa.CheckConstraint('uses_per_user_max IS NULL OR uses_per_user_max > 0',
                           name='ck_offers_uses_per_user_max'),
        sa.CheckConstraint('ends_at IS NULL OR ends_at > starts_at', name='ck_offers_window'),
        sa.CheckConstraint("status IN ('active', 'ended')", name='ck_offers_status'),
    )
    op.create_index('ix_offers_active_currency', 'offers', ['currency', 'status', 'starts_at'])
    op.create_index('ix_offers_funder_id', 'offers', ['funder', 'id'])
    op.create_table(
        'offer_uses',
        sa.Column('offer_id', sa.Uuid(), primary_key=True),
        sa.Column('user_id', sa.Uuid(), primary_key=True),
        sa.Column('uses', sa.Integer(), nullable=False),
        sa.CheckConstraint('uses >= 0', name='ck_offer_uses_uses'),
    )
    op.create_table(
        'promotion_fundings',
        sa.Column('id', sa.Uuid(), primary_key=True),
        sa.Column('funder', sa.Text(), nullable=False),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('amount_minor', AMOUNT, nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('failure_code', sa.Text(), nullable=True),
        sa.Column('transfer_id', sa.Uuid(), nullable=True),
        sa.Column('idempotency_key', sa.Text(), nullable=False),
        sa.Column('request_hash', sa.Text(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('completed_at', INSTANT, nullable=True),
        sa.UniqueConstraint('funder', 'idempotency_key',
                            name='uq_promotion_fundings_funder_idempotency_key'),
        sa.CheckConstraint('amount_minor > 0', name='ck_promotion_fundings_amount_positive'),
        sa.CheckConstraint("status IN ('created', 'succeeded', 'failed')",
                           name='ck_promotion_fundings_status'),
    )
    op.create_index('ix_promotion_fundings_funder_created', 'promotion_fundings',
                    ['funder', 'created_at', 'id'])
    op.create_table(
        'cashbacks',
        sa.Column('id', sa.Uuid(), primary_key=True),
        sa.Column('payment_kind', sa.Text(), nullable=False),
        sa.Column('payment_id', sa.Uuid(), nullable=False),
        sa.Column('offer_id', sa.Uuid(), nullable=False),
        sa.Column('funder', sa.Text(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('merchant_id', sa.Uuid(), nullable=False),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('amount_minor', AMOUNT, nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('failure_code', sa.Text(), nullable=True),
        sa.Column('transfer_id', sa.Uuid(), nullable=True),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('completed_at', INSTANT, nullable=True),
        sa.UniqueConstraint('payment_id', name='uq_cashbacks_payment_id'),
        sa.CheckConstraint('amount_minor > 0', name='ck_cashbacks_amount_positive'),
        sa.CheckConstraint("status IN ('created', 'paid', 'unfunded', 'failed')",
                           name='ck_cashbacks_status'),
    )
    op.create_index('ix_cashbacks_user_created', 'cashbacks', ['user_id', 'created_at', 'id'])
    op.create_index('ix_cashbacks_funder_created', 'cashbacks', ['funder', 'created_at', 'id'])


def downgrade() -> None:
    op.drop_index('ix_cashbacks_funder_created', table_name='cashbacks')
    op.drop_index('ix_cashbacks_user_created', table_name='cashbacks')
    op.drop_table('cashbacks')
    op.drop_index('ix_promotion_fundings_funder_created', table_name='promotion_fundings')
    op.drop_table('promotion_fundings')
    op.drop_table('offer_uses')
    op.drop_index('ix_offers_funder_id', table_name='offers')
    op.drop_index('ix_offers_active_currency', table_name='offers')
    op.drop_table('offers')
