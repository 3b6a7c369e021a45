"""The records settlement works on: what it reads of the log and the holds, and the plan
of a batch it stores and posts (settlement_plan.py makes plans; settlement.py runs them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class FillRecord:
    fill_no: int
    command_seq: int
    size: int
    quote_amount: int
    taker_order: UUID
    maker_order: UUID
    taker_user_id: UUID
    maker_user_id: UUID
    taker_side: str
    taker_fee: int
    maker_fee: int
    buyer_rounding: int = 0  # of the buyer's quote amount + fee, what the platform pays

    def buyer(self) -> tuple[UUID, UUID, int]:
        """(order, user, fee) of the buying side."""
        if self.taker_side == "buy":
            return self.taker_order, self.taker_user_id, self.taker_fee
        return self.maker_order, self.maker_user_id, self.maker_fee

    def seller(self) -> tuple[UUID, UUID, int]:
        if self.taker_side == "buy":
            return self.maker_order, self.maker_user_id, self.maker_fee
        return self.taker_order, self.taker_user_id, self.taker_fee


@dataclass(frozen=True, slots=True)
class Mark:
    command_seq: int
    order: UUID
    need_after: int
    done: bool


@dataclass(frozen=True, slots=True)
class CommandSpan:
    """One logged command as settlement sees it: its fills and then its marks.

    `complete` is False when only the first of its fills were read: a cut may take those
    fills but not the command's marks, and stops there.
    """

    seq: int
    fills: tuple[FillRecord, ...]
    marks: tuple[Mark, ...]
    complete: bool = True


@dataclass(frozen=True, slots=True)
class HoldRecord:
    id: UUID
    order: UUID
    asset: str
    amount: int
    wallet_account_id: UUID
    clearing_account_id: UUID
    created_seq: int


@dataclass(frozen=True, slots=True)
class MarketAccounts:
    """The accounts a market's trade transfer uses; wallets are found per user."""

    base: str
    quote: str
    wallet: Callable[[UUID, str], UUID]
    clearing_base: UUID
    clearing_quote: UUID
    fee: UUID
    rounding: UUID


@dataclass(frozen=True, slots=True)
class NewHold:
    id: UUID
    order: UUID
    asset: str
    amount: int
    wallet_account_id: UUID
    clearing_account_id: UUID


@dataclass(frozen=True, slots=True)
class OrderSettlement:
    order: UUID
    asset: str  # what its holds hold: quote for a buy, base for a sell
    posts: tuple[tuple[UUID, int], ...]  # (hold id, amount posted); 0 voids the hold
    charged: int  # what the order's fills in the batch charge it (its holds pay it)
    shortfall: int  # what the rounding account pays for its fills on top
    rehold: NewHold | None
    done: bool  # the batch carries the order's last mark

    @property
    def item_count(self) -> int:
        return len(self.posts) + (self.rehold is not None)


@dataclass(frozen=True, slots=True)
class TradeLeg:
    account_id: UUID
    direction: str  # debit or credit
    amount: int
    asset: str


@dataclass(frozen=True, slots=True)
class BatchPlan:
    first_fill_no: int
    last_fill_no: int  # first_fill_no - 1 when the batch settles no fill
    marks_through_seq: int
    holds_through_seq: int
    orders: tuple[OrderSettlement, ...]
    transfers: tuple[tuple[TradeLeg, ...], ...]
    fill_count: int = field(default=0)
    # The re-holds' ledger ids are their own ids (`TransferSpec.id`), so the next batch
    # can name them before this one is posted. False for plans stored before that.
    chosen_ids: bool = False

    @property
    def item_count(self) -> int:
        return sum(o.item_count for o in self.orders) + len(self.transfers)


# The stored form of a plan (exchange_settlement_batches.plan): amounts as strings.


def plan_to_json(plan: BatchPlan) -> dict[str, Any]:
    return {
        "first_fill_no": plan.first_fill_no, "last_fill_no": plan.last_fill_no,
        "marks_through_seq": plan.marks_through_seq,
        "holds_through_seq": plan.holds_through_seq, "fill_count": plan.fill_count,
        "orders": [
            {
                "order": str(o.order), "asset": o.asset,
                "posts": [[str(hold), str(amount)] for hold, amount in o.posts],
                "charged": str(o.charged), "shortfall": str(o.shortfall), "done": o.done,
                "rehold": None if o.rehold is None else {
                    "id": str(o.rehold.id), "amount": str(o.rehold.amount),
                    "wallet": str(o.rehold.wallet_account_id),
                    "clearing": str(o.rehold.clearing_account_id),
                },
            }
            for o in plan.orders
        ],
        "transfers": [
            [[str(leg.account_id), leg.direction, str(leg.amount), leg.asset] for leg in legs]
            for legs in plan.transfers
        ],
        **({"chosen_ids": True} if plan.chosen_ids else {}),
    }


def plan_from_json(body: dict[str, Any]) -> BatchPlan:
    orders = []
    for o in body["orders"]:
        order = UUID(o["order"])
        rehold = o["rehold"]
        orders.append(OrderSettlement(
            order, o["asset"], tuple((UUID(h), int(a)) for h, a in o["posts"]),
            int(o["charged"]), int(o["shortfall"]),
            None if rehold is None else NewHold(
                UUID(rehold["id"]), order, o["asset"], int(rehold["amount"]),
                UUID(rehold["wallet"]), UUID(rehold["clearing"]),
            ),
            o["done"],
        ))
    transfers = tuple(
        tuple(TradeLeg(UUID(a), d, int(amount), asset) for a, d, amount, asset in legs)
        for legs in body["transfers"]
    )
    return BatchPlan(
        body["first_fill_no"], body["last_fill_no"], body["marks_through_seq"],
        body["holds_through_seq"], tuple(orders), transfers, body["fill_count"],
        body.get("chosen_ids", False),
    )
