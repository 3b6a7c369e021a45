"""How much an order may spend: the size of its hold, and of its re-holds. Pure arithmetic.

An order reserves what it may spend as a pending ledger transfer from the user's wallet:
a sell holds its base size; a buy holds quote — the quote amount at its limit price plus
the most the taker fee can be; a market buy by funds holds the funds the user gave (fees
included: the book gets what is left after the taker fee); a market buy by size holds
what the book would cost it now, fill by fill (it trades in the same command, so the
book it will meet is the book it is sized against).

`need` is what an order may still spend after a command: what its re-hold must cover.
A buy's charge per fill is the fill's quote amount plus its fee (maker or taker); a
sell's is the fill's size (its fees come out of what it receives).

A stop buy by size is refused: nothing bounds the price it will trade at once triggered,
so no hold can be sized for it (place it by funds, or as a stop limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from pacioli.ledger.domain.model import Direction, Leg, TransferSpec
from pacioli.matching.market import Market
from pacioli.matching.orders import OrderType, OrderView, PlaceOrder, Side, TimeInForce
from pacioli.matching.refusals import due_time, gone

HOLD_FLOW = "exchange_hold"  # the metadata `flow` of every hold's pending transfer


@dataclass(frozen=True, slots=True)
class FundsSplit:
    """A market buy's funds split into what the book may spend on quote amounts and the
    taker fee reserved on top of it (their sum is at most what the user gave)."""

    book_funds: int
    fee_reserve: int


def split_funds(market: Market, funds: int) -> FundsSplit:
    """The largest `book_funds` whose maximum taker fee still fits within `funds`.

    fee(x) = ceil(x * bps / 10000) grows with x, so the largest x with x + fee(x) <= funds
    is found from the exact bound x <= funds * 10000 / (10000 + bps), then stepped down
    while the rounded-up fee overshoots (at most once or twice).
    """
    bps = market.taker_fee_bps
    book_funds = funds * 10000 // (10000 + bps)
    while book_funds > 0 and book_funds + market.max_taker_fee(book_funds) > funds:
        book_funds -= 1
    return FundsSplit(book_funds, market.max_taker_fee(book_funds))


def buy_limit_need(market: Market, price: int, size: int) -> int:
    """What a buy at `price` for `size` may spend: quote amount plus the maximum taker fee."""
    quote_amount = market.quote_amount(price, size)
    return quote_amount + market.max_taker_fee(quote_amount)


def place_hold(market: Market, command: PlaceOrder, asks_walk_cost: int | None = None) -> int:
    """The hold a placement needs, in the asset it spends (base for sells, quote for buys).

    `asks_walk_cost` is `market_buy_cost(...)` for a market buy by size (the caller walks
    the book); it is ignored otherwise. Returns 0 for a stop buy by size (not holdable).
    """
    if command.side == Side.SELL:
        return command.size or 0
    order_type = OrderType(command.type)
    if command.funds is not None:
        return command.funds  # the user's funds, fees included (see split_funds)
    if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        return buy_limit_need(market, command.price, command.size)
    if order_type is OrderType.MARKET:
        return asks_walk_cost or 0
    return 0


def need(market: Market, view: OrderView | None) -> int:
    """What a live order (as the book shows it) may still spend; 0 once it is done."""
    if view is None:
        return 0
    if view.side == Side.SELL:
        return view.remaining_size
    if view.funds is not None:
        return view.funds + market.max_taker_fee(view.funds)
    if view.price is None:
        return 0  # a market buy by size never outlives its command
    return buy_limit_need(market, view.price, view.remaining_size)


def amend_top_up(
    market: Market, view: OrderView, *, size: int | None, price: int | None, left: int
) -> int:
    """How much more an amend needs held than the order has `left` (0 for a decrease)."""
    return max(0, need(market, _amended(view, size=size, price=price)) - left)


def _amended(view: OrderView, *, size: int | None, price: int | None) -> OrderView:
    from dataclasses import replace

    return replace(
        view,
        remaining_size=view.remaining_size if size is None else size,
        price=view.price if price is None else price,
    )


def market_buy_cost(book, *, owner: str, size: int, ts: int) -> int:
    """What a market buy of `size` would pay now at most: quote amounts plus taker fees.

    Walks the asks in price-time priority as the taker loop will, fill by fill (each
    fill's quote amount and fee are rounded up on their own, exactly as they will be
    charged). The owner's own orders are skipped: self-trade prevention never fills
    against them, and skipping them only lets the walk reach further, so the result is
    an upper bound under every self-trade mode. Orders that expire at `ts` are skipped too.
    Reads the book's sides (`asks.keys`, `asks.levels`) as the book's own FOK check does.
    """
    market: Market = book.market
    due = due_time(book, ts)
    left = size
    cost = 0
    asks = book.asks
    for key in reversed(asks.keys):
        price = asks.levels[key].price
        for order in asks.levels[key].orders:
            if gone(order, due) or order.owner == owner:
                continue
            take = min(left, order.remaining)
            quote_amount = market.quote_amount(price, take)
            cost += quote_amount + market.max_taker_fee(quote_amount)
            left -= take
            if left == 0:
                return cost
    return cost


def holdable(command: PlaceOrder) -> bool:
    """Whether a hold can be sized for the placement (a stop buy by size cannot)."""
    return not (
        command.side == Side.BUY
        and OrderType(command.type) is OrderType.STOP
        and command.funds is None
    )


def immediate(command: PlaceOrder) -> bool:
    """Whether the order cannot outlive its command (market, IOC or FOK)."""
    return OrderType(command.type) is OrderType.MARKET or TimeInForce(command.tif) in (
        TimeInForce.IOC, TimeInForce.FOK
    )


def hold_spec(
    *, wallet_account_id: UUID, clearing_account_id: UUID, asset: str, amount: int,
    order: UUID, hold_id: UUID, transfer_id: UUID | None = None,
) -> TransferSpec:
    """The pending transfer that holds an order's funds (first hold, top-up or re-hold);
    `transfer_id` is its ledger id if we choose it (a settlement re-hold: its hold id).

    One function builds it everywhere, so a retry after a crash is the same request.
    """
    return TransferSpec(
        (Leg(wallet_account_id, Direction.DEBIT, amount, asset),
         Leg(clearing_account_id, Direction.CREDIT, amount, asset)),
        {"flow": HOLD_FLOW, "order_id": str(order), "hold_id": str(hold_id)},
        pending=True,
        id=transfer_id,
    )
