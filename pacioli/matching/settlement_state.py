"""A market's settlement state in memory, and how each planned batch moves it on.

The database is the truth on restart (`Settler.resume` reloads it); in between, the
settler keeps what it read ahead of the log (the window of spans), each touched order's
holds as they will be once the batches planned so far are posted, and the ledger ids of
those holds, so that it can plan the next batch while the last is still being posted.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID, uuid5

from pacioli.matching.market import Market
from pacioli.matching.settlement_records import (
    BatchPlan,
    CommandSpan,
    HoldRecord,
    MarketAccounts,
)


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
    position: Position = field(default_factory=Position)  # what is planned
    settled_through_seq: int = 0  # commands whose fills and marks are all posted
    spans: list[CommandSpan] = field(default_factory=list)  # the window read ahead
    holds: dict[UUID, list[HoldRecord]] = field(default_factory=dict)  # as after the plans
    hold_transfers: dict[UUID, UUID] = field(default_factory=dict)  # hold id -> pending id
    unrecorded: int = 0  # batches planned and not yet recorded
    settled_when_recorded: int = 0  # a position to call settled once they all are
    needs_resume: bool = True  # load from the database (and finish planned batches) first
    post_failed: bool = False  # a post of this drain failed: post nothing queued behind it
    bound_ratio: float = 2.0  # cut bound / items it turned out to need (see _fitting_cut)


def advance(state: MarketSettlement, plan: BatchPlan) -> None:
    """Move the read-ahead window past `plan`, and its holds to what they are after it."""
    state.spans = after(state.spans, plan)
    for order in plan.orders:
        resolved = {hold for hold, _ in order.posts}
        kept = [h for h in state.holds.get(order.order, ()) if h.id not in resolved]
        if order.rehold is not None:
            r = order.rehold
            kept.append(HoldRecord(r.id, order.order, r.asset, r.amount,
                                   r.wallet_account_id, r.clearing_account_id,
                                   plan.holds_through_seq))
        state.holds[order.order] = kept


def apply_plan(holds: dict[UUID, list[HoldRecord]], transfers: dict[UUID, UUID],
               plan: BatchPlan, orders: set[UUID]) -> None:
    """Bring holds read from the database (and their ledger ids, `transfers`) to what they
    are once `plan` is posted, for the orders in `orders`: its resolved holds go, its
    re-holds come (unless already there: a no-op for a batch already recorded)."""
    for order in plan.orders:
        resolved = {hold for hold, _ in order.posts}
        for hold in resolved:
            transfers.pop(hold, None)
        if order.order not in orders:
            continue
        kept = [h for h in holds.get(order.order, ()) if h.id not in resolved]
        r = order.rehold
        if r is not None and all(h.id != r.id for h in kept):
            kept.append(HoldRecord(r.id, order.order, r.asset, r.amount,
                                   r.wallet_account_id, r.clearing_account_id,
                                   plan.holds_through_seq))
        holds[order.order] = kept


def rehold_ids(batch_id: UUID) -> Callable[[], UUID]:
    """Ids for a batch's re-holds: derived from the batch's (uuid5), so no randomness per
    hold (a batch makes a hundred) and unique as the batch id is."""
    counter = itertools.count()
    return lambda: uuid5(batch_id, str(next(counter)))


def remember_reholds(state: MarketSettlement, plan: BatchPlan, transfers: list) -> None:
    state.hold_transfers.update(rehold_transfer_ids(plan, transfers))


def rehold_transfer_ids(plan: BatchPlan, transfers) -> dict[UUID, UUID]:
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


def after(spans: list[CommandSpan], plan: BatchPlan) -> list[CommandSpan]:
    """The spans that still hold something unsettled after `plan` (only the head of the
    window changes: the spans it settled go, a span it settled in part is trimmed)."""
    start = 0
    while start < len(spans) and spans[start].seq <= plan.marks_through_seq:
        start += 1
    if start == len(spans):
        return []
    head = spans[start]
    if head.fills and head.fills[0].fill_no <= plan.last_fill_no:
        fills = tuple(f for f in head.fills if f.fill_no > plan.last_fill_no)
        return [CommandSpan(head.seq, fills, head.marks, head.complete), *spans[start + 1:]]
    return spans[start:]
