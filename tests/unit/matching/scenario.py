"""A small language for order-book scenarios: given these orders, when this, then that.

The scenarios use a toy market where the numbers read at a glance: base scale 0, so a
quote amount is just price * size; tick 1, size increment 1, minimum size 1. Ids and the
clock count up by themselves; each helper returns the command's `Result`.
"""

from __future__ import annotations

from pacioli.matching import (
    AdvanceClock,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Market,
    OrderBook,
    OrderType,
    PlaceOrder,
    Result,
    SelfTrade,
    Side,
    TimeInForce,
)

TOY = Market(
    symbol="TOY-USD", base="TOY", quote="USD", base_scale=0, quote_scale=2,
    tick=1, size_increment=1, min_size=1,
)
BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
STOP, STOP_LIMIT = OrderType.STOP, OrderType.STOP_LIMIT
GTC, GTT, IOC, FOK = TimeInForce.GTC, TimeInForce.GTT, TimeInForce.IOC, TimeInForce.FOK
DC, CO = SelfTrade.DECREMENT_AND_CANCEL, SelfTrade.CANCEL_OLDEST
CN, CB = SelfTrade.CANCEL_NEWEST, SelfTrade.CANCEL_BOTH


class Scenario:
    def __init__(self, market: Market = TOY) -> None:
        self.book = OrderBook(market)
        self.ts = 0
        self.next_id = 1
        self.results: list[Result] = []

    def tick(self) -> int:
        self.ts += 1
        return self.ts

    def run(self, command: object) -> Result:
        result = self.book.apply(command)  # type: ignore[arg-type]
        self.results.append(result)
        return result

    def place(self, owner: str, side: Side, type_: OrderType = LIMIT, **fields: object) -> Result:
        order_id = fields.pop("order_id", self.next_id)
        self.next_id = max(self.next_id, order_id) + 1  # type: ignore[call-overload]
        return self.run(PlaceOrder(self.tick(), order_id, owner, side, type_, **fields))

    def limit(self, owner: str, side: Side, size: int, price: int, **fields: object) -> Result:
        return self.place(owner, side, LIMIT, size=size, price=price, **fields)

    def buy(self, owner: str, size: int, price: int, **fields: object) -> Result:
        return self.limit(owner, BUY, size, price, **fields)

    def sell(self, owner: str, size: int, price: int, **fields: object) -> Result:
        return self.limit(owner, SELL, size, price, **fields)

    def market(self, owner: str, side: Side, **fields: object) -> Result:
        return self.place(owner, side, MARKET, **fields)

    def cancel(self, owner: str, order_id: int) -> Result:
        return self.run(CancelOrder(self.tick(), order_id, owner))

    def cancel_all(self, owner: str, side: Side | None = None) -> Result:
        return self.run(CancelAll(self.tick(), owner, side))

    def amend(self, owner: str, order_id: int, **fields: object) -> Result:
        return self.run(AmendOrder(self.tick(), order_id, owner, **fields))  # type: ignore[arg-type]

    def advance(self, ts: int) -> Result:
        self.ts = max(self.ts, ts)
        return self.run(AdvanceClock(ts))

    # Reading the book back in the shape the scenarios state it.

    def bids(self) -> list[tuple[int, int, int]]:
        """(order_id, size, price) of every bid, best first, time order within a price."""
        return [(entry.order_id, entry.size, entry.price) for entry in self.book.l3().bids]

    def asks(self) -> list[tuple[int, int, int]]:
        return [(entry.order_id, entry.size, entry.price) for entry in self.book.l3().asks]


def trades(result: Result) -> list[tuple[int, int, int, int]]:
    """(taker_order_id, maker_order_id, size, price) of each fill."""
    return [(f.taker_order_id, f.maker_order_id, f.size, f.price) for f in result.fills]


def done(result: Result) -> list[tuple[int, str, int]]:
    """(order_id, reason, remaining_size) of each order done."""
    return [(d.order_id, d.reason, d.remaining_size) for d in result.done]


def changed(result: Result) -> list[tuple[int, str, int, int]]:
    return [(c.order_id, c.reason, c.old_size, c.new_size) for c in result.changed]


def rejected(result: Result) -> str | None:
    return None if result.accepted else result.reject.code  # type: ignore[union-attr]
