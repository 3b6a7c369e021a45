"""Settlement's reads and writes of the exchange's tables (settlement.py posts the ledger)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Engine, Row, func, select

from pacioli.ledger.domain.errors import invariant
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.domain.money import format_minor
from pacioli.ledger.storage import arrays
from pacioli.matching.market import Market
from pacioli.matching.settlement_records import (
    BatchPlan,
    CommandSpan,
    FillRecord,
    HoldRecord,
    Mark,
    plan_from_json,
    plan_to_json,
)
from pacioli.matching.tables import (
    exchange_fills,
    exchange_holds,
    exchange_settlement_batches,
)

_b, _f, _h = exchange_settlement_batches, exchange_fills, exchange_holds


def last_batch(engine: Engine, symbol: str) -> Row | None:
    with engine.connect() as connection:
        return connection.execute(
            select(_b).where(_b.c.market == symbol).order_by(_b.c.number.desc()).limit(1)
        ).first()


def plan_of(row: Row) -> BatchPlan:
    return plan_from_json(row.plan)


def posted_through(engine: Engine, symbol: str) -> int:
    """The last command whose settlement is posted (0 if none)."""
    with engine.connect() as connection:
        return connection.execute(
            select(func.max(_b.c.marks_through_seq))
            .where(_b.c.market == symbol, _b.c.status == "posted")
        ).scalar() or 0


def read_spans(
    engine: Engine, symbol: str, *, last_fill_no: int, marks_through_seq: int,
    commands_max: int, fills_max: int,
) -> list[CommandSpan]:
    """The unsettled stream after the position: commands, their fills and marks, in order.

    At most `commands_max` commands and `fills_max` fills; a command whose fills were not
    all read is the last span, marked incomplete. Read as plain tuples through the
    driver (a window is tens of thousands of rows: SQLAlchemy's rows cost more than the
    query), amounts as text.
    """
    with engine.connect() as connection, _cursor(connection) as cursor:
        commands = cursor.execute(
            "SELECT seq, fill_no_last FROM exchange_commands WHERE market = %s AND seq > %s"
            " ORDER BY seq LIMIT %s", (symbol, marks_through_seq, commands_max),
        ).fetchall()
        if not commands:
            return []
        last_seq = commands[-1][0]
        fills = [FillRecord(
            fill_no, seq, int(size), int(quote), taker_order, maker_order, taker_user,
            maker_user, taker_side, int(taker_fee), int(maker_fee), int(rounding),
        ) for (fill_no, seq, size, quote, taker_order, maker_order, taker_user, maker_user,
               taker_side, taker_fee, maker_fee, rounding) in cursor.execute(
            "SELECT fill_no, command_seq, size::text, quote_amount::text, taker_order,"
            " maker_order, taker_user_id, maker_user_id, taker_side, taker_fee::text,"
            " maker_fee::text, buyer_rounding::text FROM exchange_fills"
            " WHERE market = %s AND fill_no > %s AND command_seq <= %s"
            " ORDER BY fill_no LIMIT %s", (symbol, last_fill_no, last_seq, fills_max),
        ).fetchall()]
        marks = cursor.execute(
            'SELECT command_seq, "order", need_after::text, done FROM exchange_order_marks'
            " WHERE market = %s AND command_seq > %s AND command_seq <= %s"
            " ORDER BY command_seq", (symbol, marks_through_seq, last_seq),
        ).fetchall()
    fills_read_through = fills[-1].fill_no if len(fills) == fills_max else None
    fills_by_seq: dict[int, list[FillRecord]] = {}
    for fill in fills:
        fills_by_seq.setdefault(fill.command_seq, []).append(fill)
    marks_by_seq: dict[int, list[Mark]] = {}
    for seq, order, need_after, done in marks:
        marks_by_seq.setdefault(seq, []).append(Mark(seq, order, int(need_after), done))
    spans = []
    for seq, fill_no_last in commands:
        complete = fills_read_through is None or fill_no_last <= fills_read_through
        spans.append(CommandSpan(
            seq, tuple(fills_by_seq.get(seq, ())),
            tuple(marks_by_seq.get(seq, ())) if complete else (), complete,
        ))
        if not complete:
            break
    return spans


@contextmanager
def _cursor(connection: Connection) -> Iterator[psycopg.Cursor]:
    """A psycopg cursor on the SQLAlchemy connection (and in its transaction)."""
    with connection.connection.driver_connection.cursor() as cursor:
        yield cursor


def planned_batches(engine: Engine, symbol: str) -> list[Row]:
    """Batches planned and not recorded as posted, in order (a crash left them)."""
    with engine.connect() as connection:
        return list(connection.execute(
            select(_b).where(_b.c.market == symbol, _b.c.status == "planned")
            .order_by(_b.c.number)
        ))


def open_holds(
    engine: Engine, orders: Iterable[UUID]
) -> tuple[dict[UUID, list[HoldRecord]], dict[UUID, UUID]]:
    """The open holds of these orders, and each hold's ledger pending transfer."""
    wanted = list(dict.fromkeys(orders))  # no duplicates: they are joined with the holds
    holds: dict[UUID, list[HoldRecord]] = {}
    transfers: dict[UUID, UUID] = {}
    if not wanted:
        return holds, transfers
    with engine.connect() as connection, _cursor(connection) as cursor:
        rows = cursor.execute(
            # A join with the ids, not `= ANY`: with thousands of orders the ANY list was
            # planned and searched per row (10 ms a window against 2.5).
            'SELECT h.id, h."order", h.asset, h.amount::text, h.wallet_account_id,'
            " h.clearing_account_id, h.created_seq, h.transfer_id FROM exchange_holds AS h"
            ' JOIN unnest(%b::uuid[]) AS wanted(id) ON h."order" = wanted.id'
            " WHERE h.status = 'open' ORDER BY h.created_seq, h.id",
            (arrays.uuids(wanted),),
        ).fetchall()
    for hold_id, order, asset, amount, wallet, clearing, created_seq, transfer_id in rows:
        holds.setdefault(order, []).append(HoldRecord(
            hold_id, order, asset, int(amount), wallet, clearing, created_seq,
        ))
        transfers[hold_id] = transfer_id
    return holds, transfers


