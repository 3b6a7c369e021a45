"""Self-trade prevention: the taker's mode decides what happens when it meets its owner's order.

After Coinbase: dc decrements the larger and cancels the smaller, co cancels the resting
(oldest) order, cn the taker (newest), cb both. No fill between the two is ever made.
"""

from .scenario import BUY, CB, CN, CO, DC, Scenario, changed, done, trades


def book_with_own_ask_first() -> Scenario:
    s = Scenario()
    s.sell("a", 5, 100)  # 1: a's own order, first in the queue
    s.sell("m", 5, 100)  # 2: someone else's
    return s


def test_dc_larger_taker_cancels_the_resting_order_and_is_decremented():
    s = book_with_own_ask_first()
    result = s.buy("a", 8, 100, stp=DC)
    assert done(result) == [(1, "self_trade", 5), (3, "filled", 0)]
    assert changed(result) == [(3, "self_trade", 8, 3)]
    assert trades(result) == [(3, 2, 3, 100)]
    assert s.asks() == [(2, 2, 100)]


def test_dc_smaller_taker_is_cancelled_and_decrements_the_resting_order():
    s = book_with_own_ask_first()
    result = s.buy("a", 2, 100, stp=DC)
    assert done(result) == [(3, "self_trade", 2)]
    assert changed(result) == [(1, "self_trade", 5, 3)]
    assert [(m.type, m.order_id) for m in result.md] == [("change", 1)]
    assert not result.fills
    assert s.asks() == [(1, 3, 100), (2, 5, 100)]  # it keeps its place


def test_dc_equal_sizes_cancel_both():
    s = book_with_own_ask_first()
    result = s.buy("a", 5, 100, stp=DC)
    assert done(result) == [(1, "self_trade", 5), (3, "self_trade", 5)]
    assert not result.fills
    assert s.asks() == [(2, 5, 100)]


def test_co_cancels_the_resting_order_and_the_taker_trades_on():
    s = book_with_own_ask_first()
    result = s.buy("a", 8, 100, stp=CO)
    assert done(result)[0] == (1, "self_trade", 5)
    assert trades(result) == [(3, 2, 5, 100)]
    assert s.bids() == [(3, 3, 100)]


def test_cn_cancels_the_taker_and_leaves_the_resting_order():
    s = book_with_own_ask_first()
    result = s.buy("a", 8, 100, stp=CN)
    assert done(result) == [(3, "self_trade", 8)]
    assert not result.fills and not result.md
    assert s.asks() == [(1, 5, 100), (2, 5, 100)]


def test_cn_keeps_the_fills_made_before_meeting_the_own_order():
    s = Scenario()
    s.sell("m", 2, 99)
    s.sell("a", 5, 100)
    result = s.buy("a", 8, 100, stp=CN)
    assert trades(result) == [(3, 1, 2, 99)]
    assert done(result)[-1] == (3, "self_trade", 6)


def test_cb_cancels_both():
    s = book_with_own_ask_first()
    result = s.buy("a", 8, 100, stp=CB)
    assert done(result) == [(1, "self_trade", 5), (3, "self_trade", 8)]
    assert s.asks() == [(2, 5, 100)]


def test_a_market_buy_by_funds_under_dc_cancels_own_orders_its_funds_cover():
    s = book_with_own_ask_first()
    result = s.market("a", BUY, funds=800, stp=DC)
    # 800 buys 8 at 100 > a's 5: a's order is cancelled, the funds buy 5 from m.
    assert done(result)[0] == (1, "self_trade", 5)
    assert trades(result) == [(3, 2, 5, 100)]
    assert result.done[-1].remaining_funds == 300


def test_a_market_buy_by_funds_under_dc_is_cancelled_by_a_larger_own_order():
    s = book_with_own_ask_first()
    result = s.market("a", BUY, funds=300, stp=DC)
    assert changed(result) == [(1, "self_trade", 5, 2)]
    assert [(d.order_id, d.reason, d.remaining_funds) for d in result.done] == [
        (3, "self_trade", 300),
    ]
