"""Refunds of captured orders: a shipped order the shopper cancelled, returns, and a
supplier's partial refunds; to the card the order was paid with or to the wallet.

Steps (docs/commerce.md, "Refunds"):

1. **Claim**, with the order's row locked: the refunds of an order (returns asked for
   included) never add up to more than was captured (`refund_exceeds_captured`). A
   return first waits `requested` until the supplier receives the goods (the units are
   put back on sale then); the others start `created`. A refund becomes `created` only
   while no other refund of the order is moving (`refund_in_progress`), and records what
   the earlier refunds took (`refunded_before_minor`), so the split reversal
   (order_split.refund_shares, cumulative) is fixed and replays the same.
2. **Move**: a card refund first asks the gateway (`order_refund:<id>`), then one ledger
   transfer with the same key takes each payee's share back (supplier and reseller
   pending settlement, fee revenue, tax payable, rounding) and credits the wallet or, for
   the card, the processor's clearing account.
3. **Finish** `succeeded` (the order's refunded total grows, negative settlement items
   are queued for the supplier and resellers, `commerce_order.refunded`) or `failed`.

An unreachable gateway leaves the refund `created`; `finish_unfinished` (a periodic job)
moves it with the same keys.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert

from pacioli.commerce import inventory
from pacioli.commerce import order_errors as oe
from pacioli.commerce.order_payments import (
    CARD,
    REFUND_MARGIN_SOURCE,
    REFUND_SOURCE,
    WALLET,
    OrderPayments,
    record_settlement_items,
)
from pacioli.commerce.order_records import announce, shares_of
from pacioli.commerce.order_split import refund_shares, returned_goods_minor
from pacioli.commerce.order_tables import (
    commerce_order_lines,
    commerce_order_refund_lines,
    commerce_order_refunds,
    commerce_orders,
)
from pacioli.gateways import base as gw
from pacioli.gateways.base import GatewayStatus
from pacioli.ledger import DomainError
from pacioli.ledger.domain.ids import uuid7
from pacioli.payments import records

log = logging.getLogger(__name__)

MOVING = ("created", "pending")
REFUNDABLE = ("shipped", "delivered", "partially_returned", "returned", "cancelled")
RETURNABLE = ("delivered", "partially_returned")
CANCELLATION_KEY = "cancellation"
SWEEP_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Refund:
    id: UUID
    order_id: UUID
    user_id: UUID
    supplier_id: UUID
    currency: str
    reason: str  # cancellation, return, supplier
    destination: str  # wallet, card
    amount_minor: int
    status: str  # requested, created, pending, succeeded, failed
    failure_code: str | None
    transfer_id: UUID | None
    created_at: datetime
    completed_at: datetime | None
    lines: tuple[tuple[UUID, int], ...]  # (order line id, units) a return sends back


@dataclass(frozen=True, slots=True)
class RefundAnswer:
    value: Refund
    replayed: bool


class Refunds:
    """Refunds and returns of orders (steps in the module docstring)."""

    def __init__(self, engine: Engine, payments: OrderPayments, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._engine = engine
        self._payments = payments
        self._clock = clock

    # Asking.

    def request_return(self, user_id: UUID, order_id: UUID, lines: Sequence[tuple[UUID, int]],
                       *, destination: str | None, idempotency_key: str) -> RefundAnswer:
        """Ask to send units of a delivered order back; refunded when the supplier
        receives them. Raises: OrderNotFound, OrderNotReturnable, InvalidReturn,
        RefundDestinationUnavailable, RefundExceedsCaptured, IdempotencyKeyReusedForOrder.
        """
        wanted = _checked_lines(lines)
        request_hash = records.request_hash("return", sorted(wanted.items()), destination)
        replay = self._replay(order_id, ("user", user_id), idempotency_key, request_hash)
        if replay is not None:
            return replay
        with self._engine.begin() as connection:
            order = _locked_order(connection, order_id, ("user", user_id))
            if order.status not in RETURNABLE or order.payment_status != "captured":
                raise oe.OrderNotReturnable(f"order {order_id} is {order.status}")
            amount = self._returned_amount(connection, order, wanted)
            refund = self._insert(connection, order, reason="return",
                                  destination=_destination(order, destination),
                                  amount_minor=amount, status="requested",
                                  idempotency_key=idempotency_key, request_hash=request_hash)
            connection.execute(insert(commerce_order_refund_lines), [
                {"refund_id": refund.id, "line_id": line_id, "quantity": quantity}
                for line_id, quantity in sorted(wanted.items())
            ])
            announce(connection, order, "return_requested", at=self._clock(),
                     extra=_refund_payload(refund))
        return RefundAnswer(self.get(refund.id), False)

    def receive_return(self, supplier_id: UUID, order_id: UUID, refund_id: UUID) -> Refund:
        """The supplier has the goods back: restock them and refund. Receiving again
        returns the refund. Raises: OrderNotFound, RefundNotFound (as OrderNotFound),
        RefundInProgress."""
        now = self._clock()
        with self._engine.begin() as connection:
            order = _locked_order(connection, order_id, ("supplier", supplier_id))
            refund = self._refund_row(connection, refund_id, order_id)
            if refund.status == "requested":
                self._start_moving(connection, order, refund_id)
                returned = connection.execute(
                    select(commerce_order_refund_lines.c.line_id,
                           commerce_order_refund_lines.c.quantity,
                           commerce_order_lines.c.variant_id)
                    .join(commerce_order_lines,
                          commerce_order_lines.c.id == commerce_order_refund_lines.c.line_id)
                    .where(commerce_order_refund_lines.c.refund_id == refund_id)
                ).all()
                inventory.restock(connection, order.checkout_id,
                                  [(row.variant_id, row.quantity) for row in returned])
                self._mark_returned(connection, order, now)
        return self.advance(refund_id)

    def refund_by_supplier(self, supplier_id: UUID, order_id: UUID, amount_minor: int | None,
                           *, idempotency_key: str) -> RefundAnswer:
        """Give (part of) a captured order back to the shopper, by the original method.

        `amount_minor` None refunds all that is left. Raises: OrderNotFound,
        InvalidOrderRequest, OrderNotReturnable (nothing captured), RefundExceedsCaptured,
        RefundInProgress, IdempotencyKeyReusedForOrder.
        """
        if amount_minor is not None and (type(amount_minor) is not int or amount_minor <= 0):
            raise oe.InvalidOrderRequest("a refund is a positive amount")
        request_hash = records.request_hash("supplier", amount_minor)
        replay = self._replay(order_id, ("supplier", supplier_id), idempotency_key,
                              request_hash)
        if replay is not None:
            return replay
        with self._engine.begin() as connection:
            order = _locked_order(connection, order_id, ("supplier", supplier_id))
            refund = self._claim_in(connection, order, reason="supplier",
                                    destination=order.payment_method, amount_minor=amount_minor,
                                    idempotency_key=idempotency_key, request_hash=request_hash)
        return RefundAnswer(self.advance(refund.id), False)

    def claim_cancellation(self, connection: Connection, order, destination: str) -> UUID:
        """In the transaction that cancels a shipped order: a refund of all of it."""
        refund = self._claim_in(connection, order, reason="cancellation",
                                destination=destination, amount_minor=None,
                                idempotency_key=CANCELLATION_KEY,
                                request_hash=records.request_hash("cancellation", destination))
        return refund.id

    # Reading.

    def get(self, refund_id: UUID) -> Refund:
        with self._engine.connect() as connection:
            return _refund(connection, self._refund_row(connection, refund_id, None))

    def list(self, order_id: UUID) -> list[Refund]:
        t = commerce_order_refunds
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(t).where(t.c.order_id == order_id).order_by(t.c.id)
            ).all()
            return [_refund(connection, row) for row in rows]

    # Moving.

    def advance(self, refund_id: UUID) -> Refund:
        """Move a created refund's money (gateway, then ledger) and finish it."""
        refund = self.get(refund_id)
        if refund.status not in MOVING:
            return refund
        with self._engine.connect() as connection:
            order = connection.execute(
                select(commerce_orders).where(commerce_orders.c.id == refund.order_id)
            ).one()
            shares = shares_of(connection, order.id)
            before = connection.execute(
                select(commerce_order_refunds.c.refunded_before_minor)
                .where(commerce_order_refunds.c.id == refund_id)
            ).scalar_one()
        if refund.destination == CARD:
            try:
                result = self._payments.refund_card(refund.id, order.gateway_reference,
                                                    refund.amount_minor)
            except gw.GatewayUnavailable:
                return refund  # The sweep asks again with the same key.
            except gw.GatewayError as refusal:
                return self._finish(refund, "failed", failure_code=refusal.code)
            if result.status is not GatewayStatus.REFUNDED:
                return self._finish(refund, "failed",
                                    failure_code=str(result.decline_code or result.status))
        taken = refund_shares(shares, refunded_before_minor=int(before),
                              amount_minor=refund.amount_minor)
        try:
            transfer = self._payments.refund(
                refund.id, order_id=order.id, user_id=order.user_id,
                destination=refund.destination, currency=order.currency,
                amount_minor=refund.amount_minor, taken=taken,
            )
        except DomainError as rejection:
            log.error("refund %s refused by the ledger: %s", refund.id, rejection.code)
            return self._finish(refund, "failed", failure_code=rejection.code)
        return self._finish(refund, "succeeded", transfer_id=transfer.id, taken=taken)

    def finish_unfinished(self, now: datetime | None = None, *,
                          limit: int = SWEEP_LIMIT) -> int:
        """Move refunds left created or pending (a periodic job); how many were looked at."""
        t = commerce_order_refunds
        with self._engine.connect() as connection:
            ids = connection.execute(
                select(t.c.id).where(t.c.status.in_(MOVING)).order_by(t.c.updated_at)
                .limit(limit)
            ).scalars().all()
        for refund_id in ids:
            self.advance(refund_id)
        return len(ids)

    # Steps.

    def _claim_in(self, connection, order, *, reason, destination, amount_minor,
                  idempotency_key, request_hash):
        """Record a `created` refund of a locked, captured order (all that is left when
        `amount_minor` is None)."""
        if order.payment_status != "captured" or order.status not in REFUNDABLE:
            raise oe.OrderNotReturnable(f"nothing of order {order.id} was captured")
        left = int(order.captured_minor) - self._claimed(connection, order.id)
        amount = left if amount_minor is None else amount_minor
        if amount <= 0 or amount > left:
            raise oe.RefundExceedsCaptured(f"{left} minor units of order {order.id} are left"
                                           " to refund")
        refund = self._insert(connection, order, reason=reason, destination=destination,
                              amount_minor=amount, status="requested",
                              idempotency_key=idempotency_key, request_hash=request_hash)
        self._start_moving(connection, order, refund.id)
        return refund

    def _start_moving(self, connection, order, refund_id: UUID) -> None:
        """requested → created, fixing what earlier refunds took. Raises: RefundInProgress."""
        t = commerce_order_refunds
        moving = connection.execute(
            select(t.c.id).where(t.c.order_id == order.id, t.c.status.in_(MOVING),
                                 t.c.id != refund_id)
        ).first()
        if moving is not None:
            raise oe.RefundInProgress(f"refund {moving.id} of order {order.id} is moving")
        connection.execute(
            update(t).where(t.c.id == refund_id, t.c.status == "requested")
            .values(status="created", refunded_before_minor=order.refunded_minor,
                    updated_at=self._clock())
        )

    def _returned_amount(self, connection, order, wanted: dict[UUID, int]) -> int:
        """What the returned units are worth; the rest of the order when they are the last."""
        lines = {row.id: row for row in connection.execute(
            select(commerce_order_lines).where(commerce_order_lines.c.order_id == order.id)
        )}
        amount = 0
        for line_id, quantity in wanted.items():
            line = lines.get(line_id)
            if line is None or line.returned_quantity + quantity > line.quantity:
                raise oe.InvalidReturn(f"line {line_id} has not {quantity} units to return")
            amount += returned_goods_minor(int(line.total_minor), int(line.quantity),
                                           int(line.returned_quantity), quantity)
            connection.execute(
                update(commerce_order_lines).where(commerce_order_lines.c.id == line_id)
                .values(returned_quantity=commerce_order_lines.c.returned_quantity + quantity)
            )
        left = int(order.captured_minor) - self._claimed(connection, order.id)
        everything = all(
            line.returned_quantity + wanted.get(line.id, 0) == line.quantity
            for line in lines.values()
        )
        amount = left if everything else min(amount, left)
        if amount <= 0:
            raise oe.RefundExceedsCaptured(f"nothing of order {order.id} is left to refund")
        return amount

    def _mark_returned(self, connection, order, now: datetime) -> None:
        """partially_returned, or returned once every unit is back and received."""
        ol, t = commerce_order_lines, commerce_order_refunds
        outstanding = connection.execute(
            select(func.count()).select_from(ol)
            .where(ol.c.order_id == order.id, ol.c.returned_quantity < ol.c.quantity)
        ).scalar_one()
        waiting = connection.execute(
            select(func.count()).select_from(t)
            .where(t.c.order_id == order.id, t.c.status == "requested")
        ).scalar_one()
        status = "returned" if outstanding == 0 and waiting == 0 else "partially_returned"
        o = commerce_orders
        row = connection.execute(
            update(o).where(o.c.id == order.id, o.c.status.in_(RETURNABLE))
            .values(status=status, updated_at=now,
                    returned_at=now if status == "returned" else None)
            .returning(o)
        ).first()
        if row is not None and (row.status != order.status or status == "partially_returned"):
            announce(connection, row, status, at=now)

    def _finish(self, refund: Refund, status: str, *, transfer_id=None, failure_code=None,
                taken=()) -> Refund:
        now = self._clock()
        t, o = commerce_order_refunds, commerce_orders
        with self._engine.begin() as connection:
            finished = connection.execute(
                update(t).where(t.c.id == refund.id, t.c.status.in_(MOVING))
                .values(status=status, transfer_id=transfer_id, failure_code=failure_code,
                        updated_at=now, completed_at=now).returning(t)
            ).first()
            if finished is not None and status == "succeeded":
                order = connection.execute(
                    update(o).where(o.c.id == refund.order_id)
                    .values(refunded_minor=o.c.refunded_minor + refund.amount_minor,
                            updated_at=now).returning(o)
                ).one()
                record_settlement_items(
                    connection, source_kind=REFUND_SOURCE, margin_kind=REFUND_MARGIN_SOURCE,
                    source_id=refund.id, currency=refund.currency, shares=taken,
                    completed_at=now, sign=-1,
                )
                announce(connection, order, "refunded", at=now,
                         extra=_refund_payload(_refund(connection, finished)))
        return self.get(refund.id)

    # Rows.

    def _insert(self, connection, order, *, reason, destination, amount_minor, status,
                idempotency_key, request_hash) -> Refund:
        now = self._clock()
        row = connection.execute(
            insert(commerce_order_refunds).values(
                id=uuid7(), order_id=order.id, user_id=order.user_id,
                supplier_id=order.supplier_id, currency=order.currency, reason=reason,
                destination=destination, amount_minor=amount_minor, status=status,
                idempotency_key=idempotency_key, request_hash=request_hash,
                created_at=now, updated_at=now,
            ).returning(commerce_order_refunds)
        ).one()
        return _refund(connection, row)

    def _claimed(self, connection, order_id: UUID) -> int:
        """What the order's refunds take or will take (all but the failed ones)."""
        t = commerce_order_refunds
        return int(connection.execute(
            select(func.coalesce(func.sum(t.c.amount_minor), 0))
            .where(t.c.order_id == order_id, t.c.status != "failed")
        ).scalar_one())

    def _replay(self, order_id: UUID, owner, idempotency_key: str,
                request_hash: str) -> RefundAnswer | None:
        t = commerce_order_refunds
        with self._engine.connect() as connection:
            _owned_order(connection, order_id, owner)
            row = connection.execute(
                select(t).where(t.c.order_id == order_id, t.c.idempotency_key == idempotency_key)
            ).first()
        if row is None:
            return None
        records.same_request(row, request_hash, idempotency_key,
                             oe.IdempotencyKeyReusedForOrder)
        return RefundAnswer(self.advance(row.id), True)

    def _refund_row(self, connection, refund_id: UUID, order_id: UUID | None):
        t = commerce_order_refunds
        query = select(t).where(t.c.id == refund_id)
        if order_id is not None:
            query = query.where(t.c.order_id == order_id)
        row = connection.execute(query).first()
        if row is None:
            raise oe.RefundNotFound(f"no refund {refund_id}")
        return row


