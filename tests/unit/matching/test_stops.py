"""Stop and stop-limit orders wait, unseen, for the last trade price."""

from .scenario import BUY, FOK, GTT, IOC, SELL, STOP, STOP_LIMIT, Scenario, done, rejected, trades


def trade_at(s: Scenario, price: int) -> None:
    """Make one trade of size 1 at `price` between two bystanders."""
    s.sell("x", 1, price)
    assert s.buy("y", 1, price).fills


def test_a_buy_stop_triggers_when_the_last_price_reaches_it():
    s = Scenario()
    s.sell("m", 10, 110)
    stop = s.place("a", BUY, STOP, size=4, stop_price=105).opened
    assert stop == [] and s.bids() == []
    trade_at(s, 104)
    assert s.book.get_order(2).status == "pending"
    s.sell("x", 1, 105)
    result = s.buy("y", 1, 105)
    assert result.triggered == [2]
    # The triggered stop is a market buy: it takes 4 at 110 after the trade at 105.
    assert trades(result) == [(6, 5, 1, 105), (2, 1, 4, 110)]
    assert s.book.get_order(2) is None


def test_a_sell_stop_triggers_when_the_last_price_falls_to_it():
    s = Scenario()
    s.buy("m", 10, 90)
    s.place("a", SELL, STOP, size=4, stop_price=95)
    trade_at(s, 96)
    assert s.book.get_order(2) is not None
    s.sell("x", 1, 95)
    result = s.buy("y", 1, 95)
    assert result.triggered == [2]
    assert trades(result)[-1] == (2, 1, 4, 90)


def test_a_stop_limit_rests_at_its_limit_once_triggered():
    s = Scenario()
    s.sell("m", 2, 106)
    s.place("a", BUY, STOP_LIMIT, size=5, price=106, stop_price=105)
    trade_at(s, 105)
    assert s.bids() == [(2, 3, 106)]
    assert s.book.get_order(2).status == "open"


def test_a_stop_whose_price_the_last_trade_already_passed_triggers_at_once():
    s = Scenario()
    s.buy("m", 5, 100)
    assert s.sell("x", 1, 100).fills  # the last trade price is 100
    result = s.place("a", SELL, STOP, size=2, stop_price=101)
    assert result.triggered == [3]
    assert trades(result) == [(3, 1, 2, 100)]


def test_no_trade_no_trigger():
    s = Scenario()
    s.sell("m", 5, 100)
    result = s.place("a", BUY, STOP, size=2, stop_price=1)
    assert result.triggered == [] and s.book.get_order(2).status == "pending"


def test_stops_reached_together_run_in_the_order_they_were_placed():
    s = Scenario()
    s.sell("m", 10, 110)
    s.place("a", BUY, STOP, size=1, stop_price=104)  # 2
    s.place("b", BUY, STOP, size=1, stop_price=102)  # 3
    s.place("c", BUY, STOP, size=1, stop_price=103)  # 4
    s.sell("x", 1, 105)
    result = s.buy("y", 1, 105)
    assert result.triggered == [2, 3, 4]


def test_a_triggered_stop_can_trigger_more_stops():
    s = Scenario()
    s.sell("m", 1, 110)
    s.sell("m", 1, 120)
    s.place("a", BUY, STOP, size=1, stop_price=105)  # 3: takes 110
    s.place("b", BUY, STOP, size=1, stop_price=110)  # 4: reached by 3's trade, takes 120
    s.sell("x", 1, 105)
    result = s.buy("y", 1, 105)
    assert result.triggered == [3, 4]
    assert [f.price for f in result.fills] == [105, 110, 120]


def test_a_buy_stop_by_funds_spends_its_funds():
    s = Scenario()
    s.sell("m", 10, 110)
    s.place("a", BUY, STOP, funds=330, stop_price=100)
    trade_at(s, 100)
    assert trades(s.results[-1])[-1] == (2, 1, 3, 110)


def test_a_fok_stop_limit_that_cannot_fill_at_its_trigger_is_done_unfilled():
    s = Scenario()
    s.sell("m", 2, 106)
    s.place("a", BUY, STOP_LIMIT, size=5, price=106, stop_price=105, tif=FOK)
    s.sell("x", 1, 105)
    result = s.buy("y", 1, 105)
    assert result.triggered == [2]
    assert done(result)[-1] == (2, "unfilled", 5)
    assert s.asks() == [(1, 2, 106)]


def test_a_waiting_stop_can_be_cancelled_and_expires():
    s = Scenario()
    s.place("a", BUY, STOP, size=1, stop_price=105)
    s.place("a", BUY, STOP, size=1, stop_price=105, tif=GTT, expires_at=100)
    assert done(s.cancel("a", 1)) == [(1, "cancelled", 1)]
    result = s.advance(100)
    assert done(result) == [(2, "expired", 1)] and result.md == []
    trade_at(s, 105)
    assert s.results[-1].triggered == []


def test_stop_fields():
    s = Scenario()
    assert rejected(s.place("a", BUY, STOP, size=1)) == "invalid_order"
    assert rejected(s.place("a", BUY, STOP, size=1, stop_price=5, price=5)) == "invalid_order"
    assert rejected(s.place("a", BUY, STOP_LIMIT, size=1, stop_price=5)) == "invalid_order"
    assert rejected(s.place("a", BUY, STOP, size=1, stop_price=5, tif=IOC)) == "invalid_order"
    assert rejected(s.place("a", SELL, STOP, funds=5, stop_price=5)) == "invalid_order"
    assert rejected(s.place("a", BUY, STOP_LIMIT, size=1, price=5, stop_price=5,
                            post_only=True)) == "invalid_order"
    assert rejected(s.place("a", BUY, STOP, size=1, stop_price=0)) == "invalid_price"


def test_a_waiting_stop_cannot_be_amended():
    s = Scenario()
    s.place("a", BUY, STOP, size=1, stop_price=105)
    assert rejected(s.amend("a", 1, size=2)) == "invalid_order"
    assert rejected(s.amend("b", 1, size=2)) == "order_not_found"
