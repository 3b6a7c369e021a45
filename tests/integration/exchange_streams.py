"""A seeded stream of exchange requests, for the conservation, rebuild and crash tests.

Limit orders on both sides around one price (so about half trade), market orders by
size and by funds, IOC, post-only, amends and cancels of the user's own open orders.
The same seed gives the same requests; they are applied through `Exchange` as a user
would (and some are refused, which is part of the stream).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pacioli.ledger import DomainError
from pacioli.matching.market import Market
from pacioli.matching.service import Exchange, OrderRequest

MID = 5_000_000  # 50,000.00 quote per base


def users_of(seed: int, count: int) -> list[UUID]:
    """Deterministic user ids, so two databases can hold the same users."""
    return [uuid.uuid5(uuid.NAMESPACE_URL, f"exchange-stream/{seed}/{n}") for n in range(count)]


@dataclass(frozen=True)
class Step:
    """One request: `kind` place/amend/cancel/cancel_all; `target` an earlier step's order."""

    number: int
    kind: str
    user: UUID
    fields: dict[str, Any]
    target: int | None = None


def steps(market: Market, users: list[UUID], seed: int, count: int) -> Iterator[Step]:
    rng = random.Random(seed)
    placed: list[tuple[int, UUID]] = []  # (step number, user) of limit orders
    for number in range(count):
        roll = rng.random()
        user = rng.choice(users)
        own = [n for n, u in placed if u == user]
        if roll < 0.12 and own:
            yield Step(number, "cancel", user, {}, rng.choice(own))
        elif roll < 0.20 and own:
            fields = {"size": market.size_increment * rng.randint(10, 60)}
            if rng.random() < 0.5:
                fields["price"] = MID + rng.randint(-6, 6)
            yield Step(number, "amend", user, fields, rng.choice(own))
        elif roll < 0.22:
            yield Step(number, "cancel_all", user, {"side": rng.choice([None, "buy", "sell"])})
        elif roll < 0.30:
            side = rng.choice(["buy", "sell"])
            fields = {"side": side, "type": "market"}
            if side == "buy" and rng.random() < 0.5:
                fields["funds"] = rng.randint(1_000, 300_000)
            else:
                fields["size"] = market.size_increment * rng.randint(10, 80)
            yield Step(number, "place", user, fields)
        else:
            side = rng.choice(["buy", "sell"])
            offset = rng.randint(0, 4)
            price = MID - offset if side == "buy" else MID + offset - 2
            fields = {"side": side, "type": "limit", "price": price,
                      "size": market.size_increment * rng.randint(10, 60)}
            if rng.random() < 0.1:
                fields["time_in_force"] = "ioc"
            elif rng.random() < 0.1:
                fields["post_only"] = True
            placed.append((number, user))
            yield Step(number, "place", user, fields)


def apply_step(exchange: Exchange, market: Market, step: Step,
               orders: dict[int, UUID], *, key_prefix: str = "stream") -> str:
    """Apply one step; its outcome ("ok" or a refusal's code). Keys derive from the step."""
    key = f"{key_prefix}:{step.number}"
    try:
        if step.kind == "place":
            request = OrderRequest(market.symbol, **step.fields)
            orders[step.number] = exchange.place_order(step.user, request,
                                                       idempotency_key=key).value.id
        elif step.kind == "cancel":
            exchange.cancel_order(step.user, _target(orders, step), idempotency_key=key)
        elif step.kind == "amend":
            exchange.amend_order(step.user, _target(orders, step), idempotency_key=key,
                                 **step.fields)
        else:
            exchange.cancel_all(step.user, market.symbol, step.fields["side"],
                                idempotency_key=key)
    except DomainError as refused:
        return refused.code
    return "ok"


def _target(orders: dict[int, UUID], step: Step) -> UUID:
    # A step whose target was refused aims at an order nobody has: order_not_found.
    return orders.get(step.target, uuid.UUID(int=step.target))
