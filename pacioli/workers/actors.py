"""The dramatiq actors: each turns a message of events into calls of one consumer.

A consumer is any object with a unique `name` and `handle(event)`, idempotent by
`event.event_id` (docs/workers.md). It may also have `event_types`, the event types it
wants; the relay then sends it only those. Every consumer gets a queue and an actor of
its own (`<prefix>.events.<name>`), so a slow or failing consumer holds up no other.

A message carries a batch of events in outbox order. The actor hands them over one by
one; when one fails, the later events of the same aggregate in the message are held
back (so they do not overtake it), the others still go through, and the actor raises at
the end so that dramatiq retries the message with backoff. The retry hands every event
over again, which consumers make harmless by deduplicating.

A consumer that can do better with many events at once (one database transaction for
the batch instead of one per event) may define `handle_batch(events)` as well; the
actor then calls only that, with the message's events in order, and a failure retries
the whole message. It must be idempotent for each event of the batch, like `handle`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Protocol

import dramatiq
from dramatiq import Actor, Broker

from pacioli.ledger.outbox import Event

log = logging.getLogger(__name__)

# Retries of a failed message: from 2-4 s, doubling, to 2.5-5 min (dramatiq's jitter), about
# six hours in all; then dramatiq dead-letters it (docs/workers.md, failure modes).
RETRIES_MAX = 100
RETRY_BACKOFF_MIN_MS = 1_000
RETRY_BACKOFF_MAX_MS = 300_000


class EventConsumer(Protocol):
    """What the relay feeds: a named, idempotent handler of outbox events."""

    name: str

    def handle(self, event: Event) -> None: ...


class EventsNotHandled(Exception):
    """Some events of a message failed in their consumer; dramatiq retries the message."""


def queue_name(queue_prefix: str, consumer_name: str) -> str:
    """The queue (and actor name) of a consumer's messages."""
    return f"{queue_prefix}.events.{consumer_name}"


def wanted_types(consumer: EventConsumer) -> Collection[str] | None:
    """The event types a consumer asked for, or None for all of them."""
    return getattr(consumer, "event_types", None)


def declare_consumer_actors(
    broker: Broker, consumers: Iterable[EventConsumer], *, queue_prefix: str
) -> dict[str, Actor]:
    """Declare one actor per consumer on `broker`; return them by consumer name."""
    actors: dict[str, Actor] = {}
    for consumer in consumers:
        if consumer.name in actors:
            raise ValueError(f"two consumers are named {consumer.name!r}")
        name = queue_name(queue_prefix, consumer.name)
        actors[consumer.name] = dramatiq.actor(
            _handler_of(consumer), broker=broker, actor_name=name, queue_name=name,
            max_retries=RETRIES_MAX, min_backoff=RETRY_BACKOFF_MIN_MS,
            max_backoff=RETRY_BACKOFF_MAX_MS,
        )
    return actors


def _handler_of(consumer: EventConsumer):
    def consume_events(messages: list[Mapping[str, Any]]) -> None:
        deliver(consumer, messages)

    return consume_events


def deliver(consumer: EventConsumer, messages: Iterable[Mapping[str, Any]]) -> None:
    """Hand the events to `consumer` in order; raise EventsNotHandled if any failed."""
    events = [Event.from_message(dict(message)) for message in messages]
    handle_batch = getattr(consumer, "handle_batch", None)
    if handle_batch is not None:
        handle_batch(events)
        return
    failed_aggregates: set[tuple[str, str]] = set()
    failures = 0
    for event in events:
        aggregate = (event.aggregate_type, event.aggregate_id)
        if aggregate in failed_aggregates:
            continue  # Held back behind its aggregate's failed event, retried with it.
        try:
            consumer.handle(event)
        except Exception:
            log.exception("consumer failed on an event", extra={
                "consumer": consumer.name, "event_id": str(event.event_id),
                "event_type": event.event_type,
            })
            failed_aggregates.add(aggregate)
            failures += 1
    if failures:
        raise EventsNotHandled(
            f"{failures} event(s) failed in consumer {consumer.name!r}; the message is retried"
        )
