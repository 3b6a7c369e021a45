"""A convert's quote, read from the book, equals what the convert's market order then does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacioli.matching import BTC_USD, ETH_BTC, OrderBook, OrderType, PlaceOrder, SelfTrade, Side
from pacioli.matching.convert import NoMarketBetween, quote_convert, route
from pacioli.matching.holds import split_funds
from pacioli.matching.orders import TimeInForce

ME = "me"
MARKETS = (BTC_USD, ETH_BTC)

resting = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 40),  # price steps from the middle
        st.integers(1, 30),  # size in minimum sizes
        st.sampled_from(["a", "b", ME]),
        st.booleans(),  # expires at the convert's time
    ),
    max_size=30,
)


def _book(market, orders) -> OrderBook:
    book = OrderBook(market)
    middle = 5_000_000 if market is BTC_USD else 5_000_000
    for order_id, (side, steps, sizes, owner, expires) in enumerate(orders, start=1):
        price = middle - steps * 1000 if side is Side.BUY else middle + steps * 1000
        result = book.apply(PlaceOrder(
            ts=order_id, order_id=order_id, owner=owner, side=side, type=OrderType.LIMIT,
            size=sizes * market.min_size, price=price,
            tif=TimeInForce.GTT if expires else TimeInForce.GTC,
            expires_at=1000 if expires else None,
        ))
        assert result.accepted, result.reject
    return book


@given(
    market=st.sampled_from(MARKETS), orders=resting, side=st.sampled_from([Side.BUY, Side.SELL]),
    amount_steps=st.integers(1, 400), late=st.booleans(),
)
def test_the_quote_is_what_the_market_order_then_does(market, orders, side, amount_steps, late):
    book = _book(market, orders)
    ts = 1000 if late else 500  # at 1000 the GTT orders have expired
    from_asset, to_asset = (market.quote, market.base) if side is Side.BUY else (
        market.base, market.quote)
    convert = route(MARKETS, from_asset, to_asset)
    assert (convert.market, convert.side) == (market, side)
    if side is Side.BUY:
        amount = amount_steps * 10 ** market.quote_scale  # whole quote units
        command = PlaceOrder(
            ts=ts, order_id=10_000, owner=ME, side=side, type=OrderType.MARKET,
            funds=split_funds(market, amount).book_funds, stp=SelfTrade.CANCEL_NEWEST,
        )
    else:
        amount = amount_steps * market.min_size
        command = PlaceOrder(
            ts=ts, order_id=10_000, owner=ME, side=side, type=OrderType.MARKET, size=amount,
            stp=SelfTrade.CANCEL_NEWEST,
        )
    quoted = quote_convert(book, convert, amount, owner=ME, ts=ts)
    result = book.apply(command)
    if not result.accepted:
        assert result.reject.code == "no_liquidity"
        assert quoted.fills == 0 and quoted.received == 0
        return
    fills = [fill for fill in result.fills if fill.taker_order_id == 10_000]
    assert quoted.fills == len(fills)
    assert quoted.filled_size == sum(fill.size for fill in fills)
    assert quoted.quote_amount == sum(fill.quote_amount for fill in fills)
    fee = sum(market.fee(fill.quote_amount, market.taker_fee_bps) for fill in fills)
    assert quoted.fee == fee
    if side is Side.BUY:
        assert quoted.spent == min(quoted.quote_amount + fee, amount)
        assert quoted.received == quoted.filled_size
    else:
        assert quoted.spent == quoted.filled_size <= amount
        assert quoted.received == quoted.quote_amount - fee
    done = next(d for d in result.done if d.order_id == 10_000)
    assert quoted.complete == (done.reason == "filled")


def test_a_convert_between_assets_no_market_trades_is_refused():
    with pytest.raises(NoMarketBetween):
        route(MARKETS, "USD", "ETH")
    with pytest.raises(NoMarketBetween):
        route(MARKETS, "USD", "USD")


def test_a_buy_quote_stops_at_the_users_own_order():
    book = _book(BTC_USD, [(Side.SELL, 1, 1, "a", False), (Side.SELL, 2, 1, ME, False),
                           (Side.SELL, 3, 5, "b", False)])
    quoted = quote_convert(book, route(MARKETS, "USD", "BTC"), 10_000_00, owner=ME, ts=10)
    assert quoted.fills == 1 and quoted.filled_size == BTC_USD.min_size
    assert not quoted.complete
