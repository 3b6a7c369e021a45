"""The order book of one market: commands in, results out; pure, deterministic, no I/O.

`apply(command)` first checks the command (refusals.py) and returns a refused `Result`
that changed nothing; past that point it cannot fail. Then it moves the clock to the
command's `ts`, expires the GTT orders due, runs the command, and triggers the stops
the new last trade price reaches (which may trade and trigger more). The clock, the ids
and the commands are the caller's: the same commands give the same results and the same
`state_hash()`, every time.
"""

from __future__ import annotations

from bisect import insort
from collections import deque
from collections.abc import Callable
from heapq import heapify, heappop, heappush
from operator import attrgetter
from typing import Any

from pacioli.matching import snapshots
from pacioli.matching.execution import NO_LIMIT, RAN_OUT, STP_CANCELLED, Engine, outcome
from pacioli.matching.levels import Level
from pacioli.matching.market import Market
from pacioli.matching.market_data import L1, L2, L3, REPLACED, MatchMessage
from pacioli.matching.orders import (
    AdvanceClock,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Command,
    Order,
    OrderType,
    OrderView,
    PlaceOrder,
    SelfTrade,
    Side,
    TimeInForce,
    new_order,
    view_of,
)
from pacioli.matching.refusals import (
    SELF_TRADE_MODES,
    SIDES,
    TIMES_IN_FORCE,
    TYPES,
    cancel_refusal,
    fillable,
    place_refusal,
    refusal,
)
from pacioli.matching.results import (
    AMENDED,
    CANCELLED,
    ENDED,
    EXPIRED,
    FILLED,
    OPENED,
    RESIZED,
    SELF_TRADE,
    TRIGGERED,
    UNFILLED,
    Reject,
    Result,
    accepted,
    match_message,
    refused,
)
from pacioli.matching.state_hash import state_hash

LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
STOP, STOP_LIMIT = OrderType.STOP, OrderType.STOP_LIMIT
GTC, GTT, IOC, FOK = TimeInForce.GTC, TimeInForce.GTT, TimeInForce.IOC, TimeInForce.FOK
BUY, SELL = Side.BUY, Side.SELL
BY_ORDER_ID = attrgetter("order_id")

# What runs an accepted command: the command and its `Result.events`.
Handler = Callable[[Any, list[tuple]], None]


