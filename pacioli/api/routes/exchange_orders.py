"""/v1/exchange/orders and /v1/exchange/fills: a user's orders and trades.

Every route acts as the user whose token it carries; another user's order is a 404.
Writes take an Idempotency-Key: the same key and body answer as the first time (with
`Idempotent-Replayed: true`), another body is `idempotency_key_reused`. A refused order
(unknown market, off the grid, insufficient funds for its hold, post-only that would
cross, FOK that cannot fill ...) is a problem document and moves nothing.

`open_exchange` is how the app runs the exchange (app.py's lifespan): on the payments
chart, with writes answering once their fills are settled (up to SETTLE_WAIT_S).
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from sqlalchemy import Engine

from pacioli.api.auth import CurrentUser, IdempotencyKeyHeader
from pacioli.api.deps import PAGE_LIMIT_DEFAULT, REPLAYED_HEADER, PageLimit
from pacioli.api.routes import API_PREFIX
from pacioli.api.routes.exchange_market import ExchangeDep
from pacioli.api.schemas.common import Page
from pacioli.api.schemas.exchange import (
    CancelAllCreate,
    FillPublic,
    OrderAmend,
    OrderCreate,
    OrderPublic,
    amend_amounts,
)
from pacioli.ledger import Ledger, Written
from pacioli.matching.service import Exchange, ExchangeAccounts
from pacioli.matching.service_errors import ExchangeAlreadyRunning
from pacioli.payments.chart import Chart, Purpose

log = logging.getLogger(__name__)

router = APIRouter(prefix=f"{API_PREFIX}/exchange", tags=["exchange orders"])

SETTLE_WAIT_S = 2.0
ACCOUNT_SCOPE = "exchange"


def exchange_accounts(chart: Chart) -> ExchangeAccounts:
    """The exchange's accounts in the payments chart (fees, clearing, rounding per asset)."""
    return ExchangeAccounts(
        wallet=chart.wallet,
        fee=lambda asset: chart.platform(Purpose.FEE_REVENUE, asset, ACCOUNT_SCOPE),
        clearing=lambda asset: chart.platform(Purpose.EXCHANGE_CLEARING, asset, ACCOUNT_SCOPE),
        rounding=lambda asset: chart.platform(Purpose.ROUNDING, asset, ACCOUNT_SCOPE),
    )


def open_exchange(engine: Engine, ledger: Ledger) -> Exchange | None:
    """Start the exchange on the default markets; None when another process runs them
    (one process per market: this one then answers exchange routes with
    `exchange_not_running`)."""
    exchange = Exchange(engine, ledger, exchange_accounts(Chart(engine, ledger)),
                        settle_wait_s=SETTLE_WAIT_S)
    try:
        exchange.start()
    except ExchangeAlreadyRunning as running:
        log.warning("the exchange runs in another process", extra={"detail": running.detail})
        return None
    return exchange


# Orders.


@router.post("/orders", status_code=201, summary="Place an order")
def place_order(
    body: OrderCreate, user: CurrentUser, key: IdempotencyKeyHeader, exchange: ExchangeDep,
    response: Response,
) -> OrderPublic:
    market = exchange.market(body.market)
    written = exchange.place_order(user.id, body.to_request(market), idempotency_key=key)
    return OrderPublic.of(_answered(written, response), market)


@router.get("/orders", summary="The caller's orders, newest first")
def list_orders(
    user: CurrentUser, exchange: ExchangeDep,
    market: Annotated[str | None, Query()] = None,
    status: Annotated[Literal["open", "done"] | None, Query()] = None,
    limit: PageLimit = PAGE_LIMIT_DEFAULT, starting_after: UUID | None = None,
) -> Page[OrderPublic]:
    rows = exchange.list_orders(user.id, symbol=market, status=status, limit=limit + 1,
                                starting_after=starting_after)
    return Page.of(rows, limit, lambda o: OrderPublic.of(o, exchange.market(o.market)),
                   lambda o: o.id)


@router.post("/orders/cancel-all", summary="Cancel the caller's open orders in a market")
def cancel_all(
    body: CancelAllCreate, user: CurrentUser, key: IdempotencyKeyHeader, exchange: ExchangeDep,
    response: Response,
) -> list[OrderPublic]:
    market = exchange.market(body.market)
    written = exchange.cancel_all(user.id, body.market, body.side, idempotency_key=key)
    return [OrderPublic.of(order, market) for order in _answered(written, response)]


@router.get("/orders/{order_id}", summary="One of the caller's orders")
def get_order(order_id: UUID, user: CurrentUser, exchange: ExchangeDep) -> OrderPublic:
    order = exchange.get_order(user.id, order_id)
    return OrderPublic.of(order, exchange.market(order.market))


@router.post("/orders/{order_id}/amend", summary="Change a resting order's size or price")
def amend_order(
    order_id: UUID, body: OrderAmend, user: CurrentUser, key: IdempotencyKeyHeader,
    exchange: ExchangeDep, response: Response,
) -> OrderPublic:
    market = exchange.market(exchange.get_order(user.id, order_id).market)
    size, price = amend_amounts(body, market)
    written = exchange.amend_order(user.id, order_id, size=size, price=price,
                                   idempotency_key=key)
    return OrderPublic.of(_answered(written, response), market)


@router.post("/orders/{order_id}/cancel", summary="Cancel one of the caller's orders")
def cancel_order(
    order_id: UUID, user: CurrentUser, key: IdempotencyKeyHeader, exchange: ExchangeDep,
    response: Response,
) -> OrderPublic:
    written = exchange.cancel_order(user.id, order_id, idempotency_key=key)
    order = _answered(written, response)
    return OrderPublic.of(order, exchange.market(order.market))


# Fills.


@router.get("/fills", summary="The caller's fills, newest first, with their fees")
def list_fills(
    user: CurrentUser, exchange: ExchangeDep,
    market: Annotated[str | None, Query()] = None,
    order_id: Annotated[UUID | None, Query()] = None,
    limit: PageLimit = PAGE_LIMIT_DEFAULT, starting_after: UUID | None = None,
) -> Page[FillPublic]:
    rows = exchange.list_fills(user.id, symbol=market, order_id=order_id, limit=limit + 1,
                               starting_after=starting_after)
    return Page.of(rows, limit, lambda f: FillPublic.of(f, exchange.market(f.market)),
                   lambda f: f.id)


def _answered(written: Written, response: Response):
    if written.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return written.value
