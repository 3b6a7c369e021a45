"""Settlement's reads and writes of the exchange's tables (settlement.py posts the ledger)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Engine, Row, func, insert, select, update

from pacioli.ledger.domain.errors import invariant
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.domain.money import format_minor
from pacioli.ledger.storage.tables import outbox
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
    exchange_commands,
    exchange_fills,
    exchange_holds,
    exchange_order_marks,
    exchange_orders,
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
    all read is the last span, marked incomplete.
    """
    c, m = exchange_commands, exchange_order_marks
    with engine.connect() as connection:
        commands = list(connection.execute(
            select(c.c.seq, c.c.fill_no_last)
            .where(c.c.market == symbol, c.c.seq > marks_through_seq)
            .order_by(c.c.seq).limit(commands_max)
        ))
        if not commands:
            return []
        last_seq = commands[-1].seq
        fills = [_fill(row) for row in connection.execute(
            select(_f).where(_f.c.market == symbol, _f.c.fill_no > last_fill_no,
                             _f.c.command_seq <= last_seq)
            .order_by(_f.c.fill_no).limit(fills_max)
        )]
        marks = list(connection.execute(
            select(m.c.command_seq, m.c.order, m.c.need_after, m.c.done)
            .where(m.c.market == symbol, m.c.command_seq > marks_through_seq,
                   m.c.command_seq <= last_seq)
            .order_by(m.c.command_seq)
        ))
    fills_read_through = fills[-1].fill_no if len(fills) == fills_max else None
    fills_by_seq: dict[int, list[FillRecord]] = {}
    for fill in fills:
        fills_by_seq.setdefault(fill.command_seq, []).append(fill)
    marks_by_seq: dict[int, list[Mark]] = {}
    for row in marks:
        marks_by_seq.setdefault(row.command_seq, []).append(
            Mark(row.command_seq, row.order, row.need_after, row.done)
        )
    spans = []
    for command in commands:
        complete = fills_read_through is None or command.fill_no_last <= fills_read_through
        spans.append(CommandSpan(
            command.seq, tuple(fills_by_seq.get(command.seq, ())),
            tuple(marks_by_seq.get(command.seq, ())) if complete else (), complete,
        ))
        if not complete:
            break
    return spans


def _fill(row: Row) -> FillRecord:
    return FillRecord(
        row.fill_no, row.command_seq, row.size, row.quote_amount, row.taker_order,
        row.maker_order, row.taker_user_id, row.maker_user_id, row.taker_side, row.taker_fee,
        row.maker_fee, row.buyer_rounding,
    )


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
    wanted = list(orders)
    holds: dict[UUID, list[HoldRecord]] = {}
    transfers: dict[UUID, UUID] = {}
    if not wanted:
        return holds, transfers
    with engine.connect() as connection:
        rows = connection.execute(
            select(_h).where(_h.c.status == "open", _h.c.order.in_(wanted))
            .order_by(_h.c.created_seq, _h.c.id)
        )
        for row in rows:
            holds.setdefault(row.order, []).append(HoldRecord(
                row.id, row.order, row.asset, row.amount, row.wallet_account_id,
                row.clearing_account_id, row.created_seq,
            ))
            transfers[row.id] = row.transfer_id
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


def insert_planned(
    engine: Engine, symbol: str, batch_id: UUID, number: int, plan: BatchPlan, *,
    now: datetime,
) -> None:
    """Store a planned batch and stamp its fills with it, in one transaction."""
    with engine.begin() as connection:
        connection.execute(insert(_b).values(
            id=batch_id, market=symbol, number=number, first_fill_no=plan.first_fill_no,
            last_fill_no=plan.last_fill_no, marks_through_seq=plan.marks_through_seq,
            holds_through_seq=plan.holds_through_seq, fill_count=plan.fill_count,
            item_count=plan.item_count, plan=plan_to_json(plan), status="planned",
            created_at=now,
        ))
        if plan.fill_count:
            connection.execute(
                update(_f).where(
                    _f.c.market == symbol, _f.c.fill_no >= plan.first_fill_no,
                    _f.c.fill_no <= plan.last_fill_no, _f.c.batch_id.is_(None),
                ).values(batch_id=batch_id)
            )


def record_posted(
    engine: Engine, market: Market, batch_id: UUID, plan: BatchPlan,
    reholds: dict[UUID, UUID], *, now: datetime,
) -> None:
    """Mark the batch posted, its holds resolved and its re-holds open; announce the
    orders it finished filling. Does nothing if the batch was recorded already."""
    with engine.begin() as connection:
        marked = connection.execute(
            update(_b).where(_b.c.id == batch_id, _b.c.status == "planned")
            .values(status="posted", posted_at=now)
        ).rowcount
        if not marked:
            return
        resolved = [hold for order in plan.orders for hold, _ in order.posts]
        if resolved:
            connection.execute(
                update(_h).where(_h.c.id.in_(resolved), _h.c.status == "open")
                .values(status="resolved", resolved_by_batch=batch_id)
            )
        new_holds = [
            {"id": o.rehold.id, "order": o.order, "market": market.symbol,
             "asset": o.rehold.asset, "amount": o.rehold.amount,
             "wallet_account_id": o.rehold.wallet_account_id,
             "clearing_account_id": o.rehold.clearing_account_id,
             "created_seq": plan.holds_through_seq, "created_by_batch": batch_id,
             "transfer_id": reholds[o.rehold.id], "status": "open"}
            for o in plan.orders if o.rehold is not None
        ]
        if new_holds:
            connection.execute(insert(_h), new_holds)
        _announce_filled(connection, market, [o.order for o in plan.orders if o.done])


def _announce_filled(connection, market: Market, done_orders: list[UUID]) -> None:
    """`order.filled` for each order the batch finished settling that was filled whole."""
    if not done_orders:
        return
    o = exchange_orders
    rows = connection.execute(
        select(o.c.id, o.c.user_id, o.c.side, o.c.filled_size, o.c.filled_quote, o.c.fee)
        .where(o.c.id.in_(done_orders), o.c.done_reason == "filled")
    )
    now = datetime.now(UTC)
    events = []
    for row in rows:
        price = row.filled_quote * market.base_unit // row.filled_size
        events.append({
            "event_id": uuid7(), "event_type": "order.filled", "aggregate_type": "order",
            "aggregate_id": str(row.id), "created_at": now,
            "payload": {
                "order_id": str(row.id), "user_id": str(row.user_id), "market": market.symbol,
                "side": row.side,
                "filled_size": format_minor(row.filled_size, market.base_scale),
                "price": format_minor(price, market.quote_scale),
                "filled_size_minor": str(row.filled_size),
                "filled_quote_minor": str(row.filled_quote), "fee_minor": str(row.fee),
            },
        })
    if events:
        # The rows `append_event` writes, in one executemany (a batch finishes many).
        connection.execute(insert(outbox), events)
