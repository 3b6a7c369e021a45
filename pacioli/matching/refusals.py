"""Every business refusal a command can meet, decided before the book changes.

`refusal(engine, command)` returns the `Reject` that `apply` would give, or None, and
changes nothing: `OrderBook.check` is this function, and `apply` runs it first. A command
first expires the GTT orders due at its `ts`; the checks here look at the book as it will
be after that expiry (an order due to expire is already gone), without expiring anything.
"""

from __future__ import annotations

from pacioli.matching.execution import Engine
from pacioli.matching.levels import BookSide
from pacioli.matching.orders import (
    AdvanceClock,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Order,
    OrderType,
    PlaceOrder,
    SelfTrade,
    Side,
    TimeInForce,
)
from pacioli.matching.results import (
    DUPLICATE_ORDER_ID,
    FOK_NOT_FILLABLE,
    INVALID_ORDER,
    INVALID_PRICE,
    INVALID_SIZE,
    NO_LIQUIDITY,
    ORDER_NOT_FOUND,
    POST_ONLY_WOULD_TAKE,
    SIZE_TOO_SMALL,
    Reject,
)

# Canonical members by value: a caller may pass "buy" or Side.BUY alike.
SIDES = {member: member for member in Side}
TYPES = {member: member for member in OrderType}
TIMES_IN_FORCE = {member: member for member in TimeInForce}
SELF_TRADE_MODES = {member: member for member in SelfTrade}

LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
STOP, STOP_LIMIT = OrderType.STOP, OrderType.STOP_LIMIT
GTC, GTT, IOC, FOK = TimeInForce.GTC, TimeInForce.GTT, TimeInForce.IOC, TimeInForce.FOK


def refusal(engine: Engine, command: object) -> Reject | None:
    kind = type(command)
    if kind is PlaceOrder:
        return place_refusal(engine, command)  # type: ignore[arg-type]
    if kind is CancelOrder:
        return cancel_refusal(engine, command)  # type: ignore[arg-type]
    if type(command.ts) is not int:  # type: ignore[attr-defined]
        return Reject(INVALID_ORDER, "ts must be an integer (microseconds since the epoch)")
    if kind is AmendOrder:
        return amend_refusal(engine, command)  # type: ignore[arg-type]
    if kind is CancelAll:
        if command.side is not None and command.side not in SIDES:  # type: ignore[attr-defined]
            return Reject(INVALID_ORDER, "side must be buy or sell")
        return None
    if kind is AdvanceClock:
        return None
    return Reject(INVALID_ORDER, f"unknown command {kind.__name__}")


def due_time(engine: Engine, ts: int) -> int | None:
    """The command's time if GTT orders are due to expire at it, else None."""
    now = ts if ts > engine.clock else engine.clock
    expiries = engine.expiries
    return now if expiries and expiries[0][0] <= now else None


def gone(order: Order, due: int | None) -> bool:
    """Whether `order` is dead or expires before a command at time `due` runs."""
    if not order.live:
        return True
    return due is not None and order.expires_at is not None and order.expires_at <= due


