"""payment flows: chart of accounts map, P2P, money requests, FX quotes, QR codes and payments

Balances stay in the ledger; these tables record what each flow asked it to move.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-24 19:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric(39, 0)
INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payment_accounts",
        sa.Column("owner_kind", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint(
            "owner_kind", "owner_id", "purpose", "currency", name="pk_payment_accounts"
        ),
        sa.UniqueConstraint("account_id", name="uq_payment_accounts_account_id"),
    )
    op.create_table(
        "p2p_payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("payer_user_id", sa.Uuid(), nullable=False),
        sa.Column("payee_user_id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("amount_minor", AMOUNT, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("failure_code", sa.Text(), nullable=True),
        sa.Column("transfer_id", sa.Uuid(), nullable=True),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("completed_at", INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_p2p_payments"),
        sa.UniqueConstraint("transfer_id", name="uq_p2p_payments_transfer_id"),
        sa.UniqueConstraint(
            "payer_user_id", "idempotency_key", name="uq_p2p_payments_payer_user_id_idempotency_key"
        ),
        sa.CheckConstraint("amount_minor > 0", name="ck_p2p_payments_amount_positive"),
        sa.CheckConstraint(
            "status IN ('created', 'succeeded', 'failed')", name="ck_p2p_payments_status"
        ),
        sa.CheckConstraint("payer_user_id <> payee_user_id", name="ck_p2p_payments_not_to_self"),
    )
    op.create_index(
        "ix_p2p_payments_payer_created", "p2p_payments", ["payer_user_id", "created_at"]
    )
    op.create_index(
        "ix_p2p_payments_payee_created", "p2p_payments", ["payee_user_id", "created_at"]
    )
    op.create_index(
        "ux_p2p_payments_live_request", "p2p_payments", ["request_id"], unique=True,
        postgresql_where=sa.text("status <> 'failed'"),
    )
    op.create_table(
        "money_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("requester_user_id", sa.Uuid(), nullable=False),
        sa.Column("payer_user_id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("amount_minor", AMOUNT, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("resolved_at", INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_money_requests"),
        sa.UniqueConstraint(
            "requester_user_id", "idempotency_key",
            name="uq_money_requests_requester_user_id_idempotency_key",
        ),
        sa.CheckConstraint("amount_minor > 0", name="ck_money_requests_amount_positive"),
        sa.CheckConstraint(
            "status IN ('open', 'paid', 'declined', 'cancelled')", name="ck_money_requests_status"
        ),
        sa.CheckConstraint(
            "requester_user_id <> payer_user_id", name="ck_money_requests_not_to_self"
        ),
    )
    op.create_index(
        "ix_money_requests_payer_status", "money_requests", ["payer_user_id", "status"]
    )
    op.create_index(
        "ix_money_requests_requester_created", "money_requests",
        ["requester_user_id", "created_at"],
    )

    op.create_table(
        "fx_quotes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("recipient_user_id", sa.Uuid(), nullable=False),
        sa.Column("source_currency", sa.Text(), nullable=False),
        sa.Column("target_currency", sa.Text(), nullable=False),
        sa.Column("source_amount_minor", AMOUNT, nullable=False),
        sa.Column("fee_minor", AMOUNT, nullable=False),
        sa.Column("converted_minor", AMOUNT, nullable=False),
        sa.Column("rounding_minor", AMOUNT, nullable=False),
        sa.Column("target_amount_minor", AMOUNT, nullable=False),
        sa.Column("customer_rate", sa.Text(), nullable=False),
        sa.Column("mid_rate", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("execution_key", sa.Text(), nullable=True),
        sa.Column("transfer_ids", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("expires_at", INSTANT, nullable=False),
        sa.Column("executed_at", INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_fx_quotes"),
        sa.UniqueConstraint(
            "user_id", "idempotency_key", name="uq_fx_quotes_user_id_idempotency_key"
        ),
        sa.CheckConstraint("status IN ('open', 'executed')", name="ck_fx_quotes_status"),
        sa.CheckConstraint(
            "source_amount_minor = fee_minor + converted_minor + rounding_minor",
            name="ck_fx_quotes_source_amount_adds_up",
        ),
    )

    op.create_table(
        "merchant_qr_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("amount_minor", AMOUNT, nullable=True),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("expires_at", INSTANT, nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_merchant_qr_codes"),
        sa.UniqueConstraint("code", name="uq_merchant_qr_codes_code"),
        sa.UniqueConstraint(
            "merchant_id", "idempotency_key",
            name="uq_merchant_qr_codes_merchant_id_idempotency_key",
        ),
        sa.CheckConstraint("kind IN ('static', 'dynamic')", name="ck_merchant_qr_codes_kind"),
        sa.CheckConstraint(
            "status IN ('active', 'used', 'revoked')", name="ck_merchant_qr_codes_status"
        ),
        sa.CheckConstraint(
            "(kind = 'dynamic') = (amount_minor IS NOT NULL)",
            name="ck_merchant_qr_codes_amount_iff_dynamic",
        ),
    )
    op.create_index(
        "ix_merchant_qr_codes_merchant", "merchant_qr_codes", ["merchant_id", "id"]
    )
    op.create_table(
        "qr_payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("qr_id", sa.Uuid(), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("payer_user_id", sa.Uuid(), nullable=False),
        sa.Column("dynamic", sa.Boolean(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("amount_minor", AMOUNT, nullable=False),
        sa.Column("fee_minor", AMOUNT, nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("failure_code", sa.Text(), nullable=True),
        sa.Column("transfer_id", sa.Uuid(), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("completed_at", INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_qr_payments"),
        sa.UniqueConstraint("transfer_id", name="uq_qr_payments_transfer_id"),
        sa.UniqueConstraint(
            "payer_user_id", "idempotency_key",
            name="uq_qr_payments_payer_user_id_idempotency_key",
        ),
        sa.CheckConstraint(
            "amount_minor > 0 AND fee_minor >= 0 AND fee_minor < amount_minor",
            name="ck_qr_payments_amounts",
        ),
        sa.CheckConstraint(
            "status IN ('created', 'succeeded', 'failed')", name="ck_qr_payments_status"
        ),
    )
    op.create_index("ix_qr_payments_merchant", "qr_payments", ["merchant_id", "id"])
    op.create_index("ix_qr_payments_payer", "qr_payments", ["payer_user_id", "id"])
    op.create_index(
        "ux_qr_payments_live_dynamic", "qr_payments", ["qr_id"], unique=True,
        postgresql_where=sa.text("status <> 'failed' AND dynamic"),
    )


def downgrade() -> None:
    op.drop_table("qr_payments")
    op.drop_table("merchant_qr_codes")
    op.drop_table("fx_quotes")
    op.drop_table("money_requests")
    op.drop_table("p2p_payments")
    op.drop_table("payment_accounts")
