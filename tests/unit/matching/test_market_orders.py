"""Market orders: by size, and market buys by funds."""

from pacioli.matching import BTC_USD

from .scenario import BUY, SELL, Scenario, done, rejected, trades


def test_a_market_buy_by_size_sweeps_the_asks():
    s = Scenario()
    s.sell("a", 5, 100)
    s.sell("b", 5, 110)
    result = s.market("c", BUY, size=8)
    assert trades(result) == [(3, 1, 5, 100), (3, 2, 3, 110)]
    assert done(result) == [(1, "filled", 0), (3, "filled", 0)]
    assert s.asks() == [(2, 2, 110)]


def test_what_a_market_order_cannot_fill_is_done_unfilled_and_never_rests():
    s = Scenario()
    s.buy("a", 5, 100)
    result = s.market("b", SELL, size=8)
    assert trades(result) == [(2, 1, 5, 100)]
    assert done(result)[-1] == (2, "unfilled", 3)
    assert s.bids() == [] and s.asks() == []
    assert not result.opened


def test_a_market_order_on_an_empty_side_is_refused():
    s = Scenario()
    s.sell("a", 5, 100)
    assert rejected(s.market("b", SELL, size=1)) == "no_liquidity"


def test_a_market_buy_by_funds_spends_at_most_its_funds():
    s = Scenario()
    s.sell("a", 5, 100)
    s.sell("b", 5, 120)
    result = s.market("c", BUY, funds=800)
    # 5 at 100 = 500; 300 left buys 2 at 120 = 240; 60 left buys nothing at 120.
    assert trades(result) == [(3, 1, 5, 100), (3, 2, 2, 120)]
    assert sum(f.quote_amount for f in result.fills) == 740
    assert [(d.order_id, d.reason, d.remaining_size, d.remaining_funds) for d in result.done] == [
        (1, "filled", 0, None), (3, "filled", 0, 60),
    ]


def test_a_market_buy_by_funds_that_empties_the_book_is_unfilled_with_funds_left():
    s = Scenario()
    s.sell("a", 2, 100)
    result = s.market("c", BUY, funds=1000)
    assert trades(result) == [(2, 1, 2, 100)]
    assert (result.done[-1].reason, result.done[-1].remaining_funds) == ("unfilled", 800)


def test_funds_respect_quote_rounding():
    s = Scenario(BTC_USD)
    s.sell("a", 100000, 5000001)
    result = s.market("b", BUY, funds=51)
    # 1000 sat cost 50.00001 -> 51 cents: exactly affordable; 2000 sat would cost 101.
    assert [(f.size, f.quote_amount) for f in result.fills] == [(1000, 51)]
    assert result.done[-1].remaining_funds == 0


def test_funds_that_buy_less_than_one_increment_are_refused():
    s = Scenario(BTC_USD)
    s.sell("a", 100000, 5000000)
    assert rejected(s.market("b", BUY, funds=49)) == "size_too_small"


def test_only_buys_go_by_funds_and_a_market_order_has_size_or_funds():
    s = Scenario()
    s.buy("a", 5, 100)
    s.sell("a2", 5, 101)
    assert rejected(s.market("b", SELL, funds=100)) == "invalid_order"
    assert rejected(s.market("b", BUY, funds=100, size=1)) == "invalid_order"
    assert rejected(s.market("b", BUY)) == "invalid_order"
    assert rejected(s.market("b", BUY, size=1, price=100)) == "invalid_order"
