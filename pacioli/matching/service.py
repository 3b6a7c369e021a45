"""The exchange service: order books whose every order is funded and settled in the ledger.

    exchange = Exchange(engine, ledger, accounts, markets=DEFAULT_MARKETS)
    exchange.start()        # rebuild every book from its log; start the settler thread
    exchange.place_order(user_id, OrderRequest("BTC-USD", "buy", price=..., size=...),
                         idempotency_key="...")
    exchange.close()

One process runs a market's book (`pacioli serve`): `start` takes a PostgreSQL advisory
lock per market and refuses to run a market another process runs. Commands of one
market run one at a time under its lock (sequencer.py draws the write path); reads
(orders, fills) come from the tables. Settlement runs behind, in batches (settlement.py).
docs/exchange.md ("Service") tells the whole story.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

from sqlalchemy import Engine

from pacioli.ledger import Ledger, Written
from pacioli.matching import persistence, rebuild
from pacioli.matching.book import OrderBook
from pacioli.matching.expiry import ExpiryClock
from pacioli.matching.feed import MarketFeed, Subscription
from pacioli.matching.market import DEFAULT_MARKETS, Market
from pacioli.matching.market_locks import LOCK_WAIT_S, MarketLocks
from pacioli.matching.orders_service import OrderCommands
from pacioli.matching.sequencer import MarketRuntime, Sequencer
from pacioli.matching.service_errors import (
    ExchangeNotRunning,
    ExchangeOrderNotFound,
    UnknownMarket,
)
from pacioli.matching.settlement import (
    EXCHANGE_CLIENT_ID,
    SettlementRun,
    Settler,
    settled_fills_per_second,
)
from pacioli.matching.settlement_records import MarketAccounts
from pacioli.matching.settlement_state import MarketSettlement
from pacioli.matching.views import FillView, OrderRequest, OrderView

__all__ = ["Exchange", "ExchangeAccounts", "FillView", "OrderRequest", "OrderView"]

log = logging.getLogger(__name__)
T = TypeVar("T")

SETTLER_IDLE_S = 0.5  # how long the settler sleeps when nothing is due (expiries included)


@dataclass(frozen=True, slots=True)
class ExchangeAccounts:
    """Where the exchange finds ledger accounts (matching/ must not import payments/).

    `wallet(user_id, asset)`: the user's wallet (no overdraft); `fee(asset)`: the fee
    revenue account; `clearing(asset)`: the account holds are made to and trades are paid
    from (it ends every batch at zero); `rounding(asset)`: pays what a buy's per-fill
    rounding takes beyond its hold (defaults to the fee account).
    """

    wallet: Callable[[UUID, str], UUID]
    fee: Callable[[str], UUID]
    clearing: Callable[[str], UUID]
    rounding: Callable[[str], UUID] | None = None


class Exchange:
    """Order books, funded by ledger holds and settled by ledger batches (module docstring).

    `settle_in_background`: a settler thread settles as fills are logged (a bench turns
    it off to build a backlog). `settle_wait_s`: how long a write waits for its own
    settlement before answering (0: answer once the command is logged, settled or not).
    """

    def __init__(
        self, engine: Engine, ledger: Ledger, accounts: ExchangeAccounts,
        markets: Sequence[Market] = DEFAULT_MARKETS, clock: Callable[[], datetime] | None = None,
        *, settle_in_background: bool = True, settle_wait_s: float = 0.0,
    ) -> None:
        self._engine = engine
        self._ledger = ledger
        self._accounts = accounts
        self._markets = {market.symbol: market for market in markets}
        self._clock = clock or (lambda: datetime.now(UTC))
        self._settle_in_background = settle_in_background
        self._settle_wait_s = settle_wait_s
        self._runtimes: dict[str, MarketRuntime] = {}
        self._settlements: dict[str, MarketSettlement] = {}
        self._settler: Settler | None = None
        self._locks = MarketLocks(engine)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sequencer = Sequencer(engine, ledger, client_id=EXCHANGE_CLIENT_ID,
                                    clock=self._clock, on_logged=lambda _: self._wake.set())
        self._orders = OrderCommands(self)
        self._expiry = ExpiryClock(self)

    # Life cycle.

    def start(self, *, lock_wait_s: float = LOCK_WAIT_S) -> None:
        """Rebuild every market from the database and start settling.

        A market's lock held by another session is waited for up to `lock_wait_s` (a
        crashed process's session may still hold it for a moment: market_locks.py).

        Raises: ExchangeAlreadyRunning (another process runs one of the markets),
        InvariantBroken (a log that does not replay to what it logged).
        """
        self._locks.acquire(list(self._markets), wait_s=lock_wait_s)
        try:
            rebuild.undo_intents(self._engine, self._ledger, set(self._markets))
            for symbol, market in self._markets.items():
                runtime = MarketRuntime(market, OrderBook(market), MarketFeed(symbol))
                runtime.adopt(rebuild.replay(self._engine, market))
                self._runtimes[symbol] = runtime
                self._settlements[symbol] = MarketSettlement(market, self._market_accounts(market))
            self._settler = Settler(self._engine, self._ledger, self._settlements,
                                    clock=self._clock)
            for symbol in self._markets:
                self._settler.resume(symbol)
        except BaseException:
            self._locks.release()
            raise
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="exchange-settler", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the settler thread and let other processes run the markets."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._settler is not None:
            self._settler.close()
            self._settler = None
        self._sequencer.close()
        self._runtimes.clear()
        self._locks.release()

    def __enter__(self) -> Exchange:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _market_accounts(self, market: Market) -> MarketAccounts:
        accounts = self._accounts
        rounding = accounts.rounding or accounts.fee
        return MarketAccounts(
            base=market.base, quote=market.quote, wallet=accounts.wallet,
            clearing_base=accounts.clearing(market.base),
            clearing_quote=accounts.clearing(market.quote),
            fee=accounts.fee(market.quote), rounding=rounding(market.quote),
        )

    # Markets and market data.

    def markets(self) -> list[Market]:
        return list(self._markets.values())

    def market(self, symbol: str) -> Market:
        """Raises: UnknownMarket."""
        market = self._markets.get(symbol)
        if market is None:
            raise UnknownMarket(f"no market has the symbol {symbol!r}")
        return market

    def book(self, symbol: str) -> OrderBook:
        """The market's live book, for reading. Prefer `read`, which holds the market's lock."""
        return self.runtime(symbol).book

    def read(self, symbol: str, reader: Callable[[OrderBook], T]) -> T:
        """`reader(book)` under the market's lock, so it sees the book between commands."""
        runtime = self.runtime(symbol)
        with runtime.lock:
            return reader(runtime.book)

    def subscribe(self, symbol: str, *, queue_max: int | None = None) -> Subscription:
        """The market's messages from now on. Subscribe first, then snapshot (`read`):
        a message is new to the snapshot when its sequence is above the snapshot's."""
        return self.runtime(symbol).feed.subscribe(queue_max=queue_max)

    def runtime(self, symbol: str) -> MarketRuntime:
        """Raises: UnknownMarket, ExchangeNotRunning."""
        self.market(symbol)
        runtime = self._runtimes.get(symbol)
        if runtime is None:
            raise ExchangeNotRunning("the exchange is not running")
        return runtime

    # Orders (orders_service.py has the write paths).

    def place_order(self, user_id: UUID, request: OrderRequest, *,
                    idempotency_key: str) -> Written[OrderView]:
        """Hold the order's funds, run it through the book, log it; see OrderCommands.place.

        Raises: UnknownMarket, the book's refusals (invalid_price, size_too_small,
        post_only_would_take, fok_not_fillable, no_liquidity, invalid_order ...),
        InsufficientFunds, IdempotencyKeyReusedForOrder, RequestInProgress.
        """
        return self._settled(self._orders.place(user_id, request, idempotency_key))

    def place_orders(
        self, symbol: str, entries: Sequence[tuple[UUID, OrderRequest, str]]
    ) -> list[Written[OrderView] | Exception]:
        """Place many limit orders in one market at once: (user, request, idempotency key)
        each, answered in order with the order or the refusal (raised by `place_order`).

        The same path as `place_order` — each order held, applied, logged, with the same
        refusals and idempotency — done for all of them together: one transaction for
        their intents, their holds asked of the ledger concurrently, one for their log
        entries. Only limit orders that are not post-only or FOK (whose checks depend on
        nothing but themselves, so it cannot matter that they are checked together).
        """
        answers = self._orders.place_many(symbol, entries)
        if self._settle_wait_s > 0 and self._settler is not None:
            self._wake.set()
            self._settler.wait_settled(symbol, self.runtime(symbol).next_seq - 1,
                                       self._settle_wait_s)
        return answers

    def amend_order(self, user_id: UUID, order_id: UUID, *, size: int | None = None,
                    price: int | None = None, idempotency_key: str) -> Written[OrderView]:
        """Raises: ExchangeOrderNotFound, OrderNotOpen, the book's refusals, InsufficientFunds."""
        return self._settled(self._orders.amend(user_id, order_id, size, price, idempotency_key))

    def cancel_order(self, user_id: UUID, order_id: UUID, *,
                     idempotency_key: str) -> Written[OrderView]:
        """Raises: ExchangeOrderNotFound, OrderNotOpen, IdempotencyKeyReusedForOrder."""
        return self._settled(self._orders.cancel(user_id, order_id, idempotency_key))

    def cancel_all(self, user_id: UUID, symbol: str, side: str | None = None, *,
                   idempotency_key: str) -> Written[list[OrderView]]:
        """Cancel the user's live orders in a market (on one side, if given)."""
        return self._settled(self._orders.cancel_all(user_id, symbol, side, idempotency_key))

    def _settled(self, answer):
        """Wait (up to settle_wait_s) for the command's settlement; return its answer."""
        written, symbol, seq = answer
        if self._settle_wait_s > 0 and seq is not None and self._settler is not None:
            self._wake.set()
            self._settler.wait_settled(symbol, seq, self._settle_wait_s)
            written = self._orders.reread(written)
        return written

    def get_order(self, user_id: UUID, order_id: UUID) -> OrderView:
        """Raises: ExchangeOrderNotFound (also for another user's order)."""
        with self._engine.connect() as connection:
            row = persistence.order_row(connection, order_id)
        if row is None or row.user_id != user_id or row.status == "new":
            raise ExchangeOrderNotFound(f"no order {order_id}")
        return OrderView.of(row)

    def list_orders(self, user_id: UUID, *, symbol: str | None = None,
                    status: str | None = None, starting_after: UUID | None = None,
                    limit: int = 50) -> list[OrderView]:
        """The user's orders, newest first, at most `limit` (ask one more to see if more)."""
        if symbol is not None:
            self.market(symbol)
        with self._engine.connect() as connection:
            rows = persistence.user_orders(connection, user_id, market=symbol, status=status,
                                           limit=limit, starting_after=starting_after)
        return [OrderView.of(row) for row in rows]

    def list_fills(self, user_id: UUID, *, symbol: str | None = None,
                   order_id: UUID | None = None, starting_after: UUID | None = None,
                   limit: int = 50) -> list[FillView]:
        """The user's fills, newest first, with their fees and whether they are settled."""
        if symbol is not None:
            self.market(symbol)
        with self._engine.connect() as connection:
            rows = persistence.user_fills(connection, user_id, market=symbol,
                                          order_id=order_id, limit=limit,
                                          starting_after=starting_after)
        return [FillView.of(row, user_id) for row in rows]

    # Settlement and time.

    def settle_pending(self) -> int:
        """Settle everything matched so far, on this thread; the number of fills settled."""
        return self._require_settler().settle_pending()

    def settled_fills_per_second(self) -> SettlementRun:
        """Settle the backlog and time it (see settlement.settled_fills_per_second)."""
        return settled_fills_per_second(self._require_settler())

    def wait_settled(self, symbol: str, seq: int, timeout_s: float) -> bool:
        return self._require_settler().wait_settled(symbol, seq, timeout_s)

    def expire_due(self) -> int:
        """Expire the GTT orders whose time has come, in every market; how many commands ran."""
        return self._expiry.run_due()

    def _require_settler(self) -> Settler:
        if self._settler is None:
            raise ExchangeNotRunning("the exchange is not running")
        return self._settler

    def _run(self) -> None:
        """The settler thread: expire what is due, settle what is logged, sleep when idle."""
        while not self._stopping.is_set():
            busy = False
            self._wake.clear()  # before the work: a command logged during it wakes the next
            try:
                self._expiry.run_due()
                if self._settle_in_background:
                    for symbol in list(self._runtimes):
                        busy |= self._settler.settle_once(symbol) is not None
            except Exception:
                log.exception("exchange settler failed; retrying")
                self._stopping.wait(1.0)
                continue
            if not busy:
                self._wake.wait(SETTLER_IDLE_S)
