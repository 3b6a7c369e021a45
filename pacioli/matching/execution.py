"""The book's state and its matching: a taker walks the other side in price-time priority.

`Engine` holds everything a book is (both sides, the live orders, stops, the clock, the
sequence of market-data messages) and the matching: `take` fills an incoming order by
size against the other side (`take_funds` a market buy by funds), `rest` puts what is
left on the book, `execute` runs both for an order that already has its `Order` record
(a stop that triggered, an amended order that lost its place). `OrderBook` (book.py)
adds the commands on top; a new placement calls `take` itself, and builds its `Order`
only if it rests. Everything here runs after the command passed its checks
(refusals.py): from here on, nothing may fail.

The taker loop is the hot path of the exchange, so it binds what it uses to locals and
writes the fill arithmetic inline; the rules it follows are in docs/exchange.md.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from operator import attrgetter

from pacioli.matching.levels import BookSide, Level, new_level
from pacioli.matching.market import Market
from pacioli.matching.orders import Order, OrderType, SelfTrade, Side, TimeInForce
from pacioli.matching.results import (
    ENDED,
    FILLED,
    LEFT,
    MATCHED,
    OPENED,
    RESIZED,
    SELF_TRADE,
    UNFILLED,
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

# What `prevent_self_trade` answers when the taker is cancelled (else: its decrement).
TAKER_CANCELLED = -1

TAPE_LENGTH = 1000
BY_ORDER_ID = attrgetter("order_id")


def outcome(ended: int, remaining: int, funds: int | None, can_rest: bool) -> str | None:
    """Why a taker is done after `take` ended as `ended`, or None: its rest rests.

    `can_rest`: a limit order that is neither IOC nor FOK.
    """
    if ended == STP_CANCELLED:
        return SELF_TRADE
    if funds is not None:  # a buy by funds: done once its funds buy no more
        return FILLED if ended == COMPLETE or not funds else UNFILLED
    if remaining == 0:
        return FILLED
    return None if can_rest else UNFILLED


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
        # Each owner's newest live order (resting or a stop); the rest are linked from it
        # (`Order.newer`, `Order.older`).
        self.by_owner: dict[str, Order] = {}
        self.expiries: list[tuple[int, int]] = []  # heap of (expires_at, order_id), lazy
        self.buy_stops: list[tuple[int, int]] = []  # heap of (stop_price, order_id), lazy
        self.sell_stops: list[tuple[int, int]] = []  # heap of (-stop_price, order_id), lazy
        self.last_price: int | None = None  # of the last trade
        self.clock = 0  # the largest ts seen, in microseconds
        self.sequence = 0  # of the last market-data message
        self.last_order_id = 0  # the largest order id accepted; new ones must be larger
        # The last trades' MATCHED events (results.py), oldest first.
        self.tape: deque[tuple] = deque(maxlen=tape_length)

    # Matching. `events` is the command's `Result.events`.

    def execute(self, taker: Order, events: list[tuple]) -> None:
        """Match an order that has its record (a triggered stop, an amended order that lost
        its place), then rest its remainder (limit GTC/GTT) or finish it."""
        type_ = taker.type
        is_limit = type_ is LIMIT or type_ is STOP_LIMIT
        side = taker.side
        if side is BUY:
            other = self.asks
            limit_key = -taker.price if is_limit else NO_LIMIT
        else:
            other = self.bids
            limit_key = taker.price if is_limit else NO_LIMIT
        keys = other.keys
        ended = RAN_OUT
        if keys and keys[-1] >= limit_key:
            if taker.funds is None:
                ended, taker.remaining, cancelled = self.take(
                    taker.order_id, taker.owner, side, taker.price, taker.stp,
                    taker.remaining, other, limit_key, events,
                )
                taker.cancelled += cancelled
            else:  # a stop that buys by funds (only a GeneralOrder has funds to set)
                ended, taker.funds = self.take_funds(
                    taker.order_id, taker.owner, side, taker.stp, taker.funds, other,
                    limit_key, events,
                )
        tif = taker.tif
        reason = outcome(ended, taker.remaining, taker.funds,
                         is_limit and tif is not IOC and tif is not FOK)
        if reason is None:
            self.rest(taker, events)
        else:
            self.finish(taker, reason, events)

    def take(
        self, order_id: int, owner: str, side: Side, price: int | None, stp: SelfTrade,
        remaining: int, other: BookSide, limit_key: int, events: list[tuple],
    ) -> tuple[int, int, int]:
        """Fill a taker by size against `other` while its levels cross `limit_key`.

        The taker comes as values, not an `Order` (most takers never rest, so they never
        need one): its id, owner, side, limit price (None for a market order), self-trade
        mode and open size. Returns how the loop ended, the open size left, and how much
        of the taker's size self-trade prevention cancelled (`dc` decrements). A buy by
        funds has its own loop, `take_funds` (the same steps; its capacity per level is
        what its funds buy).
        """
        keys = other.keys
        levels = other.levels
        base_unit = self.market.base_unit
        ts = self.clock
        cancelled = 0
        seq = self.sequence
        tape = self.tape  # not bound methods: most takers fill once or twice, and a
        # bound method is an object built per call; `events.append` on a list local is
        # the interpreter's specialised append, with no call at all
        orders = self.orders
        by_owner = self.by_owner
        traded = None  # the price of the last fill
        ended = RAN_OUT
        while keys:
            key = keys[-1]
            if key < limit_key:
                break
            level = levels[key]
            level_price = level.price
            queue = level.orders
            while queue:
                maker = queue[0]
                if not maker.live:
                    queue.popleft()
                    continue
                maker_owner = maker.owner
                if maker_owner == owner:
                    self.sequence = seq
                    decrement = self.prevent_self_trade(stp, False, maker, level, remaining,
                                                        events)
                    seq = self.sequence
                    if decrement == TAKER_CANCELLED:
                        ended = STP_CANCELLED
                        break
                    if decrement:
                        remaining -= decrement
                        cancelled += decrement
                        events.append((RESIZED, None, ts, order_id, owner, side, price,
                                       remaining + decrement, remaining, SELF_TRADE))
                    continue
                maker_left = maker.remaining
                if maker_left <= remaining:
                    size = maker_left
                    maker_left = 0
                else:
                    size = remaining
                    maker_left -= size
                maker.remaining = maker_left
                level.total -= size
                remaining -= size
                traded = level_price
                seq += 1
                maker_id = maker.order_id
                event = (MATCHED, seq, ts, level_price, size, base_unit, order_id, owner, side,
                         maker_id, maker_owner, maker_left)
                events.append(event)
                tape.append(event)
                if maker_left == 0:  # pop_maker(maker, level, FILLED, events), inlined
                    queue.popleft()
                    level.count -= 1
                    maker.live = False
                    del orders[maker_id]
                    newer = maker.newer  # unindex(maker), inlined
                    older = maker.older
                    if newer is None:
                        if older is None:
                            del by_owner[maker_owner]
                        else:
                            by_owner[maker_owner] = older
                            older.newer = None
                    else:
                        newer.older = older
                        if older is not None:
                            older.newer = newer
                    seq += 1  # the maker's `done` message: the MATCHED event stands for it
                if remaining == 0:
                    ended = COMPLETE
                    break
            if level.count == 0:
                keys.pop()
                del levels[key]
            if ended:
                break
        self.sequence = seq
        if traded is not None:
            self.last_price = traded
        return ended, remaining, cancelled

    def take_funds(
        self, order_id: int, owner: str, side: Side, stp: SelfTrade, funds: int,
        other: BookSide, limit_key: int, events: list[tuple],
    ) -> tuple[int, int]:
        """Fill a market buy by funds against `other`: `take`, with what the funds buy at
        each level as the capacity. Returns how the loop ended and the funds left.

        Its size is 0 and self-trade prevention never decrements it (see
        `prevent_self_trade`), so nothing of a size is returned.
        """
        keys = other.keys
        levels = other.levels
        market = self.market
        base_unit = market.base_unit
        increment = market.size_increment
        traded = None
        ended = RAN_OUT
        while keys:
            key = keys[-1]
            if key < limit_key:
                break
            level = levels[key]
            level_price = level.price
            queue = level.orders
            while queue:
                maker = queue[0]
                if not maker.live:
                    queue.popleft()
                    continue
                capacity = funds * base_unit // level_price
                capacity -= capacity % increment
                if capacity == 0:
                    ended = COMPLETE
                    break
                if maker.owner == owner:
                    if self.prevent_self_trade(stp, True, maker, level, capacity,
                                               events) == TAKER_CANCELLED:
                        ended = STP_CANCELLED
                        break
                    continue
                maker_left = maker.remaining
                size = maker_left if maker_left < capacity else capacity
                funds -= -(-(level_price * size) // base_unit)
                traded = level_price
                self.fill_maker(maker, level, size, order_id, owner, side, events)
            if level.count == 0:
                keys.pop()
                del levels[key]
            if ended:
                break
        if traded is not None:
            self.last_price = traded
        return ended, funds

    def fill_maker(
        self, maker: Order, level: Level, size: int, order_id: int, owner: str, side: Side,
        events: list[tuple],
    ) -> None:
        """Record a fill of `size` against `maker` at the front of `level` (the steps the
        by-size loop writes out inline), and take it off the book if it is filled."""
        maker_left = maker.remaining - size
        maker.remaining = maker_left
        level.total -= size
        self.sequence = seq = self.sequence + 1
        maker_id = maker.order_id
        event = (MATCHED, seq, self.clock, level.price, size, self.market.base_unit, order_id,
                 owner, side, maker_id, maker.owner, maker_left)
        events.append(event)
        self.tape.append(event)
        if maker_left == 0:
            level.orders.popleft()
            level.count -= 1
            maker.live = False
            del self.orders[maker_id]
            self.unindex(maker)
            self.sequence += 1  # the maker's `done` message: the MATCHED event stands for it

    def prevent_self_trade(
        self, stp: SelfTrade, by_funds: bool, maker: Order, level: Level, capacity: int,
        events: list[tuple],
    ) -> int:
        """Apply the taker's self-trade mode `stp` to `maker` (its own order).

        Returns TAKER_CANCELLED, or how much of the taker's open size is cancelled (0 or
        more) before it goes on. `capacity` is what the taker can still fill at this level
        (its open size, or what its funds buy). A market buy by funds has no size to
        decrement: under `dc` it cancels a resting order its funds can cover whole, and is
        cancelled otherwise.
        """
        if stp is CANCEL_OLDEST:
            self.pop_maker(maker, level, SELF_TRADE, events)
            return 0
        if stp is CANCEL_NEWEST:
            return TAKER_CANCELLED
        if stp is CANCEL_BOTH:
            self.pop_maker(maker, level, SELF_TRADE, events)
            return TAKER_CANCELLED
        # Decrement and cancel: the smaller is cancelled, the larger decremented by it.
        maker_left = maker.remaining
        if capacity > maker_left:
            self.pop_maker(maker, level, SELF_TRADE, events)
            return 0 if by_funds else maker_left
        if capacity < maker_left:
            self.decrement_resting(maker, capacity, level, events)
        else:
            self.pop_maker(maker, level, SELF_TRADE, events)
        return TAKER_CANCELLED

    def decrement_resting(self, order: Order, size: int, level: Level, events: list[tuple]) -> None:
        """Cancel `size` of a resting order's open size in place (self-trade `dc`); it keeps
        its place."""
        old = order.remaining
        order.remaining = old - size
        order.cancelled += size
        level.total -= size
        self.sequence = seq = self.sequence + 1
        events.append((RESIZED, seq, self.clock, order.order_id, order.owner, order.side,
                       order.price, old, order.remaining, SELF_TRADE))

    def pop_maker(self, maker: Order, level: Level, reason: str, events: list[tuple]) -> None:
        """Take the order at the front of `level` off the book (cancelled by STP).

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
        self.unindex(maker)
        self.sequence += 1
        events.append((LEFT, self.sequence, self.clock, order_id, maker.owner, maker.side,
                       level.price, remaining, reason, True))

    def rest(self, order: Order, events: list[tuple]) -> None:
        """Put the rest of a limit order on the book (BookSide.add and `index`, inlined)."""
        order_id = order.order_id
        side = order.side
        price = order.price
        remaining = order.remaining
        owner = order.owner
        if side is BUY:
            book_side = self.bids
            key = price
        else:
            book_side = self.asks
            key = -price
        levels = book_side.levels
        level = levels.get(key)
        if level is None:
            level = levels[key] = new_level(price)
            insort(book_side.keys, key)
        level.orders.append(order)
        level.count += 1
        level.total += remaining
        self.orders[order_id] = order
        by_owner = self.by_owner  # index(order), inlined
        newest = by_owner.get(owner)
        order.newer = None
        order.older = newest
        if newest is not None:
            newest.newer = order
        by_owner[owner] = order
        self.sequence = seq = self.sequence + 1
        events.append((OPENED, seq, self.clock, order_id, owner, side, price, remaining))

    def remove_resting(self, order: Order, reason: str, events: list[tuple], public: bool) -> None:
        """Take a resting order off the book outside the taker loop (cancel, expiry, amend).

        `public` says whether the order is done for the caller too (an amend that loses
        the order's place only publishes a `done` with reason `replaced`). This is
        `BookSide.remove` and `unindex`, inlined: every cancel runs it.
        """
        order_id = order.order_id
        remaining = order.remaining
        side = order.side
        owner = order.owner
        price = order.price
        if side is BUY:
            book_side = self.bids
            key = price
        else:
            book_side = self.asks
            key = -price
        levels = book_side.levels
        level = levels[key]
        order.live = False
        level.count -= 1
        level.total -= remaining
        if level.count == 0:
            del levels[key]
            keys = book_side.keys
            if keys[-1] == key:
                keys.pop()
            else:
                del keys[bisect_left(keys, key)]
        elif len(level.orders) > 2 * level.count + 8:
            level.compact()
        del self.orders[order_id]
        newer = order.newer  # unindex(order), inlined
        older = order.older
        if newer is None:
            if older is None:
                del self.by_owner[owner]
            else:
                self.by_owner[owner] = older
                older.newer = None
        else:
            newer.older = older
            if older is not None:
                older.newer = newer
        self.sequence = seq = self.sequence + 1
        events.append((LEFT, seq, self.clock, order_id, owner, side, price, remaining, reason,
                       public))
        if public:
            order.cancelled += remaining
            order.remaining = 0

    def finish(self, order: Order, reason: str, events: list[tuple]) -> None:
        """An order that is not on the book is done; what it did not fill is cancelled."""
        remaining = order.remaining
        order.cancelled += remaining
        order.remaining = 0
        order.live = False
        events.append((ENDED, order.order_id, order.owner, reason, remaining, order.funds))

    # The per-owner lists (see `Order.newer`). The taker loop, `rest`, `remove_resting`
    # and `OrderBook.apply` write these out inline.

    def index(self, order: Order) -> None:
        """Put a live order at the head of its owner's list (it is the newest)."""
        owner = order.owner
        newest = self.by_owner.get(owner)
        order.newer = None
        order.older = newest
        if newest is not None:
            newest.newer = order
        self.by_owner[owner] = order

    def unindex(self, order: Order) -> None:
        """Take an order out of its owner's list (it stays linked to nothing live)."""
        newer = order.newer
        older = order.older
        if newer is None:
            if older is None:
                del self.by_owner[order.owner]
            else:
                self.by_owner[order.owner] = older
                older.newer = None
        else:
            newer.older = older
            if older is not None:
                older.newer = newer

    def owned(self, owner: str) -> list[Order]:
        """The owner's live orders (resting and stops), by order id."""
        orders = []
        order = self.by_owner.get(owner)
        while order is not None:
            orders.append(order)
            order = order.older
        # Not by order id: an amended order or a triggered stop-limit rejoins at the head.
        orders.sort(key=BY_ORDER_ID)
        return orders
