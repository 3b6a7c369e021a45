"""/v1/fx/quotes: international transfers, quoted first and executed once within the quote's
validity. A user sees and executes only their own quotes."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response

from pacioli.api.auth import CurrentUser, EngineDep, IdempotencyKeyHeader
from pacioli.api.deps import REPLAYED_HEADER, ScalesDep
from pacioli.api.routes import API_PREFIX
from pacioli.api.routes.p2p import ChartDep, resolve_user
from pacioli.api.schemas.p2p import FxQuoteCreate, FxQuotePublic
from pacioli.gateways.fx import SandboxFxRates
from pacioli.payments.directory import display_names
from pacioli.payments.fx import FxAnswer, FxQuote, InternationalTransfers

router = APIRouter(prefix=f"{API_PREFIX}/fx", tags=["international transfers"])


def get_international_transfers(
    request: Request, chart: ChartDep, scales: ScalesDep
) -> InternationalTransfers:
    rates = getattr(request.app.state, "fx_rates", None) or SandboxFxRates()
    return InternationalTransfers(
        request.app.state.engine, request.app.state.ledger, chart, rates,
        scale_of=scales.scale_of,
    )


FxDep = Annotated[InternationalTransfers, Depends(get_international_transfers)]


@router.post("/quotes", status_code=201, summary="Quote a transfer to a user in another currency")
def create_quote(
    body: FxQuoteCreate, user: CurrentUser, key: IdempotencyKeyHeader, fx: FxDep,
    engine: EngineDep, scales: ScalesDep, response: Response,
) -> FxQuotePublic:
    recipient_id = resolve_user(engine, body.to)
    answer = fx.quote(
        user_id=user.id, recipient_user_id=recipient_id, source_currency=body.source_currency,
        target_currency=body.target_currency,
        source_amount_minor=scales.to_minor(body.amount, body.source_currency),
        idempotency_key=key,
    )
    return _public(_answered(answer, response), engine, scales)


@router.get("/quotes/{quote_id}", summary="One of the caller's quotes")
def get_quote(
    quote_id: UUID, user: CurrentUser, fx: FxDep, engine: EngineDep, scales: ScalesDep
) -> FxQuotePublic:
    return _public(fx.get_quote(user.id, quote_id), engine, scales)


@router.post("/quotes/{quote_id}/execute", summary="Execute a quote (once, before it expires)")
def execute_quote(
    quote_id: UUID, user: CurrentUser, key: IdempotencyKeyHeader, fx: FxDep,
    engine: EngineDep, scales: ScalesDep, response: Response,
) -> FxQuotePublic:
    answer = fx.execute(user_id=user.id, quote_id=quote_id, idempotency_key=key)
    return _public(_answered(answer, response), engine, scales)


def _answered(answer: FxAnswer, response: Response) -> FxQuote:
    if answer.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return answer.value


def _public(quote: FxQuote, engine, scales) -> FxQuotePublic:
    return FxQuotePublic.of(quote, display_names(engine, [quote.recipient_user_id]), scales)
