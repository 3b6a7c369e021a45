"""Limit orders: price-time priority, fills at the resting price, the grid."""

from pacioli.matching import BTC_USD, Market

from .scenario import Scenario, done, rejected, trades


def test_a_limit_order_that_does_not_cross_rests():
    s = Scenario()
    result = s.buy("alice", 10, 100)
    assert result.accepted and not result.fills
    assert [(o.order_id, o.size, o.price) for o in result.opened] == [(1, 10, 100)]
    assert s.bids() == [(1, 10, 100)]


def test_a_crossing_order_fills_at_the_resting_price():
    s = Scenario()
    s.sell("alice", 10, 100)
    result = s.buy("bob", 10, 105)
    assert trades(result) == [(2, 1, 10, 100)]
    assert result.fills[0].quote_amount == 1000
    assert done(result) == [(1, "filled", 0), (2, "filled", 0)]
    assert s.bids() == [] and s.asks() == []


def test_better_prices_fill_first_then_earlier_orders_at_a_price():
    s = Scenario()
    s.sell("a", 5, 102)  # 1
    s.sell("b", 5, 101)  # 2
    s.sell("c", 5, 101)  # 3
    s.sell("d", 5, 100)  # 4
    result = s.buy("e", 12, 101)
    assert trades(result) == [(5, 4, 5, 100), (5, 2, 5, 101), (5, 3, 2, 101)]
    assert s.asks() == [(3, 3, 101), (1, 5, 102)]


def test_the_remainder_of_a_partly_filled_order_rests():
    s = Scenario()
    s.sell("a", 4, 100)
    result = s.buy("b", 10, 100)
    assert trades(result) == [(2, 1, 4, 100)]
    assert [(o.order_id, o.size) for o in result.opened] == [(2, 6)]
    assert s.bids() == [(2, 6, 100)]


def test_a_sell_sweeps_bids_from_the_highest():
    s = Scenario()
    s.buy("a", 3, 99)
    s.buy("b", 3, 101)
    s.buy("c", 3, 100)
    result = s.sell("d", 7, 99)
    assert trades(result) == [(4, 2, 3, 101), (4, 3, 3, 100), (4, 1, 1, 99)]
    assert s.bids() == [(1, 2, 99)]


def test_the_last_trade_price_is_the_last_fill():
    s = Scenario()
    s.sell("a", 1, 100)
    s.sell("a", 1, 101)
    s.buy("b", 2, 101)
    assert s.book.l1().last_price == 101


def test_prices_off_the_tick_are_refused():
    whole_dollars = Market("BTC-USD", "BTC", "USD", 8, 2, tick=100, size_increment=1000,
                           min_size=10000)
    s = Scenario(whole_dollars)
    assert rejected(s.buy("a", 10000, 5000050)) == "invalid_price"
    assert rejected(s.buy("a", 10000, 0)) == "invalid_price"
    assert rejected(s.buy("a", 10000, -100)) == "invalid_price"
    assert rejected(s.buy("a", 10000, 5000000)) is None


def test_sizes_off_the_increment_or_below_the_minimum_are_refused():
    s = Scenario(BTC_USD)
    assert rejected(s.buy("a", 10500, 5000000)) == "invalid_size"
    assert rejected(s.buy("a", 0, 5000000)) == "invalid_size"
    assert rejected(s.buy("a", 9000, 5000000)) == "size_too_small"
    assert rejected(s.buy("a", 10000, 5000000)) is None


def test_a_refused_order_changes_nothing():
    s = Scenario(BTC_USD)
    s.buy("a", 10000, 5000000)
    before = s.book.state_hash()
    result = s.buy("a", 10500, 5000000)
    assert rejected(result) == "invalid_size"
    assert not (result.fills or result.done or result.opened or result.md)
    assert s.book.state_hash() == before


def test_order_ids_must_increase():
    s = Scenario()
    s.buy("a", 1, 100, order_id=5)
    assert rejected(s.buy("a", 1, 100, order_id=5)) == "duplicate_order_id"
    assert rejected(s.buy("a", 1, 100, order_id=3)) == "duplicate_order_id"
    assert rejected(s.buy("a", 1, 100, order_id=6)) is None


def test_a_limit_order_needs_a_price_and_a_size_and_no_funds():
    s = Scenario()
    assert rejected(s.place("a", "buy", "limit", size=1)) == "invalid_order"
    assert rejected(s.place("a", "buy", "limit", price=100)) == "invalid_order"
    assert rejected(s.place("a", "buy", "limit", price=100, size=1, funds=100)) == "invalid_order"
    assert rejected(s.place("a", "buy", "limit", price=100, size=1, stop_price=90)) == (
        "invalid_order"
    )
    assert rejected(s.place("a", "up", "limit", price=100, size=1)) == "invalid_order"


def test_plain_strings_name_sides_and_types_as_well_as_the_enums():
    s = Scenario()
    s.place("a", "sell", "limit", size=2, price=100)
    result = s.place("b", "buy", "limit", size=2, price=100)
    assert trades(result) == [(2, 1, 2, 100)]


def test_a_result_builds_its_lists_once_and_a_refusal_has_none():
    s = Scenario()
    s.sell("m", 2, 100)
    result = s.buy("a", 5, 100)
    assert result.accepted and result.reject is None
    assert result.fills is result.fills and result.md is result.md  # built once, kept
    assert trades(result) == [(2, 1, 2, 100)]
    refusal = s.buy("a", 0, 100)
    assert not refusal.accepted and refusal.reject.code == "invalid_size"
    assert (refusal.fills, refusal.done, refusal.opened, refusal.md) == ([], [], [], [])


def test_a_side_that_is_not_a_member_leaves_the_inline_path_before_any_write():
    # The inline placement tests the side last, after its flat test of the other fields:
    # a plain value takes the general path with the same outcome, an unknown one is
    # refused with nothing changed (clock, last order id).
    from pacioli.matching import OrderBook, OrderType, PlaceOrder, Side, TimeInForce

    from .scenario import TOY

    results = []
    for side in (Side.SELL, "sell"):
        book = OrderBook(TOY)
        book.apply(PlaceOrder(1, 1, "m", Side.BUY, OrderType.LIMIT, size=2, price=100))
        results.append(book.apply(PlaceOrder(5, 2, "t", side, OrderType.LIMIT, size=3,
                                             price=100, tif=TimeInForce.GTC)).events)
        refused = book.apply(PlaceOrder(9, 3, "t", "up", OrderType.LIMIT, size=1, price=100))
        assert refused.reject.code == "invalid_order"
        assert (book.clock, book.last_order_id) == (5, 2)
    assert results[0] == results[1] and len(results[0]) == 2  # the fill, the rest opened
