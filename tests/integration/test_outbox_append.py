"""Flows append events in their own transactions; consumers record what they handled."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from pacioli.ledger.outbox import Event, append_event, first_consumption
from pacioli.ledger.storage.tables import outbox


def test_an_appended_event_commits_with_the_callers_transaction(engine):
    aggregate = uuid.uuid4().hex
    with engine.begin() as connection:
        event = append_event(connection, "thing.done", "thing", aggregate, {"n": "1"})

    with engine.connect() as connection:
        row = connection.execute(
            select(outbox).where(outbox.c.aggregate_id == aggregate)).one()
    assert (row.event_id, row.event_type, row.payload, row.sent_at) == (
        event.event_id, "thing.done", {"n": "1"}, None)


def test_an_event_appended_in_a_rolled_back_transaction_never_exists(engine):
    aggregate = uuid.uuid4().hex
    with engine.connect() as connection:
        append_event(connection, "thing.done", "thing", aggregate, {})
        connection.rollback()

    with engine.connect() as connection:
        rows = connection.execute(select(outbox).where(outbox.c.aggregate_id == aggregate))
        assert rows.all() == []


def test_first_consumption_is_true_once_per_consumer_and_event(engine):
    event_id = uuid.uuid4()
    with engine.begin() as connection:
        first = first_consumption(connection, "tests", event_id)
        again = first_consumption(connection, "tests", event_id)
        other = first_consumption(connection, "other tests", event_id)
    assert (first, again, other) == (True, False, True)


def test_an_event_survives_the_trip_through_a_message():
    event = Event(uuid.uuid4(), "a.b", "a", "1", {"amount_minor": "10"},
                  created_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert Event.from_message(event.to_message()) == event
