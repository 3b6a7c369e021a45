"""The crash test: the exchange in a real process, killed with SIGKILL mid-stream.

After a restart, the rebuilt book (its state hash and sequence) and every balance must be
exactly those of an uninterrupted run, in another database, of the same acknowledged
requests — plus the one request in flight at the kill if, and only if, its command made
it into the log (it was durable; the process just died before answering). Nothing
acknowledged is lost, nothing is posted twice, and the ledger's checks pass.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from pacioli.ledger import Ledger
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.ledger.storage.database import make_engine
from pacioli.matching.service import Exchange
from pacioli.matching.tables import exchange_commands, exchange_orders
from pacioli.payments.chart import Chart
from tests.integration.exchange_crash_driver import StepClock, market_of, run
from tests.integration.exchange_streams import users_of
from tests.integration.exchange_support import Venue, chart_accounts
from tests.integration.worker_harness import REPOSITORY_ROOT, wait_until

SEED, USERS, COUNT = 21, 6, 400
FUNDS_BASE, FUNDS_QUOTE = 10 * 10**8, 100_000_000  # far more than the stream spends


def set_up(url: str, tag: str):
    """Assets, users and their funds, identical in every database given the same tag."""
    engine = make_engine(url, pool_size=10)
    ledger = Ledger(engine)
    market = market_of(tag)
    ledger.create_asset(market.base, 8, idempotency_key=f"asset:{market.base}")
    ledger.create_asset(market.quote, 2, idempotency_key=f"asset:{market.quote}")
    chart = Chart(engine, ledger)
    venue = Venue(engine, ledger, chart, market, exchange=None)  # type: ignore[arg-type]
    for user in users_of(SEED, USERS):
        venue.fund(user, FUNDS_BASE, market.base)
        venue.fund(user, FUNDS_QUOTE, market.quote)
    return venue


def settled_state(venue: Venue, exchange: Exchange) -> dict:
    """The book and every balance the exchange touches, once everything is settled."""
    exchange.settle_pending()
    market = venue.market
    book = exchange.read(market.symbol, lambda b: (b.state_hash(), b.sequence, len(b.orders)))
    wallets = {(user, asset): venue.wallet(user, asset)
               for user in users_of(SEED, USERS) for asset in (market.base, market.quote)}
    with venue.engine.connect() as connection:
        orders = sorted(connection.execute(
            select(exchange_orders.c.order_id, exchange_orders.c.status,
                   exchange_orders.c.done_reason, exchange_orders.c.filled_size,
                   exchange_orders.c.fee).where(exchange_orders.c.market == market.symbol)))
    return {"book": book, "wallets": wallets, "fees": venue.fee_balance(),
            "rounding": venue.rounding_balance(), "orders": orders,
            "clearing": [venue.clearing(a).balance_minor for a in (market.base, market.quote)]}


def logged_steps(venue: Venue) -> set[int]:
    with venue.engine.connect() as connection:
        keys = connection.execute(select(exchange_commands.c.idempotency_key).where(
            exchange_commands.c.market == venue.market.symbol,
            exchange_commands.c.idempotency_key.isnot(None))).scalars()
        return {int(key.split(":")[1]) for key in keys}


@pytest.mark.parametrize("kill_after", [35, 160])
def test_a_killed_exchange_restarts_to_the_book_and_balances_of_an_uninterrupted_run(
    fresh_database_url, schema_factory, tmp_path: Path, kill_after: int,
):
    tag = uuid.uuid4().hex[:8].upper()
    crashed = set_up(fresh_database_url, tag)
    log_path = tmp_path / "driver.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPOSITORY_ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.exchange_crash_driver",
             fresh_database_url, tag, str(SEED), str(USERS), str(COUNT)],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPOSITORY_ROOT, env=env,
        )
    try:
        wait_until(lambda: f"ack {kill_after} " in log_path.read_text(errors="replace"),
                   120, process=process, log_path=log_path)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    acked = {int(n): outcome for _, n, outcome in (
        line.split() for line in log_path.read_text().splitlines() if line.startswith("ack "))}
    last_acked = max(acked)
    assert last_acked >= kill_after and "done" not in log_path.read_text()

    # Restart on the crashed database: rebuild, undo intents, finish planned batches.
    exchange = Exchange(crashed.engine, crashed.ledger, chart_accounts(crashed.chart),
                        [crashed.market], clock=StepClock(), settle_in_background=False)
    exchange.start()
    logged = logged_steps(crashed)
    acknowledged = {n for n, outcome in acked.items() if outcome == "ok"}
    assert acknowledged <= logged, "every acknowledged request is in the log"
    assert logged <= set(range(last_acked + 2)), "nothing beyond the request in flight"
    through = last_acked + 1 if last_acked + 1 in logged else last_acked
    after_restart = settled_state(crashed, exchange)
    exchange.close()
    assert check_ledger(crashed.engine).breaks == ()

    # The same requests, uninterrupted, in a database of their own.
    reference_url = schema_factory.create()
    reference = set_up(reference_url, tag)
    clock = StepClock()
    uninterrupted = Exchange(reference.engine, reference.ledger,
                             chart_accounts(reference.chart), [reference.market], clock=clock,
                             settle_in_background=False)
    uninterrupted.start()
    outcomes = run(uninterrupted, reference.market, clock, seed=SEED, users=USERS,
                   count=through + 1)
    assert {n: outcomes[n] for n in acked} == acked, "the same answers"
    expected = settled_state(reference, uninterrupted)
    uninterrupted.close()

    assert after_restart["book"] == expected["book"]
    assert after_restart == expected
    assert after_restart["clearing"] == [0, 0]
    for venue in (crashed, reference):
        venue.ledger.close()
        venue.engine.dispose()
    schema_factory.drop(reference_url)
