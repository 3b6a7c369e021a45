"""The sandbox processor's own tables (`sandbox_*`), as SQLAlchemy Core metadata.

The sandbox plays an external system, so its state lives in tables of its own that no
other part of Pacioli reads: it survives restarts and is shared by every process on the
database, as a real processor's would be. No column holds a card number or a CVC.
Migration 0003 creates them.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

instruments = Table(
    "sandbox_instruments",
    metadata,
    Column("token", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("brand", Text, nullable=True),
    Column("last4", Text, nullable=False),
    Column("exp_month", SmallInteger, nullable=True),
    Column("exp_year", SmallInteger, nullable=True),
    Column("routing_number", Text, nullable=True),
    # The magic behaviour the number selected (see docs/gateways.md), not the number.
    Column("behavior", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("kind IN ('card', 'bank_account')", name="ck_sandbox_instruments_kind"),
)

operations = Table(
    "sandbox_operations",
    metadata,
    Column("reference", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("instrument_token", Text, ForeignKey("sandbox_instruments.token"), nullable=False),
    Column("parent_reference", Text, nullable=True),
    Column("amount_minor", Numeric(39, 0), nullable=False),
    Column("currency", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("decline_code", Text, nullable=True),
    Column("captured_minor", Numeric(39, 0), nullable=False, server_default=text("0")),
    Column("refunded_minor", Numeric(39, 0), nullable=False, server_default=text("0")),
    # An asynchronous outcome waiting for its time: applied when due (by deliver_due or
    # fetch_status) unless the object has left `pending` meanwhile (a void).
    Column("outcome_status", Text, nullable=True),
    Column("outcome_decline_code", Text, nullable=True),
    Column("outcome_due_at", DateTime(timezone=True), nullable=True),
    # For the timeout card: after this, fetch_status reports failed/timeout.
    Column("deadline_at", DateTime(timezone=True), nullable=True),
    # Incremented with every event about this object, so receivers can order events.
    Column("sequence", Integer, nullable=False, server_default=text("0")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("kind IN ('payment', 'refund', 'payout')", name="ck_sandbox_operations_kind"),
    CheckConstraint("amount_minor > 0", name="ck_sandbox_operations_amount_positive"),
    Index("ix_sandbox_operations_outcome_due_at", "outcome_due_at",
          postgresql_where=text("outcome_due_at IS NOT NULL")),
)

requests = Table(
    "sandbox_requests",
    metadata,
    Column("idempotency_key", Text, primary_key=True),
    Column("operation", Text, nullable=False),
    Column("request_hash", LargeBinary, nullable=False),
    Column("response", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

callbacks = Table(
    "sandbox_callbacks",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("gateway_reference", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("sequence", Integer, nullable=False),
    # The exact JSON sent, so every attempt signs and sends the same bytes.
    Column("body", Text, nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_status", Integer, nullable=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("abandoned_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_sandbox_callbacks_due_at", "due_at",
          postgresql_where=text("delivered_at IS NULL AND abandoned_at IS NULL")),
    Index("ix_sandbox_callbacks_gateway_reference", "gateway_reference", "sequence"),
)
