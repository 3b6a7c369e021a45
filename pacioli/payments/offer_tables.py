"""Tables of offers and cashback (migration 0007).

No balance is stored here. An offer is a rule; a promotion funding records money moved
into a promotions pool; a cashback records what a qualifying payment earned and whether
the pool paid it. The money moves in the ledger, in the transfers these rows name.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)

from pacioli.ledger.storage.tables import MinorUnits

metadata = MetaData()

INSTANT = DateTime(timezone=True)

# An offer: cashback in basis points of a qualifying payment, up to a cap per payment.
# `funder` is "platform" or "merchant:<id>"; it names the promotions pool that pays.
offers = Table(
    "offers",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("funder", Text, nullable=False),
    Column("merchant_id", Uuid),  # only payments to this merchant qualify (None: any)
    Column("currency", Text, nullable=False),
    Column("cashback_bps", Integer, nullable=False),
    Column("cap_minor", MinorUnits, nullable=False),
    Column("min_payment_minor", MinorUnits, nullable=False),
    Column("uses_per_user_max", Integer),  # None: unlimited
    Column("starts_at", INSTANT, nullable=False),
    Column("ends_at", INSTANT),  # None: until ended
    Column("status", Text, nullable=False),  # active, ended
    Column("description", Text, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("created_at", INSTANT, nullable=False),
    Column("ended_at", INSTANT),
    UniqueConstraint("funder", "idempotency_key", name="uq_offers_funder_idempotency_key"),
    CheckConstraint("cashback_bps BETWEEN 1 AND 10000", name="ck_offers_cashback_bps"),
    CheckConstraint("cap_minor > 0 AND min_payment_minor >= 0", name="ck_offers_amounts"),
    CheckConstraint("uses_per_user_max IS NULL OR uses_per_user_max > 0",
                    name="ck_offers_uses_per_user_max"),
    CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="ck_offers_window"),
    CheckConstraint("status IN ('active', 'ended')", name="ck_offers_status"),
    Index("ix_offers_active_currency", "currency", "status", "starts_at"),
    Index("ix_offers_funder_id", "funder", "id"),
)

# How many cashbacks an offer has granted to one user (for `uses_per_user_max`). An
# atomic conditional upsert on this row is what keeps two concurrent payments of one user
# from both taking the last use.
offer_uses = Table(
    "offer_uses",
    metadata,
    Column("offer_id", Uuid, primary_key=True),
    Column("user_id", Uuid, primary_key=True),
    Column("uses", Integer, nullable=False),
    CheckConstraint("uses >= 0", name="ck_offer_uses_uses"),
)

# Money moved into a promotions pool: from the platform's bank account, or from a
# merchant's balance into the merchant's own pool.
promotion_fundings = Table(
    "promotion_fundings",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("funder", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("amount_minor", MinorUnits, nullable=False),
    Column("status", Text, nullable=False),  # created, succeeded, failed
    Column("failure_code", Text),
    Column("transfer_id", Uuid),
    Column("idempotency_key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("created_at", INSTANT, nullable=False),
    Column("completed_at", INSTANT),
    UniqueConstraint("funder", "idempotency_key",
                     name="uq_promotion_fundings_funder_idempotency_key"),
    CheckConstraint("amount_minor > 0", name="ck_promotion_fundings_amount_positive"),
    CheckConstraint("status IN ('created', 'succeeded', 'failed')",
                    name="ck_promotion_fundings_status"),
    Index("ix_promotion_fundings_funder_created", "funder", "created_at", "id"),
)

# The cashback one qualifying payment earned: at most one per payment (unique), paid by
# one ledger transfer keyed `cashback:<payment id>`, or recorded as `unfunded` when the
# pool could not pay it.
cashbacks = Table(
    "cashbacks",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("payment_kind", Text, nullable=False),  # qr_payment
    Column("payment_id", Uuid, nullable=False),
    Column("offer_id", Uuid, nullable=False),
    Column("funder", Text, nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("merchant_id", Uuid, nullable=False),  # the merchant the payment paid
    Column("currency", Text, nullable=False),
    Column("amount_minor", MinorUnits, nullable=False),
    Column("status", Text, nullable=False),  # created, paid, unfunded, failed
    Column("failure_code", Text),
    Column("transfer_id", Uuid),
    Column("created_at", INSTANT, nullable=False),
    Column("completed_at", INSTANT),
    UniqueConstraint("payment_id", name="uq_cashbacks_payment_id"),
    CheckConstraint("amount_minor > 0", name="ck_cashbacks_amount_positive"),
    CheckConstraint("status IN ('created', 'paid', 'unfunded', 'failed')",
                    name="ck_cashbacks_status"),
    Index("ix_cashbacks_user_created", "user_id", "created_at", "id"),
    Index("ix_cashbacks_funder_created", "funder", "created_at", "id"),
)
