"""Convert ("buy BTC with USD"): which market and side turn one asset into another, and
what a convert would give now, read from the book. Pure: no I/O, no clock of its own.

A convert is a market order for users who do not want a book. Converting the quote
asset into the base (USD -> BTC on BTC-USD) is a market BUY by funds: the amount given,
fees included; converting base into quote (BTC -> USD) is a market SELL by size. The
order runs with self-trade mode `cn` (cancel newest): it never trades with, nor cancels,
the user's own resting orders; meeting one ends it, and what it did not fill is released.

`quote_convert` walks the book exactly as the taker loop will (execution.py), fill by
fill, rounding each fill's quote amount and fee up on its own, so the quote equals what a
convert placed at once against the same book would do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pacioli.ledger.domain.errors import InvalidCommand
from pacioli.matching.book import OrderBook
from pacioli.matching.holds import split_funds
from pacioli.matching.market import Market
from pacioli.matching.orders import SelfTrade, Side
from pacioli.matching.refusals import due_time, gone
from pacioli.matching.views import OrderRequest


class NoMarketBetween(InvalidCommand):
    """No market trades the two assets of a convert against each other."""

    code = "no_market"


@dataclass(frozen=True, slots=True)
class ConvertRoute:
    """The market a convert trades on and its side there (BUY: from is the quote asset)."""

    market: Market
    side: Side

    @property
    def from_asset(self) -> str:
        return self.market.quote if self.side is Side.BUY else self.market.base

    @property
    def to_asset(self) -> str:
        return self.market.base if self.side is Side.BUY else self.market.quote


def route(markets: Iterable[Market], from_asset: str, to_asset: str) -> ConvertRoute:
    """The market and side that turn `from_asset` into `to_asset`.

    Raises: NoMarketBetween (also for an asset converted into itself).
    """
    for market in markets:
        if (market.quote, market.base) == (from_asset, to_asset):
            return ConvertRoute(market, Side.BUY)
        if (market.base, market.quote) == (from_asset, to_asset):
            return ConvertRoute(market, Side.SELL)
    raise NoMarketBetween(f"no market converts {from_asset} into {to_asset}")


def convert_order(convert_route: ConvertRoute, amount: int) -> OrderRequest:
    """The market order that converts `amount` (minor units of the from asset)."""
    market = convert_route.market.symbol
    stp = SelfTrade.CANCEL_NEWEST.value
    if convert_route.side is Side.BUY:
        return OrderRequest(market=market, side="buy", type="market", funds=amount, stp=stp)
    return OrderRequest(market=market, side="sell", type="market", size=amount, stp=stp)


@dataclass(frozen=True, slots=True)
class ConvertQuote:
    """What a convert of `amount` (minor units of the from asset) would do now.

    `spent` and `received` are in the from and to assets; `fee` is in the market's quote
    asset (for a buy it is part of `spent`, for a sell it was taken from `received`). A buy
    never spends more than `amount`, even when its fees, rounded up fill by fill, add up
    to a few minor units more than were reserved for them.
    `filled_size` and `quote_amount` are the trade's base size and quote value.
    `complete` is False when the book ran out (or reached one of the user's own orders)
    before the amount was used up; the rest is not spent.
    """

    route: ConvertRoute
    amount: int
    spent: int
    received: int
    fee: int
    filled_size: int
    quote_amount: int
    fills: int
    complete: bool


def quote_convert(
    book: OrderBook, convert_route: ConvertRoute, amount: int, *, owner: str, ts: int
) -> ConvertQuote:
    """What converting `amount` would do against `book` now (read it under the book's lock)."""
    market = book.market
    if convert_route.side is Side.BUY:
        walk = _buy_by_funds(book, split_funds(market, amount).book_funds, owner, ts)
    else:
        walk = _sell_by_size(book, amount, owner, ts)
    size, quote_amount, fee, fills, complete = walk
    spent, received = convert_outcome(
        convert_route, amount, filled_size=size, filled_quote=quote_amount, fee=fee
    )
    return ConvertQuote(
        convert_route, amount, spent, received, fee, size, quote_amount, fills, complete,
    )


def convert_outcome(
    convert_route: ConvertRoute, amount: int, *, filled_size: int, filled_quote: int, fee: int
) -> tuple[int, int]:
    """(spent, received), in minor units of the from and to assets, of a convert's fills.

    A buy pays its fills' quote amounts and fees, but never more than the amount given:
    fees round up fill by fill, so on many fills they can pass the fee reserved on the
    whole, and the platform's rounding account pays the difference (settlement_plan.py).
    A sell gives its filled size and receives the quote amounts less its fees.
    """
    if convert_route.side is Side.BUY:
        return min(filled_quote + fee, amount), filled_size
    return filled_size, filled_quote - fee


def _orders_best_first(book: OrderBook, side: Side, ts: int):
    """The live resting orders a taker on the other side meets, with their level's price."""
    due = due_time(book, ts)
    other = book.asks if side is Side.BUY else book.bids
    for key in reversed(other.keys):
        level = other.levels[key]
        for order in level.orders:
            if not gone(order, due):
                yield level.price, order


def _buy_by_funds(
    book: OrderBook, funds: int, owner: str, ts: int
) -> tuple[int, int, int, int, bool]:
    market = book.market
    size_total = quote_total = fee_total = fills = 0
    for price, order in _orders_best_first(book, Side.BUY, ts):
        capacity = _size_for_funds(market, price, funds)
        if capacity == 0:
            return size_total, quote_total, fee_total, fills, True
        if order.owner == owner:
            return size_total, quote_total, fee_total, fills, False
        size = min(order.remaining, capacity)
        quote_amount = market.quote_amount(price, size)
        funds -= quote_amount
        size_total += size
        quote_total += quote_amount
        fee_total += market.fee(quote_amount, market.taker_fee_bps)
        fills += 1
        if size < order.remaining:  # what is left buys no more at this price: done
            return size_total, quote_total, fee_total, fills, True
    # The book ran out: the order is filled only if its funds are spent to the last unit.
    return size_total, quote_total, fee_total, fills, funds == 0


def _sell_by_size(
    book: OrderBook, size_left: int, owner: str, ts: int
) -> tuple[int, int, int, int, bool]:
    market = book.market
    size_total = quote_total = fee_total = fills = 0
    for price, order in _orders_best_first(book, Side.SELL, ts):
        if order.owner == owner:
            break
        size = min(order.remaining, size_left)
        quote_amount = market.quote_amount(price, size)
        size_left -= size
        size_total += size
        quote_total += quote_amount
        fee_total += market.fee(quote_amount, market.taker_fee_bps)
        fills += 1
        if size_left == 0:
            return size_total, quote_total, fee_total, fills, True
    return size_total, quote_total, fee_total, fills, False


def _size_for_funds(market: Market, price: int, funds: int) -> int:
    size = funds * market.base_unit // price
    return size - size % market.size_increment
