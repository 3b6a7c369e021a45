"""History: one list of a user's (or a merchant's) money movements across every flow.

A read model, not a table: each flow's own records are read through a UNION ALL of one
SELECT per (flow, direction), each filtered by its owner column (indexed in its flow's
table), then ordered newest first and cut at a cursor over (occurred_at, id, direction).
Every branch is cut at the cursor and limited before the union, so a page reads at most
`limit + 1` rows per branch. Direction joins the cursor because an FX transfer a user
sends to themselves is one record read twice, once out and once in.

What each entry shows (docs/payments.md, "History"):

| kind | for | direction | counterparty |
| --- | --- | --- | --- |
| `p2p` | user | out (sent, any status) / in (received, succeeded only) | the other user |
| `qr_payment` | user / merchant | out / in | the merchant / the payer |
| `bill_payment` | user | out | the biller |
| `fx_transfer` | user | out (source amount) / in (target amount), executed only | the other user |
| `cashback` | user / merchant | in / out (the merchant's pool paid it), paid only | funder / user |
| `top_up` | user | in | the card or bank account |
| `withdrawal` | user | out | the bank account |
| `promotion_funding` | merchant | out (balance → its promotions pool) | the pool |

Spending (`spending`) sums, per UTC calendar month, currency and category, what a user
paid out to others and what succeeded: P2P sent, QR payments, bill payments and FX
transfers sent. Top-ups, withdrawals (own money) and cashback (money in) are not spending.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from uuid import UUID

from sqlalchemy import (
    Engine,
    Numeric,
    Select,
    Text,
    cast,
    func,
    literal,
    null,
    select,
    tuple_,
    union_all,
)

from pacioli.gateways import qr
from pacioli.payments.bills import bill_payments
from pacioli.payments.directory import display_names
from pacioli.payments.funding_tables import funding_instruments, topups, withdrawals
from pacioli.payments.merchants import merchants
from pacioli.payments.offer_errors import InvalidHistoryQuery
from pacioli.payments.offer_tables import cashbacks, promotion_fundings
from pacioli.payments.offers import PLATFORM_FUNDER, funder_merchant_id, merchant_funder
from pacioli.payments.tables import fx_quotes, merchant_qr_codes, p2p_payments, qr_payments

PAGE_LIMIT_MAX = 200
MONTHS_MAX = 24
PLATFORM_NAME = "Pacioli"
KINDS = ("p2p", "qr_payment", "bill_payment", "fx_transfer", "cashback", "top_up",
         "withdrawal", "promotion_funding")
DIRECTIONS = ("in", "out")
SPENDING_KINDS = ("p2p", "qr_payment", "bill_payment", "fx_transfer")

# ISO 18245 merchant category codes, grouped into the few categories a person budgets by.
# Ranges are inclusive; the first that holds a code wins; anything else is "other".
MCC_CATEGORIES: tuple[tuple[int, int, str], ...] = (
    (5411, 5499, "food"),  # grocery stores, bakeries, convenience stores
    (5811, 5814, "food"),  # caterers, restaurants, bars, fast food
    (3000, 3299, "transport"),  # airlines
    (4011, 4131, "transport"),  # railways, commuter transport, taxis, buses
    (4411, 4582, "transport"),  # cruise lines, airlines, airports
    (4784, 4789, "transport"),  # tolls, other transportation
    (5541, 5542, "transport"),  # fuel
    (7511, 7523, "transport"),  # truck stops, car rental, parking
    (4812, 4816, "bills"),  # telecommunications
    (4899, 4900, "bills"),  # cable and pay television, utilities
    (5200, 5999, "shopping"),  # retail, after the food and fuel codes above
)


def category_of_mcc(mcc: str | None) -> str:
    if mcc is None or not mcc.isdigit():
        return "other"
    number = int(mcc)
    for low, high, category in MCC_CATEGORIES:
        if low <= number <= high:
            return category
    return "other"


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """Which entries to list; None means any."""

    kinds: frozenset[str] | None = None
    currency: str | None = None
    direction: str | None = None
    status: str | None = None
    occurred_from: datetime | None = None  # inclusive
    occurred_to: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class Entry:
    """One money movement as its owner sees it."""

    id: UUID  # the flow's record (payment, quote, cashback, top-up ...)
    kind: str
    direction: str  # in, out
    amount_minor: int
    fee_minor: int
    currency: str
    status: str  # the flow's status; an FX transfer or a cashback listed is "succeeded"
    counterparty_kind: str  # user, merchant, biller, platform, instrument
    counterparty_id: str
    counterparty_name: str | None
    category: str
    note: str | None
    occurred_at: datetime

    @property
    def cursor(self) -> str:
        raw = f"{self.occurred_at.isoformat()}|{self.id}|{self.direction}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class CategoryTotal:
    category: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class CurrencySpending:
    currency: str
    total_minor: int
    categories: list[CategoryTotal]


@dataclass(frozen=True, slots=True)
class MonthSpending:
    month: str  # YYYY-MM
    currencies: list[CurrencySpending] = field(default_factory=list)


def parse_cursor(cursor: str) -> tuple[datetime, UUID, str]:
    """Raises: InvalidHistoryQuery."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        occurred_at, entry_id, direction = raw.split("|")
        parsed = (datetime.fromisoformat(occurred_at), UUID(entry_id), direction)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidHistoryQuery("starting_after is not a cursor this list gave") from None
    if parsed[0].tzinfo is None or direction not in DIRECTIONS:
        raise InvalidHistoryQuery("starting_after is not a cursor this list gave")
    return parsed


