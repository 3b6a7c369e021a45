"""The outbox relay against PostgreSQL: claims, per-aggregate order, at-least-once, dedupe."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Engine, select

from pacioli.ledger.outbox import Event
from pacioli.ledger.storage.database import make_engine
from pacioli.ledger.storage.outbox_relay import claim_unsent, mark_sent, unsent_count
from pacioli.ledger.storage.tables import outbox
from pacioli.workers.actors import declare_consumer_actors, queue_name
from pacioli.workers.relay import OutboxRelay, dispatcher
from tests.integration.relay_support import (
    EffectRecorder,
    append_events,
    create_effects_table,
    effect_counts,
)


@pytest.fixture
def outbox_engine(fresh_database_url: str) -> Iterator[Engine]:
    """An engine on a schema of this test's own, so no other test's events are in its outbox."""
    engine = make_engine(fresh_database_url, pool_size=12)
    create_effects_table(engine)
    yield engine
    engine.dispose()


class SentLog:
    """A `send` that records every batch in the order the relays handed them over."""

    def __init__(self, *, latency_seconds_max: float = 0.0) -> None:
        self.batches: list[list[Event]] = []
        self._lock = threading.Lock()
        self._latency_seconds_max = latency_seconds_max

    def __call__(self, events: list[Event]) -> None:
        # A broker that takes a while widens the window in which relays could overtake.
        time.sleep(random.random() * self._latency_seconds_max)
        with self._lock:
            self.batches.append(list(events))

    @property
    def events(self) -> list[Event]:
        return [e for batch in self.batches for e in batch]


def test_a_relay_claims_unsent_events_in_outbox_order(outbox_engine):
    written = append_events(outbox_engine, ["a", "b", "a", "c", "b"])
    with outbox_engine.begin() as connection:
        claimed = claim_unsent(connection, limit=3)
    assert [c.event for c in claimed] == written[:3]
    assert [c.outbox_id for c in claimed] == sorted(c.outbox_id for c in claimed)


def test_relayed_events_are_marked_sent_and_not_relayed_again(outbox_engine):
    written = append_events(outbox_engine, ["a", "b", "c"])
    sent = SentLog()
    relay = OutboxRelay(outbox_engine, sent, batch_size=2)

    assert relay.relay_all() == 3
    assert relay.relay_all() == 0
    assert sent.events == written
    assert [len(batch) for batch in sent.batches] == [2, 1]
    with outbox_engine.connect() as connection:
        assert unsent_count(connection) == 0
        sent_at = connection.execute(select(outbox.c.sent_at)).scalars().all()
    assert all(at is not None for at in sent_at)


def test_an_event_held_by_another_relay_blocks_the_later_events_of_its_aggregate(outbox_engine):
    x1, y1, x2, z1 = append_events(outbox_engine, ["x", "y", "x", "z"])
    with outbox_engine.connect() as holder, holder.begin():
        held = claim_unsent(holder, limit=1)  # another relay holds x1, not yet sent
        assert [c.event for c in held] == [x1]

        with outbox_engine.begin() as connection:
            claimed = [c.event for c in claim_unsent(connection, limit=10)]
        # y1 and z1 go; x2 must wait for x1 (SKIP LOCKED: no waiting on the holder either).
        assert claimed == [y1, z1]

        mark_sent(holder, [held[0].outbox_id], datetime.now(UTC))
    with outbox_engine.begin() as connection:
        assert [c.event for c in claim_unsent(connection, limit=10)] == [y1, x2, z1]


def test_a_failed_send_marks_nothing_and_the_events_go_out_later(outbox_engine):
    written = append_events(outbox_engine, ["a", "b"])

    def broker_down(events: list[Event]) -> None:
        raise ConnectionError("broker unreachable")

    with pytest.raises(ConnectionError):
        OutboxRelay(outbox_engine, broker_down).relay_once()
    sent = SentLog()
    assert OutboxRelay(outbox_engine, sent).relay_all() == 2
    assert sent.events == written


@pytest.fixture
def stub_broker() -> Iterator[StubBroker]:
    broker = StubBroker()
    broker.emit_after("process_boot")
    yield broker
    broker.flush_all()
    broker.close()


def test_events_reach_a_consumer_through_the_broker_once(outbox_engine, stub_broker):
    consumer = EffectRecorder(outbox_engine)
    actors = declare_consumer_actors(stub_broker, [consumer], queue_prefix="it")
    written = append_events(outbox_engine, ["a", "b", "a"])
    worker = dramatiq.Worker(stub_broker, worker_timeout=50, worker_threads=2)
    worker.start()
    try:
        OutboxRelay(outbox_engine, dispatcher([consumer], actors)).relay_all()
        stub_broker.join(queue_name("it", consumer.name), timeout=10_000)
        worker.join()
    finally:
        worker.stop()
    assert effect_counts(outbox_engine) == {e.event_id: 1 for e in written}


class RelayDied(BaseException):
    """The relay's process ended between the broker's acceptance and the commit."""


def test_a_relay_dying_between_send_and_mark_resends_and_the_effect_happens_once(
    outbox_engine, stub_broker
):
    consumer = EffectRecorder(outbox_engine)
    actors = declare_consumer_actors(stub_broker, [consumer], queue_prefix="crash")
    send = dispatcher([consumer], actors)
    written = append_events(outbox_engine, ["a", "b", "c"])
    handed_over = []

    def send_then_die(events: list[Event]) -> None:
        send(events)  # the broker has the message...
        handed_over.append(events)
        raise RelayDied  # ...and the relay dies before its transaction commits

    with pytest.raises(RelayDied):
        OutboxRelay(outbox_engine, send_then_die).relay_once()
    with outbox_engine.connect() as connection:
        assert unsent_count(connection) == 3  # the claim rolled back with the relay

    assert OutboxRelay(outbox_engine, send).relay_all() == 3  # a new relay sends again
    worker = dramatiq.Worker(stub_broker, worker_timeout=50, worker_threads=2)
    worker.start()
    try:
        stub_broker.join(queue_name("crash", consumer.name), timeout=10_000)
        worker.join()
    finally:
        worker.stop()
    assert handed_over == [written]
    assert effect_counts(outbox_engine) == {e.event_id: 1 for e in written}


def test_two_relays_dispatch_each_event_once_in_per_aggregate_order(outbox_engine):
    """Writers append while two relays run: every event goes out exactly once, and for
    each aggregate in the order its events were committed."""
    aggregates = [f"agg-{i}" for i in range(12)]
    events_per_aggregate = 25
    sent = SentLog(latency_seconds_max=0.005)
    relays = [OutboxRelay(outbox_engine, sent, batch_size=7, poll_interval_seconds=0.005)
              for _ in range(2)]
    stop = threading.Event()
    relay_threads = [threading.Thread(target=r.run, args=(stop,)) for r in relays]
    committed: dict[str, list[Event]] = {}

    def write(owned: list[str], seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(events_per_aggregate):
            for aggregate in rng.sample(owned, len(owned)):
                committed.setdefault(aggregate, []).extend(append_events(outbox_engine,
                                                                         [aggregate]))

    writers = [threading.Thread(target=write, args=(aggregates[i::3], i)) for i in range(3)]
    for thread in relay_threads + writers:
        thread.start()
    for thread in writers:
        thread.join()
    deadline = time.monotonic() + 30
    while _unsent(outbox_engine) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for thread in relay_threads:
        thread.join()

    dispatched = sent.events
    total = len(aggregates) * events_per_aggregate
    assert len(dispatched) == total
    assert len({e.event_id for e in dispatched}) == total
    for aggregate, events in committed.items():
        assert [e for e in dispatched if e.aggregate_id == aggregate] == events
    assert len(sent.batches) > 2  # both relays had work, in several rounds


def _unsent(engine: Engine) -> int:
    with engine.connect() as connection:
        return unsent_count(connection)
