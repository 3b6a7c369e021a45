"""Settlement items: what a merchant is owed, recorded by the flows that earn it.

A flow that credits a merchant's pending-settlement account (`Chart.
merchant_pending_settlement`) records one item in the same database transaction that
marks its own record done: `record_item(connection, ...)`. Any package may add its own
`source_kind` (QR payments use `qr_payment` and `qr_refund`; checkout may add
`checkout_order`). The item's net must equal what the flow moved into (or, negative,
out of) the pending-settlement account, because the settlement run moves exactly the
sum of its items' nets out of it (docs/settlement.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert

from pacioli.ledger.domain.errors import invariant
from pacioli.ledger.domain.ids import uuid7
from pacioli.payments.settlement_tables import settlement_items


@dataclass(frozen=True, slots=True)
class SettlementItem:
    id: UUID
    merchant_id: UUID
    currency: str
    source_kind: str
    source_id: UUID
    gross_minor: int  # negative for a refund
    fee_minor: int
    net_minor: int
    completed_at: datetime
    batch_id: UUID | None


def record_item(
    connection: Connection, *, merchant_id: UUID, currency: str, source_kind: str,
    source_id: UUID, gross_minor: int, fee_minor: int, completed_at: datetime,
) -> None:
    """Queue what a source owes the merchant (net = gross - fee), once per source.

    Call it in the transaction that finishes the source's own record; a second call for
    the same (source_kind, source_id) does nothing.
    """
    invariant(type(gross_minor) is int and type(fee_minor) is int, "amounts are ints")
    connection.execute(
        insert(settlement_items).values(
            id=uuid7(), merchant_id=merchant_id, currency=currency, source_kind=source_kind,
            source_id=source_id, gross_minor=gross_minor, fee_minor=fee_minor,
            net_minor=gross_minor - fee_minor, completed_at=completed_at,
            created_at=datetime.now(UTC),
        ).on_conflict_do_nothing(index_elements=["source_kind", "source_id"])
    )


def item_of_source(connection: Connection, source_kind: str, source_id: UUID):
    """The item row a source recorded, or None."""
    t = settlement_items
    return connection.execute(
        select(t).where(t.c.source_kind == source_kind, t.c.source_id == source_id)
    ).first()


def items_of_batch(connection: Connection, batch_id: UUID) -> list[SettlementItem]:
    t = settlement_items
    rows = connection.execute(
        select(t).where(t.c.batch_id == batch_id).order_by(t.c.completed_at, t.c.id)
    )
    return [item_of(row) for row in rows]


def item_of(row) -> SettlementItem:
    return SettlementItem(
        id=row.id, merchant_id=row.merchant_id, currency=row.currency,
        source_kind=row.source_kind, source_id=row.source_id,
        gross_minor=row.gross_minor, fee_minor=row.fee_minor, net_minor=row.net_minor,
        completed_at=row.completed_at, batch_id=row.batch_id,
    )