def hold_transfer_ids(engine: Engine, hold_ids: Sequence[UUID]) -> dict[UUID, UUID]:
    if not hold_ids:
        return {}
    with engine.connect() as connection:
        rows = connection.execute(
            select(_h.c.id, _h.c.transfer_id).where(_h.c.id.in_(hold_ids))
        )
        found = {row.id: row.transfer_id for row in rows}
    invariant(all(found.get(h) is not None for h in hold_ids),
              "every hold a batch resolves is open in the ledger")
    return found


@contextmanager
def transaction(engine: Engine) -> Iterator[psycopg.Cursor]:
    """A cursor in a transaction of its own, committed when the block ends: several
    batches stored or recorded together share one commit."""
    with engine.begin() as connection, _cursor(connection) as cursor:
        yield cursor


def insert_planned(
    engine: Engine, symbol: str, batch_id: UUID, number: int, plan: BatchPlan, *,
    now: datetime, cursor: psycopg.Cursor | None = None,
) -> None:
    """Store a planned batch and stamp its fills with it, in one transaction (one
    statement), or in `cursor`'s (see `transaction`)."""
    if cursor is None:
        with transaction(engine) as cursor:
            insert_planned(engine, symbol, batch_id, number, plan, now=now, cursor=cursor)
        return
    cursor.execute(
        "WITH batch AS (INSERT INTO exchange_settlement_batches (id, market, number,"
        " first_fill_no, last_fill_no, marks_through_seq, holds_through_seq, fill_count,"
        " item_count, plan, status, created_at) VALUES (%(id)s, %(market)s, %(number)s,"
        " %(first)s, %(last)s, %(marks)s, %(holds)s, %(fills)s, %(items)s, %(plan)s,"
        " 'planned', %(now)s))"
        " UPDATE exchange_fills SET batch_id = %(id)s WHERE market = %(market)s"
        " AND fill_no >= %(first)s AND fill_no <= %(last)s AND batch_id IS NULL",
        {"id": batch_id, "market": symbol, "number": number,
         "first": plan.first_fill_no, "last": plan.last_fill_no,
         "marks": plan.marks_through_seq, "holds": plan.holds_through_seq,
         "fills": plan.fill_count, "items": plan.item_count,
         "plan": Jsonb(plan_to_json(plan)), "now": now},
    )


