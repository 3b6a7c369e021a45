"""The book's state and its matching: a taker walks the other side in price-time priority.

`Engine` holds everything a book is (both sides, the live orders, stops, the clock, the
sequence of market-data messages) and the one path an order takes once accepted:
`execute` matches it as a taker, then rests what is left or finishes it. `OrderBook`
(book.py) adds the commands on top. Everything here runs after the command passed its
checks (refusals.py): from here on, nothing may fail.

The taker loop is the hot path of the exchange, so it binds what it uses to locals and
writes the fill arithmetic inline; the rules it follows are in docs/exchange.md.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque

from pacioli.matching.levels import BookSide, Level
from pacioli.matching.market import Market
from pacioli.matching.market_data import ChangeMessage, DoneMessage, MatchMessage, OpenMessage
from pacioli.matching.orders import Order, OrderType, SelfTrade, Side, TimeInForce
from pacioli.matching.results import (
    FILLED,
    SELF_TRADE,
    UNFILLED,
    Changed,
    Done,
    Fill,
    Opened,
    Result,
)

BUY = Side.BUY
LIMIT, STOP_LIMIT = OrderType.LIMIT, OrderType.STOP_LIMIT
IOC, FOK = TimeInForce.IOC, TimeInForce.FOK
CANCEL_OLDEST, CANCEL_NEWEST = SelfTrade.CANCEL_OLDEST, SelfTrade.CANCEL_NEWEST
CANCEL_BOTH = SelfTrade.CANCEL_BOTH

# The limit key of a market order: below every level's key, so it crosses them all.
NO_LIMIT = -(1 << 128)

# How the taker loop ended.
RAN_OUT = 0  # the book (within the limit price) ran out, or nothing crossed
COMPLETE = 1  # the taker's size is filled, or its funds buy no more
STP_CANCELLED = 2  # self-trade prevention cancelled the taker

TAPE_LENGTH = 1000


class Engine:
    __slots__ = (
        "market", "bids", "asks", "orders", "stops", "by_owner", "expiries", "buy_stops",
        "sell_stops", "last_price", "clock", "sequence", "last_order_id", "tape",
    )

    def __init__(self, market: Market, *, tape_length: int = TAPE_LENGTH) -> None:
        self.market = market
        self.bids = BookSide(is_bid=True)
        self.asks = BookSide(is_bid=False)
        self.orders: dict[int, Order] = {}  # resting orders by id
        self.stops: dict[int, Order] = {}  # stops waiting for their price, by id
        self.by_owner: dict[str, dict[int, Order]] = {}  # live orders (both kinds) per owner
        self.expiries: list[tuple[int, int]] = []  # heap of (expires_at, order_id), lazy
        self.buy_stops: list[tuple[int, int]] = []  # heap of (stop_price, order_id), lazy
        self.sell_stops: list[tuple[int, int]] = []  # heap of (-stop_price, order_id), lazy
        self.last_price: int | None = None  # of the last trade
        self.clock = 0  # the largest ts seen, in microseconds
        self.sequence = 0  # of the last market-data message
        self.last_order_id = 0  # the largest order id accepted; new ones must be larger
        self.tape: deque[MatchMessage] = deque(maxlen=tape_length)

    # The one path of an accepted order.

    def execute(self, taker: Order, result: Result) -> None:
        """Match `taker`, then rest its remainder (limit GTC/GTT) or finish it."""
        is_limit = taker.type is LIMIT or taker.type is STOP_LIMIT
        if taker.side is BUY:
            other = self.asks
            limit_key = -taker.price if is_limit else NO_LIMIT
        else:
            other = self.bids
            limit_key = taker.price if is_limit else NO_LIMIT
        keys = other.keys
        ended = RAN_OUT
        if keys and keys[-1] >= limit_key:
            ended = self.take(taker, other, limit_key, result)
        elif is_limit and taker.tif is not IOC and taker.tif is not FOK:
            self.rest(taker, result)  # the commonest path: nothing to take, the order rests
            return
        if ended == STP_CANCELLED:
            self.finish(taker, SELF_TRADE, result)
        elif taker.funds is not None:
            self.finish(taker, FILLED if ended == COMPLETE or not taker.funds else UNFILLED, result)
        elif taker.remaining == 0:
            self.finish(taker, FILLED, result)
        elif not is_limit or taker.tif is IOC or taker.tif is FOK:
            self.finish(taker, UNFILLED, result)
        else:
            self.rest(taker, result)

    def take(self, taker: Order, other: BookSide, limit_key: int, result: Result) -> int:
        """Fill `taker` against `other` while its levels cross `limit_key`; how it ended."""
        keys = other.keys
        levels = other.levels
        market = self.market
        base_unit = market.base_unit
        increment = market.size_increment
        ts = self.clock
        owner = taker.owner
        taker_id = taker.order_id
        taker_side = taker.side
        by_funds = taker.funds is not None
        fills = result.fills
        md = result.md
        done = result.done
        tape = self.tape
        orders = self.orders
        by_owner = self.by_owner
        ended = RAN_OUT
        while keys:
            key = keys[-1]
            if key < limit_key:
                break
            level = levels[key]
            price = level.price
            queue = level.orders
            while queue:
                maker = queue[0]
                if not maker.live:
                    queue.popleft()
                    continue
                if by_funds:
                    capacity = taker.funds * base_unit // price
                    capacity -= capacity % increment
                    if capacity == 0:
                        ended = COMPLETE
                        break
                else:
                    capacity = taker.remaining
                if maker.owner == owner:
                    if self.prevent_self_trade(taker, maker, level, capacity, result):
                        ended = STP_CANCELLED
                        break
                    continue
                size = maker.remaining if maker.remaining < capacity else capacity
                quote_amount = -(-(price * size) // base_unit)
                maker.remaining -= size
                maker.filled += size
                level.total -= size
                if by_funds:
                    taker.funds -= quote_amount
                else:
                    taker.remaining -= size
                taker.filled += size
                self.sequence += 1
                seq = self.sequence
                message = MatchMessage(seq, ts, maker.order_id, taker_id, maker.side, price, size)
                md.append(message)
                tape.append(message)
                fills.append(Fill(
                    seq, ts, price, size, quote_amount, taker_id, owner, taker_side,
                    maker.order_id, maker.owner,
                ))
                self.last_price = price
                if maker.remaining == 0:  # pop_maker(maker, level, FILLED, result), inlined
                    queue.popleft()
                    level.count -= 1
                    maker.live = False
                    maker_id = maker.order_id
                    del orders[maker_id]
                    owned = by_owner[maker.owner]
                    del owned[maker_id]
                    if not owned:
                        del by_owner[maker.owner]
                    done.append(Done(maker_id, maker.owner, FILLED, 0))
                    self.sequence += 1
                    md.append(DoneMessage(
                        self.sequence, ts, maker_id, maker.side, price, 0, FILLED,
                    ))
                if not by_funds and taker.remaining == 0:
                    ended = COMPLETE
                    break
            if level.count == 0:
                keys.pop()
                del levels[key]
            if ended:
                break
        return ended

    def prevent_self_trade(
        self, taker: Order, maker: Order, level: Level, capacity: int, result: Result
    ) -> bool:
        """Apply the taker's self-trade mode to `maker` (its own order); True: taker cancelled.

        `capacity` is what the taker can still fill at this level (its open size, or what
        its funds buy). A market buy by funds has no size to decrement: under `dc` it
        cancels a resting order its funds can cover whole, and is cancelled otherwise.
        """
        mode = taker.stp
        if mode is CANCEL_OLDEST:
            self.pop_maker(maker, level, SELF_TRADE, result)
            return False
        if mode is CANCEL_NEWEST:
            return True
        if mode is CANCEL_BOTH:
            self.pop_maker(maker, level, SELF_TRADE, result)
            return True
        # Decrement and cancel: the smaller is cancelled, the larger decremented by it.
        if capacity > maker.remaining:
            decrement = maker.remaining
            self.pop_maker(maker, level, SELF_TRADE, result)
            if taker.funds is None:
                self.decrement(taker, decrement, result)
            return False
        if capacity < maker.remaining:
            self.decrement(maker, capacity, result, level)
            return True
        self.pop_maker(maker, level, SELF_TRADE, result)
        return True

    def decrement(
        self, order: Order, size: int, result: Result, level: Level | None = None
    ) -> None:
        """Cancel `size` of `order`'s open size in place (self-trade `dc`); it keeps its place."""
        old = order.remaining
        order.remaining = old - size
        order.cancelled += size
        result.changed.append(Changed(
            order.order_id, order.owner, order.side, order.price, old, order.remaining, SELF_TRADE,
        ))
        if level is not None:  # a resting order: the public book changes too
            level.total -= size
            self.sequence += 1
            result.md.append(ChangeMessage(
                self.sequence, self.clock, order.order_id, order.side, order.price, old,
                order.remaining,
            ))

    def pop_maker(self, maker: Order, level: Level, reason: str, result: Result) -> None:
        """Take the order at the front of `level` off the book (filled, or cancelled by STP).

        The taker loop removes the level itself once it is empty.
        """
        level.orders.popleft()
        level.count -= 1
        remaining = maker.remaining
        if remaining:
            level.total -= remaining
            maker.cancelled += remaining
            maker.remaining = 0
        maker.live = False
        order_id = maker.order_id
        del self.orders[order_id]
        owned = self.by_owner[maker.owner]
        del owned[order_id]
        if not owned:
            del self.by_owner[maker.owner]
        result.done.append(Done(maker.order_id, maker.owner, reason, remaining))
        self.sequence += 1
        result.md.append(DoneMessage(
            self.sequence, self.clock, maker.order_id, maker.side, level.price, remaining, reason,
        ))

    def rest(self, order: Order, result: Result) -> None:
        """Put the rest of a limit order on the book (BookSide.add and index, inlined)."""
        order_id = order.order_id
        side = order.side
        price = order.price
        remaining = order.remaining
        if side is BUY:
            book_side = self.bids
            key = price
        else:
            book_side = self.asks
            key = -price
        level = book_side.levels.get(key)
        if level is None:
            level = book_side.levels[key] = Level(price)
            insort(book_side.keys, key)
        level.orders.append(order)
        level.count += 1
        level.total += remaining
        order.key = key
        self.orders[order_id] = order
        owned = self.by_owner.get(order.owner)
        if owned is None:
            self.by_owner[order.owner] = {order_id: order}
        else:
            owned[order_id] = order
        result.opened.append(Opened(order_id, order.owner, side, price, remaining))
        self.sequence += 1
        result.md.append(OpenMessage(self.sequence, self.clock, order_id, side, price, remaining))

    def remove_resting(self, order: Order, reason: str, result: Result, *, public: bool) -> None:
        """Take a resting order off the book outside the taker loop (cancel, expiry, amend).

        `public` says whether the order is done for the caller too (an amend that loses
        the order's place only publishes a `done` with reason `replaced`). This is
        `BookSide.remove` and `unindex`, inlined: every cancel runs it.
        """
        order_id = order.order_id
        remaining = order.remaining
        side = order.side
        book_side = self.bids if side is BUY else self.asks
        key = order.key
        level = book_side.levels[key]
        order.live = False
        level.count -= 1
        level.total -= remaining
        if level.count == 0:
            del book_side.levels[key]
            keys = book_side.keys
            if keys[-1] == key:
                keys.pop()
            else:
                del keys[bisect_left(keys, key)]
        elif len(level.orders) > 2 * level.count + 8:
            level.compact()
        del self.orders[order_id]
        owned = self.by_owner[order.owner]
        del owned[order_id]
        if not owned:
            del self.by_owner[order.owner]
        self.sequence += 1
        result.md.append(
            DoneMessage(self.sequence, self.clock, order_id, side, order.price, remaining, reason)
        )
        if public:
            order.cancelled += remaining
            order.remaining = 0
            result.done.append(Done(order_id, order.owner, reason, remaining))

    def finish(self, order: Order, reason: str, result: Result) -> None:
        """An order that is not on the book is done; what it did not fill is cancelled."""
        remaining = order.remaining
        order.cancelled += remaining
        order.remaining = 0
        order.live = False
        result.done.append(Done(order.order_id, order.owner, reason, remaining, order.funds))

    def index(self, order: Order) -> None:
        owned = self.by_owner.get(order.owner)
        if owned is None:
            owned = self.by_owner[order.owner] = {}
        owned[order.order_id] = order

    def unindex(self, order: Order) -> None:
        owned = self.by_owner[order.owner]
        del owned[order.order_id]
        if not owned:
            del self.by_owner[order.owner]