class OrderBook(Engine):
    """One market's book. Use `apply` to change it; everything else only reads."""

    __slots__ = ("handlers",)

    def __init__(self, market: Market, *, tape_length: int = 1000) -> None:
        super().__init__(market, tape_length=tape_length)
        self.handlers = {
            PlaceOrder: self.place,
            CancelOrder: self.cancel,
            CancelAll: self.cancel_all,
            AmendOrder: self.amend,
            AdvanceClock: self.advance,
        }

    def apply(self, command: Command) -> Result:
        """Run one command; a business refusal comes back as `Result(accepted=False)`.

        Most commands are plain GTC (or IOC) limit orders, and most of those rest without
        taking, so their path is written out here in one piece (a call costs as much as a
        dozen lines here): one test of all their fields (the same checks as
        `place_refusal`'s, which passes exactly these orders), then `run`'s steps,
        `place`'s matching and `rest` inline, and the `Order` and `Result` built without
        an `__init__` call. Everything else (other types and times in force, post-only,
        values rather than members, anything `place_refusal` may refuse) takes the
        general path, `run` with `place`. Cancels and amends have their own dispatch
        (`apply_cancel`, `apply_amend`).
        """
        kind = type(command)
        if kind is not PlaceOrder:
            if kind is CancelOrder:
                return self.apply_cancel(command)  # type: ignore[arg-type]
            if kind is AmendOrder:
                return self.apply_amend(command)  # type: ignore[arg-type]
            return self.run(command, refusal(self, command), self.handlers.get(kind))
        ts = command.ts
        order_id = command.order_id
        owner = command.owner
        side = command.side
        price = command.price
        size = command.size
        tif = command.tif
        stp = command.stp
        market = self.market
        if not (
            command.type is LIMIT and (tif is GTC or tif is IOC)
            and type(price) is int and type(size) is int and command.funds is None
            and command.stop_price is None and command.expires_at is None
            and not command.post_only and type(stp) is SelfTrade
            and type(ts) is int and type(order_id) is int and order_id > self.last_order_id
            and type(owner) is str and owner
            and price > 0 and not price % market.tick
            and size >= market.min_size and not size % market.size_increment
        ):
            return self.run(command, place_refusal(self, command), self.place)  # type: ignore[arg-type]
        if side is BUY:  # the flat test's last check: a side that is a member
            book_side = self.bids
            other = self.asks
            key = price
            limit_key = -price
        elif side is SELL:
            book_side = self.asks
            other = self.bids
            key = -price
            limit_key = price
        else:
            return self.run(command, place_refusal(self, command), self.place)  # type: ignore[arg-type]
        # From here the order is accepted: nothing below may fail.
        events: list[tuple] = []
        clock = self.clock
        if ts > clock:
            self.clock = clock = ts
        if self.expiries and self.expiries[0][0] <= clock:
            self.expire(events)
        self.last_order_id = order_id
        keys = other.keys
        remaining = size
        cancelled = 0
        if keys and keys[-1] >= limit_key:
            ended, remaining, cancelled = self.take(
                order_id, owner, side, price, stp, size, other, limit_key, events,
            )
            # outcome(), for a GTC or IOC limit order
            if ended == STP_CANCELLED:
                reason = SELF_TRADE
            elif remaining == 0:
                reason = FILLED
            else:
                reason = UNFILLED if tif is IOC else None
        elif tif is IOC:
            reason = UNFILLED
        else:  # nothing crossed: a GTC order rests whole
            reason = None
        if reason is not None:  # the order is done without resting
            events.append((ENDED, order_id, owner, reason, remaining, None))
            if self.stops and self.last_price is not None:
                self.trigger_stops(events)
            result = Result()  # accepted(events), inlined
            result.events = events
            return result
        # The rest rests: `new_order` and `rest`, inlined.
        order = Order()  # a plain GTC limit order (see Order): its fields are set inline
        order.order_id = order_id
        order.owner = owner
        order.side = side
        order.price = price
        order.size = size
        order.remaining = remaining
        order.cancelled = cancelled
        order.stp = stp
        order.ts = clock
        order.live = True
        levels = book_side.levels
        level = levels.get(key)
        if level is None:  # new_level(price), inlined: a third of these orders open one
            level = levels[key] = Level()
            level.price = price
            level.orders = deque((order,))
            level.count = 1
            level.total = remaining
            insort(book_side.keys, key)
        else:
            level.orders.append(order)
            level.count += 1
            level.total += remaining
        self.orders[order_id] = order
        newest = self.by_owner.get(owner)  # index(order), inlined
        order.newer = None
        order.older = newest
        if newest is not None:
            newest.newer = order
        self.by_owner[owner] = order
        self.sequence = seq = self.sequence + 1
        events.append((OPENED, seq, clock, order_id, owner, side, price, remaining))
        if self.stops and self.last_price is not None:
            self.trigger_stops(events)
        result = Result()  # accepted(events), inlined
        result.events = events
        return result

    def run(self, command: Command, reject: Reject | None, handler: Handler | None) -> Result:
        """The steps of every command, once its checks gave `reject`: a refusal changes
        nothing; otherwise the clock, the expiries due, the command, the stops reached.

        Stops can be reached only while some wait (`self.stops`; their heaps may also
        hold cancelled ones, which `trigger_stops` skips), after some trade.
        """
        if reject is not None:
            return refused(reject)
        events: list[tuple] = []
        if command.ts > self.clock:
            self.clock = command.ts
        if self.expiries and self.expiries[0][0] <= self.clock:
            self.expire(events)
        handler(command, events)  # type: ignore[misc]
        if self.stops and self.last_price is not None:
            self.trigger_stops(events)
        return accepted(events)

    def apply_cancel(self, command: CancelOrder) -> Result:
        """Cancel an order: a resting one with no expiry pending inline, else through `run`.

        The inline path is `cancel_refusal` (which passes it) and `cancel` in one piece,
        with one look-up of the order.
        """
        ts = command.ts
        order = self.orders.get(command.order_id)
        if (
            order is None or order.owner != command.owner or type(ts) is not int
            or self.expiries
        ):
            return self.run(command, cancel_refusal(self, command), self.cancel)
        events: list[tuple] = []
        if ts > self.clock:
            self.clock = ts
        self.remove_resting(order, CANCELLED, events, True)
        if self.stops and self.last_price is not None:
            self.trigger_stops(events)
        result = Result()  # accepted(events), inlined
        result.events = events
        return result

    def apply_amend(self, command: AmendOrder) -> Result:
        """Amend a resting order: in one piece when nothing is due to expire and the order
        is not post-only, else through `run`.

        The one piece is `amend_refusal`'s checks (which pass exactly these amends) and
        `amend`, with one look-up of the order; a move (a new price, or a larger size)
        builds the replacement with `replace_order` and rests it directly unless the new
        price crosses (then `execute`).
        """
        ts = command.ts
        order = self.orders.get(command.order_id)
        price = command.price
        size = command.size
        market = self.market
        if (
            order is None or order.owner != command.owner or type(ts) is not int
            or self.expiries or order.post_only or (price is None and size is None)
            or (price is not None and (
                type(price) is not int or price <= 0 or price % market.tick))
            or (size is not None and (
                type(size) is not int or size <= 0 or size % market.size_increment))
        ):
            return self.run(command, refusal(self, command), self.amend)
        # From here the amend is accepted: nothing below may fail.
        events: list[tuple] = []
        if ts > self.clock:
            self.clock = ts
        old = order.remaining
        old_price = order.price
        if price is None:
            price = old_price
        if size is None:
            size = old
        if price == old_price and size <= old:
            if size < old:  # a decrease in place keeps the order's priority
                if order.side is BUY:
                    self.bids.levels[price].total -= old - size
                else:
                    self.asks.levels[-price].total -= old - size
                order.remaining = size
                order.cancelled += old - size
                self.decrement_published(order, old, events)
        else:  # a move: the order goes to the back (and may trade now); see `amend`
            self.remove_resting(order, REPLACED, events, False)
            side = order.side
            events.append((RESIZED, None, self.clock, order.order_id, order.owner, side,
                           price, old, size, AMENDED))
            replacement = replace_order(order, price=price, size=size)
            if side is BUY:
                keys = self.asks.keys
                crosses = keys and keys[-1] >= -price
            else:
                keys = self.bids.keys
                crosses = keys and keys[-1] >= price
            if crosses:
                self.execute(replacement, events)
            else:  # a resting limit order's copy (GTC or GTT) rests again
                self.rest(replacement, events)
        if self.stops and self.last_price is not None:
            self.trigger_stops(events)
        result = Result()  # accepted(events), inlined
        result.events = events
        return result

    def check(self, command: Command) -> Reject | None:
        """The refusal `apply(command)` would give now, or None; changes nothing."""
        return refusal(self, command)

    # Commands. Each runs after its checks passed.

    def place(self, command: PlaceOrder, events: list[tuple]) -> None:
        """Park a stop; match any other order, and rest a limit order's remainder.

        The order's `Order` record is built only when the book keeps it (a stop, or a
        limit order that rests): most takers are done within the command.
        """
        side = SIDES[command.side]
        type_ = TYPES[command.type]
        tif = TIMES_IN_FORCE[command.tif]
        order_id = command.order_id
        self.last_order_id = order_id
        if tif is GTT:
            heappush(self.expiries, (command.expires_at, order_id))
        if type_ is LIMIT:
            can_rest = tif is GTC or tif is GTT
        elif type_ is MARKET:
            can_rest = False
        else:
            self.park(self.new_order(command, side, type_, tif), events)
            return
        owner = command.owner
        price = command.price
        if side is BUY:
            other = self.asks
            limit_key = NO_LIMIT if price is None else -price
        else:
            other = self.bids
            limit_key = NO_LIMIT if price is None else price
        keys = other.keys
        if keys and keys[-1] >= limit_key:
            funds = command.funds
            stp = SELF_TRADE_MODES[command.stp]
            if funds is None:
                ended, remaining, cancelled = self.take(
                    order_id, owner, side, price, stp, command.size, other, limit_key, events,
                )
            else:  # a market buy by funds: it has no size, and never rests
                ended, funds = self.take_funds(order_id, owner, side, stp, funds, other,
                                               limit_key, events)
                remaining = cancelled = 0
            reason = outcome(ended, remaining, funds, can_rest)
            if reason is not None:
                events.append((ENDED, order_id, owner, reason, remaining, funds))
                return
            order = self.new_order(command, side, type_, tif)
            order.remaining = remaining
            order.cancelled = cancelled
            self.rest(order, events)
            return
        if not can_rest:  # an IOC or FOK limit order, or a market order, with nothing to take
            size = command.size or 0
            funds = command.funds
            events.append((ENDED, order_id, owner, outcome(RAN_OUT, size, funds, False), size,
                           funds))
            return
        self.rest(self.new_order(command, side, type_, tif), events)

    def new_order(
        self, command: PlaceOrder, side: Side, type_: OrderType, tif: TimeInForce
    ) -> Order:
        """The book's record of a placed order (side, type and tif already canonical)."""
        return new_order(
            command.order_id, command.owner, side, type_, command.price, command.stop_price,
            command.size or 0, command.funds, tif, command.expires_at, command.post_only,
            SELF_TRADE_MODES[command.stp], self.clock,
        )

    def park(self, stop: Order, events: list[tuple]) -> None:
        """A stop waits for the last trade price to reach its stop price."""
        order_id = stop.order_id
        self.stops[order_id] = stop
        self.index(stop)
        if stop.side is BUY:
            heappush(self.buy_stops, (stop.stop_price, order_id))
        else:
            heappush(self.sell_stops, (-stop.stop_price, order_id))

    def cancel(self, command: CancelOrder, events: list[tuple]) -> None:
        order = self.orders.get(command.order_id)
        if order is not None:
            self.remove_resting(order, CANCELLED, events, True)
        else:
            self.drop_stop(self.stops[command.order_id], CANCELLED, events)

    def cancel_all(self, command: CancelAll, events: list[tuple]) -> None:
        """Cancel the owner's live orders (on one side, if given) in order-id order."""
        side = None if command.side is None else SIDES[command.side]
        for order in self.owned(command.owner):
            if side is not None and order.side is not side:
                continue
            if order.order_id in self.orders:
                self.remove_resting(order, CANCELLED, events, True)
            else:
                self.drop_stop(order, CANCELLED, events)

    def amend(self, command: AmendOrder, events: list[tuple]) -> None:
        """Change a resting order's open size and/or price (see `AmendOrder`)."""
        order = self.orders[command.order_id]
        price = order.price if command.price is None else command.price
        size = order.remaining if command.size is None else command.size
        old = order.remaining
        if price == order.price and size <= old:
            if size < old:  # a decrease in place keeps the order's priority
                if order.side is BUY:
                    self.bids.levels[price].total -= old - size
                else:
                    self.asks.levels[-price].total -= old - size
                order.remaining = size
                order.cancelled += old - size
                self.decrement_published(order, old, events)
            return
        # A new price or a larger size: the order goes to the back (and may trade now).
        self.remove_resting(order, REPLACED, events, False)
        replacement = replace_order(order, price=price, size=size)
        events.append((RESIZED, None, self.clock, order.order_id, order.owner, order.side, price,
                       old, size, AMENDED))
        self.execute(replacement, events)

    def advance(self, command: AdvanceClock, events: list[tuple]) -> None:
        """Nothing beyond what `apply` does for every command: the clock and expiries."""

    # Time and stops.

    def expire(self, events: list[tuple]) -> None:
        """Expire the GTT orders (resting or stops) whose expires_at <= the clock."""
        expiries = self.expiries
        while expiries and expiries[0][0] <= self.clock:
            _, order_id = heappop(expiries)
            order = self.orders.get(order_id)
            if order is not None:
                self.remove_resting(order, EXPIRED, events, True)
                continue
            stop = self.stops.get(order_id)
            if stop is not None:
                self.drop_stop(stop, EXPIRED, events)

    def trigger_stops(self, events: list[tuple]) -> None:
        """Execute the stops the last trade price reached, in order-id order, until none is.

        A buy stop triggers when the last price >= its stop price, a sell stop when <=.
        The stops reached at one moment run in the order they were placed; their trades
        move the last price, which may reach more stops.
        """
        while True:
            last = self.last_price
            triggered: list[Order] = []
            buys, sells = self.buy_stops, self.sell_stops
            while buys and buys[0][0] <= last:
                stop = self.stops.pop(heappop(buys)[1], None)
                if stop is not None:
                    triggered.append(stop)
            while sells and -sells[0][0] >= last:
                stop = self.stops.pop(heappop(sells)[1], None)
                if stop is not None:
                    triggered.append(stop)
            if not triggered:
                return
            triggered.sort(key=BY_ORDER_ID)
            for stop in triggered:
                self.unindex(stop)
                events.append((TRIGGERED, stop.order_id))
                if stop.tif is FOK and not fillable(
                    self.asks if stop.side is Side.BUY else self.bids, stop.side, stop.price,
                    stop.remaining, stop.owner, stop.stp, None,
                ):
                    self.finish(stop, UNFILLED, events)
                else:
                    self.execute(stop, events)

    def drop_stop(self, stop: Order, reason: str, events: list[tuple]) -> None:
        """A waiting stop is cancelled or expires (it was never on the public book)."""
        del self.stops[stop.order_id]
        self.unindex(stop)
        self.finish(stop, reason, events)
        # Cancelled stops stay in their heap until popped; rebuild a heap they crowd.
        for heap in (self.buy_stops, self.sell_stops):
            if len(heap) > 2 * len(self.stops) + 64:
                heap[:] = [entry for entry in heap if entry[1] in self.stops]
                heapify(heap)

    def decrement_published(self, order: Order, old: int, events: list[tuple]) -> None:
        """Record an amend's in-place decrease in the result and the stream."""
        self.sequence = seq = self.sequence + 1
        events.append((RESIZED, seq, self.clock, order.order_id, order.owner, order.side,
                       order.price, old, order.remaining, AMENDED))

    # Reading.

    def l1(self) -> L1:
        return snapshots.l1(self)

    def l2(self, depth: int = 50) -> L2:
        return snapshots.l2(self, depth)

    def l3(self) -> L3:
        return snapshots.l3(self)

    def trades(self, limit: int = 100) -> list[MatchMessage]:
        """The most recent trades (`match` messages), newest first."""
        tape = self.tape
        count = min(limit, len(tape))
        return [match_message(tape[-1 - index]) for index in range(count)]

    def get_order(self, order_id: int) -> OrderView | None:
        """A live order (resting: status "open"; a waiting stop: "pending"), or None."""
        order = self.orders.get(order_id)
        if order is not None:
            return view_of(order, "open")
        stop = self.stops.get(order_id)
        return None if stop is None else view_of(stop, "pending")

    def orders_of(self, owner: str) -> list[OrderView]:
        """The owner's live orders, by order id."""
        return [self.get_order(order.order_id) for order in self.owned(owner)]  # type: ignore[misc]

    def state_hash(self) -> str:
        """A digest of the whole state (see state_hash.py); O(orders), on demand."""
        return state_hash(self)


def replace_order(order: Order, *, price: int, size: int) -> Order:
    """The amended copy of a resting order that lost its place (the old object stays dead).

    A larger size adds to what was placed; a smaller one is cancelled quantity. The copy
    is of the same class, with the same fields but price, size, open size, cancelled and
    links (`new_order`, written out).
    """
    kind = type(order)
    copy = kind()
    if kind is not Order:
        copy.type = order.type
        copy.stop_price = order.stop_price
        copy.funds = order.funds
        copy.tif = order.tif
        copy.expires_at = order.expires_at
        copy.post_only = order.post_only
    copy.order_id = order.order_id
    copy.owner = order.owner
    copy.side = order.side
    copy.price = price
    copy.stp = order.stp
    copy.ts = order.ts
    copy.live = True
    copy.newer = None
    copy.older = None
    old = order.remaining
    if size > old:
        copy.size = order.size + size - old
        copy.cancelled = order.cancelled
    else:
        copy.size = order.size
        copy.cancelled = order.cancelled + old - size
    copy.remaining = size
    return copy
