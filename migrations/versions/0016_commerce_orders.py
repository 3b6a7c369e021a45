"""commerce orders: checkouts, orders per supplier, their lines, split, timeline and refunds

`commerce_checkouts` is what a checkout's Idempotency-Key guards (its id is also the
stock reservation's and the coupon use's); `commerce_orders` is one order per supplier
with its payment and timestamps; `commerce_order_lines` keeps the prices as they were at
checkout; `commerce_order_shares` is the split booked at capture; `commerce_order_history`
the timeline with tracking; `commerce_order_refunds` (+ `_lines`) refunds and returns.
Catalog rows are named by id without foreign keys, so this revision does not depend on
0016_commerce_catalog. Money moves in the ledger.

Revision ID: 0016_commerce_orders
Revises: 0015
Create Date: 2026-11-24 21:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = '0016_commerce_orders'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric(39, 0)
INSTANT = sa.DateTime(timezone=True)
TABLES = ('commerce_order_refund_lines', 'commerce_order_shares', 'commerce_order_refunds',
          'commerce_order_lines', 'commerce_order_history', 'commerce_orders',
          'commerce_checkouts')


def upgrade() -> None:
    op.create_table(
        'commerce_checkouts',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('cart_id', sa.Uuid(), nullable=False),
        sa.Column('cart_version', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('total_minor', AMOUNT, nullable=False),
        sa.Column('payment_method', sa.Text(), nullable=False),
        sa.Column('instrument_id', sa.Uuid(), nullable=True),
        sa.Column('gateway', sa.Text(), nullable=True),
        sa.Column('coupon_code', sa.Text(), nullable=True),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('failure_code', sa.Text(), nullable=True),
        sa.Column('shipping_address', JSONB(), nullable=False),
        sa.Column('idempotency_key', sa.Text(), nullable=False),
        sa.Column('request_hash', sa.Text(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('updated_at', INSTANT, nullable=False),
        sa.Column('completed_at', INSTANT, nullable=True),
        sa.CheckConstraint("payment_method IN ('wallet', 'card')",
                           name='ck_commerce_checkouts_payment_method'),
        sa.CheckConstraint("status IN ('placed', 'awaiting_payment', 'paid', 'payment_failed')",
                           name='ck_commerce_checkouts_status'),
        sa.CheckConstraint('total_minor >= 0', name='ck_commerce_checkouts_total_not_negative'),
        sa.PrimaryKeyConstraint('id', name='pk_commerce_checkouts'),
        sa.UniqueConstraint('user_id', 'idempotency_key',
                           name='uq_commerce_checkouts_user_id_idempotency_key'),
    )
    op.create_index('ix_commerce_checkouts_unsettled', 'commerce_checkouts', ['updated_at'],
                    postgresql_where=sa.text("status IN ('placed', 'awaiting_payment')"))
    op.create_index('ux_commerce_checkouts_cart_version', 'commerce_checkouts',
                    ['cart_id', 'cart_version'], unique=True,
                    postgresql_where=sa.text("status IN ('placed', 'awaiting_payment', 'paid')"))
    op.create_table(
        'commerce_orders',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('checkout_id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('supplier_id', sa.Uuid(), nullable=False),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('payment_method', sa.Text(), nullable=False),
        sa.Column('payment_status', sa.Text(), nullable=False),
        sa.Column('instrument_id', sa.Uuid(), nullable=True),
        sa.Column('gateway', sa.Text(), nullable=True),
        sa.Column('gateway_reference', sa.Text(), nullable=True),
        sa.Column('failure_code', sa.Text(), nullable=True),
        sa.Column('subtotal_minor', AMOUNT, nullable=False),
        sa.Column('discount_minor', AMOUNT, nullable=False),
        sa.Column('tax_minor', AMOUNT, nullable=False),
        sa.Column('shipping_minor', AMOUNT, nullable=False),
        sa.Column('rounding_minor', AMOUNT, nullable=False),
        sa.Column('total_minor', AMOUNT, nullable=False),
        sa.Column('commission_minor', AMOUNT, nullable=False),
        sa.Column('captured_minor', AMOUNT, nullable=False),
        sa.Column('refunded_minor', AMOUNT, nullable=False),
        sa.Column('hold_transfer_id', sa.Uuid(), nullable=True),
        sa.Column('capture_transfer_id', sa.Uuid(), nullable=True),
        sa.Column('void_transfer_id', sa.Uuid(), nullable=True),
        sa.Column('carrier', sa.Text(), nullable=True),
        sa.Column('tracking_number', sa.Text(), nullable=True),
        sa.Column('shipping_address', JSONB(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('updated_at', INSTANT, nullable=False),
        sa.Column('paid_at', INSTANT, nullable=True),
        sa.Column('packed_at', INSTANT, nullable=True),
        sa.Column('shipped_at', INSTANT, nullable=True),
        sa.Column('delivered_at', INSTANT, nullable=True),
        sa.Column('cancelled_at', INSTANT, nullable=True),
        sa.Column('returned_at', INSTANT, nullable=True),
        sa.CheckConstraint('total_minor >= 0 AND captured_minor >= 0 AND refunded_minor >= 0',
                           name='ck_commerce_orders_amounts_not_negative'),
        sa.CheckConstraint("payment_method IN ('wallet', 'card')",
                           name='ck_commerce_orders_payment_method'),
        sa.CheckConstraint("payment_status IN ('pending', 'authorized', 'capturing', 'captured',"
                           " 'voiding', 'voided', 'failed')",
                           name='ck_commerce_orders_payment_status'),
        sa.CheckConstraint('captured_minor <= total_minor AND refunded_minor <= captured_minor',
                           name='ck_commerce_orders_refunds_within_capture'),
        sa.CheckConstraint("status IN ('placed', 'paid', 'packed', 'shipped', 'delivered',"
                           " 'cancelled', 'payment_failed', 'partially_returned', 'returned')",
                           name='ck_commerce_orders_status'),
        sa.ForeignKeyConstraint(['checkout_id'], ['commerce_checkouts.id'],
                           name='fk_commerce_orders_checkout_id'),
        sa.PrimaryKeyConstraint('id', name='pk_commerce_orders'),
    )
    op.create_index('ix_commerce_orders_checkout', 'commerce_orders', ['checkout_id'])
    op.create_index('ix_commerce_orders_supplier', 'commerce_orders', ['supplier_id', 'id'])
    op.create_index('ix_commerce_orders_money_due', 'commerce_orders', ['updated_at'],
                    postgresql_where=sa.text("payment_status IN ('capturing', 'voiding')"))
    op.create_index('ix_commerce_orders_user', 'commerce_orders', ['user_id', 'id'])
    op.create_table(
        'commerce_order_history',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('order_id', sa.Uuid(), nullable=False),
        sa.Column('event', sa.Text(), nullable=False),
        sa.Column('carrier', sa.Text(), nullable=True),
        sa.Column('tracking_number', sa.Text(), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['commerce_orders.id'],
                           name='fk_commerce_order_history_order_id'),
        sa.PrimaryKeyConstraint('id', name='pk_commerce_order_history'),
    )
    op.create_index('ix_commerce_order_history_order', 'commerce_order_history', ['order_id', 'id'])
    op.create_table(
        'commerce_order_lines',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('order_id', sa.Uuid(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('product_id', sa.Uuid(), nullable=False),
        sa.Column('variant_id', sa.Uuid(), nullable=False),
        sa.Column('reseller_id', sa.Uuid(), nullable=True),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('quantity', sa.BigInteger(), nullable=False),
        sa.Column('unit_price_minor', AMOUNT, nullable=False),
        sa.Column('supplier_unit_price_minor', AMOUNT, nullable=False),
        sa.Column('reseller_margin_minor', AMOUNT, nullable=False),
        sa.Column('catalogue_discount_minor', AMOUNT, nullable=False),
        sa.Column('order_discount_minor', AMOUNT, nullable=False),
        sa.Column('tax_minor', AMOUNT, nullable=False),
        sa.Column('total_minor', AMOUNT, nullable=False),
        sa.Column('returned_quantity', sa.BigInteger(), nullable=False),
        sa.CheckConstraint('quantity > 0', name='ck_commerce_order_lines_quantity_positive'),
        sa.CheckConstraint('returned_quantity >= 0 AND returned_quantity <= quantity',
                           name='ck_commerce_order_lines_returns_within_quantity'),
        sa.ForeignKeyConstraint(['order_id'], ['commerce_orders.id'],
                           name='fk_commerce_order_lines_order_id'),
        sa.PrimaryKeyConstraint('id', name='pk_commerce_order_lines'),
        sa.UniqueConstraint('order_id', 'position',
                           name='uq_commerce_order_lines_order_id_position'),
    )
    op.create_table(
        'commerce_order_refunds',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('order_id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('supplier_id', sa.Uuid(), nullable=False),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('destination', sa.Text(), nullable=False),
        sa.Column('amount_minor', AMOUNT, nullable=False),
        sa.Column('refunded_before_minor', AMOUNT, nullable=True),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('failure_code', sa.Text(), nullable=True),
        sa.Column('gateway_reference', sa.Text(), nullable=True),
        sa.Column('transfer_id', sa.Uuid(), nullable=True),
        sa.Column('idempotency_key', sa.Text(), nullable=False),
        sa.Column('request_hash', sa.Text(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('updated_at', INSTANT, nullable=False),
        sa.Column('completed_at', INSTANT, nullable=True),
        sa.CheckConstraint('amount_minor > 0', name='ck_commerce_order_refunds_amount_positive'),
        sa.CheckConstraint("destination IN ('wallet', 'card')",
                           name='ck_commerce_order_refunds_destination'),
        sa.CheckConstraint("reason IN ('cancellation', 'return', 'supplier')",
                           name='ck_commerce_order_refunds_reason'),
        sa.CheckConstraint("status IN ('requested', 'created', 'pending', 'succeeded', 'failed')",
                           name='ck_commerce_order_refunds_status'),
        sa.ForeignKeyConstraint(['order_id'], ['commerce_orders.id'],
                           name='fk_commerce_order_refunds_order_id'),
        sa.PrimaryKeyConstraint('id', name='pk_commerce_order_refunds'),
        sa.UniqueConstraint('order_id', 'idempotency_key',
                           name='uq_commerce_order_refunds_order_id_idempotency_key'),
    )
    op.create_index('ix_commerce_order_refunds_unfinished', 'commerce_order_refunds',
                    ['updated_at'],
                    postgresql_where=sa.text("status IN ('created', 'pending')"))
    op.create_index('ix_commerce_order_refunds_order', 'commerce_order_refunds', ['order_id', 'id'])
    op.create_table(
        'commerce_order_shares',
        sa.Column('order_id', sa.Uuid(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('owner_id', sa.Uuid(), nullable=True),
        sa.Column('amount_minor', AMOUNT, nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['commerce_orders.id'],
                           name='fk_commerce_order_shares_order_id'),
        sa.PrimaryKeyConstraint('order_id', 'position', name='pk_commerce_order_shares'),
    )
    op.create_table(
        'commerce_order_refund_lines',
        sa.Column('refund_id', sa.Uuid(), nullable=False),
        sa.Column('line_id', sa.Uuid(), nullable=False),
        sa.Column('quantity', sa.BigInteger(), nullable=False),
        sa.CheckConstraint('quantity > 0',
                           name='ck_commerce_order_refund_lines_quantity_positive'),
        sa.ForeignKeyConstraint(['line_id'], ['commerce_order_lines.id'],
                           name='fk_commerce_order_refund_lines_line_id'),
        sa.ForeignKeyConstraint(['refund_id'], ['commerce_order_refunds.id'],
                           name='fk_commerce_order_refund_lines_refund_id'),
        sa.PrimaryKeyConstraint('refund_id', 'line_id', name='pk_commerce_order_refund_lines'),
    )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)  # its indexes go with it