def place_refusal(engine: Engine, command: PlaceOrder) -> Reject | None:
    # Every placement passes here before it runs, so the checks are written out flat,
    # cheapest and commonest first. A plain GTC limit order with members for its type and
    # time in force (the commonest placement) skips the combination checks; anything else
    # takes its fields by value ("buy" or Side.BUY) and meets combination_refusal.
    type_ = command.type
    tif = command.tif
    price = command.price
    size = command.size
    plain_limit = (
        type_ is LIMIT and tif is GTC and price is not None and size is not None
        and command.funds is None and command.stop_price is None and command.expires_at is None
    )
    if plain_limit:
        side = command.side
        if side not in SIDES or command.stp not in SELF_TRADE_MODES:
            return Reject(INVALID_ORDER, "unknown side, type, time in force or self-trade mode")
    else:
        side = SIDES.get(command.side)
        type_ = TYPES.get(type_)
        tif = TIMES_IN_FORCE.get(tif)
        if side is None or type_ is None or tif is None or command.stp not in SELF_TRADE_MODES:
            return Reject(INVALID_ORDER, "unknown side, type, time in force or self-trade mode")
    ts = command.ts
    order_id = command.order_id
    if type(ts) is not int or type(order_id) is not int or order_id < 1:
        return Reject(INVALID_ORDER, "ts and order_id must be integers, order_id positive")
    owner = command.owner
    if type(owner) is not str or not owner:
        return Reject(INVALID_ORDER, "owner must be a non-empty string")
    if order_id <= engine.last_order_id:
        return Reject(DUPLICATE_ORDER_ID, "order ids must increase")
    if not plain_limit:
        reject = combination_refusal(engine, command, side, type_, tif)
        if reject is not None:
            return reject
    market = engine.market
    if price is not None and (type(price) is not int or price <= 0 or price % market.tick):
        return Reject(INVALID_PRICE, f"price must be a positive multiple of {market.tick}")
    if size is not None:
        if type(size) is not int or size <= 0 or size % market.size_increment:
            return Reject(
                INVALID_SIZE, f"size must be a positive multiple of {market.size_increment}"
            )
        if size < market.min_size:
            return Reject(SIZE_TOO_SMALL, f"size must be at least {market.min_size}")
    if plain_limit:  # needs nothing of the book, unless it is post-only
        return book_refusal(engine, command, SIDES[side], LIMIT, GTC) if command.post_only else None
    if type_ is STOP or type_ is STOP_LIMIT:
        return None  # checked against the book when the stop triggers
    if type_ is LIMIT and not command.post_only and tif is not FOK:
        return None  # a limit order that neither checks the book nor must fill at once
    return book_refusal(engine, command, side, type_, tif)


def book_refusal(
    engine: Engine, command: PlaceOrder, side: Side, type_: OrderType, tif: TimeInForce
) -> Reject | None:
    """The checks of a placement against the book: post-only, FOK, market liquidity."""
    other = engine.asks if side is Side.BUY else engine.bids
    due = due_time(engine, command.ts)
    if type_ is LIMIT:
        if command.post_only and crosses(other, side, command.price, due):
            return Reject(POST_ONLY_WOULD_TAKE, "a post-only order may not take liquidity")
    else:
        best = best_level_key(other, due)
        if best is None:
            return Reject(NO_LIQUIDITY, "no orders on the other side of the book")
        if command.funds is not None:
            best_price = -best if side is Side.BUY else best
            if engine.market.size_for_funds(best_price, command.funds) == 0:
                return Reject(SIZE_TOO_SMALL, "the funds buy less than one size increment")
    if tif is FOK and not fillable(
        other, side, command.price, command.size, command.owner,
        SELF_TRADE_MODES[command.stp], due,
    ):
        return Reject(FOK_NOT_FILLABLE, "the book cannot fill the whole size at once")
    return None


def combination_refusal(
    engine: Engine, command: PlaceOrder, side: Side, type_: OrderType, tif: TimeInForce
) -> Reject | None:
    """What is wrong with the fields of anything but a plain GTC limit order, if anything."""
    message = combination_error(command, side, type_, tif)
    if message is not None:
        return Reject(INVALID_ORDER, message)
    if tif is GTT:
        now = command.ts if command.ts > engine.clock else engine.clock
        if type(command.expires_at) is not int or command.expires_at <= now:
            return Reject(INVALID_ORDER, "a GTT order needs expires_at after the command's ts")
    market = engine.market
    if command.stop_price is not None and not market.price_on_grid(command.stop_price):
        return Reject(INVALID_PRICE, f"stop_price must be a positive multiple of {market.tick}")
    if command.funds is not None and (type(command.funds) is not int or command.funds < 1):
        return Reject(INVALID_ORDER, "funds must be a positive integer of quote minor units")
    return None


