"""The same commands give the same book, hash and results; check() predicts apply()."""

from pacioli.matching import CancelOrder, OrderBook, PlaceOrder
from pacioli.matching.errors import OrderNotFound, PostOnlyWouldTake, rejection_error

from .scenario import TOY, Scenario
from .test_market_data import busy_scenario


def replay(commands) -> OrderBook:
    book = OrderBook(TOY)
    for command in commands:
        book.apply(command)
    return book


def test_replaying_the_commands_gives_the_same_hash():
    s = Scenario()
    recorded = []
    original_run = s.run

    def record(command):
        recorded.append(command)
        return original_run(command)

    s.run = record  # type: ignore[method-assign]
    s.buy("a", 5, 100)
    s.sell("b", 3, 100)
    s.sell("c", 4, 101)
    s.amend("a", 1, price=101)
    s.cancel("c", 3)
    assert replay(recorded).state_hash() == s.book.state_hash()
    assert replay(recorded[:2]).state_hash() != s.book.state_hash()


def test_the_busy_scenario_replays_to_the_same_hash():
    assert busy_scenario().book.state_hash() == busy_scenario().book.state_hash()


def test_a_different_book_has_a_different_hash():
    a, b = Scenario(), Scenario()
    a.buy("x", 5, 100)
    b.buy("x", 5, 101)
    assert a.book.state_hash() != b.book.state_hash()
    c = Scenario()
    c.buy("y", 5, 100)
    assert a.book.state_hash() != c.book.state_hash()


def test_check_gives_the_refusal_apply_would_give_and_changes_nothing():
    s = Scenario()
    s.sell("a", 5, 100)
    before = s.book.state_hash()
    command = PlaceOrder(10, 2, "b", "buy", "limit", size=1, price=100, post_only=True)
    assert s.book.check(command).code == "post_only_would_take"
    assert s.book.check(CancelOrder(10, 9, "b")).code == "order_not_found"
    assert s.book.check(PlaceOrder(10, 2, "b", "buy", "limit", size=1, price=99)) is None
    assert s.book.state_hash() == before
    assert s.book.apply(command).reject == s.book.check(command)


def test_refusals_map_to_domain_errors():
    error = rejection_error(Scenario().cancel("a", 1).reject)
    assert isinstance(error, OrderNotFound) and error.code == "order_not_found"
    s = Scenario()
    s.sell("a", 5, 100)
    assert isinstance(rejection_error(s.buy("b", 1, 100, post_only=True).reject),
                      PostOnlyWouldTake)