def parse_month(month: str) -> date:
    """"2026-11" → date(2026, 11, 1). Raises: InvalidHistoryQuery."""
    try:
        parsed = datetime.strptime(month, "%Y-%m").date()
    except (TypeError, ValueError):
        raise InvalidHistoryQuery(f"{month!r} is not a month like 2026-11") from None
    if len(month) != 7:
        raise InvalidHistoryQuery(f"{month!r} is not a month like 2026-11")
    return parsed


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class _Branch:
    """One (flow, direction) of the union, as the union's columns."""

    kind: str
    direction: str
    query: Select

    def where(self, *conditions) -> _Branch:
        return _Branch(self.kind, self.direction, self.query.where(*conditions))


def _branch(table, *, kind: str, direction: str, amount, currency, status, counterparty_kind,
            counterparty_id, detail, note, occurred_at, fee=None) -> _Branch:
    return _Branch(kind, direction, select(
        table.c.id.label("id"),
        literal(kind, Text).label("kind"),
        literal(direction, Text).label("direction"),
        cast(amount, Numeric(39, 0)).label("amount_minor"),
        cast(fee if fee is not None else literal(0), Numeric(39, 0)).label("fee_minor"),
        cast(currency, Text).label("currency"),
        cast(status, Text).label("status"),
        literal(counterparty_kind, Text).label("counterparty_kind")
        if isinstance(counterparty_kind, str) else counterparty_kind.label("counterparty_kind"),
        cast(counterparty_id, Text).label("counterparty_id"),
        cast(detail, Text).label("detail") if detail is not None
        else cast(null(), Text).label("detail"),
        cast(note, Text).label("note") if note is not None else cast(null(), Text).label("note"),
        occurred_at.label("occurred_at"),
    ))


