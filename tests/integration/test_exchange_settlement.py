"""Holds and settlement: an order reserves what it may spend; fills move base and quote
between buyer and seller with fees to the fee account; cancels and expiries release."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from pacioli.ledger.domain.errors import InsufficientFunds
from pacioli.matching.errors import PostOnlyWouldTake
from pacioli.matching.service import OrderRequest
from pacioli.matching.tables import exchange_holds, exchange_orders
from tests.integration.exchange_support import open_venue

BASE_UNIT = 10**8


@pytest.fixture
def venue(engine, ledger):
    venue = open_venue(engine, ledger, settle_in_background=False)
    yield venue
    venue.exchange.close()


def limit(venue, side, price, size, **fields) -> OrderRequest:
    return OrderRequest(venue.market.symbol, side, "limit", size=size, price=price, **fields)


def place(venue, user, request):
    return venue.exchange.place_order(user, request, idempotency_key=uuid.uuid4().hex).value


def test_a_buy_holds_its_quote_amount_and_taker_fee_and_nothing_moves_until_it_fills(venue):
    ada = uuid.uuid4()
    quote = venue.market.quote
    venue.fund(ada, 1_000_000, quote)  # 10,000.00

    order = place(venue, ada, limit(venue, "buy", 5_000_000, 10_000_000))  # 0.1 at 50,000.00

    assert order.status == "open" and order.open_size == 10_000_000
    assert venue.wallet(ada, quote) == (1_000_000, 1_000_000 - 500_000 - 1_000)
    venue.exchange.settle_pending()
    assert venue.wallet(ada, quote) == (1_000_000, 1_000_000 - 500_000 - 1_000)


def test_a_trade_moves_base_and_quote_and_both_fees_land_in_the_fee_account(venue):
    ada, bob = uuid.uuid4(), uuid.uuid4()
    base, quote = venue.market.base, venue.market.quote
    venue.fund(ada, 1_000_000, quote)
    venue.fund(bob, 20_000_000, base)
    fees_before = venue.fee_balance()

    maker = place(venue, bob, limit(venue, "sell", 5_000_000, 20_000_000))  # 0.2 BTC
    taker = place(venue, ada, limit(venue, "buy", 5_000_000, 5_000_000))  # takes 0.05
    assert taker.status == "done" and taker.done_reason == "filled"
    venue.exchange.settle_pending()

    quote_amount = 250_000  # 0.05 at 50,000.00 = 2,500.00
    taker_fee, maker_fee = 500, 250  # 20 and 10 bps
    assert venue.wallet(ada, quote) == (1_000_000 - quote_amount - taker_fee,) * 2
    assert venue.wallet(ada, base) == (5_000_000, 5_000_000)
    assert venue.wallet(bob, quote) == (quote_amount - maker_fee,) * 2
    # Bob's sell still holds the 0.15 it may sell.
    assert venue.wallet(bob, base) == (15_000_000, 0)
    assert venue.fee_balance() - fees_before == taker_fee + maker_fee
    maker = venue.exchange.get_order(bob, maker.id)
    assert (maker.open_size, maker.filled_size, maker.fee) == (15_000_000, 5_000_000, maker_fee)
    for asset in (base, quote):
        clearing = venue.clearing(asset)
        assert clearing.balance_minor == 0
    assert venue.clearing(base).balances.credits_pending == 15_000_000


def test_a_cancel_releases_the_rest_of_the_hold(venue):
    ada = uuid.uuid4()
    quote = venue.market.quote
    venue.fund(ada, 1_000_000, quote)
    order = place(venue, ada, limit(venue, "buy", 4_000_000, 10_000_000))

    cancelled = venue.exchange.cancel_order(ada, order.id, idempotency_key="c1").value
    assert cancelled.status == "done" and cancelled.done_reason == "cancelled"
    venue.exchange.settle_pending()

    assert venue.wallet(ada, quote) == (1_000_000, 1_000_000)
    assert venue.clearing(quote).balances.credits_pending == 0


def test_price_improvement_releases_what_the_buy_did_not_spend(venue):
    ada, bob = uuid.uuid4(), uuid.uuid4()
    base, quote = venue.market.base, venue.market.quote
    venue.fund(ada, 10_000_000, quote)
    venue.fund(bob, 10_000_000, base)
    place(venue, bob, limit(venue, "sell", 4_000_000, 5_000_000))  # 0.05 at 40,000.00
    # A buy of 0.1 at 50,000.00 takes the 0.05 at 40,000.00 and rests 0.05 at 50,000.00.
    order = place(venue, ada, limit(venue, "buy", 5_000_000, 10_000_000))
    assert order.status == "open" and order.filled_size == 5_000_000
    venue.exchange.settle_pending()

    spent = 200_000 + 400  # quote amount + taker fee
    still_held = 250_000 + 500  # the open 0.05 at 50,000.00 + its largest taker fee
    assert venue.wallet(ada, quote) == (10_000_000 - spent, 10_000_000 - spent - still_held)


def test_an_order_the_wallet_cannot_cover_is_refused_and_leaves_no_trace(venue, engine):
    ada = uuid.uuid4()
    quote = venue.market.quote
    venue.fund(ada, 100_000, quote)
    with pytest.raises(InsufficientFunds):
        place(venue, ada, limit(venue, "buy", 5_000_000, 10_000_000))
    assert venue.wallet(ada, quote) == (100_000, 100_000)
    assert venue.exchange.list_orders(ada) == []
    with engine.connect() as connection:
        assert connection.execute(
            exchange_orders.select().where(exchange_orders.c.user_id == ada)).first() is None
        assert connection.execute(exchange_holds.select().where(
            exchange_holds.c.market == venue.market.symbol)).first() is None


def test_a_post_only_order_that_would_cross_is_refused_before_anything_is_held(venue):
    ada, bob = uuid.uuid4(), uuid.uuid4()
    venue.fund(ada, 10_000_000, venue.market.quote)
    venue.fund(bob, 10_000_000, venue.market.base)
    place(venue, bob, limit(venue, "sell", 4_000_000, 5_000_000))
    with pytest.raises(PostOnlyWouldTake):
        place(venue, ada, limit(venue, "buy", 4_000_000, 5_000_000, post_only=True))
    assert venue.wallet(ada, venue.market.quote) == (10_000_000, 10_000_000)


def test_an_expired_gtt_order_releases_its_hold(engine, ledger):
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    venue = open_venue(engine, ledger, settle_in_background=False, clock=lambda: now[0])
    try:
        ada = uuid.uuid4()
        quote = venue.market.quote
        venue.fund(ada, 1_000_000, quote)
        order = place(venue, ada, limit(venue, "buy", 4_000_000, 10_000_000,
                                        time_in_force="gtt",
                                        expires_at=now[0] + timedelta(minutes=5)))
        assert venue.exchange.expire_due() == 0
        now[0] += timedelta(minutes=5)
        assert venue.exchange.expire_due() == 1
        venue.exchange.settle_pending()
        expired = venue.exchange.get_order(ada, order.id)
        assert expired.status == "done" and expired.done_reason == "expired"
        assert venue.wallet(ada, quote) == (1_000_000, 1_000_000)
    finally:
        venue.exchange.close()


def test_many_orders_placed_at_once_are_held_matched_and_answered_in_order(venue):
    users = [uuid.uuid4() for _ in range(4)]
    base, quote = venue.market.base, venue.market.quote
    for user in users[:3]:
        venue.fund(user, 10_000_000, quote)
        venue.fund(user, 10_000_000, base)
    poor = users[3]
    venue.fund(poor, 100, quote)
    entries = [
        (users[0], limit(venue, "sell", 5_000_000, 1_000_000), "a"),
        (users[1], limit(venue, "buy", 5_000_000, 400_000), "b"),
        (poor, limit(venue, "buy", 5_000_000, 400_000), "c"),  # cannot cover the hold
        (users[2], limit(venue, "buy", 5_000_001, 400_000), "d"),
        (users[2], limit(venue, "buy", 5_000_000, 400_000, post_only=True), "e"),
        (users[1], limit(venue, "buy", 5_000_000, 400_000), "b"),  # the same key again
        (users[1], limit(venue, "buy", 5_000_005, 123), "f"),  # off the size grid
    ]
    answers = venue.exchange.place_orders(venue.market.symbol, entries)

    assert [type(a).__name__ for a in answers] == [
        "Written", "Written", "InsufficientFunds", "Written", "InvalidOrder", "Written",
        "InvalidSize"]
    sell, buy, _, second_buy, _, again, _ = answers
    assert sell.value.status == "open" and sell.value.filled_size == 800_000
    assert buy.value.done_reason == "filled" and second_buy.value.done_reason == "filled"
    assert again.replayed and again.value.id == buy.value.id
    venue.exchange.settle_pending()
    assert venue.wallet(poor, quote) == (100, 100)
    assert venue.wallet(users[1], base)[0] == 10_000_000 + 400_000
    assert venue.wallet(users[0], base) == (10_000_000 - 800_000, 10_000_000 - 1_000_000)
    # Fills are in the order placed, at the maker's price.
    assert venue.wallet(users[2], quote)[0] == 10_000_000 - 20_000 - 40


def test_a_market_buy_by_size_holds_what_the_book_costs_and_pays_exactly_that(venue):
    ada, bob = uuid.uuid4(), uuid.uuid4()
    base, quote = venue.market.base, venue.market.quote
    venue.fund(ada, 10_000_000, quote)
    venue.fund(bob, 10_000_000, base)
    place(venue, bob, limit(venue, "sell", 4_000_000, 30_000))
    place(venue, bob, limit(venue, "sell", 4_100_000, 100_000))
    order = place(venue, ada, OrderRequest(venue.market.symbol, "buy", "market", size=50_000))
    assert order.done_reason == "filled"
    venue.exchange.settle_pending()
    first, second = 1_200, 820  # 0.0003 at 40,000.00 and 0.0002 at 41,000.00
    fees = venue.market.fee(first, 20) + venue.market.fee(second, 20)
    assert venue.wallet(ada, quote) == (10_000_000 - first - second - fees,) * 2
    assert venue.wallet(ada, base) == (50_000, 50_000)


def test_self_trade_prevention_releases_what_the_cancelled_part_held(venue):
    ada = uuid.uuid4()
    base, quote = venue.market.base, venue.market.quote
    venue.fund(ada, 10_000_000, quote)
    venue.fund(ada, 10_000_000, base)
    resting = place(venue, ada, limit(venue, "sell", 4_000_000, 30_000))
    # Decrement and cancel: the smaller (her resting sell) is cancelled, the buy decremented.
    buy = place(venue, ada, limit(venue, "buy", 4_000_000, 50_000))
    venue.exchange.settle_pending()
    assert venue.exchange.get_order(ada, resting.id).done_reason == "self_trade"
    assert buy.status == "open" and buy.open_size == 20_000
    assert venue.wallet(ada, base) == (10_000_000, 10_000_000)
    held = venue.market.quote_amount(4_000_000, 20_000) + 2  # + the largest taker fee
    assert venue.wallet(ada, quote) == (10_000_000, 10_000_000 - held)


def test_a_sell_amended_up_holds_the_extra_base_and_the_order_filled_event_follows(
    venue, engine,
):
    from sqlalchemy import select

    from pacioli.ledger.storage.tables import outbox

    ada, bob = uuid.uuid4(), uuid.uuid4()
    base, quote = venue.market.base, venue.market.quote
    venue.fund(bob, 100_000, base)
    venue.fund(ada, 10_000_000, quote)
    order = place(venue, bob, limit(venue, "sell", 4_000_000, 50_000))
    with pytest.raises(InsufficientFunds):
        venue.exchange.amend_order(bob, order.id, size=200_000, idempotency_key="too-much")
    venue.exchange.amend_order(bob, order.id, size=80_000, idempotency_key="more")
    assert venue.wallet(bob, base) == (100_000, 20_000)
    place(venue, ada, limit(venue, "buy", 4_000_000, 80_000))
    venue.exchange.settle_pending()
    assert venue.wallet(bob, base) == (20_000, 20_000)
    with engine.connect() as connection:
        (event,) = connection.execute(select(outbox.c.payload).where(
            outbox.c.event_type == "order.filled",
            outbox.c.aggregate_id == str(order.id))).scalars()
    assert event["user_id"] == str(bob) and event["filled_size"] == "0.00080000"
    assert event["price"] == "40000.00" and event["side"] == "sell"
