"""Orders as callers see them, read from their tables, and the one place an order's change
is written down: its timeline row and its outbox event, in the caller's transaction.

Every change of an order appends `commerce_order.<event>` (aggregate `commerce_order`,
docs/commerce.md "Orders") with the shopper (`user_id`, for notifications) and the
supplier (`merchant_id`, for merchant webhooks) in the payload, only from the conditional
update that made the change, so each change is announced once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Row, select

from pacioli.commerce import plain_sql
from pacioli.commerce.order_split import Share, ShareKind
from pacioli.commerce.order_tables import (
    commerce_order_history,
    commerce_order_lines,
    commerce_order_shares,
    commerce_orders,
)
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import append_event

EVENT_PREFIX = "commerce_order."
AGGREGATE = "commerce_order"


@dataclass(frozen=True, slots=True)
class OrderLine:
    id: UUID
    product_id: UUID
    variant_id: UUID
    reseller_id: UUID | None
    name: str
    quantity: int
    unit_price_minor: int
    supplier_unit_price_minor: int
    reseller_margin_minor: int
    catalogue_discount_minor: int
    order_discount_minor: int
    tax_minor: int
    total_minor: int
    returned_quantity: int


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    event: str
    carrier: str | None
    tracking_number: str | None
    note: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Order:
    id: UUID
    checkout_id: UUID
    user_id: UUID
    supplier_id: UUID
    currency: str
    status: str
    payment_method: str
    payment_status: str
    instrument_id: UUID | None
    gateway: str | None
    gateway_reference: str | None
    failure_code: str | None
    subtotal_minor: int
    discount_minor: int
    tax_minor: int
    shipping_minor: int
    rounding_minor: int
    total_minor: int
    commission_minor: int
    captured_minor: int
    refunded_minor: int
    hold_transfer_id: UUID | None
    capture_transfer_id: UUID | None
    void_transfer_id: UUID | None
    carrier: str | None
    tracking_number: str | None
    shipping_address: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None
    packed_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    returned_at: datetime | None
    lines: tuple[OrderLine, ...] = ()
    history: tuple[HistoryEntry, ...] = ()


def order_of(row: Row, lines: Sequence[OrderLine] = (),
             history: Sequence[HistoryEntry] = ()) -> Order:
    values = {column.name: getattr(row, column.name) for column in commerce_orders.columns}
    return Order(**values, lines=tuple(lines), history=tuple(history))


def line_of(row: Row) -> OrderLine:
    return OrderLine(**{name: getattr(row, name) for name in OrderLine.__slots__})


def load_orders(connection: Connection, rows: Sequence[Row], *,
                with_history: bool = False) -> list[Order]:
    """The orders of `rows` with their lines (and timelines), in the rows' order."""
    if not rows:
        return []
    ids = [row.id for row in rows]
    lines: dict[UUID, list[OrderLine]] = {order_id: [] for order_id in ids}
    ol = commerce_order_lines
    for row in connection.execute(
        select(ol).where(ol.c.order_id.in_(ids)).order_by(ol.c.order_id, ol.c.position)
    ):
        lines[row.order_id].append(line_of(row))
    history: dict[UUID, list[HistoryEntry]] = {order_id: [] for order_id in ids}
    if with_history:
        h = commerce_order_history
        for row in connection.execute(
            select(h).where(h.c.order_id.in_(ids)).order_by(h.c.order_id, h.c.id)
        ):
            history[row.order_id].append(HistoryEntry(row.event, row.carrier,
                                                      row.tracking_number, row.note,
                                                      row.created_at))
    return [order_of(row, lines[row.id], history[row.id]) for row in rows]


def shares_of(connection: Connection, order_id: UUID) -> tuple[Share, ...]:
    """The split recorded for the order at checkout, in position order."""
    s = commerce_order_shares
    rows = connection.execute(
        select(s).where(s.c.order_id == order_id).order_by(s.c.position)
    )
    return tuple(Share(ShareKind(row.kind), row.owner_id, int(row.amount_minor)) for row in rows)


def announce(
    connection: Connection, row: Row, event: str, *, at: datetime, note: str | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write `event` into the order's timeline and append `commerce_order.<event>`.

    Call it only from the transaction whose conditional update made the change.
    """
    connection.execute(commerce_order_history.insert().values(
        id=uuid7(), order_id=row.id, event=event, carrier=row.carrier,
        tracking_number=row.tracking_number, note=note, created_at=at,
    ))
    append_event(connection, EVENT_PREFIX + event, AGGREGATE, str(row.id),
                 _payload(row, event, at, extra))


# `announce` of several orders in one statement: their timeline rows and their events,
# from JSON rows (the outbox's columns as `pacioli.ledger.outbox.append_event` writes
# them; payments/p2p.py restates them the same way).
_ANNOUNCE_ALL_SQL = """
WITH history AS (
    INSERT INTO commerce_order_history (id, order_id, event, carrier, tracking_number, note,
                                        created_at)
    SELECT h.id, h.order_id, h.event, h.carrier, h.tracking_number, NULL, h.created_at
    FROM jsonb_to_recordset(%(history)s::jsonb) AS h(id uuid, order_id uuid, event text,
                                                     carrier text, tracking_number text,
                                                     created_at timestamptz)
)
INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, payload, created_at)
SELECT e.event_id, e.event_type, %(aggregate)s, e.aggregate_id, e.payload, e.created_at
FROM jsonb_to_recordset(%(events)s::jsonb) AS e(event_id uuid, event_type text,
                                               aggregate_id text, payload jsonb,
                                               created_at timestamptz)
"""


def announce_all(connection: Connection, rows: Sequence[Row], event: str, *,
                 at: datetime) -> None:
    """`announce` (no note, no extra payload) of each of `rows`, in one statement."""
    if not rows:
        return
    announced_at = datetime.now(UTC).isoformat()
    plain_sql.execute(connection, _ANNOUNCE_ALL_SQL, {
        "aggregate": AGGREGATE,
        "history": json.dumps([
            {"id": str(uuid7()), "order_id": str(row.id), "event": event,
             "carrier": row.carrier, "tracking_number": row.tracking_number,
             "created_at": at.isoformat()}
            for row in rows
        ]),
        "events": json.dumps([
            {"event_id": str(uuid7()), "event_type": EVENT_PREFIX + event,
             "aggregate_id": str(row.id), "payload": _payload(row, event, at, None),
             "created_at": announced_at}
            for row in rows
        ]),
    })


def _payload(row: Row, event: str, at: datetime, extra: dict[str, Any] | None) -> dict:
    return {
        "order_id": str(row.id), "checkout_id": str(row.checkout_id),
        "user_id": str(row.user_id), "merchant_id": str(row.supplier_id),
        "status": row.status, "payment_status": row.payment_status,
        "total_minor": str(int(row.total_minor)), "currency": row.currency,
        "carrier": row.carrier, "tracking_number": row.tracking_number,
        "failure_code": row.failure_code, "occurred_at": at.isoformat(),
        **(extra or {}),
    }
