"""The outbox: events written in the same database transaction as the change they describe.

The ledger writes its own events (`transfer.posted`, `account.opened` ...) from the
writer. Flows built on the ledger (payments, commerce, the exchange) append theirs with
`append_event` inside the transaction that records their own state change, so an event
exists if and only if the change committed. A relay (`pacioli.workers.relay`) hands
unsent events to dramatiq, at least once; consumers make each effect happen once by
recording the event id with `first_consumption` in the transaction of the effect.

Amounts in payloads are strings of minor units, so no JSON reader rounds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert

from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.storage.tables import consumed_events, outbox


@dataclass(frozen=True, slots=True)
class Event:
    """One committed change, as consumers receive it."""

    event_id: UUID
    event_type: str
    aggregate_type: str
    aggregate_id: str
    payload: dict[str, Any]
    created_at: datetime

    def to_message(self) -> dict[str, Any]:
        """A JSON-safe dict, the form events travel in through the broker."""
        return {
            "event_id": str(self.event_id),
            "event_type": self.event_type,
            "aggregate_type": self.aggregate_type,
            "aggregate_id": self.aggregate_id,
            "payload": self.payload,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Event:
        return cls(
            event_id=UUID(message["event_id"]),
            event_type=message["event_type"],
            aggregate_type=message["aggregate_type"],
            aggregate_id=message["aggregate_id"],
            payload=message["payload"],
            created_at=datetime.fromisoformat(message["created_at"]),
        )


def append_event(
    connection: Connection,
    event_type: str,
    aggregate_type: str,
    aggregate_id: str,
    payload: dict[str, Any],
    *,
    now: datetime | None = None,
) -> Event:
    """Add an event to the outbox in the caller's transaction (it commits with it)."""
    event = Event(
        event_id=uuid7(),
        event_type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        payload=payload,
        created_at=now or datetime.now(UTC),
    )
    connection.execute(
        insert(outbox).values(
            event_id=event.event_id,
            event_type=event.event_type,
            aggregate_type=event.aggregate_type,
            aggregate_id=event.aggregate_id,
            payload=event.payload,
            created_at=event.created_at,
        )
    )
    return event


def first_consumption(connection: Connection, consumer: str, event_id: UUID) -> bool:
    """Record that `consumer` handled `event_id`; False if it already had.

    Call it in the transaction that makes the consumer's effect: when it returns False,
    skip the effect (a re-sent event), and the effect and the record commit together.
    """
    inserted = connection.execute(
        pg_insert(consumed_events)
        .values(consumer=consumer, event_id=event_id, consumed_at=datetime.now(UTC))
        .on_conflict_do_nothing()
        .returning(consumed_events.c.event_id)
    ).first()
    return inserted is not None
