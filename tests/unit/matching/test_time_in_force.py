"""Time in force: GTC rests, GTT expires, IOC cancels the rest, FOK fills whole or not at all."""

from pacioli.matching import AdvanceClock, CancelOrder

from .scenario import BUY, CO, FOK, GTT, IOC, SELL, Scenario, done, rejected, trades


def test_gtc_rests_until_cancelled():
    s = Scenario()
    s.buy("a", 5, 100)
    s.advance(10**12)
    assert s.bids() == [(1, 5, 100)]


def test_gtt_expires_when_the_clock_reaches_expires_at():
    s = Scenario()
    s.buy("a", 5, 100, tif=GTT, expires_at=50)
    assert not s.advance(49).done
    result = s.advance(50)
    assert done(result) == [(1, "expired", 5)]
    assert [(m.type, m.reason) for m in result.md] == [("done", "expired")]
    assert s.bids() == []


def test_any_command_expires_due_orders_before_it_runs():
    s = Scenario()
    s.sell("a", 5, 100, tif=GTT, expires_at=50)
    s.sell("b", 5, 101)
    s.ts = 60
    result = s.buy("c", 5, 101)
    # The expired ask is gone before the buy matches, so the buy takes b's order.
    assert done(result)[0] == (1, "expired", 5)
    assert trades(result) == [(3, 2, 5, 101)]


def test_gtt_orders_expire_in_expiry_then_id_order():
    s = Scenario()
    s.buy("a", 1, 100, tif=GTT, expires_at=30)
    s.buy("a", 1, 100, tif=GTT, expires_at=20)
    s.buy("a", 1, 100, tif=GTT, expires_at=20)
    assert [d.order_id for d in s.advance(100).done] == [2, 3, 1]


def test_check_sees_an_order_due_to_expire_as_gone():
    s = Scenario()
    s.buy("a", 5, 100, tif=GTT, expires_at=50)
    assert s.book.check(CancelOrder(40, 1, "a")) is None
    assert s.book.check(CancelOrder(50, 1, "a")).code == "order_not_found"
    assert s.bids() == [(1, 5, 100)]  # check changed nothing
    assert s.book.apply(CancelOrder(50, 1, "a")).reject.code == "order_not_found"
    assert s.bids() == [(1, 5, 100)]  # a refused command does not even expire


def test_gtt_needs_an_expiry_in_the_future_and_only_gtt_has_one():
    s = Scenario()
    s.ts = 100
    assert rejected(s.buy("a", 1, 100, tif=GTT)) == "invalid_order"
    assert rejected(s.buy("a", 1, 100, tif=GTT, expires_at=101)) == "invalid_order"  # ts is 101
    assert rejected(s.buy("a", 1, 100, expires_at=500)) == "invalid_order"
    assert rejected(s.buy("a", 1, 100, tif=GTT, expires_at=500)) is None


def test_ioc_fills_what_it_can_and_cancels_the_rest():
    s = Scenario()
    s.sell("a", 3, 100)
    s.sell("a", 3, 102)
    result = s.buy("b", 5, 101, tif=IOC)
    assert trades(result) == [(3, 1, 3, 100)]
    assert done(result)[-1] == (3, "unfilled", 2)
    assert s.bids() == [] and s.asks() == [(2, 3, 102)]


def test_ioc_that_fills_nothing_is_done_unfilled():
    s = Scenario()
    result = s.buy("b", 5, 101, tif=IOC)
    assert done(result) == [(1, "unfilled", 5)]
    assert not result.md


def test_fok_fills_whole_across_levels():
    s = Scenario()
    s.sell("a", 3, 100)
    s.sell("a", 3, 101)
    result = s.buy("b", 6, 101, tif=FOK)
    assert trades(result) == [(3, 1, 3, 100), (3, 2, 3, 101)]
    assert done(result)[-1] == (3, "filled", 0)


def test_fok_that_cannot_fill_whole_is_refused_and_changes_nothing():
    s = Scenario()
    s.sell("a", 3, 100)
    s.sell("a", 3, 102)
    before = s.book.state_hash()
    assert rejected(s.buy("b", 6, 101, tif=FOK)) == "fok_not_fillable"
    assert s.book.state_hash() == before


def test_fok_does_not_count_own_orders_unless_they_would_be_cancelled():
    s = Scenario()
    s.sell("b", 3, 100)
    s.sell("a", 3, 100)
    assert rejected(s.buy("b", 3, 100, tif=FOK)) == "fok_not_fillable"
    result = s.buy("b", 3, 100, tif=FOK, stp=CO)
    assert done(result) == [(1, "self_trade", 3), (2, "filled", 0), (4, "filled", 0)]


def test_fok_does_not_count_orders_due_to_expire():
    s = Scenario()
    s.sell("a", 3, 100, tif=GTT, expires_at=10)
    s.ts = 20
    assert rejected(s.buy("b", 3, 100, tif=FOK)) == "fok_not_fillable"


def test_a_market_order_may_be_fok_by_size():
    s = Scenario()
    s.sell("a", 3, 100)
    assert rejected(s.market("b", BUY, size=4, tif=FOK)) == "fok_not_fillable"
    assert rejected(s.market("b", BUY, funds=400, tif=FOK)) == "invalid_order"
    assert trades(s.market("b", BUY, size=3, tif=FOK)) == [(4, 1, 3, 100)]


def test_advance_clock_never_goes_back():
    s = Scenario()
    s.sell("a", 3, 100, tif=GTT, expires_at=10)
    s.run(AdvanceClock(5))
    s.run(AdvanceClock(3))
    assert s.book.clock == 5
    assert s.asks() == [(1, 3, 100)]
    assert done(s.run(AdvanceClock(10))) == [(1, "expired", 3)]
    assert rejected(s.market("b", SELL, size=1)) == "no_liquidity"
