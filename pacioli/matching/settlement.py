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

A crash between 1 and 3 leaves `planned` batches; `resume` posts them again in order —
the same items under the same key, so the ledger replays those that had committed — and
records them.

A market's batches are planned ahead of the ledger (up to PLANNED_AHEAD_MAX, each stored
before it is sent) and sent to it in groups, in order (`Ledger.submit_linked_batches`): a
batch's re-holds carry ids we choose (their hold ids), so the next batch can post them
before this one is answered, and the ledger's writer packs the batches waiting into one
transaction. Batches are recorded in order, on the planning thread, as their answers
come. (Plans stored before re-holds had chosen ids are posted the old way, one at a
time by the poster thread, which learns a batch's re-hold ids from its result.)

`settle_pending()` settles everything matched so far on the calling thread;
`settled_fills_per_second` times it, for the bench.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
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
    apply_plan,
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
# Batches of a market planned (and stored) and not yet recorded: those in the ledger and
# those waiting in its queue. Three groups: the ledger answers a transaction's callers
# only once the next one's COMMIT is sent, so with two the planner often had nothing
# queued when the ledger came free (writer busy 69-73% of the drain; 85-88% with three).
PLANNED_AHEAD_MAX = 12
# Batches sent to the ledger in one submission (so they share its transactions): the
# next group is planned and sent while the last is in the ledger.
SENT_TOGETHER_MAX = 4


def settle_key(batch_id: UUID) -> str:
    return f"exchange:settle:{batch_id}"


class Settler:
    """Plans, posts and records settlement batches for every market of an exchange.

    A market drains as a pipeline: while the ledger posts batch k, batches k+1 … are
    planned (and stored) and queued for the poster, which sends k+1 to the ledger as
    soon as k comes back; k is recorded meanwhile. A window of the log is read while
    batches are still in flight (`_read_window`). The ledger, the slowest step, is never
    left waiting for our own reads and writes.
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
        queued: deque[tuple[Planned, Callable[[], list]]] = deque()  # in the ledger, in order
        state.post_failed = False
        settled = None
        try:
            while True:
                while len(queued) + SENT_TOGETHER_MAX <= PLANNED_AHEAD_MAX:
                    group = self._plan_group(state, [p.plan for p, _ in queued])
                    queued.extend(zip(group, self._send(state, group), strict=True))
                    if len(group) < SENT_TOGETHER_MAX:
                        break  # the log is planned to its end
                if not queued:
                    return settled
                settled = (settled or 0) + self._record_answered(state, queued)
        except BaseException:
            state.post_failed = True  # the batches still queued are not posted
            for _, posted in queued:  # wait for those in the ledger, before memory is reset
                with contextlib.suppress(BaseException):
                    posted()
            raise

    def _plan_group(self, state: MarketSettlement, unrecorded: list[BatchPlan]) -> list[Planned]:
        """Plan up to SENT_TOGETHER_MAX batches and store them in one transaction."""
        group: list[Planned] = []
        with store.transaction(self._engine) as cursor:
            while len(group) < SENT_TOGETHER_MAX:
                planned = self._plan(state, unrecorded + [p.plan for p in group], cursor=cursor)
                if planned is None:
                    break
                group.append(planned)
        return group

    def _record_answered(self, state: MarketSettlement, queued: deque) -> int:
        """Wait for the first queued batch; record it and every batch behind it already
        answered, in one transaction; the fills they settled. A batch that failed is
        raised after those before it are recorded."""
        answered, failure = [], None
        while queued and (not answered or getattr(queued[0][1], "done", bool)()):
            planned, posted = queued[0]
            try:
                answered.append((planned, posted()))
            except BaseException as error:  # noqa: BLE001 - raised below, in turn
                failure = error
                break
            queued.popleft()
        if answered:
            with store.transaction(self._engine) as cursor:
                for planned, transfers in answered:
                    self._record(state, planned, transfers, cursor=cursor)
            for planned, _ in answered:
                self._recorded(state, planned)
        if failure is not None:
            raise failure
        return sum(planned.plan.fill_count for planned, _ in answered)

    def _send(self, state: MarketSettlement, group: list[Planned]) -> list[Callable[[], list]]:
        """Send batches to the ledger, together; for each, what waits for its transfers.

        Batches whose re-holds carry ids of our choosing (`chosen_ids`) go at once, in one
        submission: the batches behind name those re-holds by the same ids, so several of
        a market's batches are in the ledger together, in order, and its writer packs them
        into one transaction. An older plan is posted by the poster thread once the batch
        before it came back (its re-holds' ids are the ledger's, known only then).
        """
        waits: list[Callable[[], list]] = []
        prepared = []
        for planned in group:
            if not planned.plan.chosen_ids:
                waits.append(self._poster.submit(self._post_in_turn, state, planned).result)
                continue
            if state.post_failed:
                waits.append(_raise(SettlementStopped("an earlier batch failed to post")))
                continue
            try:
                prepared.append((len(waits), self._post(state, planned, wait=False)))
                waits.append(_raise(SettlementStopped("not sent")))  # replaced below
            except Exception as error:  # noqa: BLE001 - raised in turn, after those before
                state.post_failed = True  # nothing behind it is sent
                waits.append(_raise(error))
        if prepared:
            try:
                in_flight = self._ledger.submit_linked_batches(
                    [(items, key) for _, (items, key) in prepared],
                    client_id=EXCHANGE_CLIENT_ID,
                )
            except Exception as error:  # noqa: BLE001 - raised in turn
                state.post_failed = True
                in_flight = [error] * len(prepared)
            sent = time.perf_counter()
            for (index, (items, _)), flight in zip(prepared, in_flight, strict=True):
                waits[index] = (_raise(flight) if isinstance(flight, Exception)
                                else self._answer_of(state, flight, len(items), sent))
        return waits

    def _answer_of(self, state: MarketSettlement, in_flight, item_count: int,
                   sent: float) -> Callable[[], list]:
        def posted() -> list:
            try:
                transfers = in_flight.result().value
            except BaseException:
                state.post_failed = True
                raise
            self.stats.record_overlapped(item_count, sent, time.perf_counter())
            return transfers

        posted.done = in_flight.done
        return posted

    # Planning.

    def _plan(self, state: MarketSettlement, unrecorded: Sequence[BatchPlan], *,
              cursor=None) -> Planned | None:
        """Plan and store the next batch; None when nothing is left. `unrecorded` are the
        plans of the batches planned and not yet recorded, in order (see _read_window)."""
        while True:
            batch_id = uuid7()
            plan = self._cut(state, rehold_ids(batch_id), unrecorded)
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
            plan = replace(plan, chosen_ids=True)
            for order in plan.orders:  # their ledger ids are their own (see _send)
                if order.rehold is not None:
                    state.hold_transfers[order.rehold.id] = order.rehold.id
            planned = Planned(batch_id, position.number + 1, plan)
            store.insert_planned(self._engine, state.market.symbol, planned.id,
                                 planned.number, plan, now=self._clock(), cursor=cursor)
            state.position = Position(planned.number, plan.last_fill_no,
                                      plan.marks_through_seq)
            state.unrecorded += 1
            return planned

    def _cut(self, state: MarketSettlement, new_id: Callable[[], UUID],
             unrecorded: Sequence[BatchPlan]) -> BatchPlan | None:
        """The plan of the next cut of the stream (reading the window again if used up)."""
        position = state.position
        for attempt in range(2):
            if not state.spans or attempt:
                self._read_window(state, unrecorded)
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
        counts = HoldCounts(state.holds)
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

    def _read_window(self, state: MarketSettlement, unrecorded: Sequence[BatchPlan]) -> None:
        """Read the stream after the planned position, and its orders' holds as they will
        be once every batch planned so far is posted.

        The database has the holds as the recorded batches left them; the batches planned
        and not yet recorded (`unrecorded`, in order: they may be in the ledger now) are
        applied to them as `advance` applied them to memory. So the window is read while
        batches are in flight, and the ledger is not left idle while it is.
        """
        position = state.position
        state.spans = store.read_spans(
            self._engine, state.market.symbol, last_fill_no=position.last_fill_no,
            marks_through_seq=position.marks_through_seq,
            commands_max=WINDOW_COMMANDS_MAX, fills_max=WINDOW_FILLS_MAX,
        )
        orders = {f.taker_order for s in state.spans for f in s.fills}
        orders |= {f.maker_order for s in state.spans for f in s.fills}
        orders |= {m.order for s in state.spans for m in s.marks}
        holds, transfers = store.open_holds(self._engine, orders)
        for plan in unrecorded:
            apply_plan(holds, transfers, plan, orders)
        state.holds = holds
        # Merged, not replaced: the poster adds the ledger ids of the re-holds it posts.
        state.hold_transfers.update(transfers)

    # Posting and recording.

    def _post(self, state: MarketSettlement, planned: Planned, *, wait: bool = True):
        """Post the batch in the ledger (a replay, if it was posted before a crash) and
        return its transfers; with `wait=False`, only its items and key, for `_send`."""
        items = self._items(state, planned)
        key = settle_key(planned.id)
        if not wait:
            return items, key
        started = time.perf_counter()
        transfers = self._ledger.linked_batch(
            items, idempotency_key=key, client_id=EXCHANGE_CLIENT_ID,
        ).value
        self.stats.record(len(items), time.perf_counter() - started)
        return transfers

    def _post_in_turn(self, state: MarketSettlement, planned: Planned) -> list:
        """Post a batch queued behind others (on the poster thread, which posts a market's
        batches one after another, in order) and remember the ledger ids of its re-holds,
        which the next batch may post. Once a post failed, the batches behind it are
        left planned (a restart, or the next drain after `resume`, posts them)."""
        if state.post_failed:
            raise SettlementStopped("an earlier batch of the market failed to post")
        try:
            transfers = self._post(state, planned)
        except BaseException:
            state.post_failed = True
            raise
        remember_reholds(state, planned.plan, transfers)
        return transfers

    def _record(self, state: MarketSettlement, planned: Planned, transfers: list,
                *, cursor=None) -> None:
        """Record the batch as posted (in `cursor`'s transaction, if given; then call
        `_recorded` once it committed)."""
        reholds = rehold_transfer_ids(planned.plan, transfers)
        store.record_posted(
            self._engine, state.market, planned.id, planned.plan, reholds, now=self._clock(),
            cursor=cursor,
        )
        if cursor is None:
            self._recorded(state, planned)

    def _recorded(self, state: MarketSettlement, planned: Planned) -> None:
        """Memory after the batch's record committed."""
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
                    transfer_id=r.id if plan.chosen_ids else None,
                ))
        for legs in plan.transfers:
            items.append(TransferSpec(
                tuple((debit if leg.direction == "debit" else credit)(
                    leg.account_id, leg.amount, leg.asset) for leg in legs),
                meta,
            ))
        return items


