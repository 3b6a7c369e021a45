"""The outbox relay: moves committed events from the outbox to the consumers' queues.

Each round claims a batch of unsent events (`pacioli.ledger.storage.outbox_relay`),
sends ONE dramatiq message per consumer carrying the events that consumer wants (as
`Event.to_message()` dicts, in outbox order), and marks the batch sent in the claiming
transaction once the broker accepted every message. A full batch is followed at once
by another round; otherwise the relay waits `poll_interval_seconds` first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from dramatiq import Actor
from sqlalchemy import Engine

from pacioli.ledger.outbox import Event
from pacioli.ledger.storage.outbox_relay import CLAIM_LIMIT_MAX, relay_batch
from pacioli.workers.actors import EventConsumer, wanted_types

log = logging.getLogger(__name__)

# After a round fails (database or broker unreachable), wait this long, doubling, to this.
FAILURE_BACKOFF_MIN_SECONDS = 0.5
FAILURE_BACKOFF_MAX_SECONDS = 30.0

Send = Callable[[list[Event]], None]


def dispatcher(consumers: Sequence[EventConsumer], actors: Mapping[str, Actor]) -> Send:
    """A `send` that enqueues one message per consumer with the events it wants."""
    routes = [(actors[c.name], wanted_types(c)) for c in consumers]

    def send(events: list[Event]) -> None:
        for actor, types in routes:
            chosen = [e.to_message() for e in events if types is None or e.event_type in types]
            if chosen:
                actor.send(chosen)

    return send


class OutboxRelay:
    """Relays outbox events to the broker until stopped (one thread runs `run`)."""

    def __init__(
        self, engine: Engine, send: Send, *, batch_size: int = 500,
        poll_interval_seconds: float = 0.1,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not 1 <= batch_size <= CLAIM_LIMIT_MAX:
            raise ValueError(f"batch_size must be between 1 and {CLAIM_LIMIT_MAX}")
        self._engine = engine
        self._send = send
        self._clock = clock
        self.batch_size = batch_size
        self.poll_interval_seconds = poll_interval_seconds

    def relay_once(self) -> int:
        """One round: claim, send, mark; return how many events went out."""
        return relay_batch(self._engine, self._send, self.batch_size, clock=self._clock)

    def relay_all(self) -> int:
        """Rounds until the outbox holds no event this relay can take; return the total."""
        total = 0
        while sent := self.relay_once():
            total += sent
        return total

    def run(self, stop: threading.Event) -> None:
        """Relay until `stop` is set; a failed round is logged and retried with backoff."""
        backoff_seconds = FAILURE_BACKOFF_MIN_SECONDS
        while not stop.is_set():
            try:
                sent = self.relay_once()
            except Exception:
                log.exception("outbox relay round failed; retrying",
                              extra={"retry_in_seconds": backoff_seconds})
                stop.wait(backoff_seconds)
                backoff_seconds = min(backoff_seconds * 2, FAILURE_BACKOFF_MAX_SECONDS)
                continue
            backoff_seconds = FAILURE_BACKOFF_MIN_SECONDS
            if sent < self.batch_size:
                stop.wait(self.poll_interval_seconds)
