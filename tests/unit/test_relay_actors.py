"""Actors and the relay's dispatch on dramatiq's StubBroker: messages become consumer calls."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from pacioli.ledger.outbox import Event
from pacioli.workers.actors import (
    EventsNotHandled,
    declare_consumer_actors,
    deliver,
    queue_name,
)
from pacioli.workers.relay import dispatcher

PREFIX = "unit"


def event(aggregate_id: str = "a", event_type: str = "thing.done") -> Event:
    return Event(uuid.uuid4(), event_type, "thing", aggregate_id, {"amount_minor": "5"},
                 datetime.now(UTC))


class Recorder:
    """A consumer that records what it handled, once per event id (as consumers must)."""

    def __init__(self, name: str, *, event_types=None, fail_on: set[uuid.UUID] | None = None):
        self.name = name
        if event_types is not None:
            self.event_types = event_types
        self.fail_on = fail_on or set()
        self.calls: list[Event] = []
        self.effects: dict[uuid.UUID, int] = {}
        self._lock = threading.Lock()

    def handle(self, event: Event) -> None:
        with self._lock:
            self.calls.append(event)
            if event.event_id in self.fail_on:
                self.fail_on.discard(event.event_id)  # fails once, then works
                raise RuntimeError("transient failure")
            if event.event_id not in self.effects:
                self.effects[event.event_id] = 1


class Enqueued(dramatiq.Middleware):
    """Counts the messages put on each queue."""

    def __init__(self) -> None:
        self.by_queue: dict[str, int] = {}

    def after_enqueue(self, broker, message, delay) -> None:
        self.by_queue[message.queue_name] = self.by_queue.get(message.queue_name, 0) + 1


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    broker = StubBroker()
    broker.add_middleware(Enqueued())
    broker.emit_after("process_boot")
    yield broker
    broker.flush_all()
    broker.close()


@pytest.fixture
def worker(broker: StubBroker) -> Iterator[dramatiq.Worker]:
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=2)
    worker.start()
    yield worker
    worker.stop()


def enqueued(broker: StubBroker) -> dict[str, int]:
    return next(m for m in broker.middleware if isinstance(m, Enqueued)).by_queue


def test_deliver_hands_every_event_to_the_consumer_in_order():
    consumer = Recorder("r")
    events = [event("a"), event("b"), event("a")]
    deliver(consumer, [e.to_message() for e in events])
    assert consumer.calls == events


def test_a_failed_event_holds_back_its_aggregate_and_the_message_fails():
    first, blocked, other = event("a"), event("a"), event("b")
    consumer = Recorder("r", fail_on={first.event_id})
    with pytest.raises(EventsNotHandled):
        deliver(consumer, [m.to_message() for m in (first, blocked, other)])
    # The later event of aggregate "a" was not handed over; aggregate "b" went through.
    assert consumer.calls == [first, other]


def test_one_message_per_consumer_carries_the_batch_in_order(broker, worker):
    consumers = [Recorder("one"), Recorder("two")]
    actors = declare_consumer_actors(broker, consumers, queue_prefix=PREFIX)
    events = [event(str(i % 3)) for i in range(10)]

    dispatcher(consumers, actors)(events)

    for consumer in consumers:
        name = queue_name(PREFIX, consumer.name)
        assert enqueued(broker)[name] == 1  # one message for the whole batch
        broker.join(name)
        worker.join()
        assert consumer.calls == events


def test_a_consumer_gets_only_the_event_types_it_asked_for(broker, worker):
    picky = Recorder("picky", event_types={"wanted"})
    actors = declare_consumer_actors(broker, [picky], queue_prefix=PREFIX)
    events = [event(event_type="wanted"), event(event_type="other"), event(event_type="wanted")]

    dispatcher([picky], actors)(events)
    dispatcher([picky], actors)([event(event_type="other")])  # nothing for it: no message

    name = queue_name(PREFIX, "picky")
    assert enqueued(broker) == {name: 1}
    broker.join(name)
    worker.join()
    assert picky.calls == [events[0], events[2]]


def test_a_failing_message_is_retried_and_every_effect_happens_once(broker, worker):
    events = [event("a"), event("a"), event("b")]
    flaky = Recorder("flaky", fail_on={events[0].event_id})
    actors = declare_consumer_actors(broker, [flaky], queue_prefix=PREFIX)

    dispatcher([flaky], actors)(events)
    broker.join(queue_name(PREFIX, "flaky"), fail_fast=True, timeout=10_000)
    worker.join()

    # First attempt: events[0] failed, events[1] was held back, events[2] handled.
    # The retry handed all three over again; the consumer's dedupe kept one effect each.
    assert flaky.calls == [events[0], events[2], *events]
    assert flaky.effects == {e.event_id: 1 for e in events}
    assert broker.dead_letters == []


def test_a_resent_batch_has_no_second_effect(broker, worker):
    consumer = Recorder("dedupe")
    actors = declare_consumer_actors(broker, [consumer], queue_prefix=PREFIX)
    events = [event("a"), event("b")]
    send = dispatcher([consumer], actors)

    send(events)
    send(events)  # a relay that died before marking the batch sent sends it again
    broker.join(queue_name(PREFIX, "dedupe"))
    worker.join()

    assert len(consumer.calls) == 4
    assert consumer.effects == {e.event_id: 1 for e in events}


def test_two_consumers_with_one_name_are_refused(broker):
    with pytest.raises(ValueError, match="two consumers"):
        declare_consumer_actors(broker, [Recorder("x"), Recorder("x")], queue_prefix=PREFIX)


class BatchRecorder(Recorder):
    """A consumer that takes a message's events in one call (`handle_batch`)."""

    def __init__(self, name: str, *, fail_first_batch: bool = False):
        super().__init__(name)
        self.batches: list[list[Event]] = []
        self._fail_first_batch = fail_first_batch

    def handle_batch(self, events: list[Event]) -> None:
        self.batches.append(list(events))
        if self._fail_first_batch:
            self._fail_first_batch = False
            raise RuntimeError("transient failure")
        for event in events:
            self.effects.setdefault(event.event_id, 1)


def test_a_batch_consumer_gets_each_message_in_one_call_and_a_failure_retries_it(
    broker, worker
):
    consumer = BatchRecorder("batch", fail_first_batch=True)
    actors = declare_consumer_actors(broker, [consumer], queue_prefix=PREFIX)
    events = [event("a"), event("b"), event("a")]

    dispatcher([consumer], actors)(events)
    broker.join(queue_name(PREFIX, "batch"), timeout=10_000)
    worker.join()

    assert consumer.batches == [events, events]  # failed once, retried whole
    assert consumer.calls == []  # handle() is not used when handle_batch exists
    assert consumer.effects == {e.event_id: 1 for e in events}