def _user_branches(user_id: UUID) -> list[_Branch]:
    p, q, b, f = p2p_payments, qr_payments, bill_payments, fx_quotes
    c, tu, w = cashbacks, topups, withdrawals
    succeeded = literal("succeeded", Text)
    return [
        _branch(p, kind="p2p", direction="out", amount=p.c.amount_minor, currency=p.c.currency,
                status=p.c.status, counterparty_kind="user", counterparty_id=p.c.payee_user_id,
                detail=None, note=p.c.note, occurred_at=p.c.created_at)
        .where(p.c.payer_user_id == user_id),
        _branch(p, kind="p2p", direction="in", amount=p.c.amount_minor, currency=p.c.currency,
                status=p.c.status, counterparty_kind="user", counterparty_id=p.c.payer_user_id,
                detail=None, note=p.c.note, occurred_at=p.c.created_at)
        .where(p.c.payee_user_id == user_id, p.c.status == "succeeded"),
        _branch(q, kind="qr_payment", direction="out", amount=q.c.amount_minor,
                currency=q.c.currency, status=q.c.status, counterparty_kind="merchant",
                counterparty_id=q.c.merchant_id, detail=q.c.qr_id, note=None,
                occurred_at=q.c.created_at)
        .where(q.c.payer_user_id == user_id),
        _branch(b, kind="bill_payment", direction="out", amount=b.c.amount_minor,
                currency=b.c.currency, status=b.c.status, counterparty_kind="biller",
                counterparty_id=b.c.biller_id, detail=b.c.biller_id,
                note=b.c.customer_reference, occurred_at=b.c.created_at)
        .where(b.c.user_id == user_id),
        _branch(f, kind="fx_transfer", direction="out", amount=f.c.source_amount_minor,
                fee=f.c.fee_minor, currency=f.c.source_currency, status=succeeded,
                counterparty_kind="user", counterparty_id=f.c.recipient_user_id, detail=None,
                note=None, occurred_at=f.c.executed_at)
        .where(f.c.user_id == user_id, f.c.status == "executed"),
        _branch(f, kind="fx_transfer", direction="in", amount=f.c.target_amount_minor,
                currency=f.c.target_currency, status=succeeded, counterparty_kind="user",
                counterparty_id=f.c.user_id, detail=None, note=None,
                occurred_at=f.c.executed_at)
        .where(f.c.recipient_user_id == user_id, f.c.status == "executed"),
        _branch(c, kind="cashback", direction="in", amount=c.c.amount_minor,
                currency=c.c.currency, status=succeeded, counterparty_kind="funder",
                counterparty_id=c.c.funder, detail=c.c.payment_id, note=None,
                occurred_at=c.c.created_at)
        .where(c.c.user_id == user_id, c.c.status == "paid"),
        _branch(tu, kind="top_up", direction="in", amount=tu.c.amount_minor,
                currency=tu.c.currency, status=tu.c.status, counterparty_kind="instrument",
                counterparty_id=tu.c.instrument_id, detail=None, note=None,
                occurred_at=tu.c.created_at)
        .where(tu.c.user_id == user_id),
        _branch(w, kind="withdrawal", direction="out", amount=w.c.amount_minor,
                currency=w.c.currency, status=w.c.status, counterparty_kind="instrument",
                counterparty_id=w.c.instrument_id, detail=None, note=None,
                occurred_at=w.c.created_at)
        .where(w.c.user_id == user_id),
    ]


def _merchant_branches(merchant_id: UUID) -> list[_Branch]:
    q, c, pf = qr_payments, cashbacks, promotion_fundings
    funder = merchant_funder(merchant_id)
    return [
        _branch(q, kind="qr_payment", direction="in", amount=q.c.amount_minor,
                fee=q.c.fee_minor, currency=q.c.currency, status=q.c.status,
                counterparty_kind="user", counterparty_id=q.c.payer_user_id, detail=q.c.qr_id,
                note=None, occurred_at=q.c.created_at)
        .where(q.c.merchant_id == merchant_id),
        _branch(c, kind="cashback", direction="out", amount=c.c.amount_minor,
                currency=c.c.currency, status=literal("succeeded", Text),
                counterparty_kind="user", counterparty_id=c.c.user_id, detail=c.c.payment_id,
                note=None, occurred_at=c.c.created_at)
        .where(c.c.funder == funder, c.c.status == "paid"),
        _branch(pf, kind="promotion_funding", direction="out", amount=pf.c.amount_minor,
                currency=pf.c.currency, status=pf.c.status, counterparty_kind="platform",
                counterparty_id=literal("promotions", Text), detail=None, note=None,
                occurred_at=pf.c.created_at)
        .where(pf.c.funder == funder),
    ]


