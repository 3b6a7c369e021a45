"""Checkout: a cart becomes one order per supplier, paid from the wallet or a card.

Steps (docs/commerce.md, "Checkout", draws them):

1. **Place**, in ONE database transaction: lock the user's cart, re-price it
   (`pricing.price_cart`), refuse a stale cart version, gone stock and a total other than
   the one the shopper saw; record the checkout (unique per user and Idempotency-Key, and
   per cart version while it is live), its orders (`placed`), their lines and their split;
   redeem the coupon; reserve the stock last (the variant rows stay locked the shortest
   time). Any refusal rolls all of it back: nothing changed.
2. **Hold**: one pending ledger transfer per order into `order_escrow`, all or none
   (`checkout:<id>:hold`): from the wallet, or from the processor's clearing account.
3. **Authorize** (card) outside any transaction, per order (`order:<id>:authorize`).
4. **Finish**, in one transaction: `paid` (stock committed, cart emptied if it is still
   at the checkout's version, `commerce_order.paid`), or `payment_failed` (stock
   released, coupon given back, holds and authorizations marked for voiding, which the
   caller does next and a sweep finishes, `commerce_order.payment_failed`).

A card that answers later (3DS, a lost answer) leaves the checkout `awaiting_payment`; a
callback, a refresh or the periodic sweep settles it. Every step is keyed by the
checkout's or order's id and every status change is conditional, so repeats, races and
crashes pay once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, select, update

from pacioli.commerce import errors as ce
from pacioli.commerce import inventory, plain_sql, pricing, promotions
from pacioli.commerce import order_errors as oe
from pacioli.commerce.checkout_plan import plan_orders
from pacioli.commerce.checkout_records import (
    CheckoutRecord,
    CheckoutRequest,
    check_priced,
    check_request,
    empty_cart_if_unchanged,
    read_checkout,
    record_of,
)
from pacioli.commerce.order_payments import CARD, WALLET, OrderPayments
from pacioli.commerce.order_records import HistoryEntry, OrderLine, announce_all, order_of
from pacioli.commerce.order_split import COMMISSION_BPS_DEFAULT
from pacioli.commerce.order_tables import (
    commerce_checkouts,
    commerce_orders,
)
from pacioli.gateways import base as gw
from pacioli.gateways.base import GatewayStatus
from pacioli.ledger import DomainError
from pacioli.ledger.domain.ids import uuid7
from pacioli.payments import records
from pacioli.payments.instruments import Instruments

# Stock stays reserved this long for a checkout whose payment has not been decided.
RESERVATION_SECONDS = 15 * 60
LIVE = ("placed", "awaiting_payment")
SWEEP_LIMIT = 100
SWEEP_AGE_SECONDS = 5


# Step 1's lock of the shopper's cart, with the probe for a checkout already made with
# the key (a retry) in the same round trip.
_LOCK_CART_SQL = """
SELECT c.*, k.id AS checkout_id
FROM commerce_carts c
LEFT JOIN commerce_checkouts k ON k.user_id = %(user_id)s AND k.idempotency_key = %(key)s
WHERE c.id = %(cart_id)s AND c.user_id = %(user_id)s
FOR UPDATE OF c
"""

# Step 1's writes in one statement: the checkout, and only if it was new (no other with
# the key or live for the cart version: its unique indexes), its orders, their lines
# and split, each from JSON rows with the tables' own column names. A column the JSON
# leaves out is NULL, not its default: a column added to these tables needs its value in
# `_place` / `_order_rows`. The foreign keys are checked at the statement's end, when the
# checkout and orders are there.
_INSERT_CHECKOUT_SQL = """
WITH checkout AS (
    INSERT INTO commerce_checkouts
    SELECT * FROM jsonb_populate_record(NULL::commerce_checkouts, %(checkout)s::jsonb)
    ON CONFLICT DO NOTHING
    RETURNING id
), orders AS (
    INSERT INTO commerce_orders
    SELECT o.* FROM jsonb_populate_recordset(NULL::commerce_orders, %(orders)s::jsonb) o
    WHERE EXISTS (SELECT FROM checkout)
), lines AS (
    INSERT INTO commerce_order_lines
    SELECT l.* FROM jsonb_populate_recordset(NULL::commerce_order_lines, %(lines)s::jsonb) l
    WHERE EXISTS (SELECT FROM checkout)
), shares AS (
    INSERT INTO commerce_order_shares
    SELECT s.* FROM jsonb_populate_recordset(NULL::commerce_order_shares, %(shares)s::jsonb) s
    WHERE EXISTS (SELECT FROM checkout)
)
SELECT id FROM checkout
"""


def _json(value) -> str:
    """Rows as JSON for `_INSERT_CHECKOUT_SQL`: ids and instants as strings, amounts as
    JSON integers (exact: PostgreSQL reads them as numeric)."""
    return json.dumps(value, default=str)


@dataclass(frozen=True, slots=True)
class Placed:
    """What step 1 wrote: enough to pay and answer without reading it back."""

    checkout_id: UUID
    user_id: UUID
    payment_method: str
    currency: str
    lines: dict[UUID, tuple[OrderLine, ...]]  # order id -> its lines
    totals: dict[UUID, int]  # order id -> its total

    def reserved(self) -> list[tuple[UUID, int]]:
        """(variant id, quantity) of every line: what step 1 reserved."""
        return [(line.variant_id, line.quantity)
                for order_lines in self.lines.values() for line in order_lines]


@dataclass(frozen=True, slots=True)
class CheckoutAnswer:
    value: CheckoutRecord
    replayed: bool


class Checkout:
    """Places checkouts and takes their payment (steps in the module docstring)."""

    def __init__(
        self, engine: Engine, payments: OrderPayments, instruments: Instruments, *,
        commission_bps: int = COMMISSION_BPS_DEFAULT,
        reservation_seconds: int = RESERVATION_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._payments = payments
        self._instruments = instruments
        self._commission_bps = commission_bps
        self._reservation_seconds = reservation_seconds
        self._clock = clock

    def place(self, user_id: UUID, request: CheckoutRequest, *,
              idempotency_key: str) -> CheckoutAnswer:
        """Turn the user's cart into paid orders (or a recorded payment failure).

        Returns the checkout: `paid`, or `awaiting_payment` while a card has not answered.
        Raises: InvalidCheckout, CartNotFound, StaleCart, OutOfStock, CartEmpty,
        PriceChanged, Coupon*, InstrumentNotFound, InstrumentRemoved,
        IdempotencyKeyReusedForOrder; and OrderPaymentFailed with the refusal's code
        (card_declined, insufficient_funds ...) when the payment failed, also on replay.
        """
        check_request(request)
        request_hash = request.hash()
        if request.payment_method == CARD:
            # A retry is answered before the card is looked at (it may be gone since).
            existing = self._by_key(user_id, idempotency_key)
            if existing is not None:
                return self._replay(existing, request_hash, idempotency_key)
            self._instruments.usable(user_id, request.instrument_id, "card")
        placed = self._place(user_id, request, idempotency_key, request_hash)
        if placed is None:  # the key has a checkout: a retry, or a race this one lost
            return self._replay(self._by_key(user_id, idempotency_key), request_hash,
                                idempotency_key)
        if placed.payment_method == WALLET:
            return CheckoutAnswer(self._settled(self._pay_placed(placed)), False)
        return CheckoutAnswer(self._settled(self._advance(placed.checkout_id)), False)

    def _replay(self, existing, request_hash: str, idempotency_key: str) -> CheckoutAnswer:
        """The answer of the checkout made with the key (finished first if it is not).
        Raises: IdempotencyKeyReusedForOrder (another request), OrderPaymentFailed."""
        records.same_request(existing, request_hash, idempotency_key,
                             oe.IdempotencyKeyReusedForOrder)
        return CheckoutAnswer(self._settled(self._advance(existing.id)), True)

    def find(self, user_id: UUID, idempotency_key: str) -> CheckoutRecord | None:
        """The checkout the user made with this key, if any."""
        row = self._by_key(user_id, idempotency_key)
        return None if row is None else self._record(row.id)

    def get(self, user_id: UUID, checkout_id: UUID) -> CheckoutRecord:
        """Raises: CheckoutNotFound."""
        record = self._record(checkout_id)
        if record is None or record.user_id != user_id:
            raise oe.CheckoutNotFound(f"no checkout {checkout_id}")
        return record

    def refresh(self, user_id: UUID, checkout_id: UUID) -> CheckoutRecord:
        """Ask the gateway how an unpaid card checkout stands and settle it if decided."""
        self.get(user_id, checkout_id)
        return self._advance(checkout_id)

    def refresh_unsettled(self, now: datetime | None = None, *,
                          limit: int = SWEEP_LIMIT) -> int:
        """Advance checkouts left placed or awaiting payment (a periodic job); how many."""
        t = commerce_checkouts
        # A checkout changed in the last few seconds is still in its request's hands.
        settled_before = (now or self._clock()) - timedelta(seconds=SWEEP_AGE_SECONDS)
        with self._engine.connect() as connection:
            ids = connection.execute(
                select(t.c.id).where(t.c.status.in_(LIVE), t.c.updated_at < settled_before)
                .order_by(t.c.updated_at).limit(limit)
            ).scalars().all()
        for checkout_id in ids:
            try:
                self._advance(checkout_id)
            except gw.GatewayUnavailable:
                continue  # The next sweep asks again.
        return len(ids)

    def handle_event(self, event) -> None:
        """A gateway callback about an order's card authorization (others are ignored)."""
        o = commerce_orders
        with self._engine.connect() as connection:
            checkout_id = connection.execute(
                select(o.c.checkout_id).where(o.c.gateway == event.gateway,
                                              o.c.gateway_reference == event.reference)
            ).scalar()
        if checkout_id is not None:
            self._advance(checkout_id)

    # Step 1: place.

    def _place(self, user_id: UUID, request: CheckoutRequest, idempotency_key: str,
               request_hash: str) -> Placed | None:
        """Step 1; None if the user's key names a checkout already (answer that one).

        Two statements besides the price's two reads, the coupon's and the stock's: the
        cart's lock with the key's probe, then the checkout, its orders, lines and split
        in one insert."""
        now = self._clock()
        checkout_id = uuid7()
        with self._engine.begin() as connection:
            cart = plain_sql.first(connection, _LOCK_CART_SQL, {
                "cart_id": request.cart_id, "user_id": user_id, "key": idempotency_key})
            if cart is None:
                if self._by_key(user_id, idempotency_key) is not None:
                    return None  # A retry naming another cart: the key's check answers.
                raise ce.CartNotFound(f"no cart {request.cart_id}")
            if cart.checkout_id is not None:
                return None
            priced = pricing.price_cart(connection, request.cart_id, now=now, cart=cart)
            check_priced(priced, request)
            gateway = self._payments.gateway_name if request.payment_method == CARD else None
            lines, totals, rows = self._order_rows(checkout_id, user_id, request, priced,
                                                   gateway, now)
            checkout = {
                "id": checkout_id, "user_id": user_id, "cart_id": request.cart_id,
                "cart_version": request.cart_version, "currency": priced.currency,
                "total_minor": priced.total_minor, "payment_method": request.payment_method,
                "instrument_id": request.instrument_id, "gateway": gateway,
                "coupon_code": priced.coupon_code, "status": "placed",
                "shipping_address": request.shipping_address,
                "idempotency_key": idempotency_key, "request_hash": request_hash,
                "created_at": now, "updated_at": now,
            }
            inserted = plain_sql.first(connection, _INSERT_CHECKOUT_SQL, {
                "checkout": _json(checkout), **{name: _json(value)
                                                for name, value in rows.items()}})
            if inserted is None:
                if self._by_key(user_id, idempotency_key) is not None:
                    return None
                raise ce.StaleCart(f"cart {request.cart_id} at version {request.cart_version}"
                                   " is being checked out already")
            if priced.coupon_code is not None:
                promotions.redeem_coupon(connection, priced.coupon_code, user_id=user_id,
                                         order_id=checkout_id, now=now)
            # No savepoint: any refusal rolls all of step 1 back.
            inventory.reserve(connection, checkout_id,
                              [(line.variant_id, line.quantity) for line in priced.lines],
                              expires_at=now + timedelta(seconds=self._reservation_seconds),
                              savepoint=False)
        return Placed(checkout_id, user_id, request.payment_method, priced.currency, lines,
                      totals)

    def _order_rows(self, checkout_id, user_id, request, priced, gateway, now):
        """The rows of the orders, their lines and split (for `_INSERT_CHECKOUT_SQL`);
        each order's lines and total."""
        lines: dict[UUID, tuple[OrderLine, ...]] = {}
        totals: dict[UUID, int] = {}
        rows: dict[str, list[dict]] = {"orders": [], "lines": [], "shares": []}
        for plan in plan_orders(priced, commission_bps=self._commission_bps):
            order_id = uuid7()
            totals[order_id] = plan.total_minor
            rows["orders"].append({
                "id": order_id, "checkout_id": checkout_id, "user_id": user_id,
                "supplier_id": plan.supplier_id, "currency": priced.currency,
                "status": "placed", "payment_method": request.payment_method,
                "payment_status": "pending", "instrument_id": request.instrument_id,
                "gateway": gateway, "subtotal_minor": plan.subtotal_minor,
                "discount_minor": plan.discount_minor, "tax_minor": plan.tax_minor,
                "shipping_minor": plan.shipping_minor, "rounding_minor": plan.rounding_minor,
                "total_minor": plan.total_minor, "commission_minor": plan.commission_minor,
                "captured_minor": 0, "refunded_minor": 0,
                "shipping_address": request.shipping_address, "created_at": now,
                "updated_at": now,
            })
            written = tuple(
                OrderLine(
                    id=uuid7(), product_id=line.product_id, variant_id=line.variant_id,
                    reseller_id=line.reseller_id, name=line.name, quantity=line.quantity,
                    unit_price_minor=line.unit_price_minor,
                    supplier_unit_price_minor=line.supplier_unit_price_minor,
                    reseller_margin_minor=line.reseller_margin_minor,
                    catalogue_discount_minor=line.catalogue_discount_minor,
                    order_discount_minor=line.order_discount_minor,
                    tax_minor=line.tax_minor, total_minor=line.total_minor,
                    returned_quantity=0,
                )
                for line in plan.lines
            )
            lines[order_id] = written
            rows["lines"].extend(
                {**{name: getattr(line, name) for name in OrderLine.__slots__},
                 "order_id": order_id, "position": position}
                for position, line in enumerate(written)
            )
            rows["shares"].extend(
                {"order_id": order_id, "position": position, "kind": str(share.kind),
                 "owner_id": share.owner_id, "amount_minor": share.amount_minor}
                for position, share in enumerate(plan.shares)
            )
        return lines, totals, rows

    # Steps 2 to 4: pay.

    def _pay_placed(self, placed: Placed) -> CheckoutRecord:
        """Steps 2 and 4 of a wallet checkout just placed: the hold, then `paid`, from
        what step 1 wrote (no reads before the hold; the answer built from what the
        finishing transaction wrote, `_advance` and a read-back only off this path)."""
        try:
            holds = self._payments.hold(
                placed.checkout_id, user_id=placed.user_id, method=WALLET,
                currency=placed.currency, orders=list(placed.totals.items()),
            )
        except DomainError as rejection:
            return self._fail(placed.checkout_id, rejection.code, held=False)
        return self._finish_paid(placed.checkout_id, holds, placed=placed)

    def _advance(self, checkout_id: UUID) -> CheckoutRecord:
        """Take the checkout as far as it goes without waiting for the processor."""
        checkout = self._row(checkout_id)
        if checkout.status not in LIVE:
            return self._record(checkout_id)
        orders = self._orders(checkout_id)
        holds: dict[UUID, UUID] = {}
        if any(order.hold_transfer_id is None and order.total_minor > 0 for order in orders):
            try:
                holds = self._payments.hold(
                    checkout_id, user_id=checkout.user_id, method=checkout.payment_method,
                    currency=checkout.currency,
                    orders=[(order.id, order.total_minor) for order in orders],
                )
            except DomainError as rejection:
                return self._fail(checkout_id, rejection.code, held=False)
        if checkout.payment_method == WALLET:
            # The holds are written down with the outcome (a crash before it replays them:
            # the hold's ledger key returns the same transfers).
            return self._finish_paid(checkout_id, holds)
        if holds:
            self._record_holds(holds)  # before the card is asked: a failure voids them
            orders = self._orders(checkout_id)
        return self._advance_card(checkout, orders)

    def _advance_card(self, checkout, orders) -> CheckoutRecord:
        token = self._instruments.get(checkout.user_id, checkout.instrument_id).token
        outcomes = []
        for order in orders:
            if order.total_minor == 0 or order.payment_status == "authorized":
                outcomes.append(GatewayStatus.AUTHORIZED)
                continue
            try:
                if order.gateway_reference is None:
                    result = self._payments.authorize(order.id, token, order.total_minor,
                                                      order.currency)
                    self._set_reference(order.id, result.reference)
                else:
                    result = self._payments.fetch_status(order.gateway_reference)
            except gw.GatewayUnavailable:
                outcomes.append(GatewayStatus.PENDING)  # Unknown: ask again with the same key.
                continue
            except (gw.GatewayRejected, gw.GatewayNotFound, gw.GatewayConflict) as refusal:
                return self._fail(checkout.id, refusal.code)
            if result.status in (GatewayStatus.DECLINED, GatewayStatus.FAILED,
                                 GatewayStatus.VOIDED):
                return self._fail(checkout.id, str(result.decline_code or result.status))
            if result.status is GatewayStatus.AUTHORIZED:
                self._set_authorized(order.id)
            outcomes.append(result.status)
        if all(status is GatewayStatus.AUTHORIZED for status in outcomes):
            return self._finish_paid(checkout.id)
        self._update_checkout(checkout.id, ("placed",), status="awaiting_payment")
        return self._record(checkout.id)

    def _finish_paid(self, checkout_id: UUID, holds: dict[UUID, UUID] | None = None, *,
                     placed: Placed | None = None) -> CheckoutRecord:
        """Mark the checkout and its orders paid; the checkout as it now stands.

        With `placed` (a checkout this request placed, every order of it still `placed`)
        the answer is built from the rows the updates returned and the lines step 1
        wrote, instead of being read back.
        """
        now = self._clock()
        try:
            with self._engine.begin() as connection:
                checkout = self._conditional(connection, checkout_id, status="paid",
                                             completed_at=now)
                if checkout is not None:
                    inventory.commit(connection, checkout_id, lines=None if placed is None else
                                     placed.reserved())
                    orders = self._mark_orders(connection, checkout_id, "paid", event="paid",
                                               at=now, holds=holds,
                                               payment_status="authorized", paid_at=now)
                    empty_cart_if_unchanged(connection, checkout)
        except (ce.OutOfStock, ce.ReservationNotHeld):
            # The reservation ran out while the card was deciding and the units are gone.
            return self._fail(checkout_id, ce.OutOfStock.code, holds=holds)
        if (placed is not None and checkout is not None
                and sorted(row.id for row in orders) == sorted(placed.lines)):
            return record_of(checkout, [
                order_of(row, placed.lines[row.id],
                         [HistoryEntry("paid", row.carrier, row.tracking_number, None,
                                       row.paid_at)])
                for row in orders
            ])
        return self._record(checkout_id)

    def _fail(self, checkout_id: UUID, failure_code: str, *, held: bool = True,
              holds: dict[UUID, UUID] | None = None) -> CheckoutRecord:
        """Record the failure (stock released, coupon given back), then void what is held
        (`holds`: holds made but not written down yet)."""
        now = self._clock()
        with self._engine.begin() as connection:
            checkout = self._conditional(connection, checkout_id, status="payment_failed",
                                         failure_code=failure_code, completed_at=now)
            if checkout is not None:
                inventory.release(connection, checkout_id)
                promotions.unredeem_coupon(connection, checkout_id)
                self._mark_orders(connection, checkout_id, "payment_failed",
                                  event="payment_failed", at=now, failure_code=failure_code,
                                  holds=holds,
                                  payment_status="voiding" if held else "failed")
        for order in self._orders(checkout_id):
            if order.payment_status == "voiding":
                self._void(order)
        return self._record(checkout_id)

    def _void(self, order) -> None:
        try:
            self._payments.void_authorization(order.id, order.gateway_reference)
        except gw.GatewayUnavailable:
            return  # The money sweep voids it later (orders.Orders.finish_money_steps).
        void_id = self._payments.void_hold(order.id, order.hold_transfer_id)
        o = commerce_orders
        with self._engine.begin() as connection:
            connection.execute(
                update(o).where(o.c.id == order.id, o.c.payment_status == "voiding")
                .values(payment_status="voided", void_transfer_id=void_id,
                        updated_at=self._clock())
            )

    # Rows.

    def _mark_orders(self, connection, checkout_id: UUID, status: str, *, event: str,
                     at: datetime, holds: dict[UUID, UUID] | None = None,
                     **values: Any) -> list:
        """Move the checkout's orders still `placed` and announce each; their new rows,
        by id. (`values`: more of the orders' columns, named by this module.)"""
        sets = "".join(f", {name} = %({name})s" for name in values)
        if holds:
            # Each order's hold from a JSON object of order id -> hold id.
            sets += (", hold_transfer_id = coalesce((%(holds)s::jsonb ->> id::text)::uuid,"
                     " hold_transfer_id)")
        rows = plain_sql.rows(
            connection,
            f"UPDATE commerce_orders SET status = %(status)s, updated_at = %(at)s{sets}"
            " WHERE checkout_id = %(checkout_id)s AND status = 'placed' RETURNING *",
            {**values, "status": status, "at": at, "checkout_id": checkout_id,
             "holds": _json({str(order): str(hold) for order, hold in (holds or {}).items()})},
        )
        rows = sorted(rows, key=lambda r: r.id)
        announce_all(connection, rows, event, at=at)
        return rows

    def _conditional(self, connection, checkout_id: UUID, **values: Any):
        """The checkout's row, changed if it was still live (None if it was settled).
        (`values`: more of the checkout's columns, named by this module.)"""
        sets = "".join(f", {name} = %({name})s" for name in values)
        return plain_sql.first(
            connection,
            f"UPDATE commerce_checkouts SET updated_at = %(updated_at)s{sets}"
            " WHERE id = %(id)s AND status IN ('placed', 'awaiting_payment') RETURNING *",
            {**values, "updated_at": self._clock(), "id": checkout_id},
        )

    def _update_checkout(self, checkout_id: UUID, statuses: tuple[str, ...], **values) -> None:
        t = commerce_checkouts
        with self._engine.begin() as connection:
            connection.execute(update(t).where(t.c.id == checkout_id, t.c.status.in_(statuses))
                               .values(updated_at=self._clock(), **values))

    def _record_holds(self, holds: dict[UUID, UUID]) -> None:
        o = commerce_orders
        with self._engine.begin() as connection:
            for order_id, hold_id in holds.items():
                connection.execute(
                    update(o).where(o.c.id == order_id, o.c.hold_transfer_id.is_(None))
                    .values(hold_transfer_id=hold_id)
                )

    def _set_reference(self, order_id: UUID, reference: str) -> None:
        o = commerce_orders
        with self._engine.begin() as connection:
            connection.execute(
                update(o).where(o.c.id == order_id, o.c.gateway_reference.is_(None))
                .values(gateway_reference=reference)
            )

    def _set_authorized(self, order_id: UUID) -> None:
        o = commerce_orders
        with self._engine.begin() as connection:
            connection.execute(
                update(o).where(o.c.id == order_id, o.c.payment_status == "pending")
                .values(payment_status="authorized")
            )

    def _by_key(self, user_id: UUID, idempotency_key: str):
        t = commerce_checkouts
        with self._engine.connect() as connection:
            return connection.execute(
                select(t).where(t.c.user_id == user_id, t.c.idempotency_key == idempotency_key)
            ).first()

    def _row(self, checkout_id: UUID):
        with self._engine.connect() as connection:
            return connection.execute(
                select(commerce_checkouts).where(commerce_checkouts.c.id == checkout_id)
            ).one()

    def _orders(self, checkout_id: UUID) -> list:
        """The checkout's order rows (without lines: paying needs none)."""
        o = commerce_orders
        with self._engine.connect() as connection:
            return connection.execute(
                select(o).where(o.c.checkout_id == checkout_id).order_by(o.c.id)
            ).all()

    def _record(self, checkout_id: UUID) -> CheckoutRecord | None:
        return read_checkout(self._engine, checkout_id)

    def _settled(self, record: CheckoutRecord) -> CheckoutRecord:
        """The record, or its failure raised as the refusal it was."""
        if record.status == "payment_failed":
            raise oe.OrderPaymentFailed(
                record.failure_code,
                f"checkout {record.id} was not paid: {record.failure_code}",
            )
        return record
