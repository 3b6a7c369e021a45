"""The book's vocabulary: sides, order types, times in force, self-trade modes, and commands.

Commands are frozen slots dataclasses the caller builds; every one carries `ts`, the
caller's clock in microseconds since the epoch (the book has no other clock), and ids are
the caller's too. `Order` is the book's own mutable record of a live order (resting or a
pending stop); it never leaves the book (callers get `OrderView`s).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"
    STOP = "stop"  # a market order once the last trade price reaches stop_price
    STOP_LIMIT = "stop_limit"  # a limit order once the last trade price reaches stop_price


class TimeInForce(StrEnum):
    GTC = "gtc"  # good till cancelled
    GTT = "gtt"  # good till expires_at
    IOC = "ioc"  # immediate or cancel: what does not fill at once is cancelled
    FOK = "fok"  # fill or kill: filled whole at once, or refused


class SelfTrade(StrEnum):
    """Coinbase's self-trade prevention modes; the taker's mode decides."""

    DECREMENT_AND_CANCEL = "dc"  # the smaller order is cancelled, the larger decremented by it
    CANCEL_OLDEST = "co"  # the resting order is cancelled
    CANCEL_NEWEST = "cn"  # the taker is cancelled
    CANCEL_BOTH = "cb"  # both are cancelled


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Place an order. Which fields a type needs is in docs/exchange.md ("Order types")."""

    ts: int
    order_id: int
    owner: str
    side: Side
    type: OrderType
    size: int | None = None
    price: int | None = None
    funds: int | None = None
    stop_price: int | None = None
    tif: TimeInForce = TimeInForce.GTC
    expires_at: int | None = None
    post_only: bool = False
    stp: SelfTrade = SelfTrade.DECREMENT_AND_CANCEL


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel one live order (resting or a pending stop) of `owner`."""

    ts: int
    order_id: int
    owner: str


@dataclass(frozen=True, slots=True)
class CancelAll:
    """Cancel every live order of `owner` in this market, or only those on `side`."""

    ts: int
    owner: str
    side: Side | None = None


@dataclass(frozen=True, slots=True)
class AmendOrder:
    """Change a resting limit order's open size and/or price.

    `size` is the new OPEN size (what is left to fill), not the original size. A smaller
    size at the same price keeps the order's place in the queue; a new price or a larger
    size sends it to the back, and a new price that crosses trades at once.
    """

    ts: int
    order_id: int
    owner: str
    size: int | None = None
    price: int | None = None


@dataclass(frozen=True, slots=True)
class AdvanceClock:
    """Move the book's clock to `ts`, expiring the GTT orders that are due."""

    ts: int


Command = PlaceOrder | CancelOrder | CancelAll | AmendOrder | AdvanceClock


class Order:
    """A live order inside the book: resting on a price level, or a stop waiting for its price.

    Quantities: `size` is what was placed (plus any amend increases); `remaining` is open;
    `cancelled` (amend decreases, self-trade decrements) and `filled` make up the rest:
    `filled` is `size - remaining - cancelled` (kept as that difference, so a fill changes
    only `remaining`). A market buy by funds has no size: it spends `funds` (quote minor
    units) instead, and never rests, so it needs no `filled` (its fills are in the results).

    `newer` and `older` link the live orders of one owner in this book, newest first (the
    book's `by_owner` holds the newest): cancel-all and `orders_of` walk the list, and an
    order leaves it in O(1) without a dict per owner.

    An `Order` itself is a plain GTC limit order (most of a book): its `type`, `tif`,
    `stop_price`, `funds`, `expires_at` and `post_only` are the same for every one, so
    they are class attributes, not slots (six fields fewer to set and to hold per order).
    Any other order is a `GeneralOrder`, which has those six as slots; read them the same
    way on either, and set them only on a `GeneralOrder`.

    Built by `new_order`; the classes have no `__init__`, so that the book's hot path
    (`OrderBook.apply`) can build one with `Order()` and set its fields inline, a third
    cheaper than a class call that runs an `__init__`.
    """

    __slots__ = (
        "order_id", "owner", "side", "price", "size", "remaining", "cancelled", "stp", "ts",
        "live", "newer", "older",
    )

    order_id: int
    owner: str
    side: Side
    price: int | None
    size: int
    remaining: int
    cancelled: int
    stp: SelfTrade
    ts: int
    live: bool  # False once off the book: the level's queue drops it lazily
    newer: Order | None  # the owner's next newer live order
    older: Order | None  # the owner's next older live order

    # A plain GTC limit order's fields (slots of `GeneralOrder`).
    type: OrderType = OrderType.LIMIT
    stop_price: int | None = None
    funds: int | None = None  # funds left to spend, for a market buy by funds; else None
    tif: TimeInForce = TimeInForce.GTC
    expires_at: int | None = None
    post_only: bool = False

    @property
    def filled(self) -> int:
        return self.size - self.remaining - self.cancelled

    def __repr__(self) -> str:
        return (
            f"Order({self.order_id}, {self.owner!r}, {self.side}, {self.type}, "
            f"price={self.price}, remaining={self.remaining}/{self.size})"
        )


class GeneralOrder(Order):
    """Any order but a plain GTC limit order: a stop, GTT, post-only, a market remainder."""

    __slots__ = ("type", "stop_price", "funds", "tif", "expires_at", "post_only")


def is_plain(
    type: OrderType, stop_price: int | None, funds: int | None, tif: TimeInForce,
    expires_at: int | None, post_only: bool,
) -> bool:
    """Whether these fields are a plain GTC limit order's (an `Order`'s class attributes)."""
    return (
        type is OrderType.LIMIT and tif is TimeInForce.GTC and stop_price is None
        and funds is None and expires_at is None and not post_only
    )


def new_order(
    order_id: int, owner: str, side: Side, type: OrderType, price: int | None,
    stop_price: int | None, size: int, funds: int | None, tif: TimeInForce,
    expires_at: int | None, post_only: bool, stp: SelfTrade, ts: int,
) -> Order:
    """A live order with all of `size` open, linked to no other order yet.

    `type` and `tif` are members (the book's canonical ones).
    """
    if is_plain(type, stop_price, funds, tif, expires_at, post_only):
        order = Order()
    else:
        order = GeneralOrder()
        order.type = type
        order.stop_price = stop_price
        order.funds = funds
        order.tif = tif
        order.expires_at = expires_at
        order.post_only = post_only
    order.order_id = order_id
    order.owner = owner
    order.side = side
    order.price = price
    order.size = size
    order.remaining = size
    order.cancelled = 0
    order.stp = stp
    order.ts = ts
    order.live = True
    order.newer = None
    order.older = None
    return order


@dataclass(frozen=True, slots=True)
class OrderView:
    """A read-only copy of a live order, for callers."""

    order_id: int
    owner: str
    side: Side
    type: OrderType
    status: str  # "open" (resting on the book) or "pending" (a stop waiting for its price)
    price: int | None
    stop_price: int | None
    size: int
    remaining_size: int
    filled_size: int
    cancelled_size: int
    funds: int | None
    tif: TimeInForce
    expires_at: int | None
    post_only: bool
    stp: SelfTrade
    ts: int


def view_of(order: Order, status: str) -> OrderView:
    """The read-only copy of `order`."""
    return OrderView(
        order.order_id, order.owner, order.side, order.type, status, order.price,
        order.stop_price, order.size, order.remaining, order.filled, order.cancelled,
        order.funds, order.tif, order.expires_at, order.post_only, order.stp, order.ts,
    )