# Marks the batch posted and, only if it was still planned, resolves its holds, opens its
# re-holds and returns the orders it finished that were filled whole (for their events).
_RECORD_SQL = (
    "WITH marked AS (UPDATE exchange_settlement_batches SET status = 'posted',"
    " posted_at = %(now)s WHERE id = %(batch)s AND status = 'planned' RETURNING id),"
    " resolved AS (UPDATE exchange_holds SET status = 'resolved',"
    " resolved_by_batch = %(batch)s WHERE id = ANY(%(resolved)b::uuid[])"
    " AND status = 'open' AND EXISTS (SELECT FROM marked)),"
    " made AS (INSERT INTO exchange_holds (id, \"order\", market, asset, amount,"
    " wallet_account_id, clearing_account_id, created_seq, created_by_batch, transfer_id,"
    " status) SELECT v.id, v.ord, %(market)s, v.asset, v.amount::numeric, v.wallet,"
    " v.clearing, %(seq)s, %(batch)s, v.transfer, 'open' FROM unnest(%(ids)b::uuid[],"
    " %(orders)b::uuid[], %(assets)b::text[], %(amounts)b::text[], %(wallets)b::uuid[],"
    " %(clearings)b::uuid[], %(transfers)b::uuid[])"
    " AS v(id, ord, asset, amount, wallet, clearing, transfer)"
    " WHERE EXISTS (SELECT FROM marked))"
    " SELECT o.id, o.user_id, o.side, o.filled_size::text, o.filled_quote::text, o.fee::text"
    " FROM exchange_orders o WHERE o.id = ANY(%(done)b::uuid[])"
    " AND o.done_reason = 'filled' AND EXISTS (SELECT FROM marked)"
)

# Every event of a batch in one statement (an INSERT per event cost more than the rest of
# the record).
_OUTBOX_SQL = (
    "INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, payload,"
    " created_at) SELECT v.id, 'order.filled', 'order', v.aggregate, v.payload::jsonb,"
    " v.created_at FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::timestamptz[])"
    " AS v(id, aggregate, payload, created_at)"
)


def record_posted(
    engine: Engine, market: Market, batch_id: UUID, plan: BatchPlan,
    reholds: dict[UUID, UUID], *, now: datetime, cursor: psycopg.Cursor | None = None,
) -> None:
    """Mark the batch posted, its holds resolved and its re-holds open; announce the
    orders it finished filling. Does nothing if the batch was recorded already.

    One statement and the events' insert: three round trips with the COMMIT. In
    `cursor`'s transaction, if given (see `transaction`).
    """
    if cursor is None:
        with transaction(engine) as cursor:
            record_posted(engine, market, batch_id, plan, reholds, now=now, cursor=cursor)
        return
    made = [o for o in plan.orders if o.rehold is not None]
    filled = cursor.execute(_RECORD_SQL, {
        "now": now, "batch": batch_id, "market": market.symbol,
        "seq": plan.holds_through_seq,
        "resolved": arrays.uuids([hold for order in plan.orders for hold, _ in order.posts]),
        "ids": arrays.uuids([o.rehold.id for o in made]),
        "orders": arrays.uuids([o.order for o in made]),
        "assets": arrays.texts([o.rehold.asset for o in made]),
        "amounts": arrays.texts([str(o.rehold.amount) for o in made]),
        "wallets": arrays.uuids([o.rehold.wallet_account_id for o in made]),
        "clearings": arrays.uuids([o.rehold.clearing_account_id for o in made]),
        "transfers": arrays.uuids([reholds[o.rehold.id] for o in made]),
        "done": arrays.uuids([o.order for o in plan.orders if o.done]),
    }).fetchall()
    if filled:
        events = _filled_events(market, filled)
        ids, aggregates, payloads, created = zip(*events, strict=True)
        cursor.execute(_OUTBOX_SQL, [arrays.uuids(ids), arrays.texts(aggregates),
                                     arrays.texts(payloads), arrays.instants(created)])


_JSON = json.JSONEncoder(separators=(",", ":"))


def _filled_events(market: Market, rows: list[tuple]) -> list[tuple]:
    """`order.filled` outbox rows (event id, aggregate id, payload, created_at) for orders
    the batch finished settling that were filled whole (the rows `append_event` writes)."""
    now = datetime.now(UTC)
    events = []
    for order_id, user_id, side, filled_size, filled_quote, fee in rows:
        filled_size, filled_quote = int(filled_size), int(filled_quote)
        price = filled_quote * market.base_unit // filled_size
        events.append((uuid7(), str(order_id), _JSON.encode({
            "order_id": str(order_id), "user_id": str(user_id), "market": market.symbol,
            "side": side,
            "filled_size": format_minor(filled_size, market.base_scale),
            "price": format_minor(price, market.quote_scale),
            "filled_size_minor": str(filled_size),
            "filled_quote_minor": str(filled_quote), "fee_minor": fee,
        }), now))
    return events
