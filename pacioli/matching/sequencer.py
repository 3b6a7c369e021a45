"""Running one command of one market: hold, apply, log — the exchange's write path.

The caller holds the market's lock (one writer per market) and has already checked the
command against the book (`book.check`) and sized its hold. Then:

1. the intent (a `new` order and/or a `reserving` hold) is recorded;
2. the ledger holds the funds (`exchange:hold:<hold id>`); a refusal (insufficient
   funds) deletes the intent and is raised: nothing moved, the book is untouched;
3. the book applies the command — past this point the command must be logged;
4. the log entry (command, book sequence, state hash, fills, marks, order changes,
   the hold now open) is written in one transaction: its commit acknowledges it;
5. the market-data messages go to the feed, and the settler is woken.

If step 3 or 4 fails (a bug, or the database went away), the book in memory is ahead of
the log, so the market is rebuilt from the log and its intents are undone; if even that
fails the market refuses commands until the process restarts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Engine

from pacioli.ledger import DomainError, Ledger, LedgerUnavailable
from pacioli.ledger.domain.errors import invariant
from pacioli.matching import codec, persistence, rebuild
from pacioli.matching.book import OrderBook
from pacioli.matching.feed import MarketFeed
from pacioli.matching.holds import hold_spec
from pacioli.matching.log_entries import LiveOrder, build_entry, micros
from pacioli.matching.market import Market
from pacioli.matching.orders import Command
from pacioli.matching.results import CANCELLED, Result

log = logging.getLogger(__name__)

# The logged state hash costs O(orders): it is written for every command while the book
# is small, and for every HASH_EVERY-th command otherwise.
HASH_SMALL_BOOK = 256
HASH_EVERY = 64
HOLDS_CONCURRENT_MAX = 32


@dataclass(slots=True)
class MarketRuntime:
    """One market in a running exchange: its book and what the service keeps beside it."""

    market: Market
    book: OrderBook
    feed: MarketFeed
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_seq: int = 1
    fill_no: int = 0
    last_ts: int = 0
    next_order_id: int = 1
    live: dict[int, LiveOrder] = field(default_factory=dict)
    expiries: list[tuple[int, int]] = field(default_factory=list)
    broken: bool = False

    def adopt(self, rebuilt: rebuild.Rebuilt) -> None:
        self.book = rebuilt.book
        self.next_seq = rebuilt.next_seq
        self.fill_no = rebuilt.fill_no
        self.last_ts = rebuilt.last_ts
        self.next_order_id = max(self.next_order_id, rebuilt.next_order_id)
        self.live = rebuilt.live
        self.expiries = rebuilt.expiries


@dataclass(slots=True)
class Submission:
    """A command to run and what it writes besides the log."""

    command: Command
    user_id: UUID | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    new_order: dict[str, Any] | None = None  # an exchange_orders row, status new
    new_live: LiveOrder | None = None  # the placed order, for the live map
    hold: dict[str, Any] | None = None  # an exchange_holds row, status reserving
    own_order_id: int | None = None  # the order the command names
    top_up: int = 0  # an amend's extra hold, added to what the order has left


@dataclass(frozen=True, slots=True)
class Logged:
    seq: int
    result: Result
    orders: list[UUID]  # the orders the command answers with


class KeyAlreadyUsed(Exception):
    """The intent's order could not be recorded: its Idempotency-Key names one already."""


