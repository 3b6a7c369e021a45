"""Tables of the funding flows: linked instruments, top-ups and withdrawals (migration 0006).

No balance is stored here. An instrument row holds what the gateway gave back for a card
or bank account (a token, the brand, the last four digits), never the number or CVC. A
top-up or withdrawal row records what the user asked for and where it stands; the money
moves in the ledger, in the transfers these rows name.
"""

from __future__ import annotations

from sqlalchemy import (
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

# A card or bank account a user linked: the gateway's token and what may be shown.
funding_instruments = Table(
    "funding_instruments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("kind", Text, nullable=False),  # card, bank_account
    Column("gateway", Text, nullable=False),
    Column("token", Text, nullable=False),
    Column("brand", Text),  # cards only
    Column("last4", Text, nullable=False),
    Column("exp_month", Integer),  # cards only
    Column("exp_year", Integer),  # cards only
    Column("routing_number", Text),  # bank accounts only
    Column("status", Text, nullable=False),  # active, removed
    Column("idempotency_key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("created_at", INSTANT, nullable=False),
    Column("removed_at", INSTANT),
    UniqueConstraint("user_id", "kind", "idempotency_key"),
    UniqueConstraint("gateway", "token"),
)

# A top-up: a wallet funded from a linked card or bank account.
topups = Table(
    "topups",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("instrument_id", Uuid, nullable=False),
    Column("source_kind", Text, nullable=False),  # card, bank_account
    Column("gateway", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("amount_minor", MinorUnits, nullable=False),
    Column("status", Text, nullable=False),  # created, pending, authorized, succeeded, failed
    Column("failure_code", Text),
    Column("gateway_reference", Text),
    Column("hold_transfer_id", Uuid),
    Column("settlement_transfer_id", Uuid),  # the post or the void of the hold
    Column("idempotency_key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("created_at", INSTANT, nullable=False),
    Column("updated_at", INSTANT, nullable=False),
    Column("completed_at", INSTANT),
    UniqueConstraint("user_id", "idempotency_key"),
    Index("ix_topups_gateway_reference", "gateway", "gateway_reference", unique=True),
)

# A withdrawal: wallet funds paid out to a linked bank account.
withdrawals = Table(
    "withdrawals",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("instrument_id", Uuid, nullable=False),
    Column("gateway", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("amount_minor", MinorUnits, nullable=False),
    Column("status", Text, nullable=False),  # created, pending, succeeded, failed
    Column("failure_code", Text),
    Column("gateway_reference", Text),
    Column("hold_transfer_id", Uuid),
    Column("settlement_transfer_id", Uuid),
    Column("idempotency_key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("created_at", INSTANT, nullable=False),
    Column("updated_at", INSTANT, nullable=False),
    Column("completed_at", INSTANT),
    UniqueConstraint("user_id", "idempotency_key"),
    Index("ix_withdrawals_gateway_reference", "gateway", "gateway_reference", unique=True),
)
