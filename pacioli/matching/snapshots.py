"""L1, L2 and L3 snapshots of a book, each stamped with the book's sequence number.

A client applies the market-data messages numbered after a snapshot's `sequence` to it
(see market_data.py). L2 reads the levels' running totals; L3 walks every live order.
"""

from __future__ import annotations

from itertools import islice

from pacioli.matching.execution import Engine
from pacioli.matching.levels import BookSide
from pacioli.matching.market_data import L1, L2, L3, BookEntry, PriceLevel


def l1(engine: Engine) -> L1:
    bid = engine.bids.best()
    ask = engine.asks.best()
    return L1(
        sequence=engine.sequence,
        bid_price=None if bid is None else bid.price,
        bid_size=0 if bid is None else bid.total,
        ask_price=None if ask is None else ask.price,
        ask_size=0 if ask is None else ask.total,
        last_price=engine.last_price,
    )


def l2(engine: Engine, depth: int) -> L2:
    return L2(
        sequence=engine.sequence,
        bids=depth_of(engine.bids, depth),
        asks=depth_of(engine.asks, depth),
    )


def depth_of(side: BookSide, depth: int) -> list[PriceLevel]:
    return [
        PriceLevel(level.price, level.total, level.count)
        for level in islice(side.levels_best_first(), max(depth, 0))
    ]


def l3(engine: Engine) -> L3:
    return L3(sequence=engine.sequence, bids=entries_of(engine.bids), asks=entries_of(engine.asks))


def entries_of(side: BookSide) -> list[BookEntry]:
    return [
        BookEntry(order.order_id, order.price, order.remaining)
        for level in side.levels_best_first()
        for order in level.live_orders()
    ]