class Sequencer:
    def __init__(self, engine: Engine, ledger: Ledger, *, client_id: str,
                 clock: Callable[[], datetime], on_logged: Callable[[str], None]) -> None:
        self._engine = engine
        self._ledger = ledger
        self._client_id = client_id
        self._clock = clock
        self._on_logged = on_logged
        # Holds of a bulk placement go to the ledger at once (commit_many).
        self._holds_pool = ThreadPoolExecutor(max_workers=HOLDS_CONCURRENT_MAX,
                                              thread_name_prefix="exchange-hold")

    def close(self) -> None:
        self._holds_pool.shutdown(wait=True)

    def next_ts(self, runtime: MarketRuntime) -> int:
        """The clock in µs, never behind the market's last command."""
        return max(micros(self._clock()), runtime.last_ts)

    def commit(self, runtime: MarketRuntime, submission: Submission) -> Logged:
        """Run the command (see the module docstring); the caller holds `runtime.lock`.

        Raises: KeyAlreadyUsed, the ledger's refusal of the hold, LedgerUnavailable.
        """
        if runtime.broken:
            raise LedgerUnavailable(f"{runtime.market.symbol} is being recovered; retry later")
        try:
            transfer_id = self._hold(submission)
        except (KeyAlreadyUsed, DomainError, LedgerUnavailable):
            raise  # nothing is left behind: refusals discard their intent
        except BaseException:
            self._undo_intents(runtime)  # a hold may exist without anyone knowing
            raise
        if submission.new_live is not None:
            runtime.live[submission.command.order_id] = submission.new_live
        if submission.top_up:
            runtime.live[submission.own_order_id].left += submission.top_up
        try:
            logged, entry = self._apply(runtime, submission, transfer_id)
            self._write([entry])
        except BaseException:
            if submission.new_live is not None:
                runtime.live.pop(submission.command.order_id, None)
            self._recover(runtime)
            raise
        runtime.feed.publish(logged.result.md)
        self._on_logged(runtime.market.symbol)
        return logged

    def commit_many(self, runtime: MarketRuntime,
                    submissions: list[Submission]) -> list[Logged | Exception]:
        """Run many placements at once; the caller holds `runtime.lock`.

        The same path as `commit`, each step done for all of them together: their intents
        in one transaction, their holds asked of the ledger concurrently (it gathers them
        into shared transactions; each is refused or made on its own), the book applies
        those held in order, and their log entries commit in one transaction. Only for
        commands whose checks do not depend on the others (the caller's business).
        Each answer is the command's `Logged`, or the exception that refused it.
        """
        if runtime.broken:
            raise LedgerUnavailable(f"{runtime.market.symbol} is being recovered; retry later")
        answers: list[Logged | Exception | None] = [None] * len(submissions)
        with self._engine.begin() as connection:
            recorded = persistence.insert_intents(
                connection, [s.new_order for s in submissions],
                [s.hold for s in submissions if s.hold is not None],
            )
        for index, submission in enumerate(submissions):
            if submission.new_order["id"] not in recorded:
                answers[index] = KeyAlreadyUsed()
        holding = [i for i, s in enumerate(submissions) if answers[i] is None and s.hold]
        try:
            transfer_ids = dict(zip(holding, self._holds_pool.map(
                lambda i: self._try_hold(submissions[i]), holding), strict=True))
        except BaseException:
            self._undo_intents(runtime)
            raise
        refused = {i: t for i, t in transfer_ids.items() if isinstance(t, Exception)}
        if refused:
            with self._engine.begin() as connection:
                for index in refused:
                    _discard(connection, submissions[index])
            for index, error in refused.items():
                answers[index] = error
        runnable = [i for i in range(len(submissions)) if answers[i] is None]
        entries, logged = [], []
        try:
            for index in runnable:
                submission = submissions[index]
                if submission.new_live is not None:
                    runtime.live[submission.command.order_id] = submission.new_live
                done, entry = self._apply(runtime, submission, transfer_ids.get(index))
                answers[index] = done
                entries.append(entry)
                logged.append(done)
            self._write(entries)
        except BaseException:
            self._recover(runtime)
            raise
        for done in logged:
            runtime.feed.publish(done.result.md)
        if logged:
            self._on_logged(runtime.market.symbol)
        return answers  # type: ignore[return-value]

    def _try_hold(self, submission: Submission) -> UUID | Exception:
        try:
            return self._ledger_hold(submission.hold)
        except (DomainError, LedgerUnavailable) as refused:
            return refused

    def _hold(self, submission: Submission) -> UUID | None:
        if submission.new_order is None and submission.hold is None:
            return None
        with self._engine.begin() as connection:
            if not persistence.insert_intent(
                connection, order=submission.new_order, hold=submission.hold
            ):
                raise KeyAlreadyUsed()
        if submission.hold is None:
            return None
        try:
            return self._ledger_hold(submission.hold)
        except (DomainError, LedgerUnavailable):
            with self._engine.begin() as connection:
                _discard(connection, submission)
            raise

    def _ledger_hold(self, hold: dict[str, Any]) -> UUID:
        spec = hold_spec(
            wallet_account_id=hold["wallet_account_id"],
            clearing_account_id=hold["clearing_account_id"], asset=hold["asset"],
            amount=hold["amount"], order=hold["order"], hold_id=hold["id"],
        )
        return self._ledger.transfer_batch(
            [spec], idempotency_key=rebuild.hold_key(hold["id"]), client_id=self._client_id
        ).value[0].id

    def _write(self, entries: list) -> None:
        with self._engine.begin() as connection:
            persistence.write_logs(connection, entries)

    def _apply(self, runtime: MarketRuntime, submission: Submission,
               transfer_id: UUID | None) -> tuple[Logged, Any]:
        """Apply the command and build its log entry; the market's counters move on.

        Past this point the entry must be written, or the market rebuilt (`_recover`).
        """
        command = submission.command
        book = runtime.book
        result = book.apply(command)
        invariant(result.accepted, f"a checked command is accepted: {result.reject!r}")
        seq = runtime.next_seq
        orders = _answer(runtime, submission, result)
        small = len(book.orders) + len(book.stops) <= HASH_SMALL_BOOK
        command_row = {
            "market": runtime.market.symbol, "seq": seq, "kind": codec.kind_of(command),
            "command": codec.encode(command), "ts": command.ts,
            "book_sequence": book.sequence,
            "state_hash": book.state_hash() if small or seq % HASH_EVERY == 0 else None,
            "fill_no_last": runtime.fill_no + len(result.fills),
            "user_id": submission.user_id, "idempotency_key": submission.idempotency_key,
            "request_hash": submission.request_hash,
            "result": {"orders": [str(o) for o in orders]}, "created_at": datetime.now(UTC),
        }
        placed = command.order_id if submission.new_order is not None else None
        entry = build_entry(
            book=book, market=runtime.market, live=runtime.live, command_row=command_row,
            result=result, own_order_id=submission.own_order_id,
            first_fill_no=runtime.fill_no + 1, placed_order_id=placed,
            now=command_row["created_at"],
        )
        if transfer_id is not None:
            entry.opened_holds.append({"b_id": submission.hold["id"],
                                       "b_transfer_id": transfer_id})
        runtime.next_seq = seq + 1
        runtime.fill_no += len(result.fills)
        runtime.last_ts = max(runtime.last_ts, command.ts)
        for done in result.done:
            runtime.live.pop(done.order_id, None)
        return Logged(seq, result, orders), entry

    def _undo_intents(self, runtime: MarketRuntime) -> None:
        """After an unexpected failure between intent and log: void this market's intents'
        holds (the book did not change), or stop the market if even that fails."""
        try:
            rebuild.undo_intents(self._engine, self._ledger, {runtime.market.symbol})
        except Exception:
            runtime.broken = True
            log.exception("undoing the market's intents failed; it refuses commands until "
                          "restart", extra={"market": runtime.market.symbol})

    def _recover(self, runtime: MarketRuntime) -> None:
        """Bring the book back to what the log says, undoing this market's intents."""
        symbol = runtime.market.symbol
        log.error("exchange command failed after the book changed; rebuilding the market",
                  extra={"market": symbol})
        try:
            runtime.adopt(rebuild.replay(self._engine, runtime.market))
            rebuild.undo_intents(self._engine, self._ledger, {symbol})
        except Exception:
            runtime.broken = True
            log.exception("rebuilding the market failed; it refuses commands until restart",
                          extra={"market": symbol})


def _discard(connection, submission: Submission) -> None:
    order = submission.new_order
    persistence.discard_intent(
        connection, order_id=None if order is None else order["id"],
        hold_id=None if submission.hold is None else submission.hold["id"],
    )


def _answer(runtime: MarketRuntime, submission: Submission, result: Result) -> list[UUID]:
    """The orders a command answers with: the one it names, or those a cancel-all cancelled."""
    if submission.own_order_id is not None:
        return [runtime.live[submission.own_order_id].id]
    if submission.user_id is None:
        return []
    owner = str(submission.user_id)
    return [
        runtime.live[d.order_id].id for d in result.done
        if d.reason == CANCELLED and d.owner == owner
    ]
