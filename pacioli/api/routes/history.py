"""/v1/me/transactions, /v1/me/spending and /v1/merchants/me/transactions: one list of
the caller's money movements across every flow, and a user's monthly spending. Each
caller sees only their own; a stranger's history is simply not reachable."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from pacioli.api.auth import CurrentMerchant, CurrentUser
from pacioli.api.deps import PAGE_LIMIT_DEFAULT, PageLimit, ScalesDep
from pacioli.api.routes import API_PREFIX
from pacioli.api.routes.bills import get_biller_registry
from pacioli.api.schemas.common import Page
from pacioli.api.schemas.history import EntryKind, EntryPublic, SpendingPublic
from pacioli.payments.history import History, HistoryFilter, parse_month

router = APIRouter(tags=["history"])


def get_history(request: Request) -> History:
    """The app's history reader (one per app: it remembers QR codes' categories)."""
    history = getattr(request.app.state, "history", None)
    if history is None:
        billers = {info.id: info for info in get_biller_registry(request).list_billers()}
        history = request.app.state.history = History(request.app.state.engine,
                                                      biller_of=billers.get)
    return history


HistoryDep = Annotated[History, Depends(get_history)]


def history_filter(
    kind: Annotated[list[EntryKind] | None, Query(description="One or more kinds.")] = None,
    currency: str | None = None,
    direction: Literal["in", "out"] | None = None,
    status: str | None = None,
    occurred_from: Annotated[datetime | None, Query(alias="from",
                                                    description="Inclusive.")] = None,
    occurred_to: Annotated[datetime | None, Query(alias="to", description="Exclusive.")] = None,
) -> HistoryFilter:
    return HistoryFilter(
        kinds=frozenset(kind) if kind else None, currency=currency, direction=direction,
        status=status, occurred_from=_aware(occurred_from), occurred_to=_aware(occurred_to),
    )


FilterDep = Annotated[HistoryFilter, Depends(history_filter)]


@router.get(f"{API_PREFIX}/me/transactions",
            summary="The caller's money movements across every flow, newest first")
def list_user_transactions(
    user: CurrentUser, history: HistoryDep, wanted: FilterDep, scales: ScalesDep,
    limit: PageLimit = PAGE_LIMIT_DEFAULT, starting_after: str | None = None,
) -> Page[EntryPublic]:
    rows = history.user_entries(user.id, wanted, limit=limit + 1,
                                starting_after=starting_after)
    return Page.of(rows, limit, lambda e: EntryPublic.of(e, scales), lambda e: e.cursor)


@router.get(f"{API_PREFIX}/me/spending",
            summary="What the caller spent per UTC month, currency and category")
def get_spending(
    user: CurrentUser, history: HistoryDep, scales: ScalesDep,
    month: Annotated[str | None, Query(description="One month, YYYY-MM.")] = None,
    from_month: Annotated[str | None, Query(description="First month of a range.")] = None,
    to_month: Annotated[str | None, Query(description="Last month of a range.")] = None,
) -> SpendingPublic:
    """`month`, or `from_month` and `to_month` (at most 24 months); default this month."""
    this_month = datetime.now(UTC).strftime("%Y-%m")
    first = parse_month(month or from_month or to_month or this_month)
    last = parse_month(month or to_month or from_month or this_month)
    return SpendingPublic.of(history.spending(user.id, month_from=first, month_to=last), scales)


@router.get(f"{API_PREFIX}/merchants/me/transactions",
            summary="The merchant's payments received, cashback funded and pool fundings")
def list_merchant_transactions(
    merchant: CurrentMerchant, history: HistoryDep, wanted: FilterDep, scales: ScalesDep,
    limit: PageLimit = PAGE_LIMIT_DEFAULT, starting_after: str | None = None,
) -> Page[EntryPublic]:
    rows = history.merchant_entries(merchant.id, wanted, limit=limit + 1,
                                    starting_after=starting_after)
    return Page.of(rows, limit, lambda e: EntryPublic.of(e, scales), lambda e: e.cursor)


def _aware(moment: datetime | None) -> datetime | None:
    """A time without an offset is read as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


