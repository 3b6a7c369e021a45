"""Claiming unsent outbox events for a relay, and marking them sent once a broker took them.

`relay_batch(engine, send, limit)` is one round of the relay, in one database
transaction: claim up to `limit` unsent events in id order, hand them to `send` (which
puts them on the broker and returns once the broker accepted them), mark them sent,
commit. If `send` raises, or the process dies before the commit, nothing is marked and
the events are claimed again later: delivery is at least once, and consumers dedupe by
event id (`pacioli.ledger.outbox.first_consumption`).

Several relays may run at once. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so two
relays never hold the same event, and an event is claimed only if no earlier unsent
event of the same aggregate is outside the claimed batch (held by another relay, say):
a later event of an aggregate never overtakes an earlier one. For one aggregate, id
order is commit order, because the writers of one aggregate serialize on its row and
take their outbox id after that lock. Across aggregates there is no order.

The transaction stays open while `send` talks to the broker. That is deliberate: the
row locks on the claimed events are what keeps other relays off them, and they are locks
on outbox rows only, which no writer waits for (writers only insert). A relay stuck on
a broker call loses its locks after `IDLE_IN_TRANSACTION_TIMEOUT`, and its events go to
another relay. The statements are PostgreSQL's; `SKIP LOCKED` exists on CockroachDB and
YugabyteDB too, `idle_in_transaction_session_timeout` only on PostgreSQL and YugabyteDB.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text

from pacioli.ledger.outbox import Event

CLAIM_LIMIT_MAX = 1000
# A relay that holds its claim longer than this without a statement loses it.
IDLE_IN_TRANSACTION_TIMEOUT = "60s"

# The candidates are the first unsent rows nobody else holds; of those, a row is taken
# only if every earlier unsent row of its aggregate is a candidate too. A candidate that
# fails the test stays locked (and unsent) until this transaction ends, which is fine:
# the relay that holds the earlier event will let it through on a later round.
# The per-aggregate test reads ix_outbox_unsent_aggregate (migration 0010).
_CLAIM = text(
    """
    WITH candidates AS (
        SELECT id, event_id, event_type, aggregate_type, aggregate_id, payload, created_at
        FROM outbox
        WHERE sent_at IS NULL
        ORDER BY id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    SELECT c.id, c.event_id, c.event_type, c.aggregate_type, c.aggregate_id, c.payload,
           c.created_at
    FROM candidates AS c
    WHERE NOT EXISTS (
        SELECT 1
        FROM outbox AS earlier
        WHERE earlier.sent_at IS NULL
          AND earlier.aggregate_type = c.aggregate_type
          AND earlier.aggregate_id = c.aggregate_id
          AND earlier.id < c.id
          AND earlier.id NOT IN (SELECT id FROM candidates)
    )
    ORDER BY c.id
    """
)

_MARK_SENT = text("UPDATE outbox SET sent_at = :sent_at WHERE id = ANY(:ids)")

_SET_TIMEOUT = text(
    f"SET LOCAL idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_TIMEOUT}'"
)


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    """An unsent event this relay holds: its outbox row id (the order) and the event."""

    outbox_id: int
    event: Event


def claim_unsent(connection: Connection, limit: int) -> list[ClaimedEvent]:
    """Lock and return up to `limit` unsent events in id order (see the module docstring).

    Call it inside a transaction; the claim lasts until that transaction ends.
    """
    if not 1 <= limit <= CLAIM_LIMIT_MAX:
        raise ValueError(f"limit must be between 1 and {CLAIM_LIMIT_MAX}, not {limit}")
    rows = connection.execute(_CLAIM, {"limit": limit}).all()
    return [
        ClaimedEvent(
            outbox_id=row.id,
            event=Event(
                event_id=row.event_id,
                event_type=row.event_type,
                aggregate_type=row.aggregate_type,
                aggregate_id=row.aggregate_id,
                payload=row.payload,
                created_at=row.created_at,
            ),
        )
        for row in rows
    ]


def mark_sent(connection: Connection, outbox_ids: Sequence[int], sent_at: datetime) -> None:
    """Record that the broker accepted these events (in the transaction that claimed them)."""
    if outbox_ids:
        connection.execute(_MARK_SENT, {"sent_at": sent_at, "ids": list(outbox_ids)})


def relay_batch(
    engine: Engine,
    send: Callable[[list[Event]], None],
    limit: int,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Claim up to `limit` events, `send` them, mark them sent, commit; return how many.

    `send` must return only once the broker accepted every event it was given, and raise
    otherwise; then nothing is marked and the events are claimed again later.
    """
    with engine.connect() as connection, connection.begin():
        connection.execute(_SET_TIMEOUT)
        claimed = claim_unsent(connection, limit)
        if not claimed:
            return 0
        send([c.event for c in claimed])
        mark_sent(connection, [c.outbox_id for c in claimed], clock())
    return len(claimed)


def unsent_count(connection: Connection) -> int:
    """How many events wait for a relay (for monitoring and tests)."""
    unsent = text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
    return connection.execute(unsent).scalar_one()
