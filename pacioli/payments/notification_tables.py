"""Tables of user notifications (migration 0012).

`notifications` is the in-app feed: one row per thing a user is told, unique on
(user, source event, kind), so an event the relay sends twice notifies once. A scheduled
reminder has no event; its `source_event_id` is a UUIDv5 of what it reminds of (a bill),
which makes it once-only the same way.

`notification_deliveries` has one row per notification and outside channel (email, SMS,
push): each channel is retried on its own schedule, so a failing one holds up no other.

`low_balance_alerts` has one row per (user, currency) that was ever watched: the user's
own threshold (NULL: the configured default) and whether an alert is outstanding, so a
user is alerted once when the balance falls below the threshold and again only after it
has recovered.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

from pacioli.ledger.storage.tables import MinorUnits

metadata = MetaData()

INSTANT = DateTime(timezone=True)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Uuid, primary_key=True),  # UUIDv7: newest first is id order
    Column("user_id", Uuid, nullable=False),
    Column("kind", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("source_event_id", Uuid, nullable=False),
    Column("created_at", INSTANT, nullable=False),
    Column("read_at", INSTANT),
    UniqueConstraint("user_id", "source_event_id", "kind",
                     name="uq_notifications_user_source_kind"),
)

notification_deliveries = Table(
    "notification_deliveries",
    metadata,
    Column("notification_id", Uuid, nullable=False),
    Column("channel", Text, nullable=False),  # email, sms, push
    Column("status", Text, nullable=False),  # pending, sent, failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", INSTANT, nullable=False),
    Column("last_error", Text),
    Column("created_at", INSTANT, nullable=False),
    Column("sent_at", INSTANT),
    PrimaryKeyConstraint("notification_id", "channel", name="pk_notification_deliveries"),
)

low_balance_alerts = Table(
    "low_balance_alerts",
    metadata,
    Column("user_id", Uuid, nullable=False),
    Column("currency", Text, nullable=False),
    Column("threshold_minor", MinorUnits),  # NULL: the configured default for the currency
    Column("alerted_at", INSTANT),  # set while an alert is outstanding
    Column("updated_at", INSTANT, nullable=False),
    PrimaryKeyConstraint("user_id", "currency", name="pk_low_balance_alerts"),
)
