"""Rebuilding a market at start-up: its book from the command log, and cleaning up intents.

The book is rebuilt by replaying the market's log in `seq` order through a new
`OrderBook`. Every command must be accepted again and leave the book at the logged
sequence number; at the logged state hashes that replay meets (the log stores one where
it was cheap, see service.py) the rebuilt book's `state_hash()` must equal the logged
one. Any difference is a bug or a damaged log: the start-up stops (`InvariantBroken`)
rather than trade on a book that is not the one acknowledged.

Intents are writes a crash cut short before their command was logged: an order still
`new` and holds still `reserving`. Nobody was told of them, so they are undone: each
hold is asked for again under its own key (the ledger replays it if it was made, or
makes it now) and voided, then the rows are deleted.
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine

from pacioli.ledger import DomainError, Ledger
from pacioli.ledger.domain.errors import invariant
from pacioli.matching import codec, persistence
from pacioli.matching.book import OrderBook
from pacioli.matching.holds import hold_spec
from pacioli.matching.log_entries import LiveOrder, micros
from pacioli.matching.market import Market

log = logging.getLogger(__name__)

EXCHANGE_CLIENT_ID = "exchange"
# Besides the last one, replay checks the logged hashes of every this-many-th command
# (checking each one would cost O(orders) per command, the price the log avoided).
REPLAY_HASH_CHECK_EVERY = 1024


def hold_key(hold_id) -> str:
    return f"exchange:hold:{hold_id}"


def void_key(hold_id) -> str:
    return f"exchange:void:{hold_id}"


@dataclass(slots=True)
class Rebuilt:
    """A market as the log left it: its book, its counters and its live orders."""

    book: OrderBook
    next_seq: int = 1
    fill_no: int = 0
    last_ts: int = 0
    next_order_id: int = 1
    live: dict[int, LiveOrder] = field(default_factory=dict)
    expiries: list[tuple[int, int]] = field(default_factory=list)  # heap (expires_at µs, id)
    hashes_checked: int = 0


def replay(engine: Engine, market: Market) -> Rebuilt:
    """The market's book rebuilt from its log. Raises InvariantBroken on any mismatch."""
    rebuilt = Rebuilt(OrderBook(market))
    book = rebuilt.book
    pending_hash: tuple[int, str] | None = None
    with engine.connect() as connection:
        for row in persistence.commands_of(connection, market.symbol):
            invariant(row.seq == rebuilt.next_seq, f"{market.symbol}: the log has no gap")
            result = book.apply(codec.decode(row.kind, row.command))
            invariant(result.accepted, f"{market.symbol}: logged command {row.seq} replays")
            invariant(book.sequence == row.book_sequence,
                      f"{market.symbol}: command {row.seq} replays to its book sequence")
            rebuilt.next_seq = row.seq + 1
            rebuilt.fill_no = row.fill_no_last
            rebuilt.last_ts = max(rebuilt.last_ts, row.ts)
            if row.state_hash is not None:
                if row.seq % REPLAY_HASH_CHECK_EVERY == 0:
                    _check_hash(book, row.seq, row.state_hash)
                    rebuilt.hashes_checked += 1
                pending_hash = (row.seq, row.state_hash)
        last = pending_hash
        rebuilt_at_last = last is not None and last[0] == rebuilt.next_seq - 1
        if rebuilt_at_last:
            _check_hash(book, last[0], last[1])
            rebuilt.hashes_checked += 1
        _load_live(connection, market, rebuilt)
    if last is not None and not rebuilt_at_last:
        # The last hash logged is older than the last command: replay again up to it.
        _check_prefix(engine, market, last)
        rebuilt.hashes_checked += 1
    return rebuilt


def _check_hash(book: OrderBook, seq: int, logged: str) -> None:
    invariant(book.state_hash() == logged,
              f"{book.market.symbol}: the rebuilt book's state hash after command {seq} "
              "differs from the logged one")


def _check_prefix(engine: Engine, market: Market, checkpoint: tuple[int, str]) -> None:
    book = OrderBook(market)
    with engine.connect() as connection:
        for row in persistence.commands_of(connection, market.symbol):
            book.apply(codec.decode(row.kind, row.command))
            if row.seq == checkpoint[0]:
                _check_hash(book, row.seq, checkpoint[1])
                return


def _load_live(connection, market: Market, rebuilt: Rebuilt) -> None:
    book = rebuilt.book
    lefts = persistence.lefts_of_live_orders(connection, market.symbol)
    for row in persistence.live_orders(connection, market.symbol):
        rebuilt.live[row.order_id] = LiveOrder(row.id, row.user_id, row.side, lefts[row.id])
        if row.expires_at is not None:
            heapq.heappush(rebuilt.expiries, (micros(row.expires_at), row.order_id))
    live_in_book = {o.order_id for o in book.orders.values()} | set(book.stops)
    invariant(live_in_book == set(rebuilt.live),
              f"{market.symbol}: the orders the log leaves open are the book's live orders")
    rebuilt.next_order_id = persistence.largest_order_id(connection, market.symbol) + 1


def undo_intents(engine: Engine, ledger: Ledger, markets: set[str]) -> int:
    """Void the holds of intents a crash left behind and forget them; how many holds."""
    with engine.connect() as connection:
        orders, holds = persistence.intents(connection)
    undone = 0
    for hold in holds:
        if hold.market not in markets:
            continue
        undo_hold(ledger, hold)
        undone += 1
    with engine.begin() as connection:
        for hold in holds:
            if hold.market in markets:
                persistence.discard_intent(connection, order_id=None, hold_id=hold.id)
        for order in orders:
            if order.market in markets:
                persistence.discard_intent(connection, order_id=order.id, hold_id=None)
    return undone


def undo_hold(ledger: Ledger, hold) -> None:
    """Make sure an intent's hold does not stay: ask for it again (same key), then void it."""
    spec = hold_spec(
        wallet_account_id=hold.wallet_account_id, clearing_account_id=hold.clearing_account_id,
        asset=hold.asset, amount=hold.amount, order=hold.order, hold_id=hold.id,
    )
    try:
        transfer = ledger.transfer_batch(
            [spec], idempotency_key=hold_key(hold.id), client_id=EXCHANGE_CLIENT_ID
        ).value[0]
    except DomainError as refused:
        log.info("intent hold was never made", extra={"hold_id": str(hold.id),
                                                       "code": refused.code})
        return
    ledger.void_pending(transfer.id, idempotency_key=void_key(hold.id),
                        client_id=EXCHANGE_CLIENT_ID)
