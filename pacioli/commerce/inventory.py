"""Stock that is exact under concurrency: reserve, commit, release, restock, expire.

A variant's units are in one of three counters: `stock_available` (free to sell),
`stock_reserved` (held for checkouts in progress) and `stock_sold`. Every move between
them is one conditional UPDATE of the variant's row: reserving is
`available -= q, reserved += q WHERE available >= q`, so two checkouts racing for the
last units queue on the row lock and the second re-checks what the first left (READ
COMMITTED re-evaluates the WHERE on the new row version). Stock can never go negative:
the WHERE refuses it, and CHECK constraints back it up. Multi-line reservations lock
variants in id order, so two of them never deadlock.

A reservation changes state by a conditional update of its own row
(`held` → `committed` | `released` | `expired`), so commit, release and the expiry job
can race and exactly one of them moves its units. Every function works in the caller's
transaction; refusals roll back to a savepoint, so they change nothing.

When a reservation takes a variant's available stock below its low-stock threshold
(the variant's own, else its supplier's), a `commerce.stock_low` event is appended for
the supplier (a merchant notification and webhook, docs/commerce.md "Inventory").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

import psycopg
from sqlalchemy import Connection, Engine, Row, func, select, update
from sqlalchemy.exc import IntegrityError

from pacioli.commerce import errors as ce
from pacioli.commerce import plain_sql
from pacioli.commerce.catalog_tables import (
    commerce_products,
    commerce_reservation_lines,
    commerce_reservations,
    commerce_suppliers,
    commerce_variants,
)
from pacioli.ledger.outbox import append_event

EXPIRY_BATCH_SIZE = 200
STOCK_LOW_EVENT = "commerce.stock_low"


def reserve(
    connection: Connection,
    reservation_id: UUID,
    lines: Sequence[tuple[UUID, int]],
    *,
    expires_at: datetime,
    savepoint: bool = True,
) -> None:
    """Hold `lines` (variant id, quantity) until `expires_at`: all of them or none.

    Reserving again with the id of a reservation still held or committed is a no-op
    (a retried checkout). Raises: OutOfStock (not enough available, or the product is no
    longer sold), VariantNotFound, InvalidCommerceRequest (no lines, quantity < 1),
    ReservationNotHeld (the id names a reservation released or expired).

    `savepoint=False` is for a caller that rolls its whole transaction back on any
    refusal (checkout's step 1): two round trips fewer, but a refusal then leaves the
    transaction to be rolled back, and an unknown variant is not named.
    """
    wanted = _merged(lines)
    try:
        if savepoint:
            with connection.begin_nested():
                _reserve(connection, reservation_id, wanted, expires_at=expires_at)
        else:
            _reserve(connection, reservation_id, wanted, expires_at=expires_at)
    except (IntegrityError, psycopg.errors.IntegrityError):
        # A line's variant does not exist (its foreign key refused it; the savepoint
        # undid the rest): name it. Looked for only then, so a reservation costs no read.
        if not savepoint:
            raise ce.VariantNotFound("a variant of the reservation does not exist") from None
        _check_variants_exist(connection, [variant_id for variant_id, _ in wanted])
        raise


# The reservation and its lines in one statement; no row back means the id was taken.
_RESERVE_SQL = """
WITH reservation AS (
    INSERT INTO commerce_reservations (id, status, expires_at, created_at)
    VALUES (%(id)s, 'held', %(expires_at)s, now())
    ON CONFLICT (id) DO NOTHING
    RETURNING id
)
INSERT INTO commerce_reservation_lines (reservation_id, variant_id, quantity)
SELECT reservation.id, line.variant_id, line.quantity
FROM reservation,
     unnest(%(variant_ids)s::uuid[], %(quantities)s::bigint[]) AS line(variant_id, quantity)
RETURNING reservation_id
"""


def _reserve(connection: Connection, reservation_id: UUID, wanted: list[tuple[UUID, int]], *,
             expires_at: datetime) -> None:
    """`reserve`'s writes. A retry is found by the insert's conflict, not by a read
    first: the id of a new checkout is new, so it almost never conflicts."""
    recorded = plain_sql.first(connection, _RESERVE_SQL, {
        "id": reservation_id, "expires_at": expires_at,
        "variant_ids": [variant_id for variant_id, _ in wanted],
        "quantities": [quantity for _, quantity in wanted],
    })
    if recorded is None:
        # A retry, or a concurrent call with this id that committed first: a held or
        # committed reservation stands (a no-op); a released or expired one raises.
        _already_reserved(connection, reservation_id)
        return
    # The variant rows last: their locks are held until the caller commits, so
    # everything else is written before the first of them is taken.
    for variant_id, quantity in wanted:
        taken = _take_available(connection, variant_id, quantity, into="stock_reserved")
        _announce_if_low(connection, taken, quantity)


def _already_reserved(connection: Connection, reservation_id: UUID) -> bool:
    """True if the id names a reservation held or committed (a retry: nothing to do).

    Raises: ReservationNotHeld (it was released or expired).
    """
    existing = connection.execute(
        select(commerce_reservations.c.status).where(commerce_reservations.c.id == reservation_id)
    ).first()
    if existing is None:
        return False
    if existing.status in ("held", "committed"):
        return True
    raise ce.ReservationNotHeld(f"reservation {reservation_id} is {existing.status}")


def commit(connection: Connection, reservation_id: UUID, *,
           lines: Sequence[tuple[UUID, int]] | None = None) -> None:
    """The checkout was paid: its reserved units are sold.

    Committing twice is a no-op. A reservation that expired meanwhile takes its units
    again from what is available, if they still are. Raises: ReservationNotFound,
    ReservationNotHeld (it was released), OutOfStock (it expired and the units are gone).

    `lines` are the (variant id, quantity) the caller reserved, when it knows them (the
    checkout that placed the reservation in this request): they are not read back.
    """
    moved = _resolve(connection, reservation_id, "held", "committed")
    if moved:
        _move_lines(connection, reservation_id, take="stock_reserved", give="stock_sold",
                    lines=None if lines is None else _merged(lines))
        return
    status = _status(connection, reservation_id)
    if status == "committed":
        return
    if status != "expired":
        raise ce.ReservationNotHeld(f"reservation {reservation_id} is {status}")
    with connection.begin_nested():
        if not _resolve(connection, reservation_id, "expired", "committed"):
            raise ce.ReservationNotHeld(f"reservation {reservation_id} changed meanwhile")
        for variant_id, quantity in _lines_of(connection, reservation_id):
            taken = _take_available(connection, variant_id, quantity, into="stock_sold")
            _announce_if_low(connection, taken, quantity)


def release(connection: Connection, reservation_id: UUID) -> None:
    """The checkout failed or was cancelled before payment: the units are available again.

    Releasing a reservation already released or expired is a no-op. Raises:
    ReservationNotFound, ReservationNotHeld (it was committed: use `restock`).
    """
    if _resolve(connection, reservation_id, "held", "released"):
        _move_lines(connection, reservation_id, take="stock_reserved", give="stock_available")
        return
    status = _status(connection, reservation_id)
    if status == "committed":
        raise ce.ReservationNotHeld(f"reservation {reservation_id} was committed")


def restock(
    connection: Connection, reservation_id: UUID, lines: Sequence[tuple[UUID, int]]
) -> None:
    """Returned units of a committed reservation go back on sale.

    Never more units of a variant than the reservation sold. Raises: ReservationNotFound,
    ReservationNotHeld (not committed), InvalidCommerceRequest (more than was sold, or
    a variant the reservation does not have).
    """
    status = _status(connection, reservation_id)
    if status != "committed":
        raise ce.ReservationNotHeld(f"reservation {reservation_id} is {status}, not committed")
    rl, v = commerce_reservation_lines, commerce_variants
    with connection.begin_nested():
        for variant_id, quantity in _merged(lines):
            counted = connection.execute(
                update(rl)
                .where(rl.c.reservation_id == reservation_id, rl.c.variant_id == variant_id,
                       rl.c.restocked + quantity <= rl.c.quantity)
                .values(restocked=rl.c.restocked + quantity)
                .returning(rl.c.variant_id)
            ).first()
            if counted is None:
                raise ce.InvalidCommerceRequest(
                    f"reservation {reservation_id} did not sell {quantity} more of {variant_id}"
                )
            connection.execute(
                update(v).where(v.c.id == variant_id)
                .values(stock_sold=v.c.stock_sold - quantity,
                        stock_available=v.c.stock_available + quantity)
            )


def expire_reservations(engine: Engine, now: datetime) -> int:
    """Release every held reservation whose time ran out; how many were expired.

    Each batch is one transaction; rows locked by a checkout committing them are
    skipped (SKIP LOCKED) and the conditional update decides who wins.
    """
    r = commerce_reservations
    expired = 0
    while True:
        with engine.begin() as connection:
            due = connection.execute(
                select(r.c.id).where(r.c.status == "held", r.c.expires_at <= now)
                .order_by(r.c.expires_at).limit(EXPIRY_BATCH_SIZE)
                .with_for_update(skip_locked=True)
            ).scalars().all()
            for reservation_id in due:
                if _resolve(connection, reservation_id, "held", "expired"):
                    _move_lines(connection, reservation_id, take="stock_reserved",
                                give="stock_available")
                    expired += 1
        if len(due) < EXPIRY_BATCH_SIZE:
            return expired


def reservation_status(connection: Connection, reservation_id: UUID) -> str:
    """held, committed, released or expired. Raises: ReservationNotFound."""
    return _status(connection, reservation_id)


def announce_if_low(connection: Connection, variant_id: UUID, units_taken: int) -> None:
    """Announce low stock if taking `units_taken` crossed the variant's threshold."""
    row = connection.execute(_variant_stock_query().where(
        commerce_variants.c.id == variant_id
    )).first()
    if row is not None:
        _announce_if_low(connection, row, units_taken)


# The moves.


def _merged(lines: Iterable[tuple[UUID, int]]) -> list[tuple[UUID, int]]:
    """Lines summed per variant, in variant id order (the lock order)."""
    merged: dict[UUID, int] = {}
    for variant_id, quantity in lines:
        if quantity < 1:
            raise ce.InvalidCommerceRequest("a reserved quantity must be at least 1")
        merged[variant_id] = merged.get(variant_id, 0) + quantity
    if not merged:
        raise ce.InvalidCommerceRequest("a reservation needs at least one line")
    return sorted(merged.items())


def _check_variants_exist(connection: Connection, variant_ids: list[UUID]) -> None:
    """Raises: VariantNotFound (before a line's foreign key would refuse it)."""
    v = commerce_variants
    found = set(connection.execute(select(v.c.id).where(v.c.id.in_(variant_ids))).scalars())
    for variant_id in variant_ids:
        if variant_id not in found:
            raise ce.VariantNotFound(f"no variant {variant_id}")


# Taking units of a variant still sold, if enough are available; the row's stock and
# low-stock threshold come back for `_announce_if_low`. `{into}` is a counter's name.
_TAKE_AVAILABLE_SQL = """
UPDATE commerce_variants v
SET stock_available = v.stock_available - %(quantity)s, {into} = v.{into} + %(quantity)s
FROM commerce_products p, commerce_suppliers s
WHERE v.id = %(id)s AND v.active AND v.stock_available >= %(quantity)s
  AND p.id = v.product_id AND p.active AND s.merchant_id = p.supplier_id
RETURNING v.id, v.product_id, v.sku, v.stock_available, p.supplier_id, p.name,
          coalesce(v.low_stock_threshold, s.low_stock_threshold) AS threshold
"""
_TAKE_AVAILABLE = {into: _TAKE_AVAILABLE_SQL.format(into=into)
                   for into in ("stock_reserved", "stock_sold")}
_MOVE = {(take, give): f"UPDATE commerce_variants SET {take} = {take} - %(quantity)s,"
                       f" {give} = {give} + %(quantity)s WHERE id = %(id)s"
         for take, give in (("stock_reserved", "stock_sold"),
                            ("stock_reserved", "stock_available"))}


def _take_available(connection: Connection, variant_id: UUID, quantity: int, *, into: str):
    """Move `quantity` units from available into `into`, or raise.

    Raises: OutOfStock, VariantNotFound.
    """
    taken = plain_sql.first(connection, _TAKE_AVAILABLE[into],
                            {"id": variant_id, "quantity": quantity})
    if taken is not None:
        return taken
    v = commerce_variants
    found = connection.execute(select(v.c.stock_available).where(v.c.id == variant_id)).first()
    if found is None:
        raise ce.VariantNotFound(f"no variant {variant_id}")
    raise ce.OutOfStock(
        variant_id, f"variant {variant_id}: {quantity} wanted, {found.stock_available} available"
        " (or it is no longer sold)",
    )


def _move_lines(connection: Connection, reservation_id: UUID, *, take: str, give: str,
                lines: list[tuple[UUID, int]] | None = None) -> None:
    """Move the reservation's units (`lines`, merged, when the caller knows them), in
    variant id order."""
    move = _MOVE[(take, give)]
    for variant_id, quantity in lines or _lines_of(connection, reservation_id):
        plain_sql.execute(connection, move, {"id": variant_id, "quantity": quantity})


def _lines_of(connection: Connection, reservation_id: UUID) -> list[tuple[UUID, int]]:
    rl = commerce_reservation_lines
    rows = connection.execute(
        select(rl.c.variant_id, rl.c.quantity)
        .where(rl.c.reservation_id == reservation_id).order_by(rl.c.variant_id)
    )
    return [(row.variant_id, int(row.quantity)) for row in rows]


def _resolve(connection: Connection, reservation_id: UUID, from_status: str, to: str) -> bool:
    """Move the reservation from one state to another; False if it was not in `from_status`."""
    return plain_sql.execute(
        connection, "UPDATE commerce_reservations SET status = %(to)s, resolved_at = now()"
        " WHERE id = %(id)s AND status = %(from_status)s",
        {"id": reservation_id, "from_status": from_status, "to": to},
    ) == 1


def _status(connection: Connection, reservation_id: UUID) -> str:
    r = commerce_reservations
    row = connection.execute(select(r.c.status).where(r.c.id == reservation_id)).first()
    if row is None:
        raise ce.ReservationNotFound(f"no reservation {reservation_id}")
    return row.status


# Low stock.


def _stock_columns():
    v, p, s = commerce_variants, commerce_products, commerce_suppliers
    return (
        v.c.id, v.c.product_id, v.c.sku, v.c.stock_available, p.c.supplier_id, p.c.name,
        func.coalesce(v.c.low_stock_threshold, s.c.low_stock_threshold).label("threshold"),
    )


def _variant_stock_query():
    v, p, s = commerce_variants, commerce_products, commerce_suppliers
    return select(*_stock_columns()).select_from(
        v.join(p, p.c.id == v.c.product_id).join(s, s.c.merchant_id == p.c.supplier_id)
    )


def _announce_if_low(connection: Connection, row: Row, units_taken: int) -> None:
    """Append `commerce.stock_low` when available stock just fell below the threshold.

    Only the move that crosses the threshold announces, so a busy variant does not
    notify its supplier on every sale.
    """
    after = int(row.stock_available)
    before = after + units_taken
    if not after < row.threshold <= before:
        return
    append_event(
        connection, STOCK_LOW_EVENT, "commerce_variant", str(row.id),
        {
            "merchant_id": str(row.supplier_id), "product_id": str(row.product_id),
            "variant_id": str(row.id), "sku": row.sku, "product_name": row.name,
            "stock_available": str(after), "low_stock_threshold": str(row.threshold),
        },
    )
