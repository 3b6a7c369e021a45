"""`pacioli demo`, the exchange part: a market maker's book on BTC-USD, and some trades.

Cleo, a market maker, deposits BTC and USD and quotes five bids and five asks; Ada sells
BTC into the best bid and leaves a buy order resting below the market; Bruno converts
USD into BTC ("buy with USD"). It calls what the API calls — `Exchange.place_order`, the
convert's market order — every write under a fixed `demo:` key, so running it again
replays instead of trading twice (the book is rebuilt from its command log). It runs
after the payments demo, whose users Ada and Bruno are. The exchange runs in one process
per market: while `pacioli serve` runs it, this part is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import Engine

from pacioli.cli.demo_payments import DEMO_PASSWORD, PRINCIPAL, DemoBalance
from pacioli.ledger import Ledger, credit, debit, format_minor
from pacioli.matching import BTC_USD, PriceLevel
from pacioli.matching.convert import convert_order, convert_outcome, route
from pacioli.matching.service import Exchange, ExchangeAccounts
from pacioli.matching.service_errors import ExchangeAlreadyRunning
from pacioli.matching.views import OrderRequest, OrderView
from pacioli.payments import users
from pacioli.payments.chart import Chart, Purpose
from pacioli.payments.identity_idempotency import WriteKey

SCOPE = "exchange"
SETTLE_WAIT_S = 5.0
SAT = 10**8  # satoshis per BTC
# Cleo's ladder: (size in satoshis, price in cents per BTC), best first.
ASKS = ((5_000_000, 60_010_00), (10_000_000, 60_025_00), (10_000_000, 60_050_00),
        (20_000_000, 60_100_00), (25_000_000, 60_250_00))
BIDS = ((5_000_000, 59_990_00), (10_000_000, 59_975_00), (10_000_000, 59_950_00),
        (20_000_000, 59_900_00), (25_000_000, 59_750_00))
DEPOSITS = (("cleo", "BTC", 2 * SAT), ("cleo", "USD", 100_000_00), ("ada", "BTC", 10_000_000),
            ("ada", "USD", 1_000_00), ("bruno", "USD", 500_00))


@dataclass(frozen=True, slots=True)
class ExchangeDemoResult:
    story: tuple[str, ...]
    balances: tuple[DemoBalance, ...]
    bids: tuple[PriceLevel, ...]
    asks: tuple[PriceLevel, ...]


def run_exchange_demo(engine: Engine, ledger: Ledger) -> ExchangeDemoResult:
    chart = Chart(engine, ledger)
    exchange = Exchange(engine, ledger, _accounts(chart), [BTC_USD], settle_wait_s=SETTLE_WAIT_S)
    try:
        exchange.start()
    except ExchangeAlreadyRunning:
        return ExchangeDemoResult(
            ("The exchange runs in another process (pacioli serve): its demo was skipped;"
             " stop the server and run the demo again to add it.",), (), (), ())
    try:
        return _trade(engine, ledger, chart, exchange)
    finally:
        exchange.settle_pending()  # a second run must find nothing left to settle
        exchange.close()


def _trade(engine: Engine, ledger: Ledger, chart: Chart, exchange: Exchange) -> ExchangeDemoResult:
    people = {
        "ada": _user(engine, "ada", "ada@example.com", "Ada Lovelace"),
        "bruno": _user(engine, "bruno", "bruno@example.com", "Bruno Pacioli"),
        "cleo": _user(engine, "cleo", "cleo@example.com", "Cleo Market Maker"),
    }
    for name, asset, amount in DEPOSITS:
        ledger.transfer(
            [debit(chart.platform(Purpose.BANK_SETTLEMENT, asset), amount),
             credit(chart.wallet(people[name], asset), amount)],
            metadata={"demo": f"exchange:deposit:{name}:{asset}"},
            idempotency_key=f"demo:exchange:deposit:{name}:{asset}",
        )
    for side, ladder in (("sell", ASKS), ("buy", BIDS)):
        for rung, (size, price) in enumerate(ladder, start=1):
            _place(exchange, people["cleo"], f"cleo:{side}:{rung}",
                   OrderRequest(BTC_USD.symbol, side, "limit", size=size, price=price))
    story = ["Cleo (a market maker) deposited 2 BTC and 100,000.00 USD and quotes five"
             " bids (59,750.00-59,990.00) and five asks (60,010.00-60,250.00) on BTC-USD."]

    sold = _place(exchange, people["ada"], "ada:sell",
                  OrderRequest(BTC_USD.symbol, "sell", "limit", size=2_000_000, price=59_975_00))
    resting = _place(exchange, people["ada"], "ada:bid",
                     OrderRequest(BTC_USD.symbol, "buy", "limit", size=1_000_000,
                                  price=59_000_00))
    story.append(
        f"Ada sold {_btc(sold.filled_size)} BTC with a limit at 59,975.00: it took Cleo's best"
        f" bid at {_usd(sold.filled_quote * SAT // sold.filled_size)} (fee {_usd(sold.fee)}"
        f" USD); her buy of {_btc(resting.size)} BTC at 59,000.00 rests, its"
        " USD held in the ledger.")

    convert = route([BTC_USD], "USD", "BTC")
    amount = 250_00
    bought = _place(exchange, people["bruno"], "bruno:convert", convert_order(convert, amount))
    spent, received = convert_outcome(convert, amount, filled_size=bought.filled_size,
                                      filled_quote=bought.filled_quote, fee=bought.fee)
    story.append(f"Bruno converted {_usd(amount)} USD into {_btc(received)} BTC (a market"
                 f" buy by funds: {_usd(spent)} spent, fee {_usd(bought.fee)} included).")
    story.append(f"Log in as cleo@example.com (password {DEMO_PASSWORD!r}) to trade; the book"
                 " is public at /v1/exchange/markets/BTC-USD/l2.")

    book = exchange.read(BTC_USD.symbol, lambda b: b.l2(5))
    balances = [
        DemoBalance(name.capitalize(), asset, _available(ledger, chart.wallet(user, asset)),
                    BTC_USD.base_scale if asset == "BTC" else BTC_USD.quote_scale)
        for name, user in people.items() for asset in ("BTC", "USD")
    ]
    fees = chart.platform(Purpose.FEE_REVENUE, "USD", SCOPE)
    balances.append(DemoBalance("Exchange fees", "USD", ledger.get_account(fees).balance_minor,
                                BTC_USD.quote_scale))
    return ExchangeDemoResult(tuple(story), tuple(balances), tuple(book.bids), tuple(book.asks))


def _accounts(chart: Chart) -> ExchangeAccounts:
    return ExchangeAccounts(
        wallet=chart.wallet,
        fee=lambda asset: chart.platform(Purpose.FEE_REVENUE, asset, SCOPE),
        clearing=lambda asset: chart.platform(Purpose.EXCHANGE_CLEARING, asset, SCOPE),
        rounding=lambda asset: chart.platform(Purpose.ROUNDING, asset, SCOPE),
    )


def _user(engine: Engine, name: str, email: str, display_name: str) -> UUID:
    """The demo user (signed up by the payments demo, or here), by the same write key."""
    return users.sign_up(
        engine, email=email, phone=None, password=DEMO_PASSWORD, display_name=display_name,
        write_key=WriteKey(PRINCIPAL, f"demo:user:{name}"),
    ).value.id


def _place(exchange: Exchange, user_id: UUID, name: str, request: OrderRequest) -> OrderView:
    return exchange.place_order(
        user_id, request, idempotency_key=f"demo:exchange:{name}"
    ).value


def _available(ledger: Ledger, account_id: UUID) -> int:
    return ledger.get_account(account_id).available_minor


def _btc(amount_minor: int) -> str:
    return format_minor(amount_minor, BTC_USD.base_scale)


def _usd(amount_minor: int) -> str:
    return f"{amount_minor // 100:,}.{amount_minor % 100:02d}"


def print_exchange_demo(result: ExchangeDemoResult) -> None:
    from rich.table import Table

    from pacioli.cli.common import console

    console.print("Exchange demo:")
    for line in result.story:
        console.print(f"  {line}")
    if not result.balances:
        return
    book = Table(title="BTC-USD book (5 levels)", title_justify="left")
    for column in ("Bid size", "Bid", "Ask", "Ask size"):
        book.add_column(column, justify="right")
    for index in range(max(len(result.bids), len(result.asks))):
        bid = result.bids[index] if index < len(result.bids) else None
        ask = result.asks[index] if index < len(result.asks) else None
        book.add_row(
            _btc(bid.size) if bid else "", _usd(bid.price) if bid else "",
            _usd(ask.price) if ask else "", _btc(ask.size) if ask else "",
        )
    console.print(book)
    table = Table(title="Exchange wallets (available)", title_justify="left")
    table.add_column("Owner")
    table.add_column("Asset")
    table.add_column("Available", justify="right")
    for balance in result.balances:
        table.add_row(balance.owner, balance.currency,
                      format_minor(balance.available_minor, balance.scale))
    console.print(table)
