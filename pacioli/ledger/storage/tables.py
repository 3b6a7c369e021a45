"""The ledger's tables, as SQLAlchemy Core metadata (the migrations create them).

Amounts are NUMERIC(39,0), read and written as Python ints through `MinorUnits`.
`transfers` and `postings` are append-only: a trigger installed by the initial migration
refuses UPDATE, DELETE and TRUNCATE on them.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class MinorUnits(TypeDecorator):
    """NUMERIC(39,0) in the database, int in Python; a float never gets through."""

    impl = Numeric(39, 0, asdecimal=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if type(value) is not int:
            raise TypeError(f"amounts are ints of minor units, not {type(value).__name__}")
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, Decimal):
            return int(value)
        return value


def _amount(name: str, *, nullable: bool = False) -> Column:
    return Column(name, MinorUnits(), nullable=nullable)


def _timestamp(name: str, *, nullable: bool = False) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable)


assets = Table(
    "assets",
    metadata,
    Column("code", Text, primary_key=True),
    Column("scale", SmallInteger, nullable=False),
    _timestamp("created_at"),
    CheckConstraint("scale BETWEEN 0 AND 18", name="scale_range"),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("asset_code", Text, ForeignKey("assets.code"), nullable=False),
    Column("normal_side", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("debits_must_not_exceed_credits", Boolean, nullable=False),
    Column("credits_must_not_exceed_debits", Boolean, nullable=False),
    _amount("limit_minor", nullable=True),
    _amount("debits_posted"),
    _amount("credits_posted"),
    _amount("debits_pending"),
    _amount("credits_pending"),
    Column("posting_count", BigInteger, nullable=False),
    Column("metadata", JSONB, nullable=False),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    CheckConstraint("normal_side IN ('debit', 'credit')", name="normal_side"),
    CheckConstraint("status IN ('open', 'frozen', 'closed')", name="status"),
    CheckConstraint(
        "debits_posted >= 0 AND credits_posted >= 0"
        " AND debits_pending >= 0 AND credits_pending >= 0",
        name="balances_nonnegative",
    ),
    CheckConstraint(
        "NOT debits_must_not_exceed_credits"
        " OR debits_posted + debits_pending <= credits_posted + coalesce(limit_minor, 0)",
        name="debits_within_credits",
    ),
    CheckConstraint(
        "NOT credits_must_not_exceed_debits"
        " OR credits_posted + credits_pending <= debits_posted + coalesce(limit_minor, 0)",
        name="credits_within_debits",
    ),
    Index("ix_accounts_metadata", "metadata", postgresql_using="gin",
          postgresql_ops={"metadata": "jsonb_path_ops"}),
    # Room on each page so balance updates are HOT (no index writes): every transfer
    # updates two or more account rows.
    postgresql_with={"fillfactor": "80"},
)

transfers = Table(
    "transfers",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("pending_id", Uuid, ForeignKey("transfers.id"), nullable=True),
    Column("reverses_id", Uuid, ForeignKey("transfers.id"), nullable=True),
    Column("batch_id", Uuid, nullable=True),
    _timestamp("expires_at", nullable=True),
    Column("metadata", JSONB, nullable=False),
    _timestamp("created_at"),
    CheckConstraint(
        "kind IN ('posted', 'pending', 'post_pending', 'void_pending', 'expire_pending',"
        " 'reversal')",
        name="kind",
    ),
    CheckConstraint(
        "(pending_id IS NOT NULL) = (kind IN ('post_pending', 'void_pending', 'expire_pending'))",
        name="pending_id_for_resolutions",
    ),
    CheckConstraint("(reverses_id IS NOT NULL) = (kind = 'reversal')", name="reverses_id"),
    # A pending transfer is resolved once and a transfer reversed once: the database
    # enforces both. Partial, so ordinary transfers add nothing to these indexes.
    Index("uq_transfers_pending_id", "pending_id", unique=True,
          postgresql_where=text("pending_id IS NOT NULL")),
    Index("uq_transfers_reverses_id", "reverses_id", unique=True,
          postgresql_where=text("reverses_id IS NOT NULL")),
    Index("ix_transfers_created_at_id", "created_at", "id"),
    Index("ix_transfers_batch_id", "batch_id", postgresql_where=text("batch_id IS NOT NULL")),
    Index("ix_transfers_metadata", "metadata", postgresql_using="gin",
          postgresql_ops={"metadata": "jsonb_path_ops"}),
)

postings = Table(
    "postings",
    metadata,
    # No foreign keys on postings (nor on open_pending_transfers): the write path inserts
    # them with their transfer, under their account's lock. A key check would read the
    # transfers index at its right edge, where every batch inserts, and at SERIALIZABLE
    # those reads make concurrent batches abort each other; it would also cost a lookup
    # per posting. `pacioli reconcile ledger` checks that every reference resolves.
    Column("account_id", Uuid, primary_key=True),
    Column("account_seq", BigInteger, primary_key=True),
    Column("transfer_id", Uuid, nullable=False),
    Column("leg_index", SmallInteger, nullable=False),
    # No foreign key: the asset is the account's (checked by `pacioli reconcile ledger`);
    # a per-row key check here would cost every posting.
    Column("asset_code", Text, nullable=False),
    Column("direction", Text, nullable=False),
    Column("layer", Text, nullable=False),
    _amount("amount_minor"),
    _amount("debits_posted_after"),
    _amount("credits_posted_after"),
    _amount("debits_pending_after"),
    _amount("credits_pending_after"),
    _timestamp("created_at"),
    CheckConstraint("direction IN ('debit', 'credit')", name="direction"),
    CheckConstraint("layer IN ('posted', 'pending')", name="layer"),
    CheckConstraint(
        "amount_minor > 0 OR (layer = 'pending' AND amount_minor < 0)", name="amount_sign"
    ),
    Index("ix_postings_transfer_id_leg_index", "transfer_id", "leg_index", unique=True),
    Index("ix_postings_account_id_created_at", "account_id", "created_at"),
)

# Holds not yet posted, voided or expired: a small table the expiry sweep scans, so it
# never has to look through every pending transfer ever made.
open_pending_transfers = Table(
    "open_pending_transfers",
    metadata,
    Column("transfer_id", Uuid, primary_key=True),
    _timestamp("expires_at", nullable=True),
    Index("ix_open_pending_transfers_expires_at", "expires_at"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("client_id", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("request_hash", LargeBinary, nullable=False),
    Column("command_type", Text, nullable=False),
    Column("result_refs", JSONB, nullable=False),
    _timestamp("created_at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", Uuid, nullable=False),  # made unique by uuid7; consumers dedupe on it
    Column("event_type", Text, nullable=False),
    Column("aggregate_type", Text, nullable=False),
    Column("aggregate_id", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    _timestamp("created_at"),
    _timestamp("sent_at", nullable=True),
    Index("ix_outbox_unsent", "id", postgresql_where=text("sent_at IS NULL")),
    # The relay's check that no earlier event of an aggregate is still unsent (0010).
    Index(
        "ix_outbox_unsent_aggregate", "aggregate_type", "aggregate_id", "id",
        postgresql_where=text("sent_at IS NULL"),
    ),
)

# Which consumer handled which outbox event: consumers dedupe on it (pacioli.ledger.outbox).
consumed_events = Table(
    "consumed_events",
    metadata,
    Column("consumer", Text, primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    _timestamp("consumed_at"),
)