def combination_error(
    command: PlaceOrder, side: Side, type_: OrderType, tif: TimeInForce
) -> str | None:
    """What is wrong with the combination of fields, if anything (see docs/exchange.md)."""
    has_price = command.price is not None
    has_stop = command.stop_price is not None
    has_size = command.size is not None
    has_funds = command.funds is not None
    if (tif is GTT) != (command.expires_at is not None):
        return "expires_at goes with time in force gtt, and only with it"
    if command.post_only and not (type_ is LIMIT and (tif is GTC or tif is GTT)):
        return "post_only is for gtc and gtt limit orders"
    if type_ is LIMIT or type_ is STOP_LIMIT:
        if not (has_price and has_size) or has_funds:
            return "a limit order needs price and size, and no funds"
        if has_stop != (type_ is STOP_LIMIT):
            return "stop_price goes with stop and stop_limit orders, and only with them"
        return None
    # Market and stop (market) orders.
    if has_price:
        return "a market or stop order has no price (a stop_limit order does)"
    if has_size == has_funds:
        return "a market order needs a size or funds, not both"
    if has_funds and side is not Side.BUY:
        return "only a buy can be placed by funds"
    if has_stop != (type_ is STOP):
        return "stop_price goes with stop and stop_limit orders, and only with them"
    if type_ is MARKET and tif is not GTC and tif is not IOC and not (tif is FOK and has_size):
        return "a market order is gtc or ioc (both mean at once), or fok by size"
    if type_ is STOP and tif is not GTC and tif is not GTT:
        return "a stop order waits gtc or gtt, then executes as a market order"
    return None


def cancel_refusal(engine: Engine, command: CancelOrder) -> Reject | None:
    if type(command.ts) is not int:
        return Reject(INVALID_ORDER, "ts must be an integer (microseconds since the epoch)")
    order_id = command.order_id
    order = engine.orders.get(order_id) or engine.stops.get(order_id)
    # The orders in `orders` and `stops` are live; one may be due to expire at `ts`.
    if (
        order is None or order.owner != command.owner
        or (engine.expiries and gone(order, due_time(engine, command.ts)))
    ):
        return Reject(ORDER_NOT_FOUND, "no live order with this id")
    return None


def amend_refusal(engine: Engine, command: AmendOrder) -> Reject | None:
    order = engine.orders.get(command.order_id)
    if order is None:
        stop = engine.stops.get(command.order_id)
        if stop is not None and stop.owner == command.owner:
            return Reject(INVALID_ORDER, "only resting limit orders can be amended")
    # The orders in `orders` are live; one may be due to expire at `ts`.
    if (
        order is None or order.owner != command.owner
        or (engine.expiries and gone(order, due_time(engine, command.ts)))
    ):
        return Reject(ORDER_NOT_FOUND, "no live order with this id")
    price = command.price
    size = command.size
    if size is None and price is None:
        return Reject(INVALID_ORDER, "an amend changes the size, the price, or both")
    market = engine.market
    if price is not None and (type(price) is not int or price <= 0 or price % market.tick):
        return Reject(INVALID_PRICE, f"price must be a positive multiple of {market.tick}")
    if size is not None and (
        type(size) is not int or size <= 0 or size % market.size_increment
    ):
        return Reject(INVALID_SIZE, f"size must be a positive multiple of {market.size_increment}")
    if order.post_only and price is not None and price != order.price:
        other = engine.asks if order.side is Side.BUY else engine.bids
        if crosses(other, order.side, price, due_time(engine, command.ts)):
            return Reject(POST_ONLY_WOULD_TAKE, "a post-only order may not take liquidity")
    return None


def best_level_key(other: BookSide, due: int | None) -> int | None:
    """The key of the best level holding an order that is still live at `due`."""
    if due is None:
        return other.keys[-1] if other.keys else None
    for key in reversed(other.keys):
        for order in other.levels[key].orders:
            if not gone(order, due):
                return key
    return None


def crosses(other: BookSide, side: Side, price: int, due: int | None) -> bool:
    """Whether a limit order at `price` on `side` would take from `other` now."""
    best = best_level_key(other, due)
    return best is not None and best >= (-price if side is Side.BUY else price)


def fillable(
    other: BookSide, side: Side, price: int | None, size: int, owner: str,
    stp: SelfTrade, due: int | None,
) -> bool:
    """Whether a taker could fill `size` whole against `other` (the FOK test).

    It walks the book as the taker loop would. An own order met on the way is skipped
    under `co` (it would be cancelled) and makes the order unfillable under the other
    modes (they cancel or decrement the taker).
    """
    limit_key = None if price is None else (-price if side is Side.BUY else price)
    needed = size
    for key in reversed(other.keys):
        if limit_key is not None and key < limit_key:
            return False
        for order in other.levels[key].orders:
            if gone(order, due):
                continue
            if order.owner == owner:
                if stp is SelfTrade.CANCEL_OLDEST:
                    continue
                return False
            needed -= order.remaining
            if needed <= 0:
                return True
    return False
