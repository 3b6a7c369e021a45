"""The ledger side of a statement reconciliation: the entries a statement should show.

A mapping's `[ledger]` table (`LedgerSelection`) names an account — a chart account by
purpose (and scope), in every currency it was opened in, or an account id — and where
an entry's reference comes from. An entry is one *posted* posting on that account (a
hold is not money moved yet; its post is), booked on the posting's UTC date, signed by
`sign` (`debit_positive`: a debit to the account counts as money arriving to us).

References:
- `metadata:<key>`: the value of that key in the transfer's metadata.
- `gateway_reference`: the processor's reference, joined from the payment records that
  keep it next to the ledger transfer they posted: a top-up's `settlement_transfer_id`
  (the post of its hold), a withdrawal's, and a settlement batch's
  `resolution_transfer_id` (the post of its payout hold), each only once succeeded/paid.
  This is the one reliable join: the records write their gateway reference before they
  post, and the transfers' metadata carries record ids, not gateway references. Records
  are those of the gateway named by `gateway` (default: `account_scope`), or of any
  gateway when neither is set.
- A posting whose reference is unknown gets `transfer:<transfer id>`, so an unmatched
  one is reported with something to look up.

Payouts: the chart books a processor's payouts (withdrawals, merchant settlements) on the
platform's bank account (`bank_settlement`), not the processor's clearing account, yet a
processor's report lists them. `payouts_account_purpose` adds the legs on that account
of the transfers the gateway's payout records name (and only those: the bank account's
other movements are the bank statement's business).

Window: the statement's period (its first to last booking date, or what the caller
gives) widened by the date tolerance on each side. An entry booked in the widened margin
is kept only if its reference occurs in the statement: it may be a line's match booked a
day later, but otherwise it belongs to the next or previous statement, not this one.

Rows are read through a server-side cursor in chunks, so a million entries stream, in
no particular order: the matcher's result does not depend on it, and sorting a million
rows would cost the database a second.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Date,
    Engine,
    Select,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    text,
    union_all,
)

from pacioli.ledger import Ledger
from pacioli.ledger.domain.errors import InvalidCommand
from pacioli.ledger.storage.tables import accounts, postings, transfers
from pacioli.payments.chart import Chart, OwnerKind, Purpose
from pacioli.payments.funding_tables import topups, withdrawals
from pacioli.payments.settlement_tables import settlement_batches
from pacioli.reconciliation.mapping import LedgerSelection
from pacioli.reconciliation.records import LedgerEntry, StatementLine

GATEWAY_REFERENCE = "gateway_reference"
METADATA_PREFIX = "metadata:"
UNREFERENCED_PREFIX = "transfer:"
ROWS_PER_FETCH = 20_000


class InvalidLedgerSelection(InvalidCommand):
    """The mapping's [ledger] table does not name an account and a reference source."""

    code = "invalid_ledger_selection"


@dataclass(frozen=True, slots=True)
class Period:
    """The booking dates a statement covers, both inclusive."""

    first_day: date
    last_day: date

    @classmethod
    def of(cls, lines: Iterable[StatementLine]) -> Period | None:
        """The first to the last booking date of the lines; None when there are none."""
        days = [line.booked_on for line in lines]
        return cls(min(days), max(days)) if days else None


@dataclass(frozen=True, slots=True)
class _Accounts:
    main: tuple[UUID, ...]
    payouts: tuple[UUID, ...]


def load_entries(
    engine: Engine, selection: LedgerSelection, period: Period, *,
    date_tolerance_days: int = 0, statement_references: Container[str] = frozenset(),
) -> Iterator[LedgerEntry]:
    """The selected account's posted entries in the period (module docstring).

    Raises: InvalidLedgerSelection.
    """
    reference = _reference_source(selection)
    chosen = _accounts(engine, selection)
    if not chosen.main and not chosen.payouts:
        return
    margin = timedelta(days=max(0, date_tolerance_days))
    start = _midnight(period.first_day - margin)
    end = _midnight(period.last_day + margin + timedelta(days=1))
    query = _query(selection, reference, chosen, start, end)
    first_day, last_day = period.first_day, period.last_day
    with engine.connect() as connection:
        # Every row is read: plan for the whole result, not the first rows of a cursor.
        connection.execute(text("SET LOCAL cursor_tuple_fraction = 1.0"))
        result = connection.execution_options(
            stream_results=True, yield_per=ROWS_PER_FETCH).execute(query)
        for entry_id, ref, amount, currency, booked_on in result:
            if not first_day <= booked_on <= last_day and ref not in statement_references:
                continue
            yield LedgerEntry(entry_id, ref, int(amount), currency, booked_on)


def _reference_source(selection: LedgerSelection) -> str:
    reference = selection.reference
    if reference == GATEWAY_REFERENCE:
        return reference
    if reference.startswith(METADATA_PREFIX) and len(reference) > len(METADATA_PREFIX):
        return reference
    raise InvalidLedgerSelection(
        f"ledger.reference is {reference!r}; expected \"gateway_reference\" or"
        f" \"metadata:<key>\""
    )


