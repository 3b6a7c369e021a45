"""/v1/billers and /v1/bill-payments: the biller registry, fetching a bill, paying it and
following the payment until the biller decides. Every route acts as the user whose token
it carries; another user's payment is a 404."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response

from pacioli.api.auth import CurrentUser, IdempotencyKeyHeader
from pacioli.api.deps import PAGE_LIMIT_DEFAULT, REPLAYED_HEADER, PageLimit, ScalesDep
from pacioli.api.routes import API_PREFIX
from pacioli.api.routes.p2p import ChartDep
from pacioli.api.schemas.bills import (
    BillerPublic,
    BillPaymentCreate,
    BillPaymentPublic,
    BillPaymentStatus,
    BillPublic,
)
from pacioli.api.schemas.common import Page
from pacioli.gateways.billers import BillerCategory, BillerRegistry
from pacioli.gateways.billers.sandbox import SandboxBillerRegistry
from pacioli.payments.bills import BillPayments

router = APIRouter(tags=["bill payments"])


def get_biller_registry(request: Request) -> BillerRegistry:
    """The app's billers: `app.state.billers` if set, else the sandbox billers."""
    registry = getattr(request.app.state, "billers", None)
    if registry is None:
        registry = request.app.state.billers = SandboxBillerRegistry(request.app.state.engine)
    return registry


def get_bill_payments(request: Request, chart: ChartDep) -> BillPayments:
    return BillPayments(
        request.app.state.engine, request.app.state.ledger, chart, get_biller_registry(request)
    )


BillPaymentsDep = Annotated[BillPayments, Depends(get_bill_payments)]


# Billers and bills.


@router.get(f"{API_PREFIX}/billers", summary="The billers, with their rules")
def list_billers(
    user: CurrentUser, bills: BillPaymentsDep,
    category: Annotated[BillerCategory | None, Query()] = None,
) -> list[BillerPublic]:
    return [BillerPublic.of(info) for info in bills.list_billers(category)]


@router.get(f"{API_PREFIX}/billers/{{biller_id}}", summary="One biller and its rules")
def get_biller(biller_id: str, user: CurrentUser, bills: BillPaymentsDep) -> BillerPublic:
    return BillerPublic.of(bills.biller(biller_id).info)


@router.get(
    f"{API_PREFIX}/billers/{{biller_id}}/bills/{{customer_reference}}",
    summary="Fetch the bill due for a customer reference (fetch-then-pay billers)",
)
def fetch_bill(
    biller_id: str, customer_reference: str, user: CurrentUser, bills: BillPaymentsDep,
    scales: ScalesDep,
) -> BillPublic:
    bill = bills.fetch_bill(biller_id, customer_reference)
    return BillPublic.of(biller_id, bill, scales)


# Payments.


@router.post(
    f"{API_PREFIX}/bill-payments", status_code=201,
    summary="Pay a bill from the caller's wallet (pending until the biller confirms)",
)
def pay_bill(
    body: BillPaymentCreate, user: CurrentUser, key: IdempotencyKeyHeader,
    bills: BillPaymentsDep, scales: ScalesDep, response: Response,
) -> BillPaymentPublic:
    answer = bills.pay_bill(
        user_id=user.id, biller_id=body.biller_id, customer_reference=body.customer_reference,
        amount_minor=scales.to_minor(body.amount, body.currency), currency=body.currency,
        idempotency_key=key,
    )
    if answer.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return BillPaymentPublic.of(answer.value, scales)


@router.get(f"{API_PREFIX}/bill-payments", summary="The caller's bill payments, newest first")
def list_bill_payments(
    user: CurrentUser, bills: BillPaymentsDep, scales: ScalesDep,
    status: Annotated[BillPaymentStatus | None, Query()] = None,
    limit: PageLimit = PAGE_LIMIT_DEFAULT, starting_after: UUID | None = None,
) -> Page[BillPaymentPublic]:
    rows = bills.list_bill_payments(user.id, status=status, limit=limit + 1,
                                    starting_after=starting_after)
    return Page.of(rows, limit, lambda p: BillPaymentPublic.of(p, scales), lambda p: p.id)


@router.get(f"{API_PREFIX}/bill-payments/{{payment_id}}", summary="One of the caller's payments")
def get_bill_payment(
    payment_id: UUID, user: CurrentUser, bills: BillPaymentsDep, scales: ScalesDep
) -> BillPaymentPublic:
    return BillPaymentPublic.of(bills.get_bill_payment(user.id, payment_id), scales)


@router.post(
    f"{API_PREFIX}/bill-payments/{{payment_id}}/refresh",
    summary="Ask the biller how the payment stands, and settle it if it is decided",
    description="Idempotent by itself (no Idempotency-Key needed): a settled payment is"
    " returned as it is, and concurrent refreshes post or void the hold once.",
)
def refresh_bill_payment(
    payment_id: UUID, user: CurrentUser, bills: BillPaymentsDep, scales: ScalesDep
) -> BillPaymentPublic:
    return BillPaymentPublic.of(bills.refresh_bill_payment(user.id, payment_id), scales)
