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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Engine

from pacioli.ledger import Ledger, PostPending, TransferSpec, VoidPending, credit, debit
from pacioli.ledger.domain.ids import uuid7
from pacioli.matching import settlement_store as store
from pacioli.matching.market import Market
from pacioli.matching.settlement_plan import (
    SETTLEMENT_FLOW,
    BatchPlan,
    CommandSpan,
    HoldRecord,
    MarketAccounts,
    choose_cut,
    hold_spec,
    plan_batch,
)

log = logging.getLogger(__name__)

EXCHANGE_CLIENT_ID = "exchange"
WINDOW_COMMANDS_MAX = 2000  # commands read from the log per window
WINDOW_FILLS_MAX = 10000  # fills read per window


def settle_key(batch_id: UUID) -> str:
    return f"exchange:settle:{batch_id}"


@dataclass(slots=True)
class Position:
    """Where a market's settlement stands: everything up to here is planned."""

    number: int = 0  # of the last batch planned
    last_fill_no: int = 0
    marks_through_seq: int = 0


@dataclass(slots=True)
class Planned:
    id: UUID
    number: int
    plan: BatchPlan


@dataclass(slots=True)
class MarketSettlement:
    """One market's settlement state in memory (the database is the truth on restart)."""

    market: Market
    accounts: MarketAccounts
    lock: threading.Lock = field(default_factory=threading.Lock)
    position: Position = field(default_factory=Position)
    settled_through_seq: int = 0  # commands whose fills and marks are all posted
    planned: Planned | None = None
    spans: list[CommandSpan] = field(default_factory=list)  # the window read ahead
    holds: dict[UUID, list[HoldRecord]] = field(default_factory=dict)


class Settler:
    """Plans, posts and records settlement batches for every market of an exchange."""

    def __init__(self, engine: Engine, ledger: Ledger, markets: dict[str, MarketSettlement],
                 *, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._ledger = ledger
        self._markets = markets
        self._clock = clock or (lambda: datetime.now(UTC))
        self._settled = threading.Condition()

    # Start-up.

    def resume(self, symbol: str) -> None:
        """Load the market's position; post and record a batch a crash left planned."""
        state = self._markets[symbol]
        with state.lock:
            last = store.last_batch(self._engine, symbol)
            if last is not None:
                state.position = Position(last.number, last.last_fill_no, last.marks_through_seq)
                if last.status == "planned":
                    state.planned = Planned(last.id, last.number, store.plan_of(last))
                    state.settled_through_seq = store.posted_through(self._engine, symbol)
                else:
                    state.settled_through_seq = last.marks_through_seq
            if state.planned is not None:
                self._post_and_record(state)

    # Settling.

    def settle_once(self, symbol: str) -> int | None:
        """Settle one batch of the market; the fills it settled, or None if none was due."""
        state = self._markets[symbol]
        with state.lock:
            if state.planned is None and not self._plan(state):
                return None
            return self._post_and_record(state)

    def settle_pending(self) -> int:
        """Settle every market up to what is logged now; the number of fills settled."""
        settled = 0
        for symbol in self._markets:
            while (count := self.settle_once(symbol)) is not None:
                settled += count
        return settled

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

    # Planning.

    def _plan(self, state: MarketSettlement) -> bool:
        symbol = state.market.symbol
        position = state.position
        cut = self._cut(state)
        if cut is None:
            return False
        plan = plan_batch(
            cut, first_fill_no=position.last_fill_no + 1, holds=state.holds,
            accounts=state.accounts, new_id=uuid7,
        )
        planned = Planned(uuid7(), position.number + 1, plan)
        store.insert_planned(self._engine, symbol, planned.id, planned.number, plan,
                             now=self._clock())
        state.planned = planned
        state.position = Position(planned.number, plan.last_fill_no, plan.marks_through_seq)
        return True

    def _cut(self, state: MarketSettlement):
        position = state.position
        for attempt in range(2):
            if attempt or not state.spans:
                self._read_window(state)
            if not state.spans:
                return None
            counts = {order: len(holds) for order, holds in state.holds.items()}
            cut = choose_cut(
                state.spans, last_fill_no=position.last_fill_no,
                marks_through_seq=position.marks_through_seq, hold_counts=counts,
            )
            if cut is not None:
                return cut
        return None

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
        state.holds = store.open_holds(self._engine, orders)

    # Posting and recording.

    def _post_and_record(self, state: MarketSettlement) -> int:
        planned = state.planned
        transfers = []
        if planned.plan.item_count:
            items = self._items(planned)
            transfers = self._ledger.linked_batch(
                items, idempotency_key=settle_key(planned.id), client_id=EXCHANGE_CLIENT_ID,
            ).value
        reholds = _rehold_transfer_ids(planned.plan, transfers)
        store.record_posted(
            self._engine, state.market, planned.id, planned.plan, reholds, now=self._clock()
        )
        self._forget_settled(state, planned.plan, reholds)
        state.planned = None
        with self._settled:
            state.settled_through_seq = planned.plan.marks_through_seq
            self._settled.notify_all()
        return planned.plan.fill_count

    def _items(self, planned: Planned) -> list:
        plan = planned.plan
        hold_ids = [hold for o in plan.orders for hold, _ in o.posts]
        transfer_of = store.hold_transfer_ids(self._engine, hold_ids)
        symbol_meta = {"flow": SETTLEMENT_FLOW, "batch_id": str(planned.id)}
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
                symbol_meta,
            ))
        return items

    def _forget_settled(self, state: MarketSettlement, plan: BatchPlan,
                        reholds: dict[UUID, UUID]) -> None:
        """Advance the read-ahead window past the batch, and its holds to what they are now."""
        state.spans = _after(state.spans, plan)
        for order in plan.orders:
            kept = [h for h in state.holds.get(order.order, ())
                    if h.id not in {hold for hold, _ in order.posts}]
            if order.rehold is not None:
                r = order.rehold
                kept.append(HoldRecord(r.id, order.order, r.asset, r.amount,
                                       r.wallet_account_id, r.clearing_account_id,
                                       plan.holds_through_seq))
            state.holds[order.order] = kept


def _rehold_transfer_ids(plan: BatchPlan, transfers) -> dict[UUID, UUID]:
    """Re-hold id -> the ledger's pending transfer, from the batch's result (item order)."""
    if not transfers:
        return {}
    reholds, index = {}, 0
    for order in plan.orders:
        index += len(order.posts)
        if order.rehold is not None:
            reholds[order.rehold.id] = transfers[index].id
            index += 1
    return reholds


def _after(spans: list[CommandSpan], plan: BatchPlan) -> list[CommandSpan]:
    """The spans that still hold something unsettled after `plan`."""
    left = []
    for span in spans:
        if span.seq <= plan.marks_through_seq:
            continue
        fills = tuple(f for f in span.fills if f.fill_no > plan.last_fill_no)
        left.append(CommandSpan(span.seq, fills, span.marks, span.complete))
    return left


@dataclass(frozen=True, slots=True)
class SettlementRun:
    fills: int
    seconds: float

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
    started = time.perf_counter()
    fills = settler.settle_pending()
    return SettlementRun(fills, time.perf_counter() - started)