class History:
    """Reads users' and merchants' histories and users' monthly spending."""

    def __init__(self, engine: Engine, *, biller_of: Callable[[str], object | None]) -> None:
        """`biller_of(biller_id)` gives a biller's `BillerInfo` (name, category) or None."""
        self._engine = engine
        self._biller_of = biller_of
        self._mcc_of_code: dict[UUID, str | None] = {}

    def user_entries(self, user_id: UUID, wanted: HistoryFilter = HistoryFilter(), *,
                     limit: int = 50, starting_after: str | None = None) -> list[Entry]:
        """The user's entries, newest first. Raises: InvalidHistoryQuery."""
        return self._entries(_user_branches(user_id), wanted, limit, starting_after)

    def merchant_entries(self, merchant_id: UUID, wanted: HistoryFilter = HistoryFilter(), *,
                         limit: int = 50, starting_after: str | None = None) -> list[Entry]:
        """The merchant's entries, newest first. Raises: InvalidHistoryQuery."""
        return self._entries(_merchant_branches(merchant_id), wanted, limit, starting_after)

    def spending(self, user_id: UUID, *, month_from: date, month_to: date) -> list[MonthSpending]:
        """What the user spent per UTC month, currency and category, every month of the
        range included (empty when nothing was spent). Raises: InvalidHistoryQuery."""
        if month_to < month_from:
            raise InvalidHistoryQuery("the range of months ends before it starts")
        months = [month_from]
        while months[-1] < month_to:
            months.append(_next_month(months[-1]))
        if len(months) > MONTHS_MAX:
            raise InvalidHistoryQuery(f"a spending summary covers at most {MONTHS_MAX} months")
        wanted = HistoryFilter(
            kinds=frozenset(SPENDING_KINDS), direction="out", status="succeeded",
            occurred_from=datetime(month_from.year, month_from.month, 1, tzinfo=UTC),
            occurred_to=datetime.combine(_next_month(month_to), datetime.min.time(), UTC),
        )
        rows = self._spending_rows(_user_branches(user_id), wanted)
        mccs = self._mccs(UUID(row.detail) for row in rows if row.kind == "qr_payment")
        totals: dict[str, dict[str, dict[str, int]]] = {}
        for row in rows:
            category = self._category(row.kind, row.detail, mccs)
            per_category = totals.setdefault(row.month, {}).setdefault(row.currency, {})
            per_category[category] = per_category.get(category, 0) + int(row.amount_minor)
        return [_month_spending(month.strftime("%Y-%m"), totals.get(month.strftime("%Y-%m"), {}))
                for month in months]

    # Reading.

    def _entries(self, branches: list[_Branch], wanted: HistoryFilter, limit: int,
                 starting_after: str | None) -> list[Entry]:
        limit = max(1, min(limit, PAGE_LIMIT_MAX + 1))
        cursor = parse_cursor(starting_after) if starting_after is not None else None
        parts = []
        for branch in _kept(branches, wanted):
            sub = branch.subquery()
            query = select(sub).where(*_conditions(sub, wanted))
            if cursor is not None:
                query = query.where(
                    tuple_(sub.c.occurred_at, sub.c.id, sub.c.direction) < tuple_(*cursor))
            parts.append(select(_newest_first(query.subquery(), limit).subquery()))
        if not parts:
            return []
        union = union_all(*parts).subquery()
        with self._engine.connect() as connection:
            rows = connection.execute(_newest_first(union, limit)).all()
        return self._described(rows)

    def _spending_rows(self, branches: list[_Branch], wanted: HistoryFilter):
        parts = []
        for branch in _kept(branches, wanted):
            sub = branch.subquery()
            parts.append(select(sub).where(*_conditions(sub, wanted)))
        union = union_all(*parts).subquery()
        month = func.to_char(func.timezone("UTC", union.c.occurred_at), "YYYY-MM")
        query = (select(month.label("month"), union.c.currency, union.c.kind, union.c.detail,
                        func.sum(union.c.amount_minor).label("amount_minor"))
                 .group_by(month, union.c.currency, union.c.kind, union.c.detail))
        with self._engine.connect() as connection:
            return connection.execute(query).all()

    # Describing: names and categories for a page of rows.

    def _described(self, rows) -> list[Entry]:
        names = self._names(rows)
        mccs = self._mccs(UUID(row.detail) for row in rows if row.kind == "qr_payment")
        return [
            Entry(
                id=row.id, kind=row.kind, direction=row.direction,
                amount_minor=int(row.amount_minor), fee_minor=int(row.fee_minor),
                currency=row.currency, status=row.status,
                counterparty_kind=_counterparty_kind(row),
                counterparty_id=_counterparty_id(row),
                counterparty_name=names.get((row.counterparty_kind, row.counterparty_id)),
                category=self._category(row.kind, row.detail, mccs), note=row.note,
                occurred_at=row.occurred_at,
            )
            for row in rows
        ]

    def _names(self, rows) -> dict[tuple[str, str], str | None]:
        wanted: dict[str, set[str]] = {}
        for row in rows:
            wanted.setdefault(row.counterparty_kind, set()).add(row.counterparty_id)
        names: dict[tuple[str, str], str | None] = {}
        users = display_names(self._engine, (UUID(i) for i in wanted.get("user", ())))
        names.update({("user", str(k)): v for k, v in users.items()})
        funders = wanted.get("funder", set())
        merchant_ids = {UUID(i) for i in wanted.get("merchant", ())} | {
            m for m in map(funder_merchant_id, funders) if m is not None}
        merchant_names = self._merchant_names(merchant_ids)
        names.update({("merchant", str(k)): v for k, v in merchant_names.items()})
        for funder in funders:
            merchant = funder_merchant_id(funder)
            names[("funder", funder)] = (
                PLATFORM_NAME if merchant is None else merchant_names.get(merchant))
        for biller_id in wanted.get("biller", ()):
            info = self._biller_of(biller_id)
            names[("biller", biller_id)] = getattr(info, "name", None)
        names.update(self._instrument_names(wanted.get("instrument", ())))
        names[("platform", "promotions")] = f"{PLATFORM_NAME} promotions pool"
        return names

    def _merchant_names(self, merchant_ids: set[UUID]) -> dict[UUID, str]:
        if not merchant_ids:
            return {}
        with self._engine.connect() as connection:
            rows = connection.execute(select(merchants.c.id, merchants.c.name)
                                      .where(merchants.c.id.in_(merchant_ids)))
            return {row.id: row.name for row in rows}

    def _instrument_names(self, instrument_ids: Iterable[str]) -> dict[tuple[str, str], str]:
        ids = {UUID(i) for i in instrument_ids}
        if not ids:
            return {}
        t = funding_instruments
        with self._engine.connect() as connection:
            rows = connection.execute(select(t.c.id, t.c.kind, t.c.brand, t.c.last4)
                                      .where(t.c.id.in_(ids)))
            return {("instrument", str(row.id)):
                    f"{row.brand or ('Card' if row.kind == 'card' else 'Bank account')}"
                    f" ending {row.last4}" for row in rows}

    def _mccs(self, code_ids: Iterable[UUID]) -> dict[UUID, str | None]:
        """Each QR code's merchant category code, read from its payload (cached: a code's
        payload never changes)."""
        missing = {i for i in code_ids if i not in self._mcc_of_code}
        if missing:
            t = merchant_qr_codes
            with self._engine.connect() as connection:
                rows = connection.execute(select(t.c.id, t.c.payload).where(t.c.id.in_(missing)))
                for row in rows:
                    self._mcc_of_code[row.id] = _mcc_of_payload(row.payload)
        return self._mcc_of_code

    def _category(self, kind: str, detail: str | None, mccs: dict[UUID, str | None]) -> str:
        if kind in ("p2p", "fx_transfer"):
            return "transfers"
        if kind == "qr_payment":
            return category_of_mcc(mccs.get(UUID(detail)))
        if kind == "bill_payment":
            info = self._biller_of(detail)
            return f"bills/{getattr(info, 'category', None) or 'other'}"
        return kind  # cashback, top_up, withdrawal, promotion_funding