def _locked_order(connection, order_id: UUID, owner):
    o = commerce_orders
    kind, owner_id = owner
    mine = o.c.user_id == owner_id if kind == "user" else o.c.supplier_id == owner_id
    row = connection.execute(select(o).where(o.c.id == order_id, mine).with_for_update()).first()
    if row is None:
        raise oe.OrderNotFound(f"no order {order_id}")
    return row


def _owned_order(connection, order_id: UUID, owner):
    o = commerce_orders
    kind, owner_id = owner
    mine = o.c.user_id == owner_id if kind == "user" else o.c.supplier_id == owner_id
    if connection.execute(select(o.c.id).where(o.c.id == order_id, mine)).first() is None:
        raise oe.OrderNotFound(f"no order {order_id}")


def _checked_lines(lines: Sequence[tuple[UUID, int]]) -> dict[UUID, int]:
    wanted: dict[UUID, int] = {}
    for line_id, quantity in lines:
        if type(quantity) is not int or quantity < 1 or line_id in wanted:
            raise oe.InvalidReturn("each line once, with at least one unit")
        wanted[line_id] = quantity
    if not wanted:
        raise oe.InvalidReturn("a return names at least one line")
    return wanted


def _destination(order, destination: str | None) -> str:
    destination = destination or order.payment_method
    if destination not in (WALLET, CARD):
        raise oe.InvalidOrderRequest("a refund goes to the wallet or the card")
    if destination == CARD and order.payment_method != CARD:
        raise oe.RefundDestinationUnavailable("a wallet payment is refunded to the wallet")
    return destination


def _refund_payload(refund: Refund) -> dict[str, Any]:
    return {"refund_id": str(refund.id), "refund_minor": str(refund.amount_minor),
            "refund_reason": refund.reason, "refund_destination": refund.destination}


def _refund(connection, row) -> Refund:
    lines = connection.execute(
        select(commerce_order_refund_lines.c.line_id, commerce_order_refund_lines.c.quantity)
        .where(commerce_order_refund_lines.c.refund_id == row.id)
        .order_by(commerce_order_refund_lines.c.line_id)
    ).all()
    return Refund(
        id=row.id, order_id=row.order_id, user_id=row.user_id, supplier_id=row.supplier_id,
        currency=row.currency, reason=row.reason, destination=row.destination,
        amount_minor=int(row.amount_minor), status=row.status, failure_code=row.failure_code,
        transfer_id=row.transfer_id, created_at=row.created_at,
        completed_at=row.completed_at,
        lines=tuple((line.line_id, int(line.quantity)) for line in lines),
    )
