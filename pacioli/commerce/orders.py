"""Orders after checkout: what shoppers and suppliers see, and how an order moves.

States (docs/commerce.md, "Orders", draws them):

    placed ──> paid ──> packed ──> shipped ──> delivered ──> partially_returned ──> returned
      │          │         │          │                            (returns, refunds.py)
      │          └────┬────┘          └──> cancelled (the shopper refused it: a full refund)
      │               └──> cancelled (the hold and the card authorization are voided)
      └──> payment_failed (checkout.py)

Suppliers pack, ship (with a carrier and tracking number), update tracking and deliver
their own orders; shoppers and suppliers cancel before shipping. Every move is one
conditional UPDATE from the states it leaves, with its timeline row and event in the
same transaction (order_records.announce), so a repeated or concurrent move changes
nothing twice; asking for the state an order is already in returns it unchanged.

Money follows the state: shipping marks the payment `capturing` in the shipping
transaction and then captures it (gateway capture, then the ledger's linked batch: the
hold posted and split); cancelling marks it `voiding` and then voids it. A crash or an
unreachable gateway leaves the mark, and `finish_money_steps` (a periodic job) completes
it with the same keys, so the money always follows the goods exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, select, update

from pacioli.commerce import inventory
from pacioli.commerce import order_errors as oe
from pacioli.commerce.order_payments import (
    ORDER_MARGIN_SOURCE,
    ORDER_SOURCE,
    OrderPayments,
    record_settlement_items,
)
from pacioli.commerce.order_records import Order, announce, load_orders, shares_of
from pacioli.commerce.order_tables import commerce_order_lines, commerce_orders
from pacioli.commerce.refunds import Refunds
from pacioli.gateways import base as gw
from pacioli.ledger import DomainError
from pacioli.payments import records

log = logging.getLogger(__name__)

SWEEP_LIMIT = 100
TRACKING_LENGTH_MAX = 100
# Where each move may start.
PACKABLE = ("paid",)
SHIPPABLE = ("paid", "packed")
CANCELLABLE_UNSHIPPED = ("paid", "packed")


class Orders:
    """Reads and moves orders (states in the module docstring)."""

    def __init__(self, engine: Engine, payments: OrderPayments, refunds: Refunds, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._engine = engine
        self._payments = payments
        self._refunds = refunds
        self._clock = clock

    # Reading.

    def get(self, order_id: UUID, *, user_id: UUID | None = None,
            supplier_id: UUID | None = None) -> Order:
        """The order as its shopper or its supplier sees it. Raises: OrderNotFound."""
        o = commerce_orders
        owner = o.c.user_id == user_id if user_id is not None else o.c.supplier_id == supplier_id
        with self._engine.connect() as connection:
            row = connection.execute(select(o).where(o.c.id == order_id, owner)).first()
            if row is None:
                raise oe.OrderNotFound(f"no order {order_id}")
            return load_orders(connection, [row], with_history=True)[0]

    def list(self, *, user_id: UUID | None = None, supplier_id: UUID | None = None,
             status: str | None = None, limit: int = 50,
             starting_after: UUID | None = None) -> list[Order]:
        """The shopper's or the supplier's orders, newest first."""
        o = commerce_orders
        wanted = [o.c.user_id == user_id if user_id is not None
                  else o.c.supplier_id == supplier_id]
        if status is not None:
            wanted.append(o.c.status == status)
        query = records.newest_first(o, *wanted, limit=limit, starting_after=starting_after)
        with self._engine.connect() as connection:
            return load_orders(connection, connection.execute(query).all())

    # Suppliers' moves.

    def pack(self, supplier_id: UUID, order_id: UUID) -> Order:
        """Raises: OrderNotFound, InvalidOrderTransition."""
        return self._move(order_id, ("supplier", supplier_id), PACKABLE, "packed",
                          event="packed", packed_at=self._clock())

    def ship(self, supplier_id: UUID, order_id: UUID, *, carrier: str,
             tracking_number: str) -> Order:
        """Hand the goods to the carrier: the order is `shipped` and its payment captured.

        Raises: OrderNotFound, InvalidOrderTransition, InvalidOrderRequest (tracking).
        """
        _check_tracking(carrier, tracking_number)
        order = self._move(order_id, ("supplier", supplier_id), SHIPPABLE, "shipped",
                           event="shipped", shipped_at=self._clock(), carrier=carrier,
                           tracking_number=tracking_number, payment_status="capturing")
        return self._capture(order) if order.payment_status == "capturing" else order

    def update_tracking(self, supplier_id: UUID, order_id: UUID, *, carrier: str,
                        tracking_number: str, note: str | None = None) -> Order:
        """A tracking update for a shipped order (a new number, or news from the carrier)."""
        _check_tracking(carrier, tracking_number)
        if note is not None and len(note) > 500:
            raise oe.InvalidOrderRequest("a tracking note has at most 500 characters")
        now = self._clock()
        o = commerce_orders
        with self._engine.begin() as connection:
            row = connection.execute(
                update(o).where(o.c.id == order_id, o.c.supplier_id == supplier_id,
                                o.c.status == "shipped")
                .values(carrier=carrier, tracking_number=tracking_number, updated_at=now)
                .returning(o)
            ).first()
            if row is not None:
                announce(connection, row, "tracking_updated", at=now, note=note)
        if row is None:
            order = self.get(order_id, supplier_id=supplier_id)
            raise oe.InvalidOrderTransition(f"order {order_id} is {order.status}, not shipped")
        return self.get(order_id, supplier_id=supplier_id)

    def deliver(self, supplier_id: UUID, order_id: UUID) -> Order:
        return self._move(order_id, ("supplier", supplier_id), ("shipped",), "delivered",
                          event="delivered", delivered_at=self._clock())

    # Cancelling.

    def cancel(self, order_id: UUID, *, user_id: UUID | None = None,
               supplier_id: UUID | None = None, refund_to: str | None = None) -> Order:
        """Cancel an order: before shipping the money is released (void); a shipped order
        (the shopper only) is refunded in full, to `refund_to` (the card it was paid with
        by default, or the wallet).

        Raises: OrderNotFound, InvalidOrderTransition, RefundDestinationUnavailable.
        """
        owner = ("user", user_id) if user_id is not None else ("supplier", supplier_id)
        order = self._get_owned(order_id, owner)
        if order.status == "shipped" and owner[0] == "user":
            return self._cancel_shipped(order, owner, refund_to)
        now = self._clock()
        order = self._move(order_id, owner, CANCELLABLE_UNSHIPPED, "cancelled",
                           event="cancelled", cancelled_at=now, payment_status="voiding",
                           on_change=self._restock_all)
        return self._void(order) if order.payment_status == "voiding" else order

    def _cancel_shipped(self, order: Order, owner, refund_to: str | None) -> Order:
        """The shopper refuses a shipped order: cancelled, and refunded in full."""
        if order.payment_status != "captured":
            raise oe.InvalidOrderTransition(f"the payment of order {order.id} is still being"
                                            " captured; try again shortly")
        destination = refund_to or order.payment_method
        if destination == "card" and order.payment_method != "card":
            raise oe.RefundDestinationUnavailable("a wallet payment is refunded to the wallet")
        claimed: list[UUID] = []

        def claim(connection, row) -> None:
            claimed.append(self._refunds.claim_cancellation(connection, row, destination))

        self._move(order.id, owner, ("shipped",), "cancelled", event="cancelled",
                   cancelled_at=self._clock(), on_change=claim)
        for refund_id in claimed:
            self._refunds.advance(refund_id)
        return self._get_owned(order.id, owner)

    # The money steps.

    def finish_money_steps(self, now: datetime | None = None, *,
                           limit: int = SWEEP_LIMIT) -> int:
        """Complete captures and voids a crash or an unreachable gateway left (a job)."""
        o = commerce_orders
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(o).where(o.c.payment_status.in_(("capturing", "voiding")))
                .order_by(o.c.updated_at).limit(limit)
            ).all()
            due = load_orders(connection, rows)
        for order in due:
            try:
                self._capture(order) if order.payment_status == "capturing" else self._void(order)
            except gw.GatewayUnavailable:
                continue
        return len(due)

    def _capture(self, order: Order) -> Order:
        try:
            if order.payment_method == "card" and order.gateway_reference is not None:
                self._payments.capture_card(order.id, order.gateway_reference)
        except gw.GatewayUnavailable:
            return order  # Still capturing: the sweep captures it with the same key.
        except gw.InvalidGatewayState:
            log.error("order %s shipped but its card authorization cannot be captured",
                      order.id)
            return self._set_payment(order, "capturing", payment_status="failed",
                                     failure_code="capture_failed")
        with self._engine.connect() as connection:
            shares = shares_of(connection, order.id)
        transfer_id = None
        if order.hold_transfer_id is not None:
            try:
                transfer_id = self._payments.capture(
                    order.id, order.hold_transfer_id, currency=order.currency,
                    total_minor=order.total_minor, shares=shares,
                ).id
            except DomainError as rejection:  # the hold expired, an account was frozen ...
                log.error("order %s shipped but its hold cannot be captured: %s", order.id,
                          rejection.code)
                return self._set_payment(order, "capturing", payment_status="failed",
                                         failure_code=rejection.code)
        now = self._clock()

        def record_items(connection, row) -> None:
            record_settlement_items(
                connection, source_kind=ORDER_SOURCE, margin_kind=ORDER_MARGIN_SOURCE,
                source_id=row.id, currency=row.currency, shares=shares, completed_at=now,
            )

        return self._set_payment(order, "capturing", on_change=record_items,
                                 payment_status="captured", captured_minor=order.total_minor,
                                 capture_transfer_id=transfer_id)

    def _void(self, order: Order) -> Order:
        try:
            if order.payment_method == "card":
                self._payments.void_authorization(order.id, order.gateway_reference)
        except gw.GatewayUnavailable:
            return order  # Still voiding: the sweep voids it with the same key.
        void_id = self._payments.void_hold(order.id, order.hold_transfer_id)
        return self._set_payment(order, "voiding", payment_status="voided",
                                 void_transfer_id=void_id)

    # Rows.

    def _move(self, order_id: UUID, owner: tuple[str, UUID], from_statuses: tuple[str, ...],
              status: str, *, event: str, on_change=None, **values: Any) -> Order:
        """Move the order to `status` if it is in one of `from_statuses`; return it.

        Already in `status`: returned as it is. Raises: OrderNotFound,
        InvalidOrderTransition.
        """
        o = commerce_orders
        now = self._clock()
        condition = [o.c.id == order_id, _owned(owner), o.c.status.in_(from_statuses)]
        if "payment_status" in values:
            # Capturing or voiding starts from an authorized payment only.
            condition.append(o.c.payment_status == "authorized")
        with self._engine.begin() as connection:
            row = connection.execute(
                update(o).where(*condition).values(status=status, updated_at=now, **values)
                .returning(o)
            ).first()
            if row is not None:
                if on_change is not None:
                    on_change(connection, row)
                announce(connection, row, event, at=now)
        order = self._get_owned(order_id, owner)
        if row is None and order.status != status:
            raise oe.InvalidOrderTransition(
                f"order {order_id} is {order.status}; it cannot become {status}"
            )
        return order

    def _set_payment(self, order: Order, from_status: str, *, on_change=None,
                     **values: Any) -> Order:
        o = commerce_orders
        with self._engine.begin() as connection:
            row = connection.execute(
                update(o).where(o.c.id == order.id, o.c.payment_status == from_status)
                .values(updated_at=self._clock(), **values).returning(o)
            ).first()
            if row is not None and on_change is not None:
                on_change(connection, row)
        return self._get_owned(order.id, ("user", order.user_id))

    def _restock_all(self, connection, row) -> None:
        """A cancelled order's units go back on sale (they were sold when it was paid)."""
        lines = connection.execute(
            select(commerce_order_lines.c.variant_id, commerce_order_lines.c.quantity)
            .where(commerce_order_lines.c.order_id == row.id)
        ).all()
        inventory.restock(connection, row.checkout_id, [(line.variant_id, line.quantity)
                                                        for line in lines])

    def _get_owned(self, order_id: UUID, owner: tuple[str, UUID]) -> Order:
        kind, owner_id = owner
        if kind == "user":
            return self.get(order_id, user_id=owner_id)
        return self.get(order_id, supplier_id=owner_id)


def _owned(owner: tuple[str, UUID]):
    kind, owner_id = owner
    o = commerce_orders
    return o.c.user_id == owner_id if kind == "user" else o.c.supplier_id == owner_id


def _check_tracking(carrier: str, tracking_number: str) -> None:
    for name, value in (("carrier", carrier), ("tracking number", tracking_number)):
        if not value or not value.strip() or len(value) > TRACKING_LENGTH_MAX:
            raise oe.InvalidOrderRequest(f"the {name} is 1 to {TRACKING_LENGTH_MAX} characters")
