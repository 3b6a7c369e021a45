"""A long mixed stream, settled: every asset is conserved except for fees, which all land
in the fee account; every user's balance is what their fills say; available is balance
less their open holds; the clearing accounts are empty; the ledger's checks all pass."""

from __future__ import annotations

from collections import defaultdict

import pytest
from sqlalchemy import func, select

from pacioli.ledger import Ledger
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.ledger.storage.database import make_engine
from pacioli.matching import settlement
from pacioli.matching.tables import exchange_fills, exchange_holds, exchange_settlement_batches
from tests.integration.exchange_streams import apply_step, steps, users_of
from tests.integration.exchange_support import asset_sums, open_venue

START_BASE = 10 * 10**8  # 10 whole base units each
START_QUOTE = 100_000_000  # 1,000,000.00 each


@pytest.fixture
def fresh(fresh_database_url):
    engine = make_engine(fresh_database_url, pool_size=10)
    ledger = Ledger(engine)
    yield engine, ledger
    ledger.close()
    engine.dispose()


@pytest.fixture(params=["default", "small_batches"])
def batch_sizes(request, monkeypatch):
    """Default sizes, or batches of a few items and windows of a few commands: many batches
    queued behind the one in the ledger, and windows read while batches are in flight."""
    applied = []
    if request.param == "small_batches":
        monkeypatch.setattr(settlement, "ITEMS_MAX", 12)
        monkeypatch.setattr(settlement, "WINDOW_COMMANDS_MAX", 9)
        apply_plan = settlement.apply_plan

        def counted(*args):
            applied.append(args[2])
            apply_plan(*args)

        monkeypatch.setattr(settlement, "apply_plan", counted)
    return request.param, applied


def test_a_settled_stream_conserves_every_asset_and_passes_the_ledger_checks(fresh, batch_sizes):
    engine, ledger = fresh
    venue = open_venue(engine, ledger, settle_in_background=False)
    market = venue.market
    users = users_of(7, 8)
    for user in users:
        venue.fund(user, START_BASE, market.base)
        venue.fund(user, START_QUOTE, market.quote)
    before = asset_sums(engine, [market.base, market.quote])

    orders: dict = {}
    outcomes = defaultdict(int)
    for step in steps(market, users, seed=7, count=400):
        outcomes[apply_step(venue.exchange, market, step, orders)] += 1
        if step.number % 97 == 0:
            venue.exchange.settle_pending()  # settle now and then, as the thread would
    venue.exchange.settle_pending()
    assert outcomes["ok"] > 300, outcomes

    with engine.connect() as connection:
        fills = list(connection.execute(
            select(exchange_fills).where(exchange_fills.c.market == market.symbol)))
        open_holds = list(connection.execute(select(exchange_holds).where(
            exchange_holds.c.market == market.symbol, exchange_holds.c.status == "open")))
    assert len(fills) > 50 and len({f.command_seq for f in fills}) > 30
    with engine.connect() as connection:
        batches = connection.execute(select(func.count()).select_from(
            exchange_settlement_batches).where(
            exchange_settlement_batches.c.market == market.symbol,
            exchange_settlement_batches.c.status == "posted")).scalar_one()
    sizes, applied = batch_sizes
    if sizes == "small_batches":
        assert batches > 20
        assert applied  # windows were read with batches planned and not yet recorded

    # What the fills say each user gained, and what the fee account earned.
    expected = {user: {market.base: START_BASE, market.quote: START_QUOTE} for user in users}
    fees = 0
    for fill in fills:
        buyer, seller = ((fill.taker_user_id, fill.maker_user_id) if fill.taker_side == "buy"
                         else (fill.maker_user_id, fill.taker_user_id))
        buyer_fee, seller_fee = ((fill.taker_fee, fill.maker_fee) if fill.taker_side == "buy"
                                 else (fill.maker_fee, fill.taker_fee))
        expected[buyer][market.base] += fill.size
        expected[buyer][market.quote] -= fill.quote_amount + buyer_fee
        expected[seller][market.base] -= fill.size
        expected[seller][market.quote] += fill.quote_amount - seller_fee
        fees += buyer_fee + seller_fee
    rounding = -venue.rounding_balance()  # what the platform paid beyond buyers' holds
    assert rounding == sum(f.buyer_rounding for f in fills)
    assert 0 <= rounding < 2 * len(fills)
    held = defaultdict(int)
    for hold in open_holds:
        held[(hold.wallet_account_id, hold.asset)] += hold.amount

    wallets_total = {market.base: 0, market.quote: 0}
    for user in users:
        for asset in (market.base, market.quote):
            balance, available = venue.wallet(user, asset)
            wallets_total[asset] += balance
            assert available == balance - held[(venue.chart.wallet(user, asset), asset)]
        assert venue.wallet(user, market.base)[0] == expected[user][market.base]
        # A buyer pays its fills' quote amounts and fees, less any rounding beyond its hold.
        assert venue.wallet(user, market.quote)[0] >= expected[user][market.quote]
    quote_paid = sum(expected[u][market.quote] for u in users)
    # Buyers were charged at most their holds; the rounding account paid the rest.
    assert wallets_total[market.quote] == quote_paid + rounding
    assert wallets_total[market.base] == len(users) * START_BASE
    assert wallets_total[market.quote] + fees - rounding == len(users) * START_QUOTE
    assert venue.fee_balance() == fees
    for asset in (market.base, market.quote):
        clearing = venue.clearing(asset)
        assert clearing.balance_minor == 0
        assert clearing.balances.credits_pending == sum(
            h.amount for h in open_holds if h.asset == asset)
    assert asset_sums(engine, [market.base, market.quote]) == before
    report = check_ledger(engine)
    assert report.breaks == (), report.breaks
    venue.exchange.close()
