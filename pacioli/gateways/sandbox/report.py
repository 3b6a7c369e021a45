"""The sandbox processor's daily settlement report: what it settled with us on one day.

Like a real processor's report, it is written from the processor's own records (the
`sandbox_*` tables), not from Pacioli's: one CSV row per money movement that became final
on the day (UTC) — a captured payment (its captured amount, positive: the processor owes
it to us), a refund (negative) and a payout (negative: money that left for a bank
account). A movement's day is the day of the event that announced it
(`payment.captured`, `refund.refunded`, `payout.paid_out`), which is when the processor
applied it. The columns are the ones the shipped `sandbox_gateway` statement mapping reads:

    reference,type,amount,currency,settled_on

Amounts are major units with the currency's scale (given by the caller: the processor
does not keep a currency table). Rows come in the order the movements happened.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TextIO

from sqlalchemy import Engine, case, select

from pacioli.gateways.sandbox.tables import callbacks, operations

HEADER = ("reference", "type", "amount", "currency", "settled_on")
ROWS_PER_FETCH = 10_000
# The event announcing each kind of movement, the report's `type` and the sign.
_MOVEMENTS = {
    "payment.captured": ("capture", 1),
    "refund.refunded": ("refund", -1),
    "payout.paid_out": ("payout", -1),
}


@dataclass(frozen=True, slots=True)
class ReportRow:
    reference: str
    type: str  # capture, refund, payout
    amount_minor: int  # signed: positive is money owed to us
    currency: str
    settled_on: date


@dataclass(frozen=True, slots=True)
class ReportSummary:
    rows: int
    path: Path


def settled_on(engine: Engine, day: date) -> Iterator[ReportRow]:
    """The movements that became final on `day` (UTC), in the order they happened."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    c, o = callbacks, operations
    # A payment may be captured in part: its captured amount is what moved.
    moved = case((o.c.kind == "payment", o.c.captured_minor), else_=o.c.amount_minor)
    query = (
        select(c.c.event_type, o.c.reference, moved, o.c.currency)
        .join_from(c, o, o.c.reference == c.c.gateway_reference)
        .where(c.c.event_type.in_(tuple(_MOVEMENTS)), c.c.created_at >= start,
               c.c.created_at < start + timedelta(days=1))
        .order_by(c.c.created_at, c.c.event_id)
    )
    with engine.connect() as connection:
        rows = connection.execution_options(stream_results=True, yield_per=ROWS_PER_FETCH)
        for event_type, reference, amount_minor, currency in rows.execute(query):
            kind, sign = _MOVEMENTS[event_type]
            yield ReportRow(reference, kind, sign * int(amount_minor), currency, day)


def write_report(
    engine: Engine, day: date, out: Path, *, scale_of: Callable[[str], int]
) -> ReportSummary:
    """Write the day's report as CSV to `out` (replacing it); return how many rows."""
    with open(out, "w", encoding="utf-8", newline="") as file:
        count = write_csv(settled_on(engine, day), file, scale_of=scale_of)
    return ReportSummary(count, out)


def write_csv(rows: Iterator[ReportRow], file: TextIO, *, scale_of: Callable[[str], int]) -> int:
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(HEADER)
    count = 0
    for row in rows:
        writer.writerow((row.reference, row.type,
                         major_units(row.amount_minor, scale_of(row.currency)),
                         row.currency, row.settled_on.isoformat()))
        count += 1
    return count


def major_units(amount_minor: int, scale: int) -> str:
    """`-1050`, 2 → `"-10.50"`: exact, no float on the way."""
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10 ** scale)
    return f"{sign}{whole}.{fraction:0{scale}d}" if scale else f"{sign}{whole}"
