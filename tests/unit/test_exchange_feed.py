"""The market-data feed: every subscriber gets every message in order; a slow one is dropped."""

from __future__ import annotations

import asyncio
import threading

from pacioli.matching import BTC_USD, OrderBook, OrderType, PlaceOrder, Side
from pacioli.matching.feed import MarketFeed


def _messages(count: int, *, start_order_id: int = 1):
    """`count` open messages from a real book (one per resting limit order)."""
    book = OrderBook(BTC_USD)
    out = []
    for offset in range(count):
        order_id = start_order_id + offset
        result = book.apply(PlaceOrder(
            ts=order_id, order_id=order_id, owner="a", side=Side.BUY, type=OrderType.LIMIT,
            size=10000, price=100 + offset,
        ))
        out.extend(result.md)
    return out


def test_every_subscriber_receives_every_message_in_sequence_order():
    feed = MarketFeed("BTC-USD")
    first, second = feed.subscribe(), feed.subscribe()
    messages = _messages(5)
    feed.publish(messages[:2])
    feed.publish(messages[2:])
    for subscription in (first, second):
        assert [m.sequence for m in subscription.drain()] == [1, 2, 3, 4, 5]
        assert subscription.drain() == []


def test_a_subscription_receives_only_what_is_published_after_it_subscribed():
    feed = MarketFeed("BTC-USD")
    messages = _messages(3)
    feed.publish(messages[:1])
    late = feed.subscribe()
    feed.publish(messages[1:])
    assert [m.sequence for m in late.drain()] == [2, 3]


def test_a_subscriber_that_falls_behind_is_dropped_and_marked_lagged_without_blocking():
    feed = MarketFeed("BTC-USD", queue_max=3)
    slow, fast = feed.subscribe(), feed.subscribe()
    messages = _messages(4)
    feed.publish(messages[:2])
    assert [m.sequence for m in fast.drain()] == [1, 2]
    feed.publish(messages[2:])  # slow would hold 4 > 3
    assert slow.lagged and not fast.lagged
    assert slow.drain() == []
    assert slow.wait(0)  # a lagged subscription wakes its reader
    assert feed.subscriber_count == 1
    assert [m.sequence for m in fast.drain()] == [3, 4]


def test_publishing_with_no_subscribers_does_nothing_and_close_forgets_the_subscriber():
    feed = MarketFeed("BTC-USD")
    feed.publish(_messages(1))
    subscription = feed.subscribe()
    subscription.close()
    assert feed.subscriber_count == 0
    assert subscription.closed and subscription.wait(0)
    feed.publish(_messages(1))
    assert subscription.drain() == []


def test_wait_times_out_when_nothing_is_published():
    subscription = MarketFeed("BTC-USD").subscribe()
    assert subscription.wait(0.01) is False


def test_wait_async_is_woken_by_a_publish_from_another_thread():
    feed = MarketFeed("BTC-USD")
    subscription = feed.subscribe()
    messages = _messages(2)

    async def reader() -> list[int]:
        timer = threading.Timer(0.05, feed.publish, args=(messages,))
        timer.start()
        woke = await subscription.wait_async(5.0)
        timer.join()
        assert woke
        return [m.sequence for m in subscription.drain()]

    assert asyncio.run(reader()) == [1, 2]


def test_wait_async_times_out_and_returns_at_once_when_messages_are_queued():
    feed = MarketFeed("BTC-USD")
    subscription = feed.subscribe()

    async def waits() -> tuple[bool, bool]:
        timed_out = await subscription.wait_async(0.01)
        feed.publish(_messages(1))
        return timed_out, await subscription.wait_async(0.0)

    assert asyncio.run(waits()) == (False, True)
