"""Turning what the book did (a `Result`) into the rows that log it: pure.

Per fill: both fees (`market.fee` on the quote amount, maker and taker basis points).
Per order the command touched: its new state for `exchange_orders`, and a mark for
settlement — what it may still spend now (`holds.need`) and whether it is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from pacioli.ledger.domain.errors import invariant
from pacioli.ledger.domain.ids import uuid7
from pacioli.matching import holds
from pacioli.matching.market import Market
from pacioli.matching.persistence import LogEntry
from pacioli.matching.results import Result

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class LiveOrder:
    """What the service remembers of a live order between commands.

    `left`: what the order may still be charged — its holds less what its fills charged.
    It starts at the order's hold, grows by an amend's top-up, shrinks by each charge,
    and after every command drops to what the order still needs (`holds.need`), which
    releases the rest at settlement. Every step is fixed by the log, so a rebuild finds
    it again (the order's last mark).
    """

    id: UUID  # public id
    user_id: UUID
    side: str
    left: int = 0


def instant(ts: int) -> datetime:
    """A book timestamp (µs since the epoch) as a datetime."""
    return EPOCH + timedelta(microseconds=ts)


def micros(moment: datetime) -> int:
    """A datetime as µs since the epoch, in integer arithmetic."""
    return (moment - EPOCH) // timedelta(microseconds=1)


@dataclass(slots=True)
class Touch:
    filled_size: int = 0
    filled_quote: int = 0
    fee: int = 0


def build_entry(
    *, book, market: Market, live: dict[int, LiveOrder], command_row: dict[str, Any],
    result: Result, own_order_id: int | None, first_fill_no: int, placed_order_id: int | None,
    now: datetime,
) -> LogEntry:
    """The log entry of an applied command (`command_row` holds the command's own columns).

    `own_order_id` is the order the command names (placed, cancelled, amended), marked
    even when nothing else happened to it; `placed_order_id` the order it placed.
    """
    seq = command_row["seq"]
    symbol = market.symbol
    created_at = instant(command_row["ts"])
    touched: dict[int, Touch] = {}
    fills = []
    fill_no = first_fill_no
    for fill in result.fills:
        taker, maker = live[fill.taker_order_id], live[fill.maker_order_id]
        taker_fee = market.fee(fill.quote_amount, market.taker_fee_bps)
        maker_fee = market.fee(fill.quote_amount, market.maker_fee_bps)
        buyer, seller = (taker, maker) if fill.taker_side == "buy" else (maker, taker)
        buyer_rounding = _charge(buyer, seller, fill, taker_fee if buyer is taker else maker_fee)
        fills.append({
            "id": uuid7(), "market": symbol, "fill_no": fill_no, "command_seq": seq,
            "price": fill.price, "size": fill.size, "quote_amount": fill.quote_amount,
            "taker_order": taker.id, "maker_order": maker.id, "taker_user_id": taker.user_id,
            "maker_user_id": maker.user_id, "taker_side": str(fill.taker_side),
            "taker_fee": taker_fee, "maker_fee": maker_fee, "buyer_rounding": buyer_rounding,
            "created_at": created_at, "batch_id": None,
        })
        fill_no += 1
        for order_id, fee in ((fill.taker_order_id, taker_fee), (fill.maker_order_id, maker_fee)):
            touch = touched.setdefault(order_id, Touch())
            touch.filled_size += fill.size
            touch.filled_quote += fill.quote_amount
            touch.fee += fee
    done = {d.order_id: d.reason for d in result.done}
    others = [*done, *(o.order_id for o in result.opened), *(c.order_id for c in result.changed),
              *result.triggered]
    if own_order_id is not None:
        others.append(own_order_id)
    for order_id in others:
        touched.setdefault(order_id, Touch())
    marks, changes = [], []
    for order_id, touch in touched.items():
        order = live.get(order_id)
        invariant(order is not None, f"order {order_id} of {symbol} is known to the service")
        view = book.get_order(order_id)
        invariant((view is None) == (order_id in done), "an order is live or done, not both")
        order.left = min(order.left, holds.need(market, view))
        marks.append({
            "market": symbol, "command_seq": seq, "order": order.id,
            "need_after": order.left, "done": view is None,
        })
        changes.append({
            "b_id": order.id, "b_status": "done" if view is None else "open",
            "b_done_reason": done.get(order_id),
            "b_open_size": 0 if view is None else view.remaining_size,
            "b_price": None if view is None else view.price,
            "b_size": None if view is None or not view.size else view.size,
            "b_filled_size": touch.filled_size, "b_filled_quote": touch.filled_quote,
            "b_fee": touch.fee, "b_placed_seq": seq if order_id == placed_order_id else None,
            "b_updated_at": now,
        })
    return LogEntry(command=command_row, fills=fills, marks=marks, order_changes=changes)


def _charge(buyer: LiveOrder, seller: LiveOrder, fill, buyer_fee: int) -> int:
    """Charge both orders for a fill; what of the buyer's share the platform pays.

    A sell is charged its size (its hold is exact); a buy its quote amount and fee, but
    never more than it has left — the rest (per-fill rounding, a few minor units over an
    order's life) is the platform's.
    """
    seller.left -= fill.size
    invariant(seller.left >= 0, "a sell is never charged more than it holds")
    nominal = fill.quote_amount + buyer_fee
    charged = min(nominal, buyer.left)
    buyer.left -= charged
    return nominal - charged
