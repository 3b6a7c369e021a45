"""The exchange's writes and reads of its own tables (the ledger is written elsewhere).

The write path of one command, under its market's lock (service.py):

1. `insert_intent` — the order (`new`) and/or its hold (`reserving`) are recorded before
   the ledger is asked to hold funds, so a crash after the hold finds it (rebuild.py
   voids it: the order was never acknowledged).
2. the ledger hold; the book applies the command in memory.
3. `write_log` — one transaction: the command row (with the book's sequence and state
   hash), its fills, its order marks, the orders' new state, the holds now `open`. Its
   commit is the acknowledgement.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Connection,
    Row,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from pacioli.matching.tables import (
    exchange_commands,
    exchange_fills,
    exchange_holds,
    exchange_order_marks,
    exchange_orders,
    exchange_settlement_batches,
)

PAGE_LIMIT_MAX = 200


@dataclass(slots=True)
class LogEntry:
    """Everything one acknowledged command writes, in one transaction."""

    command: dict[str, Any]
    fills: list[dict[str, Any]] = field(default_factory=list)
    marks: list[dict[str, Any]] = field(default_factory=list)
    order_changes: list[dict[str, Any]] = field(default_factory=list)
    opened_holds: list[dict[str, Any]] = field(default_factory=list)


# The write path.


def insert_intent(
    connection: Connection, *, order: dict[str, Any] | None, hold: dict[str, Any] | None
) -> bool:
    """Record an order about to be placed and/or the hold about to be asked for.

    Returns False (and writes nothing) when the user's Idempotency-Key already names an
    order: the caller replays it instead.
    """
    if order is not None:
        inserted = connection.execute(
            pg_insert(exchange_orders).values(**order)
            .on_conflict_do_nothing(index_elements=["user_id", "idempotency_key"])
            .returning(exchange_orders.c.id)
        ).first()
        if inserted is None:
            return False
    if hold is not None:
        connection.execute(insert(exchange_holds).values(**hold))
    return True


def discard_intent(
    connection: Connection, *, order_id: UUID | None, hold_id: UUID | None
) -> None:
    """Forget an intent whose hold was refused (or voided): nobody was told of it."""
    if hold_id is not None:
        connection.execute(
            delete(exchange_holds).where(
                exchange_holds.c.id == hold_id, exchange_holds.c.status == "reserving"
            )
        )
    if order_id is not None:
        connection.execute(
            delete(exchange_orders).where(
                exchange_orders.c.id == order_id, exchange_orders.c.status == "new"
            )
        )


def insert_intents(connection: Connection, orders: list[dict[str, Any]],
                   holds: list[dict[str, Any]]) -> set[UUID]:
    """`insert_intent` for many: one statement per table. The ids of the orders recorded
    (an order whose key names one already is not; neither is its hold)."""
    recorded: set[UUID] = set()
    if orders:
        recorded.update(connection.execute(
            pg_insert(exchange_orders)
            .on_conflict_do_nothing(index_elements=["user_id", "idempotency_key"])
            .returning(exchange_orders.c.id),
            orders,
        ).scalars())
    _insert_rows(connection, exchange_holds, [h for h in holds if h["order"] in recorded])
    return recorded


def _insert_rows(connection: Connection, table, rows: list[dict[str, Any]]) -> None:
    """One executemany: SQLAlchemy sends it as multi-row INSERTs ("insertmanyvalues"),
    a cached statement per batch of rows, within PostgreSQL's parameter limit."""
    if rows:
        connection.execute(insert(table), rows)


def write_log(connection: Connection, entry: LogEntry) -> None:
    """Append one command to its market's log with everything it changed."""
    write_logs(connection, [entry])


def write_logs(connection: Connection, entries: Sequence[LogEntry]) -> None:
    """Append commands to their market's log, in order: one statement per table."""
    commands = [entry.command for entry in entries]
    fills = [fill for entry in entries for fill in entry.fills]
    marks = [mark for entry in entries for mark in entry.marks]
    changes = [change for entry in entries for change in entry.order_changes]
    opened = [hold for entry in entries for hold in entry.opened_holds]
    _insert_rows(connection, exchange_commands, commands)
    _insert_rows(connection, exchange_fills, fills)
    _insert_rows(connection, exchange_order_marks, marks)
    if changes:
        # An order touched by several of these commands changes once per command, in order.
        connection.execute(_ORDER_CHANGE, changes)
    if opened:
        connection.execute(_HOLD_OPENED, opened)


_o = exchange_orders
_ORDER_CHANGE = (
    update(_o)
    .where(_o.c.id == bindparam("b_id"), _o.c.status != "done")
    .values(
        status=bindparam("b_status"),
        done_reason=bindparam("b_done_reason"),
        open_size=bindparam("b_open_size", type_=_o.c.open_size.type),
        # An amend changes the price and size; other commands pass None and keep them.
        price=func.coalesce(bindparam("b_price", type_=_o.c.price.type), _o.c.price),
        size=func.coalesce(bindparam("b_size", type_=_o.c.size.type), _o.c.size),
        filled_size=_o.c.filled_size + bindparam("b_filled_size", type_=_o.c.filled_size.type),
        filled_quote=_o.c.filled_quote + bindparam("b_filled_quote", type_=_o.c.fee.type),
        fee=_o.c.fee + bindparam("b_fee", type_=_o.c.fee.type),
        placed_seq=func.coalesce(_o.c.placed_seq, bindparam("b_placed_seq", type_=BigInteger)),
        updated_at=bindparam("b_updated_at"),
    )
)
_h = exchange_holds
_HOLD_OPENED = (
    update(_h)
    .where(_h.c.id == bindparam("b_id"), _h.c.status == "reserving")
    .values(status="open", transfer_id=bindparam("b_transfer_id"))
)


