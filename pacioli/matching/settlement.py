"""Settling fills in the ledger, in batches, with deterministic keys (docs/exchange.md, "Service").

Per market, settlement walks the stream the command log wrote (fills, then order marks,
command by command) from its settled position, in batches:

1. **Plan** (`settlement_plan`): the next cut of the stream whose ledger items fit one
   linked batch (at most 128), and its items. The plan is stored in
   `exchange_settlement_batches` (`planned`), and its fills are stamped with its id, in
   one transaction, before anything is posted.
2. **Post** it: one `ledger.linked_batch` under the key `exchange:settle:<batch id>`.
3. **Record** it (`posted`): the holds it resolved, the re-holds it made, `order.filled`
   events for orders it finished filling, in one transaction.

A crash between 1 and 3 leaves a `planned` batch; `resume` posts it again — the same
items under the same key, so the ledger replays it if it had committed — and records it.
Only one batch per market is in flight, so a batch's re-holds are known (and recorded)
before the next batch, which may post them, is planned.

`settle_pending()` settles everything matched so far on the calling thread;
`settled_fills_per_second` times it, for the bench.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Engine

from pacioli.ledger import Ledger, PostPending, TransferSpec, VoidPending, credit, debit
from pacioli.ledger.domain.errors import invariant
from pacioli.ledger.domain.ids import uuid7
from pacioli.matching import settlement_store as store
from pacioli.matching.holds import hold_spec
from pacioli.matching.settlement_plan import ITEMS_MAX, choose_cut, plan_batch
from pacioli.matching.settlement_records import BatchPlan
from pacioli.matching.settlement_state import (
    MarketSettlement,
    Planned,
    Position,
    advance,
    rehold_ids,
    rehold_transfer_ids,
    remember_reholds,
)

log = logging.getLogger(__name__)

EXCHANGE_CLIENT_ID = "exchange"
SETTLEMENT_FLOW = "exchange_settlement"  # the metadata `flow` of the trade transfers
WINDOW_COMMANDS_MAX = 2000  # commands read from the log per window
WINDOW_FILLS_MAX = 10000  # fills read per window
CUT_BOUND_MAX = 1024  # the largest item bound a cut is tried with (see _fitting_cut)


def settle_key(batch_id: UUID) -> str:
    return f"exchange:settle:{batch_id}"


class Settler:
    """Plans, posts and records settlement batches for every market of an exchange.

    A market drains as a pipeline: while the ledger posts batch k, batch k+1 is planned
    (and stored), and once k is posted, k+1 goes to the ledger at once while k is
    recorded. The ledger, the slowest step, is never left waiting for our own writes.
    """

    def __init__(self, engine: Engine, ledger: Ledger, markets: dict[str, MarketSettlement],
                 *, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._ledger = ledger
        self._markets = markets
        self._clock = clock or (lambda: datetime.now(UTC))
        self._settled = threading.Condition()
        self._poster = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exchange-post")
        self.stats = PostStats()

    def close(self) -> None:
        self._poster.shutdown(wait=True)

    # Start-up.

    def resume(self, symbol: str) -> None:
        """Load the market's position; post and record the batches a crash left planned."""
        state = self._markets[symbol]
        with state.lock:
            self._resume(state)

    def _resume(self, state: MarketSettlement) -> None:
        symbol = state.market.symbol
        state.spans, state.holds, state.hold_transfers = [], {}, {}
        state.unrecorded, state.settled_when_recorded = 0, 0
        last = store.last_batch(self._engine, symbol)
        state.position = Position() if last is None else Position(
            last.number, last.last_fill_no, last.marks_through_seq)
        self._mark_settled(state, store.posted_through(self._engine, symbol))
        for row in store.planned_batches(self._engine, symbol):
            batch = Planned(row.id, row.number, store.plan_of(row))
            holds = [hold for order in batch.plan.orders for hold, _ in order.posts]
            state.hold_transfers = store.hold_transfer_ids(self._engine, holds)
            state.unrecorded += 1
            self._record(state, batch, self._post(state, batch))
        state.needs_resume = False

    # Settling.

    def settle_once(self, symbol: str) -> int | None:
        """Settle what the market logged so far; the fills settled, or None if none was due."""
        state = self._markets[symbol]
        with state.lock:
            try:
                if state.needs_resume:
                    self._resume(state)
                return self._drain(state)
            except BaseException:
                state.needs_resume = True  # memory may be ahead of the database: reload
                raise

    def settle_pending(self) -> int:
        """Settle every market up to what is logged now; the number of fills settled."""
        return sum(self.settle_once(symbol) or 0 for symbol in self._markets)

    def wait_settled(self, symbol: str, seq: int, timeout_s: float) -> bool:
        """Wait until the market's command `seq` is settled; False on timeout."""
        state = self._markets[symbol]
        deadline = time.monotonic() + timeout_s
        with self._settled:
            while state.settled_through_seq < seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._settled.wait(left)
        return True

    def _drain(self, state: MarketSettlement) -> int | None:
        """Plan, post and record until the market's log is settled (the pipeline above)."""
        current = self._plan(state, may_read=True)
        if current is None:
            return None
        settled = 0
        in_flight = self._poster.submit(self._post, state, current)
        try:
            while current is not None:
                following = self._plan(state, may_read=False)
                transfers = in_flight.result()
                remember_reholds(state, current.plan, transfers)
                if following is not None:
                    in_flight = self._poster.submit(self._post, state, following)
                self._record(state, current, transfers)
                settled += current.plan.fill_count
                current = following
                if current is None:
                    current = self._plan(state, may_read=True)
                    if current is not None:
                        in_flight = self._poster.submit(self._post, state, current)
        except BaseException:
            wait([in_flight])  # let a post in flight finish before memory is reset
            raise
        return settled

    # Planning.

    def _plan(self, state: MarketSettlement, *, may_read: bool) -> Planned | None:
        """Plan and store the next batch; None when nothing is left (or, without
        `may_read`, when the window read ahead is used up: reading it again must wait
        until every batch planned is recorded, or the holds read would be stale)."""
        while True:
            batch_id = uuid7()
            plan = self._cut(state, rehold_ids(batch_id), may_read=may_read)
            if plan is None:
                return None
            position = state.position
            advance(state, plan)
            if plan.item_count == 0 and plan.fill_count == 0:
                # Nothing to post (orders that only rested, say): move past it in memory.
                # A restart re-reads these commands and finds the same nothing. They
                # count as settled once the batches planned before them are.
                state.position = Position(position.number, plan.last_fill_no,
                                          plan.marks_through_seq)
                if state.unrecorded:
                    state.settled_when_recorded = plan.marks_through_seq
                else:
                    self._mark_settled(state, plan.marks_through_seq)
                continue
            planned = Planned(batch_id, position.number + 1, plan)
            store.insert_planned(self._engine, state.market.symbol, planned.id,
                                 planned.number, plan, now=self._clock())
            state.position = Position(planned.number, plan.last_fill_no,
                                      plan.marks_through_seq)
            state.unrecorded += 1
            return planned

    def _cut(self, state: MarketSettlement, new_id: Callable[[], UUID], *,
             may_read: bool) -> BatchPlan | None:
        """The plan of the next cut of the stream (reading the window again if used up)."""
        position = state.position
        for attempt in range(2):
            if not state.spans or attempt:
                if not may_read:
                    return None
                self._read_window(state)
            if not state.spans:
                return None
            plan = self._fitting_plan(state, position, new_id)
            if plan is not None:
                return plan
        return None

    def _fitting_plan(self, state: MarketSettlement, position: Position,
                      new_id: Callable[[], UUID]) -> BatchPlan | None:
        """The plan of a long cut that fits one linked batch.

        `choose_cut`'s bound counts two items for every order touched, which most orders
        do not need (a filled order posts once, a resting one needs nothing), so a cut
        sized by it fills the batch to about a third. So a cut is tried with a larger
        bound, aimed by how the last one turned out, and kept if its plan fits; a plan
        that does not fit shrinks the bound, down to the safe one, which always fits.
        """
        counts = {order: len(holds) for order, holds in state.holds.items()}
        bound = min(CUT_BOUND_MAX, max(ITEMS_MAX, int(ITEMS_MAX * state.bound_ratio)))
        while True:
            cut = choose_cut(
                state.spans, last_fill_no=position.last_fill_no,
                marks_through_seq=position.marks_through_seq, hold_counts=counts,
                items_max=bound,
            )
            if cut is None:
                return None
            plan = plan_batch(cut, first_fill_no=position.last_fill_no + 1, holds=state.holds,
                              accounts=state.accounts, new_id=new_id)
            if plan.item_count <= ITEMS_MAX:
                # Aim the next cut by what this one needed per item the bound counted.
                used = max(plan.item_count, 1) / bound
                state.bound_ratio = max(1.0, 0.9 / used)
                return plan
            invariant(bound > ITEMS_MAX, "a cut within the safe bound fits a linked batch")
            bound = max(ITEMS_MAX, bound * ITEMS_MAX // plan.item_count)

    def _read_window(self, state: MarketSettlement) -> None:
        position = state.position
        state.spans = store.read_spans(
            self._engine, state.market.symbol, last_fill_no=position.last_fill_no,
            marks_through_seq=position.marks_through_seq,
            commands_max=WINDOW_COMMANDS_MAX, fills_max=WINDOW_FILLS_MAX,
        )
        orders = {f.taker_order for s in state.spans for f in s.fills}
        orders |= {f.maker_order for s in state.spans for f in s.fills}
        orders |= {m.order for s in state.spans for m in s.marks}
        state.holds, transfers = store.open_holds(self._engine, orders)
        state.hold_transfers = transfers

    # Posting and recording.

    def _post(self, state: MarketSettlement, planned: Planned) -> list:
        """Post the batch in the ledger (a replay, if it was posted before a crash)."""
        items = self._items(state, planned)
        started = time.perf_counter()
        transfers = self._ledger.linked_batch(
            items, idempotency_key=settle_key(planned.id), client_id=EXCHANGE_CLIENT_ID,
        ).value
        self.stats.record(len(items), time.perf_counter() - started)
        return transfers

    def _record(self, state: MarketSettlement, planned: Planned, transfers: list) -> None:
        reholds = rehold_transfer_ids(planned.plan, transfers)
        store.record_posted(
            self._engine, state.market, planned.id, planned.plan, reholds, now=self._clock()
        )
        for order in planned.plan.orders:
            for hold, _ in order.posts:
                state.hold_transfers.pop(hold, None)
        state.unrecorded -= 1
        self._mark_settled(state, planned.plan.marks_through_seq)
        if not state.unrecorded and state.settled_when_recorded:
            self._mark_settled(state, state.settled_when_recorded)
            state.settled_when_recorded = 0

    def _mark_settled(self, state: MarketSettlement, seq: int) -> None:
        with self._settled:
            state.settled_through_seq = max(state.settled_through_seq, seq)
            self._settled.notify_all()

    def _items(self, state: MarketSettlement, planned: Planned) -> list:
        plan = planned.plan
        transfer_of = state.hold_transfers
        meta = {"flow": SETTLEMENT_FLOW, "batch_id": str(planned.id)}
        items: list = []
        for order in plan.orders:
            for hold, amount in order.posts:
                pending_id = transfer_of[hold]
                items.append(PostPending(pending_id, amount) if amount else VoidPending(pending_id))
            if order.rehold is not None:
                r = order.rehold
                items.append(hold_spec(
                    wallet_account_id=r.wallet_account_id,
                    clearing_account_id=r.clearing_account_id, asset=r.asset, amount=r.amount,
                    order=order.order, hold_id=r.id,
                ))
        for legs in plan.transfers:
            items.append(TransferSpec(
                tuple((debit if leg.direction == "debit" else credit)(
                    leg.account_id, leg.amount, leg.asset) for leg in legs),
                meta,
            ))
        return items


@dataclass(slots=True)
class PostStats:
    """What the settler's ledger posts took, since it started (for the bench)."""

    batches: int = 0
    items: int = 0
    seconds: float = 0.0

    def record(self, items: int, seconds: float) -> None:
        self.batches += 1
        self.items += items
        self.seconds += seconds


@dataclass(frozen=True, slots=True)
class SettlementRun:
    """A timed settlement: `fills` in `seconds` of wall time, in `batches` linked batches
    of `items` ledger items, whose posts took `ledger_seconds` of it."""

    fills: int
    seconds: float
    batches: int = 0
    items: int = 0
    ledger_seconds: float = 0.0

    @property
    def fills_per_second(self) -> float:
        return self.fills / self.seconds if self.seconds else 0.0


def settled_fills_per_second(settler: Settler) -> SettlementRun:
    """Settle everything matched but not yet settled, and time it (the bench's figure).

    For a meaningful figure, build the backlog first with settlement paused: start the
    exchange with `settle_in_background=False`, place the orders (each acknowledged
    command leaves its fills in the log, unsettled), then call this — it plans, posts and
    records batches until the log is settled, and returns the fills settled and the
    wall time taken. `Exchange.settled_fills_per_second()` calls it.
    """
    before = PostStats(settler.stats.batches, settler.stats.items, settler.stats.seconds)
    started = time.perf_counter()
    fills = settler.settle_pending()
    seconds = time.perf_counter() - started
    after = settler.stats
    return SettlementRun(fills, seconds, after.batches - before.batches,
                         after.items - before.items, after.seconds - before.seconds)
