"""Cancel, cancel-all and amend."""

from .scenario import BUY, SELL, STOP, Scenario, changed, done, rejected, trades


def test_cancel_takes_the_order_off_the_book():
    s = Scenario()
    s.buy("a", 5, 100)
    s.buy("a", 5, 100)
    result = s.cancel("a", 1)
    assert done(result) == [(1, "cancelled", 5)]
    assert [(m.type, m.order_id, m.remaining_size) for m in result.md] == [("done", 1, 5)]
    assert s.bids() == [(2, 5, 100)]


def test_cancelling_the_only_order_at_a_price_removes_the_level():
    s = Scenario()
    s.buy("a", 5, 100)
    s.buy("a", 5, 99)
    s.buy("a", 5, 98)
    s.cancel("a", 2)
    assert [level.price for level in s.book.l2().bids] == [100, 98]


def test_another_owners_order_cannot_be_cancelled_and_is_not_found():
    s = Scenario()
    s.buy("a", 5, 100)
    assert rejected(s.cancel("b", 1)) == "order_not_found"
    assert rejected(s.cancel("a", 7)) == "order_not_found"
    s.cancel("a", 1)
    assert rejected(s.cancel("a", 1)) == "order_not_found"


def test_a_partly_filled_order_cancels_its_open_remainder():
    s = Scenario()
    s.buy("a", 5, 100)
    s.sell("b", 2, 100)
    assert done(s.cancel("a", 1)) == [(1, "cancelled", 3)]


def test_cancel_all_cancels_every_live_order_of_the_owner_in_id_order():
    s = Scenario()
    s.buy("a", 1, 100)
    s.sell("a", 1, 110)
    s.buy("b", 1, 100)
    s.place("a", BUY, STOP, size=1, stop_price=120)
    s.buy("a", 1, 99)
    result = s.cancel_all("a")
    assert done(result) == [(1, "cancelled", 1), (2, "cancelled", 1), (4, "cancelled", 1),
                            (5, "cancelled", 1)]
    assert s.bids() == [(3, 1, 100)] and s.asks() == []


def test_cancel_all_goes_in_id_order_after_an_amend_moved_an_order_to_the_back():
    s = Scenario()
    s.buy("a", 1, 100)
    s.buy("a", 1, 100)
    s.buy("a", 1, 100)
    s.amend("a", 1, price=99)  # order 1 is now the owner's most recently rested
    s.amend("a", 2, size=2)  # and order 2 after it
    assert [view.order_id for view in s.book.orders_of("a")] == [1, 2, 3]
    assert [order_id for order_id, _, _ in done(s.cancel_all("a"))] == [1, 2, 3]
    assert s.book.orders_of("a") == [] and s.bids() == []


def test_cancel_all_of_one_side():
    s = Scenario()
    s.buy("a", 1, 100)
    s.sell("a", 1, 110)
    assert done(s.cancel_all("a", SELL)) == [(2, "cancelled", 1)]
    assert s.bids() == [(1, 1, 100)]


def test_cancel_all_with_nothing_to_cancel_is_accepted_and_empty():
    result = Scenario().cancel_all("nobody")
    assert result.accepted and not result.done and not result.md


def test_amending_the_size_down_keeps_the_place_in_the_queue():
    s = Scenario()
    s.buy("a", 5, 100)
    s.buy("b", 5, 100)
    result = s.amend("a", 1, size=3)
    assert changed(result) == [(1, "amended", 5, 3)]
    assert [(m.type, m.old_size, m.new_size) for m in result.md] == [("change", 5, 3)]
    assert s.bids() == [(1, 3, 100), (2, 5, 100)]
    assert trades(s.sell("c", 3, 100)) == [(3, 1, 3, 100)]


def test_amending_the_size_up_loses_the_place():
    s = Scenario()
    s.buy("a", 5, 100)
    s.buy("b", 5, 100)
    result = s.amend("a", 1, size=7)
    assert changed(result) == [(1, "amended", 5, 7)]
    assert [(m.type, getattr(m, "reason", None)) for m in result.md] == [
        ("done", "replaced"), ("open", None),
    ]
    assert not result.done  # the order is not done for its owner
    assert s.bids() == [(2, 5, 100), (1, 7, 100)]


def test_amending_the_price_loses_the_place():
    s = Scenario()
    s.buy("a", 5, 100)
    s.buy("b", 5, 101)
    s.amend("b", 2, price=100)
    assert s.bids() == [(1, 5, 100), (2, 5, 100)]


def test_amending_the_price_across_the_spread_trades_at_once():
    s = Scenario()
    s.sell("m", 3, 105)
    s.buy("a", 5, 100)
    result = s.amend("a", 2, price=105)
    assert trades(result) == [(2, 1, 3, 105)]
    assert s.bids() == [(2, 2, 105)]


def test_an_amended_order_keeps_its_fills_and_conserves_quantity():
    s = Scenario()
    s.buy("a", 10, 100)
    s.sell("b", 4, 100)
    s.amend("a", 1, size=2)  # 6 open -> 2: 4 cancelled
    s.amend("a", 1, size=5, price=99)  # 2 -> 5: 3 more placed
    view = s.book.get_order(1)
    assert (view.size, view.filled_size, view.remaining_size, view.cancelled_size) == (13, 4, 5, 4)
    assert view.filled_size + view.remaining_size + view.cancelled_size == view.size


def test_amend_needs_something_to_change_on_the_grid():
    s = Scenario()
    s.buy("a", 5, 100)
    assert rejected(s.amend("a", 1)) == "invalid_order"
    assert rejected(s.amend("a", 1, size=0)) == "invalid_size"
    assert rejected(s.amend("a", 1, price=0)) == "invalid_price"
    assert rejected(s.amend("b", 1, size=1)) == "order_not_found"


def test_amending_to_the_same_size_and_price_changes_nothing():
    s = Scenario()
    s.buy("a", 5, 100)
    before = s.book.sequence
    result = s.amend("a", 1, size=5, price=100)
    assert result.accepted and not result.md and s.book.sequence == before


def test_an_amended_gtt_post_only_order_keeps_its_time_in_force_and_expiry():
    # A GTT order makes an expiry pending and a post-only order is checked against the
    # book, so this amend takes the general path; its copy keeps the order's fields.
    s = Scenario()
    s.buy("a", 5, 100, tif="gtt", expires_at=1_000, post_only=True)
    s.amend("a", 1, size=7, price=99)
    view = s.book.get_order(1)
    assert (view.tif, view.expires_at, view.post_only) == ("gtt", 1_000, True)
    assert (view.price, view.size, view.remaining_size) == (99, 7, 7)
    assert done(s.advance(1_000)) == [(1, "expired", 7)]


def test_an_amended_plain_order_keeps_its_self_trade_mode_and_time():
    s = Scenario()
    s.buy("a", 5, 100, stp="co")
    placed_at = s.book.get_order(1).ts
    s.amend("a", 1, price=99)
    view = s.book.get_order(1)
    assert (view.tif, view.stp, view.ts, view.price) == ("gtc", "co", placed_at, 99)


def test_an_amend_that_moves_the_price_onto_own_orders_applies_self_trade_prevention():
    s = Scenario()
    s.sell("a", 3, 101)
    s.buy("a", 5, 100)  # dc by default: the smaller is cancelled, the larger decremented
    result = s.amend("a", 2, price=101)
    assert trades(result) == []
    assert done(result) == [(1, "self_trade", 3)]
    assert s.bids() == [(2, 2, 101)]
