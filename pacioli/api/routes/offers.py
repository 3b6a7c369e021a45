"""Offers and promotions pools.

/v1/promotions/... (the admin key): the platform's offers and its pool, funded from the
platform's bank account. /v1/merchants/me/offers and /v1/merchants/me/promotions/...
(a merchant's secret key): the merchant's own offers, for payments to it, and its pool,
funded from its balance. /v1/offers (a user's token): the offers that are active.
A funder sees and ends only its own offers; anyone else's is a 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response

from pacioli.api.auth import CurrentMerchant, CurrentUser, IdempotencyKeyHeader
from pacioli.api.deps import (
    PAGE_LIMIT_DEFAULT,
    REPLAYED_HEADER,
    AdminClient,
    LedgerDep,
    PageLimit,
    ScalesDep,
)
from pacioli.api.routes import API_PREFIX
from pacioli.api.routes.p2p import ChartDep
from pacioli.api.schemas.common import Page
from pacioli.api.schemas.offers import (
    OfferCreate,
    OfferPublic,
    PlatformOfferCreate,
    PoolFundingCreate,
    PoolFundingPublic,
    PoolPublic,
)
from pacioli.payments.chart import Chart, OwnerKind, Purpose
from pacioli.payments.offers import (
    PLATFORM_FUNDER,
    OfferAnswer,
    Offers,
    merchant_funder,
    pool_scope,
)

router = APIRouter(tags=["offers and cashback"])
PLATFORM = f"{API_PREFIX}/promotions"
MERCHANT = f"{API_PREFIX}/merchants/me"
OfferStatus = Literal["active", "ended"]


def get_offers(request: Request, chart: ChartDep) -> Offers:
    return Offers(request.app.state.engine, request.app.state.ledger, chart)


OffersDep = Annotated[Offers, Depends(get_offers)]


# The platform's offers and pool (admin).


@router.post(f"{PLATFORM}/offers", status_code=201, summary="Make an offer the platform funds")
def create_platform_offer(
    body: PlatformOfferCreate, client_id: AdminClient, key: IdempotencyKeyHeader,
    offers: OffersDep, scales: ScalesDep, response: Response,
) -> OfferPublic:
    answer = offers.create_offer(PLATFORM_FUNDER, body.rule(scales, body.merchant_id),
                                 idempotency_key=key)
    return OfferPublic.of(_answered(answer, response), scales)


@router.get(f"{PLATFORM}/offers", summary="The platform's offers, newest first")
def list_platform_offers(
    client_id: AdminClient, offers: OffersDep, scales: ScalesDep,
    status: OfferStatus | None = None, limit: PageLimit = PAGE_LIMIT_DEFAULT,
    starting_after: UUID | None = None,
) -> Page[OfferPublic]:
    rows = offers.list_offers(funder=PLATFORM_FUNDER, status=status, limit=limit + 1,
                              starting_after=starting_after)
    return Page.of(rows, limit, lambda o: OfferPublic.of(o, scales), lambda o: o.id)


@router.post(f"{PLATFORM}/offers/{{offer_id}}/end", summary="End one of the platform's offers")
def end_platform_offer(offer_id: UUID, client_id: AdminClient, offers: OffersDep,
                       scales: ScalesDep) -> OfferPublic:
    return OfferPublic.of(offers.end_offer(PLATFORM_FUNDER, offer_id), scales)


@router.post(f"{PLATFORM}/pool/fundings", status_code=201,
             summary="Move money from the platform's bank account into its promotions pool")
def fund_platform_pool(
    body: PoolFundingCreate, client_id: AdminClient, key: IdempotencyKeyHeader,
    offers: OffersDep, scales: ScalesDep, response: Response,
) -> PoolFundingPublic:
    answer = offers.fund_pool(PLATFORM_FUNDER, currency=body.currency,
                              amount_minor=scales.to_minor(body.amount, body.currency),
                              idempotency_key=key)
    return PoolFundingPublic.of(_answered(answer, response), scales)


@router.get(f"{PLATFORM}/pools", summary="The platform's promotions pools")
def list_platform_pools(client_id: AdminClient, chart: ChartDep, ledger: LedgerDep,
                        scales: ScalesDep) -> list[PoolPublic]:
    return _pools(PLATFORM_FUNDER, chart, ledger, scales)


# A merchant's offers and pool.


@router.post(f"{MERCHANT}/offers", status_code=201,
             summary="Make an offer the merchant funds, for payments to it")
def create_merchant_offer(
    body: OfferCreate, merchant: CurrentMerchant, key: IdempotencyKeyHeader, offers: OffersDep,
    scales: ScalesDep, response: Response,
) -> OfferPublic:
    answer = offers.create_offer(merchant_funder(merchant.id), body.rule(scales),
                                 idempotency_key=key)
    return OfferPublic.of(_answered(answer, response), scales)


@router.get(f"{MERCHANT}/offers", summary="The merchant's offers, newest first")
def list_merchant_offers(
    merchant: CurrentMerchant, offers: OffersDep, scales: ScalesDep,
    status: OfferStatus | None = None, limit: PageLimit = PAGE_LIMIT_DEFAULT,
    starting_after: UUID | None = None,
) -> Page[OfferPublic]:
    rows = offers.list_offers(funder=merchant_funder(merchant.id), status=status,
                              limit=limit + 1, starting_after=starting_after)
    return Page.of(rows, limit, lambda o: OfferPublic.of(o, scales), lambda o: o.id)


@router.get(f"{MERCHANT}/offers/{{offer_id}}", summary="One of the merchant's offers")
def get_merchant_offer(offer_id: UUID, merchant: CurrentMerchant, offers: OffersDep,
                       scales: ScalesDep) -> OfferPublic:
    return OfferPublic.of(offers.get_offer(offer_id, funder=merchant_funder(merchant.id)),
                          scales)


@router.post(f"{MERCHANT}/offers/{{offer_id}}/end", summary="End one of the merchant's offers")
def end_merchant_offer(offer_id: UUID, merchant: CurrentMerchant, offers: OffersDep,
                       scales: ScalesDep) -> OfferPublic:
    return OfferPublic.of(offers.end_offer(merchant_funder(merchant.id), offer_id), scales)


@router.post(f"{MERCHANT}/promotions/fundings", status_code=201,
             summary="Move money from the merchant's balance into its promotions pool")
def fund_merchant_pool(
    body: PoolFundingCreate, merchant: CurrentMerchant, key: IdempotencyKeyHeader,
    offers: OffersDep, scales: ScalesDep, response: Response,
) -> PoolFundingPublic:
    answer = offers.fund_pool(merchant_funder(merchant.id), currency=body.currency,
                              amount_minor=scales.to_minor(body.amount, body.currency),
                              idempotency_key=key)
    return PoolFundingPublic.of(_answered(answer, response), scales)


@router.get(f"{MERCHANT}/promotions/pools", summary="The merchant's promotions pools")
def list_merchant_pools(merchant: CurrentMerchant, chart: ChartDep, ledger: LedgerDep,
                        scales: ScalesDep) -> list[PoolPublic]:
    return _pools(merchant_funder(merchant.id), chart, ledger, scales)


# Users.


@router.get(f"{API_PREFIX}/offers", summary="Offers active and not expired, newest first")
def list_active_offers(
    user: CurrentUser, offers: OffersDep, scales: ScalesDep, currency: str | None = None,
    merchant_id: UUID | None = None, limit: PageLimit = PAGE_LIMIT_DEFAULT,
    starting_after: UUID | None = None,
) -> Page[OfferPublic]:
    rows = offers.list_offers(status="active", currency=currency, merchant_id=merchant_id,
                              limit=limit + 1, starting_after=starting_after,
                              unexpired_at=datetime.now(UTC))
    return Page.of(rows, limit, lambda o: OfferPublic.of(o, scales), lambda o: o.id)


def _pools(funder: str, chart: Chart, ledger, scales) -> list[PoolPublic]:
    owned = chart.owned_accounts(OwnerKind.PLATFORM, pool_scope(funder))
    pools = []
    for (purpose, currency), account_id in sorted(owned.items()):
        if purpose != Purpose.PROMOTIONS:
            continue
        account = ledger.get_account(account_id)
        pools.append(PoolPublic(
            currency=currency,
            available=scales.to_major(account.balances.available(account.normal_side), currency),
        ))
    return pools


def _answered(answer: OfferAnswer, response: Response):
    if answer.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return answer.value
