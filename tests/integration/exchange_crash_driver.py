"""The exchange as a process of its own, fed a seeded request stream, for the crash test.

    python -m tests.integration.exchange_crash_driver DATABASE_URL TAG SEED USERS COUNT

Runs an `Exchange` (settling in the background, as `pacioli serve` does) on the market
of assets B<TAG>/Q<TAG>, applies the stream of `exchange_streams.steps` and prints
`ack <step> <outcome>` once each request is answered — an acknowledgement, as an HTTP
response would be — then `done`, and waits to be killed. The clock is the step's
number in seconds after a fixed instant, so a second run of the same steps elsewhere
builds the same book, state hash included.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

from pacioli.ledger import Ledger
from pacioli.ledger.storage.database import make_engine
from pacioli.matching.market import Market
from pacioli.matching.service import Exchange
from pacioli.payments.chart import Chart
from tests.integration.exchange_streams import apply_step, steps, users_of
from tests.integration.exchange_support import chart_accounts

START = datetime(2031, 1, 1, tzinfo=UTC)


class StepClock:
    """The time of the step being applied: START + its number in seconds."""

    def __init__(self) -> None:
        self.step = 0

    def __call__(self) -> datetime:
        return START + timedelta(seconds=self.step)


def market_of(tag: str) -> Market:
    """The stream's market (its assets are created by whoever sets the database up)."""
    base, quote = f"B{tag}", f"Q{tag}"
    return Market(symbol=f"{base}-{quote}", base=base, quote=quote, base_scale=8,
                  quote_scale=2, tick=1, size_increment=1000, min_size=10000)


def run(exchange: Exchange, market: Market, clock: StepClock, *, seed: int, users: int,
        count: int, report=None) -> dict[int, str]:
    """Apply the first `count` steps; each step's outcome, reported as it is answered."""
    outcomes: dict[int, str] = {}
    orders: dict = {}
    for step in steps(market, users_of(seed, users), seed, count):
        clock.step = step.number
        outcomes[step.number] = apply_step(exchange, market, step, orders)
        if report is not None:
            report(step.number, outcomes[step.number])
    return outcomes


def main(url: str, tag: str, seed: str, users: str, count: str) -> None:
    engine = make_engine(url, pool_size=10)
    ledger = Ledger(engine)
    market = market_of(tag)
    clock = StepClock()
    exchange = Exchange(engine, ledger, chart_accounts(Chart(engine, ledger)), [market],
                        clock=clock)
    exchange.start()
    print("started", flush=True)

    def report(number: int, outcome: str) -> None:
        print(f"ack {number} {outcome}", flush=True)

    run(exchange, market, clock, seed=int(seed), users=int(users), count=int(count),
        report=report)
    print("done", flush=True)
    time.sleep(3600)  # the test kills us


if __name__ == "__main__":
    main(*sys.argv[1:])
