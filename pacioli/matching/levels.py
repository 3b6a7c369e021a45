"""One side of the book: price levels in a dict, their sort keys in a sorted list.

A level's key is its price on the bid side and minus its price on the ask side, so on
both sides the best level has the LARGEST key and sits at the end of `keys`: finding it
is `keys[-1]`, and removing it when it empties is `keys.pop()`. A new level is inserted
with `bisect.insort` (a memmove in C; new levels appear near the best price). A taker
crosses a level when the level's key is >= the taker's limit key (same sign rule).
Adding and removing orders is written out inline where it happens (`OrderBook.apply`,
`Engine.rest`, `Engine.remove_resting`, the taker loop): it is most of what a book does.

A level's orders are a deque in time priority. Cancelling marks the order dead
(`order.live = False`) and leaves it in the deque: matching pops the dead ones it meets at
the front, and a level that holds many more dead entries than live ones is compacted.
`count` and `total` count only live orders, so L2 needs no walk.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from pacioli.matching.orders import Order


class Level:
    """One price's orders. Built by `new_level` (written out in `OrderBook.apply`): no
    `__init__`, because levels come and go all the time around the spread (a class call
    that runs an `__init__` costs twice as much)."""

    __slots__ = ("price", "orders", "count", "total")

    price: int
    orders: deque[Order]
    count: int  # live orders
    total: int  # their open size

    def live_orders(self) -> Iterator[Order]:
        return (order for order in self.orders if order.live)

    def compact(self) -> None:
        """Drop the dead entries (done when they outnumber the live ones: bounds the deque)."""
        self.orders = deque(self.live_orders())


def new_level(price: int) -> Level:
    """An empty level at `price`."""
    level = Level()
    level.price = price
    level.orders = deque()
    level.count = 0
    level.total = 0
    return level


class BookSide:
    __slots__ = ("is_bid", "levels", "keys")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[int, Level] = {}
        self.keys: list[int] = []  # ascending; the best level's key is last

    def best(self) -> Level | None:
        return self.levels[self.keys[-1]] if self.keys else None

    def levels_best_first(self) -> Iterator[Level]:
        levels = self.levels
        return (levels[key] for key in reversed(self.keys))
