"""Post-only orders add liquidity or are refused."""

from .scenario import GTT, IOC, Scenario, rejected


def test_a_post_only_order_that_does_not_cross_rests():
    s = Scenario()
    s.sell("a", 5, 101)
    result = s.buy("b", 5, 100, post_only=True)
    assert result.accepted and [o.order_id for o in result.opened] == [2]


def test_a_post_only_order_that_would_take_is_refused():
    s = Scenario()
    s.sell("a", 5, 101)
    before = s.book.state_hash()
    assert rejected(s.buy("b", 5, 101, post_only=True)) == "post_only_would_take"
    assert s.book.state_hash() == before


def test_post_only_crossing_own_order_is_refused_too():
    s = Scenario()
    s.sell("a", 5, 101)
    assert rejected(s.buy("a", 5, 102, post_only=True)) == "post_only_would_take"


def test_post_only_ignores_orders_due_to_expire():
    s = Scenario()
    s.sell("a", 5, 101, tif=GTT, expires_at=5)
    s.ts = 10
    assert rejected(s.buy("b", 5, 101, post_only=True)) is None


def test_post_only_goes_with_resting_limit_orders_only():
    s = Scenario()
    assert rejected(s.buy("b", 5, 100, post_only=True, tif=IOC)) == "invalid_order"
    assert rejected(s.buy("b", 5, 100, post_only=True, tif=GTT, expires_at=100)) is None


def test_amending_a_post_only_order_across_the_spread_is_refused():
    s = Scenario()
    s.sell("a", 5, 101)
    s.buy("b", 5, 100, post_only=True)
    assert rejected(s.amend("b", 2, price=101)) == "post_only_would_take"
    assert rejected(s.amend("b", 2, price=99)) is None
    assert s.bids() == [(2, 5, 99)]
