"""Restarting the exchange: the book is rebuilt from the command log with the same state
hash; writes a crash cut short are undone or finished, never lost and never doubled."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import select, text, update

from pacioli.ledger.domain.errors import InvariantBroken, LedgerUnavailable
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.matching import settlement, settlement_store
from pacioli.matching.holds import hold_spec
from pacioli.matching.market_locks import lock_key
from pacioli.matching.rebuild import hold_key
from pacioli.matching.service import Exchange, OrderRequest
from pacioli.matching.tables import (
    exchange_commands,
    exchange_fills,
    exchange_holds,
    exchange_orders,
    exchange_settlement_batches,
)
from tests.integration.exchange_streams import apply_step, steps, users_of
from tests.integration.exchange_support import chart_accounts, open_venue


def restart(venue, **options) -> Exchange:
    venue.exchange.close()
    exchange = Exchange(venue.engine, venue.ledger, chart_accounts(venue.chart),
                        [venue.market], settle_in_background=False, **options)
    exchange.start()
    venue.exchange = exchange
    return exchange


@pytest.fixture
def venue(engine, ledger):
    venue = open_venue(engine, ledger, settle_in_background=False)
    yield venue
    venue.exchange.close()


def funded(venue, seed, count=6):
    users = users_of(seed, count)
    for user in users:
        venue.fund(user, 10 * 10**8, venue.market.base)
        venue.fund(user, 100_000_000, venue.market.quote)
    return users


def test_a_restart_rebuilds_the_book_with_the_same_state_hash_and_carries_on(venue):
    users = funded(venue, seed=11)
    orders: dict = {}
    for step in steps(venue.market, users, seed=11, count=150):
        apply_step(venue.exchange, venue.market, step, orders)
    symbol = venue.market.symbol
    before = venue.exchange.read(symbol, lambda book: (book.state_hash(), book.sequence,
                                                       len(book.orders)))
    assert before[2] > 5

    exchange = restart(venue)

    after = exchange.read(symbol, lambda book: (book.state_hash(), book.sequence,
                                                len(book.orders)))
    assert after == before
    # It carries on where it stopped: the next order gets the next id, and settles.
    with venue.engine.connect() as connection:
        largest = max(connection.execute(select(exchange_orders.c.order_id).where(
            exchange_orders.c.market == symbol)).scalars())
    placed = exchange.place_order(users[0], OrderRequest(symbol, "buy", size=10_000,
                                                         price=4_000_000),
                                  idempotency_key=uuid.uuid4().hex).value
    assert placed.order_number == largest + 1
    assert exchange.settle_pending() >= 0


def test_a_retry_after_a_restart_replays_the_acknowledged_order(venue):
    ada = funded(venue, seed=12, count=1)[0]
    request = OrderRequest(venue.market.symbol, "buy", size=10_000, price=4_000_000)
    first = venue.exchange.place_order(ada, request, idempotency_key="k").value
    exchange = restart(venue)
    again = exchange.place_order(ada, request, idempotency_key="k")
    assert again.replayed and again.value.id == first.id
    assert len(exchange.list_orders(ada)) == 1


def test_a_hold_made_for_an_order_that_was_never_logged_is_voided_at_start(venue, engine):
    """The process died between the ledger hold and the log: nobody was told of the order."""
    ada = funded(venue, seed=13, count=1)[0]
    market = venue.market
    wallet = venue.chart.wallet(ada, market.quote)
    clearing = venue.exchange._market_accounts(market).clearing_quote
    order_id, hold_id = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as connection:
        connection.execute(exchange_orders.insert().values(
            id=order_id, market=market.symbol, order_id=999, user_id=ada, side="buy",
            type="limit", time_in_force="gtc", post_only=False, stp="dc", price=4_000_000,
            size=10_000, status="new", hold_asset=market.quote, idempotency_key="lost",
            request_hash="x", created_at=_now(), updated_at=_now()))
        connection.execute(exchange_holds.insert().values(
            id=hold_id, order=order_id, market=market.symbol, asset=market.quote, amount=500,
            wallet_account_id=wallet, clearing_account_id=clearing, created_seq=1,
            status="reserving"))
    venue.ledger.transfer_batch([hold_spec(
        wallet_account_id=wallet, clearing_account_id=clearing, asset=market.quote,
        amount=500, order=order_id, hold_id=hold_id)], idempotency_key=hold_key(hold_id),
        client_id="exchange")
    assert venue.wallet(ada, market.quote) == (100_000_000, 100_000_000 - 500)

    restart(venue)

    assert venue.wallet(ada, market.quote) == (100_000_000, 100_000_000)
    with engine.connect() as connection:
        assert connection.execute(select(exchange_orders.c.id).where(
            exchange_orders.c.id == order_id)).first() is None
        assert connection.execute(select(exchange_holds.c.id).where(
            exchange_holds.c.id == hold_id)).first() is None
    # The key is free again: the user may place that order now.
    request = OrderRequest(market.symbol, "buy", size=10_000, price=4_000_000)
    assert not venue.exchange.place_order(ada, request, idempotency_key="lost").replayed


def test_a_batch_planned_but_not_posted_is_posted_after_a_restart(venue, monkeypatch):
    ada, bob = funded(venue, seed=14, count=2)
    market = venue.market
    place = venue.exchange.place_order
    place(bob, OrderRequest(market.symbol, "sell", size=100_000, price=5_000_000),
          idempotency_key=uuid.uuid4().hex)
    place(ada, OrderRequest(market.symbol, "buy", size=100_000, price=5_000_000),
          idempotency_key=uuid.uuid4().hex)

    def crash(*_args, **_kwargs):
        raise SystemExit("killed before posting")

    monkeypatch.setattr(settlement.Settler, "_post", crash)
    with pytest.raises(SystemExit):
        venue.exchange.settle_pending()
    monkeypatch.undo()
    assert _batches(venue) == ["planned"]
    assert venue.wallet(ada, market.base) == (10 * 10**8, 10 * 10**8)

    restart(venue)  # resumes: posts and records the planned batch

    assert _batches(venue) == ["posted"]
    assert venue.wallet(ada, market.base)[0] == 10 * 10**8 + 100_000
    assert venue.wallet(bob, market.quote)[0] == 100_000_000 + 5_000 - 5  # 50.00 less 0.05


def test_a_batch_posted_but_not_recorded_is_not_posted_twice(venue, monkeypatch):
    ada, bob = funded(venue, seed=15, count=2)
    market = venue.market
    place = venue.exchange.place_order
    place(bob, OrderRequest(market.symbol, "sell", size=100_000, price=5_000_000),
          idempotency_key=uuid.uuid4().hex)
    place(ada, OrderRequest(market.symbol, "buy", size=100_000, price=5_000_000),
          idempotency_key=uuid.uuid4().hex)

    def crash(*_args, **_kwargs):
        raise SystemExit("killed after posting")

    monkeypatch.setattr(settlement_store, "record_posted", crash)
    with pytest.raises(SystemExit):
        venue.exchange.settle_pending()
    monkeypatch.undo()
    assert _batches(venue) == ["planned"]
    assert venue.wallet(ada, market.base)[0] == 10 * 10**8 + 100_000  # the ledger has it

    restart(venue)

    assert _batches(venue) == ["posted"]
    assert venue.wallet(ada, market.base)[0] == 10 * 10**8 + 100_000  # once, not twice
    assert venue.wallet(ada, market.quote)[0] == 100_000_000 - 5_000 - 10


def test_a_log_that_does_not_replay_to_its_state_hash_stops_the_start(venue, engine):
    ada = funded(venue, seed=16, count=1)[0]
    venue.exchange.place_order(ada, OrderRequest(venue.market.symbol, "buy", size=10_000,
                                                 price=4_000_000), idempotency_key="h")
    with engine.begin() as connection:
        connection.execute(update(exchange_commands).where(
            exchange_commands.c.market == venue.market.symbol).values(state_hash="0" * 64))
    venue.exchange.close()
    exchange = Exchange(engine, venue.ledger, chart_accounts(venue.chart), [venue.market],
                        settle_in_background=False)
    with pytest.raises(InvariantBroken):
        exchange.start()
    # It let go of the market: a corrected log starts.
    with engine.begin() as connection:
        connection.execute(update(exchange_commands).where(
            exchange_commands.c.market == venue.market.symbol).values(state_hash=None))
    venue.exchange = exchange
    exchange.start()


def test_one_market_runs_in_one_exchange_at_a_time(venue):
    from pacioli.matching.service_errors import ExchangeAlreadyRunning

    second = Exchange(venue.engine, venue.ledger, chart_accounts(venue.chart), [venue.market])
    with pytest.raises(ExchangeAlreadyRunning):
        second.start(lock_wait_s=0.2)


def test_a_restart_waits_for_a_dead_session_to_let_go_of_its_markets(venue):
    """A crashed process's session keeps the market's lock until PostgreSQL ends it; a
    restart in that moment waits for it instead of refusing to run the market."""
    venue.exchange.close()  # the running exchange lets go; a lingering session holds on
    lingering = venue.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    database, schema = lingering.execute(
        text("SELECT current_database(), current_schema()")).one()
    assert lingering.execute(text("SELECT pg_try_advisory_lock(:key)"), {
        "key": lock_key(database, schema, venue.market.symbol)}).scalar()
    ended = threading.Timer(0.3, lambda: (
        lingering.execute(text("SELECT pg_advisory_unlock_all()")), lingering.close()))
    restarted = Exchange(venue.engine, venue.ledger, chart_accounts(venue.chart),
                         [venue.market], settle_in_background=False)
    ended.start()
    try:
        restarted.start(lock_wait_s=10)
    finally:
        ended.join()
    venue.exchange = restarted
    assert restarted.read(venue.market.symbol, lambda book: book.sequence) >= 0


def _batches(venue) -> list[str]:
    with venue.engine.connect() as connection:
        return [row.status for row in connection.execute(
            select(exchange_settlement_batches.c.status)
            .where(exchange_settlement_batches.c.market == venue.market.symbol)
            .order_by(exchange_settlement_batches.c.number))]


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)



def _trade_many(venue, users, count=24):
    """Crossing orders, so that with small batches settlement takes several."""
    market = venue.market
    for index in range(count):
        side = "sell" if index % 2 == 0 else "buy"
        venue.exchange.place_order(
            users[index % len(users)],
            OrderRequest(market.symbol, side, size=100_000 * (1 + index % 3), price=5_000_000),
            idempotency_key=uuid.uuid4().hex)


def _assert_settled_once(venue, users, base_before):
    """Every batch posted, its trade transfer in the ledger once; base moved as the fills
    say; the clearing accounts hold nothing posted and exactly the open holds pending."""
    market = venue.market
    with venue.engine.connect() as connection:
        batches = list(connection.execute(select(exchange_settlement_batches).where(
            exchange_settlement_batches.c.market == market.symbol)))
        fills = list(connection.execute(select(exchange_fills).where(
            exchange_fills.c.market == market.symbol)))
        open_holds = list(connection.execute(select(exchange_holds).where(
            exchange_holds.c.market == market.symbol, exchange_holds.c.status == "open")))
    assert batches and all(b.status == "posted" for b in batches)
    for batch in batches:
        trades = venue.ledger.list_transfers(metadata={"batch_id": str(batch.id)})
        assert len(trades) == len(batch.plan["transfers"])
    base = dict(base_before)
    for fill in fills:
        buyer, seller = ((fill.taker_user_id, fill.maker_user_id) if fill.taker_side == "buy"
                         else (fill.maker_user_id, fill.taker_user_id))
        base[buyer] += fill.size
        base[seller] -= fill.size
    assert {u: venue.wallet(u, market.base)[0] for u in users} == base
    assert venue.fee_balance() == sum(f.taker_fee + f.maker_fee for f in fills)
    for asset in (market.base, market.quote):
        clearing = venue.clearing(asset)
        assert clearing.balance_minor == 0
        assert clearing.balances.credits_pending == sum(
            h.amount for h in open_holds if h.asset == asset)
    assert check_ledger(venue.engine).breaks == ()


def test_batches_queued_behind_a_failed_post_stay_planned_and_a_restart_posts_them(
    venue, monkeypatch
):
    monkeypatch.setattr(settlement, "ITEMS_MAX", 6)
    users = funded(venue, seed=17, count=4)
    base_before = {u: venue.wallet(u, venue.market.base)[0] for u in users}
    _trade_many(venue, users)
    post = settlement.Settler._post
    posts = []

    def fail_second(self, state, planned, **options):
        posts.append(planned.number)
        if len(posts) == 2:
            raise LedgerUnavailable("the ledger is busy")
        return post(self, state, planned, **options)

    monkeypatch.setattr(settlement.Settler, "_post", fail_second)
    with pytest.raises(LedgerUnavailable):
        venue.exchange.settle_pending()
    # The first batch is recorded; the second failed; those queued behind it were
    # planned and stored, but not posted.
    statuses = _batches(venue)
    assert statuses[0] == "posted" and len(statuses) >= 3
    assert set(statuses[1:]) == {"planned"}
    assert posts == [1, 2]
    monkeypatch.undo()
    monkeypatch.setattr(settlement, "ITEMS_MAX", 6)

    restart(venue)
    venue.exchange.settle_pending()

    assert len(_batches(venue)) > 3
    _assert_settled_once(venue, users, base_before)


def test_batches_posted_while_the_first_was_being_recorded_are_not_posted_twice(
    venue, monkeypatch
):
    monkeypatch.setattr(settlement, "ITEMS_MAX", 6)
    users = funded(venue, seed=18, count=4)
    base_before = {u: venue.wallet(u, venue.market.base)[0] for u in users}
    _trade_many(venue, users)
    post = settlement.Settler._post
    two_posted = threading.Event()
    posted = []

    def counting(self, state, planned, **options):
        transfers = post(self, state, planned, **options)  # sent, at least
        posted.append(planned.number)
        if len(posted) >= 2:
            two_posted.set()
        return transfers

    def crash(*_args, **_kwargs):
        assert two_posted.wait(10)  # the poster went on while the first was recorded
        raise SystemExit("killed before recording")

    monkeypatch.setattr(settlement.Settler, "_post", counting)
    monkeypatch.setattr(settlement_store, "record_posted", crash)
    with pytest.raises(SystemExit):
        venue.exchange.settle_pending()
    monkeypatch.undo()
    monkeypatch.setattr(settlement, "ITEMS_MAX", 6)
    assert posted[:2] == [1, 2]
    assert set(_batches(venue)) == {"planned"}  # posted in the ledger, recorded nowhere

    restart(venue)  # resumes: re-posts (the ledger replays) and records them in order
    venue.exchange.settle_pending()

    _assert_settled_once(venue, users, base_before)


def test_batches_planned_before_chosen_ids_are_posted_as_then_and_not_twice(
    venue, monkeypatch
):
    """Plans stored by the code before re-holds had chosen ids (no `chosen_ids`), posted
    in the ledger and not recorded when it stopped: the restart posts them as they were
    posted (the same request, so the ledger replays them) and records them once."""
    monkeypatch.setattr(settlement, "ITEMS_MAX", 6)
    users = funded(venue, seed=19, count=4)
    base_before = {u: venue.wallet(u, venue.market.base)[0] for u in users}
    _trade_many(venue, users)
    keep_ledger_ids = settlement.replace

    def old_plan(plan, **changes):  # plans as the code before stored them
        changes.pop("chosen_ids", None)
        return keep_ledger_ids(plan, **changes)

    def crash(*_args, **_kwargs):
        raise SystemExit("killed before recording")

    monkeypatch.setattr(settlement, "replace", old_plan)
    monkeypatch.setattr(settlement_store, "record_posted", crash)
    with pytest.raises(SystemExit):
        venue.exchange.settle_pending()
    monkeypatch.undo()
    monkeypatch.setattr(settlement, "ITEMS_MAX", 6)
    assert set(_batches(venue)) == {"planned"} and len(_batches(venue)) >= 2
    with venue.engine.connect() as connection:
        plans = [row.plan for row in connection.execute(
            select(exchange_settlement_batches.c.plan)
            .where(exchange_settlement_batches.c.market == venue.market.symbol))]
    assert not any(plan.get("chosen_ids") for plan in plans)

    restart(venue)  # posts them in order (the first replays) with the ledger's own ids
    venue.exchange.settle_pending()

    _assert_settled_once(venue, users, base_before)
