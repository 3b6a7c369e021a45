"""What the exchange service's integration tests share: markets of their own, funded users,
balances, and the exchange wired to the payments chart as `pacioli serve` wires it.

Each test trades in a market no other test uses (its own two assets), so books, clearing
and fee accounts start empty, and the session's other exchanges (the e2e app's) do not
hold its market's lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import Engine, text

from pacioli.ledger import Ledger, credit, debit
from pacioli.matching.market import Market
from pacioli.matching.service import Exchange, ExchangeAccounts
from pacioli.payments.chart import Chart, Purpose

SCOPE = "exchange"


def new_market(ledger: Ledger, *, maker_fee_bps: int = 10, taker_fee_bps: int = 20,
               base_scale: int = 8, quote_scale: int = 2, size_increment: int = 1000,
               min_size: int = 10000, tick: int = 1, tag: str | None = None) -> Market:
    """A market over two new assets (BASE like BTC, QUOTE like USD unless told otherwise)."""
    tag = tag or uuid.uuid4().hex[:8].upper()
    base, quote = f"B{tag}", f"Q{tag}"
    ledger.create_asset(base, base_scale, idempotency_key=f"asset:{base}")
    ledger.create_asset(quote, quote_scale, idempotency_key=f"asset:{quote}")
    return Market(
        symbol=f"{base}-{quote}", base=base, quote=quote, base_scale=base_scale,
        quote_scale=quote_scale, tick=tick, size_increment=size_increment, min_size=min_size,
        maker_fee_bps=maker_fee_bps, taker_fee_bps=taker_fee_bps,
    )


def chart_accounts(chart: Chart) -> ExchangeAccounts:
    """The exchange's accounts in the payments chart, as the API wires them."""
    return ExchangeAccounts(
        wallet=chart.wallet,
        fee=lambda asset: chart.platform(Purpose.FEE_REVENUE, asset, SCOPE),
        clearing=lambda asset: chart.platform(Purpose.EXCHANGE_CLEARING, asset, SCOPE),
        rounding=lambda asset: chart.platform(Purpose.ROUNDING, asset, SCOPE),
    )


@dataclass
class Venue:
    """An exchange on one market, with the chart it books in."""

    engine: Engine
    ledger: Ledger
    chart: Chart
    market: Market
    exchange: Exchange

    def fund(self, user: UUID, amount_minor: int, asset: str) -> None:
        """Credit a user's wallet from the platform's bank account (a deposit)."""
        self.ledger.transfer(
            [debit(self.chart.platform(Purpose.BANK_SETTLEMENT, asset), amount_minor),
             credit(self.chart.wallet(user, asset), amount_minor)],
            idempotency_key=uuid.uuid4().hex,
        )

    def wallet(self, user: UUID, asset: str) -> tuple[int, int]:
        """(balance, available) of the user's wallet."""
        account = self.ledger.get_account(self.chart.wallet(user, asset))
        return account.balance_minor, account.available_minor

    def fee_balance(self) -> int:
        return self.ledger.get_account(
            self.chart.platform(Purpose.FEE_REVENUE, self.market.quote, SCOPE)
        ).balance_minor

    def rounding_balance(self) -> int:
        return self.ledger.get_account(
            self.chart.platform(Purpose.ROUNDING, self.market.quote, SCOPE)
        ).balance_minor

    def clearing(self, asset: str):
        return self.ledger.get_account(
            self.chart.platform(Purpose.EXCHANGE_CLEARING, asset, SCOPE)
        )


def open_venue(engine: Engine, ledger: Ledger, market: Market | None = None,
               **exchange_options) -> Venue:
    chart = Chart(engine, ledger)
    market = market or new_market(ledger)
    exchange = Exchange(engine, ledger, chart_accounts(chart), [market], **exchange_options)
    exchange.start()
    return Venue(engine, ledger, chart, market, exchange)


def asset_sums(engine: Engine, assets: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Per asset, the sum over all its accounts of (debits - credits) posted and pending."""
    sums = {}
    with engine.connect() as connection:
        for asset in assets:
            row = connection.execute(text(
                "SELECT coalesce(sum(debits_posted - credits_posted), 0),"
                " coalesce(sum(debits_pending - credits_pending), 0)"
                " FROM accounts WHERE asset_code = :asset"), {"asset": asset}).one()
            sums[asset] = (int(row[0]), int(row[1]))
    return sums
