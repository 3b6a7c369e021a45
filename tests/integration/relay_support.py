"""Helpers for the relay, broker and worker tests: an outbox of one's own and a consumer
whose effects can be counted.

`EffectRecorder` is a real idempotent consumer: in one transaction it records the event
with `first_consumption` and, only the first time, writes an effect row. The effects
table has no unique key, so a missing dedupe would show as two rows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from sqlalchemy import Engine, text

from pacioli.ledger.outbox import Event, append_event, first_consumption

EFFECTS_TABLE = "relay_test_effects"


def create_effects_table(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text(
            f"CREATE TABLE IF NOT EXISTS {EFFECTS_TABLE} ("
            " consumer text NOT NULL, event_id uuid NOT NULL, event_type text NOT NULL,"
            " aggregate_id text NOT NULL, event_created_at timestamptz NOT NULL,"
            " handled_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        ))


class EffectRecorder:
    """An idempotent consumer whose effect is one row per event in the effects table."""

    def __init__(self, engine: Engine, name: str = "recorder", *,
                 delay_seconds: float = 0.0) -> None:
        self.name = name
        self._engine = engine
        self._delay_seconds = delay_seconds  # a slow consumer, to be caught mid-message

    def handle(self, event: Event) -> None:
        time.sleep(self._delay_seconds)
        with self._engine.begin() as connection:
            if not first_consumption(connection, self.name, event.event_id):
                return
            connection.execute(
                text(f"INSERT INTO {EFFECTS_TABLE}"
                     " (consumer, event_id, event_type, aggregate_id, event_created_at)"
                     " VALUES (:consumer, :event_id, :event_type, :aggregate_id, :created_at)"),
                {"consumer": self.name, "event_id": event.event_id,
                 "event_type": event.event_type, "aggregate_id": event.aggregate_id,
                 "created_at": event.created_at},
            )


def effect_counts(engine: Engine, consumer: str = "recorder") -> dict[uuid.UUID, int]:
    """How many effect rows each event has, for one consumer."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(f"SELECT event_id, count(*) AS n FROM {EFFECTS_TABLE}"
                 " WHERE consumer = :consumer GROUP BY event_id"),
            {"consumer": consumer},
        ).all()
    return {row.event_id: row.n for row in rows}


def append_events(engine: Engine, aggregate_ids: Sequence[str],
                  event_type: str = "thing.happened") -> list[Event]:
    """One committed event per aggregate id given, each in a transaction of its own."""
    events = []
    for index, aggregate_id in enumerate(aggregate_ids):
        with engine.begin() as connection:
            events.append(append_event(connection, event_type, "thing", aggregate_id,
                                       {"index": str(index)}))
    return events
