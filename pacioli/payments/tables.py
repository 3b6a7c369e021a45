"""The payment flows' own tables (SQLAlchemy Core); migration 0004 creates them.

Balances are never stored here: every amount below is a record of what a flow asked the
ledger to move, and the ledger's transfer (named by `transfer_id`) is the movement.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from pacioli.ledger.storage.tables import MinorUnits

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Which ledger account plays which part in the chart of accounts (docs/payments.md).
# The ledger's own idempotency key makes opening race-free; this row makes finding it a
# plain indexed read.
payment_accounts = Table(
    "payment_accounts",
    metadata,
    Column("owner_kind", Text, primary_key=True),  # user, merchant or platform
    Column("owner_id", Text, primary_key=True),  # the user's or merchant's id; "" for platform
    Column("purpose", Text, primary_key=True),  # wallet, merchant_balance, fee_revenue, ...
    Column("currency", Text, primary_key=True),
    Column("account_id", Uuid, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# A person-to-person payment: one ledger transfer from the payer's wallet to the payee's.
p2p_payments = Table(
    "p2p_payments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("payer_user_id", Uuid, nullable=False),
    Column("payee_user_id", Uuid, nullable=False),
    Column("currency", Text, nullable=False),
    Column("amount_minor", MinorUnits, nullable=False),
    Column("note", Text, nullable=False),
    Column("status", Text, nullable=False),  # created, succeeded, failed
    Column("failure_code", Text),
    Column("transfer_id", Uuid, unique=True),
    Column("request_id", Uuid),  # the money request this payment settles, if any
    Column("idempotency_key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),
    UniqueConstraint("payer_user_id", "idempotency_key"),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    CheckConstraint("status IN ('created', 'succeeded', 'failed')", name="status"),
    CheckConstraint("payer_user_id <> payee_user_id", name="not_to_self"),
)
Index("ix_p2p_payments_payer_created", p2p_payments.c.payer_user_id, p2p_payments.c.created_at)
# A money request is settled by at most one payment that has not failed.
Index(
    "ux_p2p_payments_live_request", p2p_payments.c.request_id, unique=True,
    postgresql_where=p2p_payments.c.status != "failed",
)
Index("ix_p2p_payments_payee_created", p2p_payments.c.payee_user_id, p2p_payments.c.created_at)

# A request for money: the requester asks the payer, who pays it (a P2P payment) or
# declines it; the requester may cancel it while it is open.
money_requests = Table(
    "money_requests",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("requester_user_id", Uuid, nullable=False),
    Column("payer_user_id", Uuid, nullable=False),
    Column("currency", Text, nullable=False),
    Column("amount_minor", MinorUnits, nullable=False),
    Column("note", Text, nullable=False),
    Column("status", Text, nullable=False),  # open, paid, declined, cancelled
    Column("idempotency_key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    UniqueConstraint("requester_user_id", "idempotency_key"),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    CheckConstraint("status IN ('open', 'paid', 'declined', 'cancelled')", name="status"),
    CheckConstraint("requester_user_id <> payer_user_id", name="not_to_self"),
)
Index("ix_money_requests_payer_status", money_requests.c.payer_user_id, money_requests.c.status)
Index(
    "ix_money_requests_requester_created",
    money_requests.c.requester_user_id, money_requests.c.created_at,
)

# An international transfer's quote: the price is fixed when quoted, valid until
# `expires_at`, and executed at most once (its ledger batch key is the quote's id).
fx_quotes = Table(
    "fx_quotes",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("recipient_user_id", Uuid, nullable=False),
    Column("source_currency", Text, nullable=False),
    Column("target_currency", Text, nullable=False),
    Column("source_amount_minor", MinorUnits, nullable=False),
    Column("fee_minor", MinorUnits, nullable=False),
    Column("converted_minor", MinorUnits, nullable=False),
    Column("rounding_minor", MinorUnits, nullable=False),
    Column("target_amount_minor", MinorUnits, nullable=False),
    Column("customer_rate", Text, nullable=False),  # an exact fraction, "n/d"
    Column("mid_rate", Text, nullable=False),
    Column("status", Text, nullable=False),  # open, executed
    Column("idempotency_key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("execution_key", Text),
    Column("transfer_ids", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("executed_at", DateTime(timezone=True)),
    UniqueConstraint("user_id", "idempotency_key"),
    CheckConstraint("status IN ('open', 'executed')", name="status"),
    CheckConstraint(
        "source_amount_minor = fee_minor + converted_minor + rounding_minor",
        name="source_amount_adds_up",
    ),
)

# A merchant's QR code. A static one is printed once and paid many times (the payer
# enters the amount); a dynamic one carries an amount, is paid once, and may expire.
# `code` is what the payload names (EMVCo template 26 subfield 01, or the UPI address
# `<code>@pacioli`); the payload itself is kept so the merchant can show it again.
merchant_qr_codes = Table(
    "merchant_qr_codes",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("code", Text, nullable=False, unique=True),
    Column("merchant_id", Uuid, nullable=False),
    Column("kind", Text, nullable=False),  # static, dynamic
    Column("currency", Text, nullable=False),
    Column("amount_minor", MinorUnits),  # dynamic only
    Column("reference", Text),
    Column("expires_at", DateTime(timezone=True)),
    Column("status", Text, nullable=False),  # active, used, revoked, expired (0013)
    Column("payload", Text, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("merchant_id", "idempotency_key"),
    CheckConstraint("kind IN ('static', 'dynamic')", name="kind"),
    CheckConstraint("status IN ('active', 'used', 'revoked', 'expired')", name="status"),
    CheckConstraint("(kind = 'dynamic') = (amount_minor IS NOT NULL)", name="amount_iff_dynamic"),
)
Index("ix_merchant_qr_codes_merchant", merchant_qr_codes.c.merchant_id, merchant_qr_codes.c.id)

# A payment of a merchant's QR code from a user's wallet, less the merchant's fee.
qr_payments = Table(
    "qr_payments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("qr_id", Uuid, nullable=False),
    Column("merchant_id", Uuid, nullable=False),
    Column("payer_user_id", Uuid, nullable=False),
    Column("dynamic", Boolean, nullable=False),  # paid a dynamic (single-use) code
    Column("currency", Text, nullable=False),
    Column("amount_minor", MinorUnits, nullable=False),
    Column("fee_minor", MinorUnits, nullable=False),
    Column("status", Text, nullable=False),  # created, succeeded, failed
    Column("failure_code", Text),
    Column("transfer_id", Uuid, unique=True),
    Column("idempotency_key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),
    UniqueConstraint("payer_user_id", "idempotency_key"),
    CheckConstraint("amount_minor > 0 AND fee_minor >= 0 AND fee_minor < amount_minor",
                    name="amounts"),
    CheckConstraint("status IN ('created', 'succeeded', 'failed')", name="status"),
)
Index("ix_qr_payments_merchant", qr_payments.c.merchant_id, qr_payments.c.id)
Index("ix_qr_payments_payer", qr_payments.c.payer_user_id, qr_payments.c.id)
# A dynamic QR is paid once: at most one payment that has not failed (the flow only
# records one per dynamic code; static codes are excluded by the flow, not the index).
Index(
    "ux_qr_payments_live_dynamic", qr_payments.c.qr_id, unique=True,
    postgresql_where=text("status <> 'failed' AND dynamic"),
)
