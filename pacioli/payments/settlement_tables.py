"""Settlement's own tables, and QR refunds' (SQLAlchemy Core); migration 0013 creates them.

`settlement_items` is the queue of what a merchant is owed, one row per source (a QR
payment, a refund of one, and later checkout or card payments: `source_kind` is free
text so other packages add their own kinds). An item belongs to at most one batch:
`batch_id` is set once, by the conditional update that creates the batch.
`settlement_batches` is one settlement of one merchant in one currency, and its payout.
No table holds a balance: the ledger does (docs/settlement.md).
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)

from pacioli.ledger.storage.tables import MinorUnits

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

BATCH_STATUSES = ("created", "moved", "payout_pending", "paid", "failed")
UNFINISHED_STATUSES = ("created", "moved", "payout_pending")

settlement_batches = Table(
    "settlement_batches",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", Uuid, nullable=False),
    Column("currency", Text, nullable=False),
    # Items completed before this instant were due when the batch was made.
    Column("cutoff_at", DateTime(timezone=True), nullable=False),
    Column("gross_minor", MinorUnits, nullable=False),
    Column("fees_minor", MinorUnits, nullable=False),
    Column("refunds_minor", MinorUnits, nullable=False),
    Column("net_minor", MinorUnits, nullable=False),
    Column("item_count", Integer, nullable=False),
    Column("status", Text, nullable=False),
    # Why a `created` batch has not moved on yet (no settlement account on file ...).
    Column("waiting_reason", Text),
    # Where the payout goes, fixed when the funds are moved and held for it.
    Column("gateway", Text),
    Column("destination_id", Uuid),
    Column("payout_token", Text),
    Column("move_transfer_id", Uuid),
    Column("hold_transfer_id", Uuid),
    Column("resolution_transfer_id", Uuid),  # the hold's post (paid) or void (failed)
    Column("payout_reference", Text),
    Column("failure_code", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),
    CheckConstraint(f"status IN {BATCH_STATUSES}", name="status"),
    CheckConstraint("gross_minor - fees_minor - refunds_minor = net_minor", name="adds_up"),
    CheckConstraint("net_minor > 0 AND item_count > 0", name="net_positive"),
    UniqueConstraint("gateway", "payout_reference"),
)
Index("ix_settlement_batches_merchant", settlement_batches.c.merchant_id,
      settlement_batches.c.id)
Index("ix_settlement_batches_unfinished", settlement_batches.c.id,
      postgresql_where=text("status IN ('created', 'moved', 'payout_pending')"))

settlement_items = Table(
    "settlement_items",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", Uuid, nullable=False),
    Column("currency", Text, nullable=False),
    Column("source_kind", Text, nullable=False),  # qr_payment, qr_refund, ...
    Column("source_id", Uuid, nullable=False),
    # A refund's item is negative: it gives back gross and fee, and takes its net.
    Column("gross_minor", MinorUnits, nullable=False),
    Column("fee_minor", MinorUnits, nullable=False),
    Column("net_minor", MinorUnits, nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=False),
    Column("batch_id", Uuid, ForeignKey("settlement_batches.id")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("source_kind", "source_id"),
    CheckConstraint("gross_minor - fee_minor = net_minor", name="adds_up"),
    CheckConstraint("source_kind ~ '^[a-z][a-z0-9_]{0,63}$'", name="source_kind"),
)
# The binding scan: a merchant's unbatched items in one currency, by completion time.
Index("ix_settlement_items_unbatched", settlement_items.c.merchant_id,
      settlement_items.c.currency, settlement_items.c.completed_at,
      postgresql_where=text("batch_id IS NULL"))
Index("ix_settlement_items_batch", settlement_items.c.batch_id, settlement_items.c.id)

# A merchant's own settlement cycle (T+N days), overriding `settlement_cycle_days`.
settlement_schedules = Table(
    "settlement_schedules",
    metadata,
    Column("merchant_id", Uuid, primary_key=True),
    Column("cycle_days", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("cycle_days BETWEEN 0 AND 30", name="cycle_days"),
)

# A merchant's refund of (part of) a QR payment to the payer's wallet. `source` says
# which merchant account pays it, decided when it is recorded: the pending-settlement
# account while the payment is not in a batch (the refund then becomes a negative
# settlement item), else the merchant balance.
qr_refunds = Table(
    "qr_refunds",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("payment_id", Uuid, nullable=False),
    Column("merchant_id", Uuid, nullable=False),
    Column("payer_user_id", Uuid, nullable=False),
    Column("currency", Text, nullable=False),
    Column("amount_minor", MinorUnits, nullable=False),
    Column("fee_returned_minor", MinorUnits, nullable=False),  # the fee's share given back
    Column("source", Text, nullable=False),
    Column("status", Text, nullable=False),  # created, succeeded, failed
    Column("failure_code", Text),
    Column("transfer_id", Uuid, unique=True),
    Column("idempotency_key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),
    UniqueConstraint("merchant_id", "idempotency_key"),
    CheckConstraint("amount_minor > 0 AND fee_returned_minor >= 0 "
                    "AND fee_returned_minor <= amount_minor", name="amounts"),
    CheckConstraint("source IN ('pending_settlement', 'merchant_balance')", name="source"),
    CheckConstraint("status IN ('created', 'succeeded', 'failed')", name="status"),
)
Index("ix_qr_refunds_payment", qr_refunds.c.payment_id, qr_refunds.c.id)
