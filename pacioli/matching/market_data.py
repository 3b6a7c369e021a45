"""The public market data: the numbered stream of book changes, and L1/L2/L3 snapshots.

Every message changes the public book, and the book numbers them 1, 2, 3 … (`sequence`,
consecutive per book), so a client that holds a snapshot taken at sequence `s` applies
the messages after `s` in order and resnapshots when one is missing. Four types:

- `open`: an order now rests: add `size` at `price` on `side`, at the back of the queue.
- `match`: a trade: the resting order `maker_order_id` on `side` loses `size` at `price`.
  (`side` is the maker's: the side of the book that changes.)
- `change`: a resting order's size went from `old_size` to `new_size`; it keeps its place.
- `done`: a resting order leaves the book with `remaining_size` open (`reason` filled,
  cancelled, expired, self_trade, or replaced: an amend that lost its place, which
  is followed by the order's `open` again, and maybe `match`es first).

An L2 client adds `open.size`, subtracts `match.size` and `done.remaining_size`, and adds
`change.new_size - change.old_size`; an L3 client does the same per order. Orders that
never rest (filled or cancelled at once, stops waiting for their price) send no `open`
and no `done`; owners are never published.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from pacioli.matching.orders import Side


class OpenMessage:
    __slots__ = ("sequence", "ts", "order_id", "side", "price", "size")
    type = "open"

    def __init__(self, sequence: int, ts: int, order_id: int, side: Side, price: int, size: int):
        self.sequence = sequence
        self.ts = ts
        self.order_id = order_id
        self.side = side
        self.price = price
        self.size = size

    def as_dict(self) -> dict[str, object]:
        return {
            "type": "open", "sequence": self.sequence, "ts": self.ts, "order_id": self.order_id,
            "side": str(self.side), "price": self.price, "size": self.size,
        }

    def __repr__(self) -> str:
        return f"open#{self.sequence}({self.order_id} {self.side} {self.size}@{self.price})"


class MatchMessage:
    __slots__ = ("sequence", "ts", "maker_order_id", "taker_order_id", "side", "price", "size")
    type = "match"

    def __init__(
        self, sequence: int, ts: int, maker_order_id: int, taker_order_id: int, side: Side,
        price: int, size: int,
    ):
        self.sequence = sequence
        self.ts = ts
        self.maker_order_id = maker_order_id
        self.taker_order_id = taker_order_id
        self.side = side
        self.price = price
        self.size = size

    def as_dict(self) -> dict[str, object]:
        return {
            "type": "match", "sequence": self.sequence, "ts": self.ts,
            "maker_order_id": self.maker_order_id, "taker_order_id": self.taker_order_id,
            "side": str(self.side), "price": self.price, "size": self.size,
        }

    def __repr__(self) -> str:
        return (
            f"match#{self.sequence}(maker {self.maker_order_id} {self.side}, taker "
            f"{self.taker_order_id}, {self.size}@{self.price})"
        )


class ChangeMessage:
    __slots__ = ("sequence", "ts", "order_id", "side", "price", "old_size", "new_size")
    type = "change"

    def __init__(
        self, sequence: int, ts: int, order_id: int, side: Side, price: int, old_size: int,
        new_size: int,
    ):
        self.sequence = sequence
        self.ts = ts
        self.order_id = order_id
        self.side = side
        self.price = price
        self.old_size = old_size
        self.new_size = new_size

    def as_dict(self) -> dict[str, object]:
        return {
            "type": "change", "sequence": self.sequence, "ts": self.ts, "order_id": self.order_id,
            "side": str(self.side), "price": self.price, "old_size": self.old_size,
            "new_size": self.new_size,
        }

    def __repr__(self) -> str:
        return (
            f"change#{self.sequence}({self.order_id} {self.side} {self.old_size}->"
            f"{self.new_size}@{self.price})"
        )


class DoneMessage:
    __slots__ = ("sequence", "ts", "order_id", "side", "price", "remaining_size", "reason")
    type = "done"

    def __init__(
        self, sequence: int, ts: int, order_id: int, side: Side, price: int,
        remaining_size: int, reason: str,
    ):
        self.sequence = sequence
        self.ts = ts
        self.order_id = order_id
        self.side = side
        self.price = price
        self.remaining_size = remaining_size
        self.reason = reason

    def as_dict(self) -> dict[str, object]:
        return {
            "type": "done", "sequence": self.sequence, "ts": self.ts, "order_id": self.order_id,
            "side": str(self.side), "price": self.price, "remaining_size": self.remaining_size,
            "reason": self.reason,
        }

    def __repr__(self) -> str:
        return (
            f"done#{self.sequence}({self.order_id} {self.side} {self.reason} "
            f"{self.remaining_size}@{self.price})"
        )


MarketDataMessage = OpenMessage | MatchMessage | ChangeMessage | DoneMessage

# Reason of a `done` message only: an amend that lost the order's place in the queue.
REPLACED = "replaced"


class PriceLevel(NamedTuple):
    """One aggregated price level of an L2 snapshot."""

    price: int
    size: int
    orders: int


class BookEntry(NamedTuple):
    """One resting order of an L3 snapshot, in priority order."""

    order_id: int
    price: int
    size: int


@dataclass(frozen=True, slots=True)
class L1:
    """Best bid and ask (None when a side is empty) and the last trade price."""

    sequence: int
    bid_price: int | None
    bid_size: int
    ask_price: int | None
    ask_size: int
    last_price: int | None


@dataclass(frozen=True, slots=True)
class L2:
    """Aggregated depth, best first, to `depth` levels a side."""

    sequence: int
    bids: list[PriceLevel]
    asks: list[PriceLevel]


@dataclass(frozen=True, slots=True)
class L3:
    """Every resting order, best price first, in time priority within a price."""

    sequence: int
    bids: list[BookEntry]
    asks: list[BookEntry]


def apply_to_l3(book: dict[int, list[int]], message: MarketDataMessage) -> None:
    """Apply one message to a client-side L3 book `{order_id: [side, price, size]}`.

    A reference for clients and for the tests that prove the stream is enough: the
    dict's insertion order is the time priority, as in the real book.
    """
    if message.type == "open":
        book[message.order_id] = [message.side, message.price, message.size]
    elif message.type == "match":
        entry = book[message.maker_order_id]
        entry[2] -= message.size
    elif message.type == "change":
        book[message.order_id][2] = message.new_size
    else:
        del book[message.order_id]