# Reading the log back (rebuild.py).


def commands_of(connection: Connection, market: str, after_seq: int = 0) -> Iterator[Row]:
    """The market's logged commands after `after_seq`, in order, streamed."""
    t = exchange_commands
    result = connection.execution_options(yield_per=2000).execute(
        select(t.c.seq, t.c.kind, t.c.command, t.c.book_sequence, t.c.state_hash,
               t.c.fill_no_last, t.c.ts)
        .where(t.c.market == market, t.c.seq > after_seq)
        .order_by(t.c.seq)
    )
    yield from result


def live_orders(connection: Connection, market: str) -> list[Row]:
    """The market's orders the log left open, by book id."""
    t = exchange_orders
    return list(connection.execute(
        select(t.c.id, t.c.order_id, t.c.user_id, t.c.side, t.c.hold_asset, t.c.expires_at)
        .where(t.c.market == market, t.c.status == "open")
        .order_by(t.c.order_id)
    ))


def lefts_of_live_orders(connection: Connection, market: str) -> dict[UUID, int]:
    """Each open order's `need_after` in its latest mark: what it has left to be charged."""
    m = exchange_order_marks
    latest = (
        select(m.c.order, func.max(m.c.command_seq).label("seq"))
        .select_from(m.join(_o, _o.c.id == m.c.order))
        .where(m.c.market == market, _o.c.status == "open")
        .group_by(m.c.order)
        .subquery()
    )
    rows = connection.execute(
        select(m.c.order, m.c.need_after).select_from(m.join(
            latest, and_(m.c.order == latest.c.order, m.c.command_seq == latest.c.seq)
        )).where(m.c.market == market)
    )
    return {row.order: row.need_after for row in rows}


def largest_order_id(connection: Connection, market: str) -> int:
    t = exchange_orders
    return connection.execute(
        select(t.c.order_id).where(t.c.market == market).order_by(t.c.order_id.desc()).limit(1)
    ).scalar() or 0


def intents(connection: Connection) -> tuple[list[Row], list[Row]]:
    """Orders still `new` and holds still `reserving`: writes a crash cut short."""
    orders = list(connection.execute(select(_o.c.id, _o.c.market).where(_o.c.status == "new")))
    holds = list(connection.execute(select(_h).where(_h.c.status == "reserving")))
    return orders, holds


# Idempotency.


def order_by_key(connection: Connection, user_id: UUID, key: str) -> Row | None:
    return connection.execute(
        select(_o).where(_o.c.user_id == user_id, _o.c.idempotency_key == key)
    ).first()


def keys_used(connection: Connection, pairs: Sequence[tuple[UUID, str]]) -> set[tuple]:
    """Which (user, Idempotency-Key) pairs name an order or a command already."""
    if not pairs:
        return set()
    c = exchange_commands
    used = {tuple(row) for row in connection.execute(
        select(_o.c.user_id, _o.c.idempotency_key)
        .where(tuple_(_o.c.user_id, _o.c.idempotency_key).in_(pairs))
    )}
    used |= {tuple(row) for row in connection.execute(
        select(c.c.user_id, c.c.idempotency_key)
        .where(tuple_(c.c.user_id, c.c.idempotency_key).in_(pairs))
    )}
    return used


def command_by_key(connection: Connection, user_id: UUID, key: str) -> Row | None:
    t = exchange_commands
    return connection.execute(
        select(t.c.market, t.c.seq, t.c.kind, t.c.request_hash, t.c.result)
        .where(t.c.user_id == user_id, t.c.idempotency_key == key)
    ).first()


# Reads for callers.


def order_row(connection: Connection, order_id: UUID) -> Row | None:
    return connection.execute(select(_o).where(_o.c.id == order_id)).first()


def order_rows(connection: Connection, order_ids: Sequence[UUID]) -> list[Row]:
    if not order_ids:
        return []
    rows = {r.id: r for r in connection.execute(select(_o).where(_o.c.id.in_(order_ids)))}
    return [rows[i] for i in order_ids if i in rows]


def user_orders(
    connection: Connection, user_id: UUID, *, market: str | None, status: str | None,
    limit: int, starting_after: UUID | None,
) -> list[Row]:
    """A user's acknowledged orders, newest first (ids are UUIDv7)."""
    query = select(_o).where(_o.c.user_id == user_id, _o.c.status != "new")
    if market is not None:
        query = query.where(_o.c.market == market)
    if status is not None:
        query = query.where(_o.c.status == status)
    if starting_after is not None:
        query = query.where(_o.c.id < starting_after)
    query = query.order_by(_o.c.id.desc()).limit(min(limit, PAGE_LIMIT_MAX + 1))
    return list(connection.execute(query))


def user_fills(
    connection: Connection, user_id: UUID, *, market: str | None, order_id: UUID | None,
    limit: int, starting_after: UUID | None,
) -> list[Row]:
    """A user's fills (as taker or maker), newest first, with whether each is settled."""
    f, b = exchange_fills, exchange_settlement_batches
    settled = func.coalesce(b.c.status == "posted", False).label("settled")
    query = (
        select(f, settled)
        .select_from(f.outerjoin(b, b.c.id == f.c.batch_id))
        .where(or_(f.c.taker_user_id == user_id, f.c.maker_user_id == user_id))
    )
    if market is not None:
        query = query.where(f.c.market == market)
    if order_id is not None:
        query = query.where(or_(f.c.taker_order == order_id, f.c.maker_order == order_id))
    if starting_after is not None:
        query = query.where(f.c.id < starting_after)
    query = query.order_by(f.c.id.desc()).limit(min(limit, PAGE_LIMIT_MAX + 1))
    return list(connection.execute(query))
