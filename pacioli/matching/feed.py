"""The live market-data feed of one market: the book's numbered messages, fanned out.

The exchange publishes each acknowledged command's messages (`Result.md`) here, in
sequence order, from the thread that runs the command. Each subscriber has a bounded
queue of its own. Publishing never blocks and never waits for a reader: a subscriber
whose queue would pass `queue_max` is dropped on the spot and marked `lagged` (it lost
messages, so it must resnapshot). Matching is never slowed by a slow client beyond the
cost of appending to the queues of those that keep up.

A subscriber waits for messages with `wait` (a thread) or `wait_async` (an event loop,
woken through `call_soon_threadsafe`, so a stream does not hold a worker thread while it
waits), then takes everything queued with `drain`.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Iterable

from pacioli.matching.market_data import MarketDataMessage

QUEUE_MAX_DEFAULT = 10_000  # messages; about a second of a busy book


class Subscription:
    """One subscriber's queue of messages (see the module docstring)."""

    def __init__(self, feed: MarketFeed, queue_max: int) -> None:
        self.symbol = feed.symbol
        self._feed = feed
        self._queue_max = queue_max
        self._messages: deque[MarketDataMessage] = deque()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        # The event loop and event of a `wait_async` in progress, if any.
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self.lagged = False
        self.closed = False

    # The reader's side.

    def drain(self) -> list[MarketDataMessage]:
        """Everything queued now, oldest first (empty once lagged: the rest is useless)."""
        with self._lock:
            messages = list(self._messages)
            self._messages.clear()
            if not (self.lagged or self.closed):  # those stay ready: the reader must see them
                self._ready.clear()
        return messages

    def wait(self, timeout_s: float) -> bool:
        """Block until a message is queued, or the subscription lags or closes; False on timeout."""
        return self._ready.wait(timeout_s)

    async def wait_async(self, timeout_s: float) -> bool:
        """`wait` for an event loop: suspends the coroutine, not a thread."""
        event = asyncio.Event()
        with self._lock:
            if self._ready.is_set():
                return True
            self._waiter = (asyncio.get_running_loop(), event)
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
            return True
        except TimeoutError:
            return self._ready.is_set()
        finally:
            with self._lock:
                self._waiter = None

    def close(self) -> None:
        """Stop receiving; the feed forgets this subscription."""
        self._feed.forget(self)
        with self._lock:
            self.closed = True
            self._messages.clear()
            self._wake()

    # The publisher's side.

    def offer(self, messages: list[MarketDataMessage]) -> bool:
        """Queue `messages`; False (and lagged) when they do not fit."""
        with self._lock:
            if self.closed or self.lagged:
                return False
            if len(self._messages) + len(messages) > self._queue_max:
                self.lagged = True
                self._messages.clear()
                self._wake()
                return False
            self._messages.extend(messages)
            self._wake()
            return True

    def _wake(self) -> None:
        self._ready.set()
        if self._waiter is not None:
            loop, event = self._waiter
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the reader's loop is closed: nobody is waiting any more
                self._waiter = None


class MarketFeed:
    """The subscribers of one market and the publishing of its messages to them."""

    def __init__(self, symbol: str, *, queue_max: int = QUEUE_MAX_DEFAULT) -> None:
        self.symbol = symbol
        self.queue_max = queue_max
        self._subscriptions: list[Subscription] = []
        self._lock = threading.Lock()

    def subscribe(self, *, queue_max: int | None = None) -> Subscription:
        """A new subscription; it receives every message published from now on."""
        subscription = Subscription(self, queue_max or self.queue_max)
        with self._lock:
            self._subscriptions = [*self._subscriptions, subscription]
        return subscription

    def publish(self, messages: Iterable[MarketDataMessage]) -> None:
        """Queue `messages` (one command's, in sequence order) for every subscriber.

        Never blocks on a reader; a subscriber that cannot take them is dropped (lagged).
        """
        subscriptions = self._subscriptions  # replaced whole on change: a safe snapshot
        if not subscriptions:
            return
        batch = list(messages)
        if not batch:
            return
        dropped = [s for s in subscriptions if not s.offer(batch)]
        for subscription in dropped:
            self.forget(subscription)

    def forget(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions = [s for s in self._subscriptions if s is not subscription]

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)