def _raise(error: BaseException) -> Callable[[], list]:
    def fail() -> list:
        raise error

    return fail


class SettlementStopped(Exception):
    """A batch was not posted because one before it failed; it stays planned."""


class HoldCounts(Mapping[UUID, int]):
    """Each order's number of unresolved holds, read from the holds themselves when asked
    (a cut asks about the orders it meets, a window holds thousands)."""

    __slots__ = ("_holds",)

    def __init__(self, holds: dict[UUID, list]) -> None:
        self._holds = holds

    def __getitem__(self, order: UUID) -> int:
        return len(self._holds[order])

    def get(self, order: UUID, default: int | None = None) -> int | None:
        holds = self._holds.get(order)
        return default if holds is None else len(holds)

    def __iter__(self) -> Iterator[UUID]:
        return iter(self._holds)

    def __len__(self) -> int:
        return len(self._holds)


@dataclass(slots=True)
class PostStats:
    """What the settler's ledger posts took, since it started (for the bench)."""

    batches: int = 0
    items: int = 0
    seconds: float = 0.0

    _busy_until: float = 0.0  # perf_counter time the last overlapped post came back

    def record(self, items: int, seconds: float) -> None:
        self.batches += 1
        self.items += items
        self.seconds += seconds

    def record_overlapped(self, items: int, sent: float, answered: float) -> None:
        """A post sent while earlier ones were in the ledger: only the time not already
        counted for them is added, so `seconds` stays the time the ledger was busy."""
        self.record(items, max(0.0, answered - max(sent, self._busy_until)))
        self._busy_until = max(self._busy_until, answered)


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
