"""What callers of the exchange service send and get back: order requests, orders, fills.

All amounts are ints of minor units (sizes in base, prices per whole base unit and
amounts in quote); only `api/schemas` turns them into decimal strings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order to place: the book's fields (see docs/exchange.md, "Order types").

    `funds`, for a market buy by funds, is what the user spends in all, fees included:
    the book gets it less the largest taker fee (holds.split_funds).
    """

    market: str
    side: str
    type: str = "limit"
    size: int | None = None
    price: int | None = None
    funds: int | None = None
    stop_price: int | None = None
    time_in_force: str = "gtc"
    expires_at: datetime | None = None
    post_only: bool = False
    stp: str = "dc"

    def request_hash(self) -> str:
        """SHA-256 of the request's fields, the check behind "same key, same request"."""
        body = {k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in asdict(self).items()}
        return _digest("place", body)


def request_hash(kind: str, **fields: Any) -> str:
    return _digest(kind, {k: str(v) if v is not None else None for k, v in fields.items()})


def _digest(kind: str, body: dict[str, Any]) -> str:
    text = json.dumps({"kind": kind, **body}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order as its owner sees it: what was asked, and what the book made of it.

    `status`: `open` (resting, or a stop waiting for its price) or `done`, with
    `done_reason` (filled, cancelled, expired, self_trade, unfilled). `filled_quote` is
    the sum of its fills' quote amounts; `fee` the sum of its fees (quote asset).
    """

    id: UUID
    market: str
    order_number: int  # the book's id for it
    user_id: UUID
    side: str
    type: str
    time_in_force: str
    post_only: bool
    stp: str
    price: int | None
    size: int | None
    funds: int | None
    stop_price: int | None
    expires_at: datetime | None
    status: str
    done_reason: str | None
    open_size: int
    filled_size: int
    filled_quote: int
    fee: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row) -> OrderView:
        return cls(
            id=row.id, market=row.market, order_number=row.order_id, user_id=row.user_id,
            side=row.side, type=row.type, time_in_force=row.time_in_force,
            post_only=row.post_only, stp=row.stp, price=row.price, size=row.size,
            funds=row.funds, stop_price=row.stop_price, expires_at=row.expires_at,
            status=row.status, done_reason=row.done_reason, open_size=row.open_size,
            filled_size=row.filled_size, filled_quote=row.filled_quote, fee=row.fee,
            created_at=row.created_at, updated_at=row.updated_at,
        )


@dataclass(frozen=True, slots=True)
class FillView:
    """One of a user's trades: their order, side and role in it, and their fee.

    `settled`: the ledger has moved its money (its settlement batch is posted).
    """

    id: UUID
    market: str
    fill_no: int
    order_id: UUID
    side: str
    liquidity: str  # taker or maker
    price: int
    size: int
    quote_amount: int
    fee: int
    settled: bool
    created_at: datetime

    @classmethod
    def of(cls, row, user_id: UUID) -> FillView:
        taker = row.taker_user_id == user_id
        other_side = "sell" if row.taker_side == "buy" else "buy"
        return cls(
            id=row.id, market=row.market, fill_no=row.fill_no,
            order_id=row.taker_order if taker else row.maker_order,
            side=row.taker_side if taker else other_side,
            liquidity="taker" if taker else "maker",
            price=row.price, size=row.size, quote_amount=row.quote_amount,
            fee=row.taker_fee if taker else row.maker_fee, settled=bool(row.settled),
            created_at=row.created_at,
        )