def _kept(branches: list[_Branch], wanted: HistoryFilter) -> list[Select]:
    """The branches the kind and direction filters keep (the others are not queried)."""
    return [
        branch.query for branch in branches
        if (wanted.kinds is None or branch.kind in wanted.kinds)
        and (wanted.direction is None or branch.direction == wanted.direction)
    ]


def _conditions(sub, wanted: HistoryFilter) -> list:
    conditions = [sub.c.occurred_at.is_not(None)]
    if wanted.currency is not None:
        conditions.append(sub.c.currency == wanted.currency)
    if wanted.status is not None:
        conditions.append(sub.c.status == wanted.status)
    if wanted.occurred_from is not None:
        conditions.append(sub.c.occurred_at >= wanted.occurred_from)
    if wanted.occurred_to is not None:
        conditions.append(sub.c.occurred_at < wanted.occurred_to)
    return conditions


def _newest_first(source, limit: int) -> Select:
    return (select(source)
            .order_by(source.c.occurred_at.desc(), source.c.id.desc(), source.c.direction.desc())
            .limit(limit))


def _counterparty_kind(row) -> str:
    if row.counterparty_kind != "funder":
        return row.counterparty_kind
    return "platform" if row.counterparty_id == PLATFORM_FUNDER else "merchant"


def _counterparty_id(row) -> str:
    if row.counterparty_kind != "funder" or row.counterparty_id == PLATFORM_FUNDER:
        return row.counterparty_id
    return str(funder_merchant_id(row.counterparty_id))


def _mcc_of_payload(payload: str) -> str | None:
    try:
        return qr.decode_emvco(payload).merchant_category_code
    except qr.QrError:
        return None


def _month_spending(month: str, per_currency: dict[str, dict[str, int]]) -> MonthSpending:
    return MonthSpending(month, [
        CurrencySpending(
            currency, sum(categories.values()),
            [CategoryTotal(name, amount) for name, amount in sorted(categories.items())],
        )
        for currency, categories in sorted(per_currency.items())
    ])
