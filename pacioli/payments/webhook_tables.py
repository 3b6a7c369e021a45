"""Tables of merchant webhooks: endpoints, deliveries and attempts (migration 0011).

An endpoint's signing secrets are stored as they are (not hashed, not encrypted): signing
needs them. docs/webhooks.md says what that means for whoever can read the database.
A delivery is one event for one endpoint; its row carries the retry schedule
(`next_attempt_at`) and the payload exactly as it is sent on every attempt.
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
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()

INSTANT = DateTime(timezone=True)

# A merchant's receiving URL. `event_types` NULL means every event type.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", Uuid, nullable=False),
    Column("url", Text, nullable=False),
    Column("description", Text),
    Column("event_types", ARRAY(Text)),
    Column("status", Text, nullable=False),  # active, failing, disabled
    Column("disabled_reason", Text),  # merchant, gone (the receiver answered 410)
    Column("secret", Text, nullable=False),  # whsec_...
    Column("previous_secret", Text),  # still signs until previous_secret_expires_at
    Column("previous_secret_expires_at", INSTANT),
    Column("created_at", INSTANT, nullable=False),
    Column("updated_at", INSTANT, nullable=False),
    Index("ix_webhook_endpoints_merchant_id", "merchant_id", "id"),
)

# One event for one endpoint, and where its delivery stands.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column(
        "endpoint_id", Uuid, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("merchant_id", Uuid, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("status", Text, nullable=False),  # pending, succeeded, failed
    Column("attempt_count", Integer, nullable=False),  # scheduled attempts claimed so far
    Column("next_attempt_at", INSTANT),  # set while pending (a claim's lease pushes it)
    Column("last_attempt_at", INSTANT),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", INSTANT, nullable=False),
    Column("updated_at", INSTANT, nullable=False),
    UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
    CheckConstraint("(status = 'pending') = (next_attempt_at IS NOT NULL)"),
    Index("ix_webhook_deliveries_due", "next_attempt_at",
          postgresql_where=text("status = 'pending'")),
    Index("ix_webhook_deliveries_endpoint_id", "endpoint_id", "id"),
)

# Every HTTP attempt of a delivery, scheduled or asked for by the merchant.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column(
        "delivery_id", Uuid, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("trigger", Text, nullable=False),  # scheduled, manual
    Column("attempted_at", INSTANT, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),  # timeout, connection_error, address_not_allowed ...
    Column("latency_ms", Integer, nullable=False),
    Index("ix_webhook_attempts_delivery_id", "delivery_id", "id"),
)
