"""exchange: the per-market command log, orders, fills, order marks, holds, settlement batches

The exchange service's own records (pacioli/matching/tables.py says what each is for).
Money stays in the ledger: holds are its pending transfers, fills are settled by its
linked batches.

Revision ID: 0016_exchange
Revises: 0015
Create Date: 2026-11-26 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0016_exchange'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric(39, 0)
INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    _commands()
    _orders()
    _fills()
    _marks_and_holds()
    _batches()


def _commands() -> None:
    op.create_table(
        'exchange_commands',
        sa.Column('market', sa.Text(), nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('command', postgresql.JSONB(), nullable=False),
        sa.Column('ts', sa.BigInteger(), nullable=False),
        sa.Column('book_sequence', sa.BigInteger(), nullable=False),
        sa.Column('state_hash', sa.Text(), nullable=True),
        sa.Column('fill_no_last', sa.BigInteger(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=True),
        sa.Column('idempotency_key', sa.Text(), nullable=True),
        sa.Column('request_hash', sa.Text(), nullable=True),
        sa.Column('result', postgresql.JSONB(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.PrimaryKeyConstraint('market', 'seq', name='pk_exchange_commands'),
        sa.CheckConstraint(
            "kind IN ('place', 'cancel', 'cancel_all', 'amend', 'advance_clock')",
            name='ck_exchange_commands_kind'),
        sa.CheckConstraint('seq > 0', name='ck_exchange_commands_seq_positive'),
    )
    op.create_index('ux_exchange_commands_user_key', 'exchange_commands',
                    ['user_id', 'idempotency_key'], unique=True,
                    postgresql_where=sa.text('idempotency_key IS NOT NULL'))


def _orders() -> None:
    op.create_table(
        'exchange_orders',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('market', sa.Text(), nullable=False),
        sa.Column('order_id', sa.BigInteger(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('side', sa.Text(), nullable=False),
        sa.Column('type', sa.Text(), nullable=False),
        sa.Column('time_in_force', sa.Text(), nullable=False),
        sa.Column('post_only', sa.Boolean(), nullable=False),
        sa.Column('stp', sa.Text(), nullable=False),
        sa.Column('price', AMOUNT, nullable=True),
        sa.Column('size', AMOUNT, nullable=True),
        sa.Column('funds', AMOUNT, nullable=True),
        sa.Column('stop_price', AMOUNT, nullable=True),
        sa.Column('expires_at', INSTANT, nullable=True),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('done_reason', sa.Text(), nullable=True),
        sa.Column('open_size', AMOUNT, server_default=sa.text('0'), nullable=False),
        sa.Column('filled_size', AMOUNT, server_default=sa.text('0'), nullable=False),
        sa.Column('filled_quote', AMOUNT, server_default=sa.text('0'), nullable=False),
        sa.Column('fee', AMOUNT, server_default=sa.text('0'), nullable=False),
        sa.Column('hold_asset', sa.Text(), nullable=False),
        sa.Column('placed_seq', sa.BigInteger(), nullable=True),
        sa.Column('idempotency_key', sa.Text(), nullable=False),
        sa.Column('request_hash', sa.Text(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('updated_at', INSTANT, nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_exchange_orders'),
        sa.UniqueConstraint('market', 'order_id', name='uq_exchange_orders_market_order_id'),
        sa.UniqueConstraint('user_id', 'idempotency_key',
                            name='uq_exchange_orders_user_id_idempotency_key'),
        sa.CheckConstraint("status IN ('new', 'open', 'done')", name='ck_exchange_orders_status'),
        sa.CheckConstraint("(status = 'done') = (done_reason IS NOT NULL)",
                           name='ck_exchange_orders_done_reason'),
    )
    op.create_index('ix_exchange_orders_user_id', 'exchange_orders', ['user_id', 'id'])


def _fills() -> None:
    op.create_table(
        'exchange_fills',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('market', sa.Text(), nullable=False),
        sa.Column('fill_no', sa.BigInteger(), nullable=False),
        sa.Column('command_seq', sa.BigInteger(), nullable=False),
        sa.Column('price', AMOUNT, nullable=False),
        sa.Column('size', AMOUNT, nullable=False),
        sa.Column('quote_amount', AMOUNT, nullable=False),
        sa.Column('taker_order', sa.Uuid(), nullable=False),
        sa.Column('maker_order', sa.Uuid(), nullable=False),
        sa.Column('taker_user_id', sa.Uuid(), nullable=False),
        sa.Column('maker_user_id', sa.Uuid(), nullable=False),
        sa.Column('taker_side', sa.Text(), nullable=False),
        sa.Column('taker_fee', AMOUNT, nullable=False),
        sa.Column('maker_fee', AMOUNT, nullable=False),
        sa.Column('buyer_rounding', AMOUNT, server_default=sa.text('0'), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('batch_id', sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_exchange_fills'),
        sa.UniqueConstraint('market', 'fill_no', name='uq_exchange_fills_market_fill_no'),
        sa.CheckConstraint('size > 0 AND quote_amount > 0', name='ck_exchange_fills_positive'),
    )
    op.create_index('ix_exchange_fills_taker_user_id', 'exchange_fills',
                    ['taker_user_id', 'id'])
    op.create_index('ix_exchange_fills_maker_user_id', 'exchange_fills',
                    ['maker_user_id', 'id'])


def _marks_and_holds() -> None:
    op.create_table(
        'exchange_order_marks',
        sa.Column('market', sa.Text(), nullable=False),
        sa.Column('command_seq', sa.BigInteger(), nullable=False),
        sa.Column('order', sa.Uuid(), nullable=False),
        sa.Column('need_after', AMOUNT, nullable=False),
        sa.Column('done', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('market', 'command_seq', 'order',
                                name='pk_exchange_order_marks'),
    )
    op.create_table(
        'exchange_holds',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('order', sa.Uuid(), nullable=False),
        sa.Column('market', sa.Text(), nullable=False),
        sa.Column('asset', sa.Text(), nullable=False),
        sa.Column('amount', AMOUNT, nullable=False),
        sa.Column('wallet_account_id', sa.Uuid(), nullable=False),
        sa.Column('clearing_account_id', sa.Uuid(), nullable=False),
        sa.Column('created_seq', sa.BigInteger(), nullable=False),
        sa.Column('created_by_batch', sa.Uuid(), nullable=True),
        sa.Column('transfer_id', sa.Uuid(), nullable=True),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('resolved_by_batch', sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_exchange_holds'),
        sa.UniqueConstraint('transfer_id', name='uq_exchange_holds_transfer_id'),
        sa.CheckConstraint("status IN ('reserving', 'open', 'resolved')",
                           name='ck_exchange_holds_status'),
        sa.CheckConstraint('amount > 0', name='ck_exchange_holds_amount_positive'),
    )
    op.create_index('ix_exchange_holds_unresolved', 'exchange_holds', ['order'],
                    postgresql_where=sa.text("status <> 'resolved'"))


def _batches() -> None:
    op.create_table(
        'exchange_settlement_batches',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('market', sa.Text(), nullable=False),
        sa.Column('number', sa.BigInteger(), nullable=False),
        sa.Column('first_fill_no', sa.BigInteger(), nullable=False),
        sa.Column('last_fill_no', sa.BigInteger(), nullable=False),
        sa.Column('marks_through_seq', sa.BigInteger(), nullable=False),
        sa.Column('holds_through_seq', sa.BigInteger(), nullable=False),
        sa.Column('fill_count', sa.Integer(), nullable=False),
        sa.Column('item_count', sa.Integer(), nullable=False),
        sa.Column('plan', postgresql.JSONB(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('posted_at', INSTANT, nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_exchange_settlement_batches'),
        sa.UniqueConstraint('market', 'number',
                            name='uq_exchange_settlement_batches_market_number'),
        sa.CheckConstraint("status IN ('planned', 'posted')",
                           name='ck_exchange_settlement_batches_status'),
    )


def downgrade() -> None:
    for table in ('exchange_settlement_batches', 'exchange_holds', 'exchange_order_marks',
                  'exchange_fills', 'exchange_orders', 'exchange_commands'):
        op.drop_table(table)
