"""Hold sizing: what an order may spend, as its hold and re-holds must cover."""

from __future__ import annotations

import pytest

from pacioli.matching import BTC_USD, OrderBook, OrderType, PlaceOrder, Side, TimeInForce
from pacioli.matching.holds import (
    amend_top_up,
    buy_limit_need,
    holdable,
    immediate,
    market_buy_cost,
    need,
    place_hold,
    split_funds,
)

BTC = 10**8


def limit(order_id, owner, side, price, size, **fields):
    return PlaceOrder(ts=order_id, order_id=order_id, owner=owner, side=side,
                      type=OrderType.LIMIT, price=price, size=size, **fields)


def test_a_limit_buy_holds_its_quote_amount_and_the_largest_taker_fee():
    # 0.5 BTC at 50,000.00 USD is 25,000.00 USD; 20 bps of it is 50.00 USD.
    command = limit(1, "ada", Side.BUY, 5_000_000, BTC // 2)
    assert place_hold(BTC_USD, command) == 2_500_000 + 5_000


def test_the_quote_amount_and_the_fee_round_up_separately():
    # 0.00001 BTC at 12,345.67 USD is 0.123... USD -> 13 cents; 20 bps of 13 -> 1 cent.
    assert buy_limit_need(BTC_USD, 1_234_567, 1000) == 13 + 1


def test_a_sell_holds_its_size_in_base():
    command = limit(1, "ada", Side.SELL, 5_000_000, 12_345_000)
    assert place_hold(BTC_USD, command) == 12_345_000


def test_a_market_buy_by_funds_holds_the_funds_given_and_the_book_gets_them_less_the_fee():
    split = split_funds(BTC_USD, 100_000)  # 1,000.00 USD, fees included
    assert split.book_funds + split.fee_reserve <= 100_000
    assert split.fee_reserve == BTC_USD.max_taker_fee(split.book_funds)
    # The largest such split: one more cent for the book would not fit with its fee.
    assert split.book_funds + 1 + BTC_USD.max_taker_fee(split.book_funds + 1) > 100_000
    command = PlaceOrder(ts=1, order_id=1, owner="ada", side=Side.BUY, type=OrderType.MARKET,
                         funds=split.book_funds)
    assert place_hold(BTC_USD, command) == split.book_funds


@pytest.mark.parametrize("funds", [1, 2, 3, 500, 501, 10_019, 10_020, 10_021, 123_456_789])
def test_split_funds_is_the_largest_that_fits(funds):
    split = split_funds(BTC_USD, funds)
    fits = split.book_funds + BTC_USD.max_taker_fee(split.book_funds) <= funds
    assert fits and (split.book_funds + 1 + BTC_USD.max_taker_fee(split.book_funds + 1) > funds)


def test_a_market_buy_by_size_costs_what_the_asks_cost_fill_by_fill_without_own_orders():
    book = OrderBook(BTC_USD)
    book.apply(limit(1, "bob", Side.SELL, 5_000_000, 30_000))
    book.apply(limit(2, "ada", Side.SELL, 5_000_000, 50_000))  # her own: never filled
    book.apply(limit(3, "cy", Side.SELL, 5_100_000, 100_000))
    cost = market_buy_cost(book, owner="ada", size=60_000, ts=10)
    first = BTC_USD.quote_amount(5_000_000, 30_000)
    second = BTC_USD.quote_amount(5_100_000, 30_000)
    expected = first + BTC_USD.max_taker_fee(first) + second + BTC_USD.max_taker_fee(second)
    assert cost == expected


def test_a_market_buy_by_size_costs_only_what_the_book_holds():
    book = OrderBook(BTC_USD)
    book.apply(limit(1, "bob", Side.SELL, 5_000_000, 10_000))
    quote = BTC_USD.quote_amount(5_000_000, 10_000)
    cost = market_buy_cost(book, owner="ada", size=BTC, ts=2)
    assert cost == quote + BTC_USD.max_taker_fee(quote)


def test_need_of_a_live_buy_is_its_open_size_at_its_price_and_nothing_once_done():
    book = OrderBook(BTC_USD)
    book.apply(limit(1, "ada", Side.BUY, 4_000_000, 50_000))
    book.apply(limit(2, "bob", Side.SELL, 4_000_000, 20_000))
    assert need(BTC_USD, book.get_order(1)) == buy_limit_need(BTC_USD, 4_000_000, 30_000)
    assert need(BTC_USD, book.get_order(2)) == 0


def test_an_amend_up_needs_a_top_up_and_an_amend_down_needs_none():
    book = OrderBook(BTC_USD)
    book.apply(limit(1, "ada", Side.BUY, 4_000_000, 50_000))
    view = book.get_order(1)
    left = need(BTC_USD, view)
    more = amend_top_up(BTC_USD, view, size=80_000, price=None, left=left)
    assert more == buy_limit_need(BTC_USD, 4_000_000, 80_000) - left
    assert amend_top_up(BTC_USD, view, size=20_000, price=None, left=left) == 0
    assert amend_top_up(BTC_USD, view, size=None, price=4_100_000, left=left) > 0
    # What rounding took from what the order had left is held again.
    assert amend_top_up(BTC_USD, view, size=None, price=None, left=left - 3) == 3


def test_a_stop_buy_by_size_cannot_be_held_and_market_orders_are_immediate():
    stop = PlaceOrder(ts=1, order_id=1, owner="ada", side=Side.BUY, type=OrderType.STOP,
                      size=10_000, stop_price=5_000_000)
    assert not holdable(stop)
    assert holdable(PlaceOrder(ts=1, order_id=1, owner="ada", side=Side.BUY,
                               type=OrderType.STOP, funds=1000, stop_price=5_000_000))
    assert immediate(PlaceOrder(ts=1, order_id=1, owner="a", side=Side.SELL,
                                type=OrderType.MARKET, size=10_000))
    assert immediate(limit(1, "a", Side.BUY, 1, 10_000, tif=TimeInForce.IOC))
    assert not immediate(limit(1, "a", Side.BUY, 1, 10_000))