def _accounts(engine: Engine, selection: LedgerSelection) -> _Accounts:
    """The ids of the selected account(s) and, if any, of the payouts account(s)."""
    payouts_purpose = selection.options.get("payouts_account_purpose")
    if payouts_purpose is not None and selection.reference != GATEWAY_REFERENCE:
        raise InvalidLedgerSelection("ledger.payouts_account_purpose needs"
                                     " ledger.reference = \"gateway_reference\"")
    if selection.account_id is not None:
        if selection.account_purpose is not None:
            raise InvalidLedgerSelection("ledger names both account_id and account_purpose;"
                                         " keep one")
        main = (_existing_account(engine, selection.account_id),)
    elif selection.account_purpose is not None:
        main = _chart_accounts(engine, selection.account_purpose, selection.account_scope or "")
    else:
        raise InvalidLedgerSelection("ledger needs account_purpose or account_id")
    payouts = () if payouts_purpose is None else _chart_accounts(engine, payouts_purpose, "")
    return _Accounts(main, tuple(a for a in payouts if a not in main))


def _chart_accounts(engine: Engine, purpose: Any, scope: str) -> tuple[UUID, ...]:
    """The platform's accounts of this purpose and scope, one per currency opened."""
    try:
        wanted = Purpose(purpose)
    except ValueError:
        known = ", ".join(p.value for p in Purpose)
        raise InvalidLedgerSelection(
            f"ledger account purpose {purpose!r} is not in the chart ({known})") from None
    # Reads only: the chart needs a ledger to open accounts, which this never does.
    chart = Chart(engine, Ledger(engine, batching=False))
    owned = chart.owned_accounts(OwnerKind.PLATFORM, scope)
    return tuple(sorted(account_id for (found, _currency), account_id in owned.items()
                        if found == wanted.value))


def _existing_account(engine: Engine, account_id: str) -> UUID:
    try:
        wanted = UUID(account_id)
    except ValueError:
        raise InvalidLedgerSelection(f"ledger.account_id {account_id!r} is not a UUID") from None
    with engine.connect() as connection:
        found = connection.execute(select(accounts.c.id).where(accounts.c.id == wanted)).first()
    if found is None:
        raise InvalidLedgerSelection(f"ledger.account_id {account_id} is not a ledger account")
    return wanted


def _query(
    selection: LedgerSelection, reference: str, chosen: _Accounts, start: datetime,
    end: datetime,
) -> Select:
    p, t = postings, transfers
    in_window = and_(p.c.layer == "posted", p.c.created_at >= start, p.c.created_at < end)
    entry_id = func.concat(p.c.transfer_id, "/", p.c.leg_index).label("entry_id")
    # Signed in SQL and read as text: int(str) is the cheapest way to a Python int.
    positive = "debit" if selection.sign == "debit_positive" else "credit"
    amount = cast(case((p.c.direction == positive, p.c.amount_minor),
                       else_=-p.c.amount_minor), Text).label("amount_minor")
    booked_on = cast(func.timezone("UTC", p.c.created_at), Date).label("booked_on")
    fallback = func.concat(literal(UNREFERENCED_PREFIX), p.c.transfer_id)
    if reference != GATEWAY_REFERENCE:
        key = reference.removeprefix(METADATA_PREFIX)
        ref = func.coalesce(t.c.metadata[key].astext, fallback).label("reference")
        return (select(entry_id, ref, amount, p.c.asset_code, booked_on)
                .join_from(p, t, t.c.id == p.c.transfer_id)
                .where(p.c.account_id.in_(chosen.main), in_window))
    refs = _gateway_references(selection).cte("gateway_references")
    ref = func.coalesce(refs.c.reference, fallback).label("reference")
    main = (select(entry_id, ref, amount, p.c.asset_code, booked_on)
            .join_from(p, refs, refs.c.transfer_id == p.c.transfer_id, isouter=True)
            .where(p.c.account_id.in_(chosen.main), in_window))
    parts = [main]
    if chosen.payouts:
        parts.append(
            select(entry_id, refs.c.reference, amount, p.c.asset_code, booked_on)
            .join_from(p, refs, and_(refs.c.transfer_id == p.c.transfer_id,
                                     refs.c.is_payout))
            .where(p.c.account_id.in_(chosen.payouts), in_window)
        )
    return union_all(*parts)


def _gateway_references(selection: LedgerSelection) -> Any:
    """(transfer_id, reference, is_payout) of every finished gateway-backed payment record."""
    gateway = selection.options.get("gateway", selection.account_scope)

    def of(table: Any, transfer: Any, ref: Any, status: str, is_payout: bool) -> Select:
        query = select(transfer.label("transfer_id"), ref.label("reference"),
                       literal(is_payout).label("is_payout")).where(
            table.c.status == status, transfer.is_not(None), ref.is_not(None))
        return query if gateway is None else query.where(table.c.gateway == gateway)

    b = settlement_batches
    return union_all(
        of(topups, topups.c.settlement_transfer_id, topups.c.gateway_reference, "succeeded",
           False),
        of(withdrawals, withdrawals.c.settlement_transfer_id, withdrawals.c.gateway_reference,
           "succeeded", True),
        of(b, b.c.resolution_transfer_id, b.c.payout_reference, "paid", True),
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)
