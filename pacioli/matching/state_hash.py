"""`state_hash`: one digest of everything that decides what a book does next.

It covers the clock, the sequence, the last trade price, the last order id, every
resting order in priority order (bids then asks, best level first, time order within a
level) and every waiting stop (by order id), with all their fields. Two books that
received the same commands have the same hash; a rebuilt book proves it matches the one
that was lost by its hash. O(orders); computed on demand, never per command.
"""

from __future__ import annotations

from hashlib import blake2b

from pacioli.matching.execution import Engine
from pacioli.matching.orders import Order


def order_fields(order: Order) -> tuple[object, ...]:
    return (
        order.order_id, order.owner, str(order.side), str(order.type), order.price,
        order.stop_price, order.size, order.remaining, order.filled, order.cancelled,
        order.funds, str(order.tif), order.expires_at, order.post_only, str(order.stp),
        order.ts,
    )


def state_hash(engine: Engine) -> str:
    digest = blake2b(digest_size=32)
    market = engine.market
    header = (
        market.symbol, engine.clock, engine.sequence, engine.last_price, engine.last_order_id,
    )
    digest.update(repr(header).encode())
    for side in (engine.bids, engine.asks):
        digest.update(b"|side")
        for level in side.levels_best_first():
            digest.update(repr((level.price, level.count, level.total)).encode())
            for order in level.live_orders():
                digest.update(repr(order_fields(order)).encode())
    digest.update(b"|stops")
    for order_id in sorted(engine.stops):
        digest.update(repr(order_fields(engine.stops[order_id])).encode())
    return digest.hexdigest()
