"""QR payments: merchants make codes (/v1/merchants/me/qr-codes, with their secret key),
users scan and pay them (/v1/qr/..., with their session token). Each side sees only its
own codes and payments."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response

from pacioli.api.auth import CurrentMerchant, CurrentUser, EngineDep, IdempotencyKeyHeader
from pacioli.api.deps import PAGE_LIMIT_DEFAULT, REPLAYED_HEADER, LedgerDep, PageLimit, ScalesDep
from pacioli.api.routes import API_PREFIX
from pacioli.api.routes.offers import get_offers
from pacioli.api.routes.p2p import ChartDep
from pacioli.api.schemas.common import Page
from pacioli.api.schemas.qr import (
    MerchantBalancePublic,
    QrCodeCreate,
    QrCodePublic,
    QrPaymentCreate,
    QrPaymentPublic,
    QrRefundCreate,
    QrRefundPublic,
    QrScan,
    QrScanned,
)
from pacioli.gateways import qr
from pacioli.payments import merchants
from pacioli.payments.chart import OwnerKind, Purpose
from pacioli.payments.qr_payments import MerchantProfile, QrAnswer, QrPayments
from pacioli.payments.qr_refunds import QrRefunds, RefundAnswer

router = APIRouter(tags=["QR payments"])
MERCHANT = f"{API_PREFIX}/merchants/me"


def get_qr_payments(request: Request, chart: ChartDep, scales: ScalesDep) -> QrPayments:
    # A succeeded payment earns cashback from the best applicable offer (payments/offers.py).
    offers = get_offers(request, chart)
    return QrPayments(request.app.state.engine, request.app.state.ledger, chart,
                      scale_of=scales.scale_of, on_paid=offers.reward_qr_payment)


QrDep = Annotated[QrPayments, Depends(get_qr_payments)]


def get_qr_refunds(request: Request, chart: ChartDep) -> QrRefunds:
    return QrRefunds(request.app.state.engine, request.app.state.ledger, chart)


RefundsDep = Annotated[QrRefunds, Depends(get_qr_refunds)]


# Merchants.


@router.post(f"{MERCHANT}/qr-codes", status_code=201, summary="Make a static or dynamic QR code")
def create_code(
    body: QrCodeCreate, merchant: CurrentMerchant, key: IdempotencyKeyHeader, codes: QrDep,
    scales: ScalesDep, response: Response,
) -> QrCodePublic:
    profile = MerchantProfile(merchant.id, merchant.name, body.city, body.country_code.upper(),
                              body.category_code)
    answer = codes.create_code(
        profile, currency=body.currency,
        amount_minor=None if body.amount is None else scales.to_minor(body.amount, body.currency),
        reference=body.reference, expires_in_seconds=body.expires_in_seconds,
        idempotency_key=key,
    )
    return QrCodePublic.of(_answered(answer, response), scales)


@router.get(f"{MERCHANT}/qr-codes", summary="The merchant's QR codes, newest first")
def list_codes(
    merchant: CurrentMerchant, codes: QrDep, scales: ScalesDep,
    limit: PageLimit = PAGE_LIMIT_DEFAULT, starting_after: UUID | None = None,
) -> Page[QrCodePublic]:
    rows = codes.list_codes(merchant.id, limit=limit + 1, starting_after=starting_after)
    return Page.of(rows, limit, lambda c: QrCodePublic.of(c, scales), lambda c: c.id)


@router.get(f"{MERCHANT}/qr-codes/{{qr_id}}", summary="One of the merchant's QR codes")
def get_code(qr_id: UUID, merchant: CurrentMerchant, codes: QrDep,
             scales: ScalesDep) -> QrCodePublic:
    return QrCodePublic.of(codes.get_code(merchant.id, qr_id), scales)


@router.get(
    f"{MERCHANT}/qr-codes/{{qr_id}}/image.{{image_format}}",
    summary="The QR code as a PNG or SVG image",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
)
def get_code_image(
    qr_id: UUID, image_format: str, merchant: CurrentMerchant, codes: QrDep
) -> Response:
    code = codes.get_code(merchant.id, qr_id)
    if image_format == "png":
        return Response(qr.render_png(code.payload), media_type="image/png")
    if image_format == "svg":
        return Response(qr.render_svg(code.payload), media_type="image/svg+xml")
    return Response(status_code=404)


@router.post(f"{MERCHANT}/qr-codes/{{qr_id}}/revoke", summary="Stop a QR code being paid")
def revoke_code(qr_id: UUID, merchant: CurrentMerchant, codes: QrDep,
                scales: ScalesDep) -> QrCodePublic:
    return QrCodePublic.of(codes.revoke_code(merchant.id, qr_id), scales)


@router.get(f"{MERCHANT}/qr-payments", summary="Payments of the merchant's QR codes")
def list_merchant_payments(
    merchant: CurrentMerchant, codes: QrDep, scales: ScalesDep,
    limit: PageLimit = PAGE_LIMIT_DEFAULT, starting_after: UUID | None = None,
) -> Page[QrPaymentPublic]:
    rows = codes.list_payments(merchant_id=merchant.id, limit=limit + 1,
                               starting_after=starting_after)
    return Page.of(rows, limit, lambda p: QrPaymentPublic.of(p, scales), lambda p: p.id)


@router.post(f"{MERCHANT}/qr-payments/{{payment_id}}/refunds", status_code=201,
             summary="Refund (part of) a QR payment to the payer's wallet")
def refund_payment(
    payment_id: UUID, body: QrRefundCreate, merchant: CurrentMerchant,
    key: IdempotencyKeyHeader, codes: QrDep, refunds: RefundsDep, scales: ScalesDep,
    response: Response,
) -> QrRefundPublic:
    """Before the payment is settled the refund comes out of its pending settlement (and
    shows in the settlement's refunds); after, out of the merchant's balance."""
    payment = codes.get_payment(payment_id=payment_id, merchant_id=merchant.id)
    amount_minor = None if body.amount is None else scales.to_minor(body.amount,
                                                                    payment.currency)
    answer = refunds.refund(merchant_id=merchant.id, payment_id=payment_id,
                            amount_minor=amount_minor, idempotency_key=key)
    return QrRefundPublic.of(_answered(answer, response), scales)


@router.get(f"{MERCHANT}/qr-refunds", summary="The merchant's refunds, newest first")
def list_refunds(
    merchant: CurrentMerchant, refunds: RefundsDep, scales: ScalesDep,
    payment_id: UUID | None = None, limit: PageLimit = PAGE_LIMIT_DEFAULT,
    starting_after: UUID | None = None,
) -> Page[QrRefundPublic]:
    rows = refunds.list(merchant.id, payment_id=payment_id, limit=limit + 1,
                        starting_after=starting_after)
    return Page.of(rows, limit, lambda r: QrRefundPublic.of(r, scales), lambda r: r.id)


@router.get(f"{MERCHANT}/qr-refunds/{{refund_id}}", summary="One of the merchant's refunds")
def get_refund(refund_id: UUID, merchant: CurrentMerchant, refunds: RefundsDep,
               scales: ScalesDep) -> QrRefundPublic:
    return QrRefundPublic.of(refunds.get(merchant.id, refund_id), scales)


@router.get(f"{MERCHANT}/balances",
            summary="The merchant's balances and pending settlements, per currency")
def list_merchant_balances(
    merchant: CurrentMerchant, chart: ChartDep, ledger: LedgerDep, scales: ScalesDep
) -> list[MerchantBalancePublic]:
    owned = chart.owned_accounts(OwnerKind.MERCHANT, str(merchant.id))
    wanted = (Purpose.MERCHANT_BALANCE, Purpose.MERCHANT_PENDING_SETTLEMENT)
    by_currency: dict[str, dict[str, UUID]] = {}
    for (purpose, currency), account_id in owned.items():
        if purpose in wanted:
            by_currency.setdefault(currency, {})[purpose] = account_id
    return [_balance(currency, by_currency[currency], ledger, scales)
            for currency in sorted(by_currency)]


def _balance(currency: str, accounts: dict[str, UUID], ledger, scales) -> MerchantBalancePublic:
    def available(purpose: Purpose) -> int:
        if purpose not in accounts:
            return 0
        account = ledger.get_account(accounts[purpose])
        return account.balances.available(account.normal_side)

    return MerchantBalancePublic(
        currency=currency,
        available=scales.to_major(available(Purpose.MERCHANT_BALANCE), currency),
        account_id=accounts.get(Purpose.MERCHANT_BALANCE),
        pending_settlement=scales.to_major(available(Purpose.MERCHANT_PENDING_SETTLEMENT),
                                           currency),
        pending_settlement_account_id=accounts.get(Purpose.MERCHANT_PENDING_SETTLEMENT),
    )


# Payers.


@router.post(f"{API_PREFIX}/qr/scan", summary="Read a QR code before paying it")
def scan(body: QrScan, user: CurrentUser, codes: QrDep, engine: EngineDep,
         scales: ScalesDep) -> QrScanned:
    scanned = codes.scan(body.payload, lambda m: merchants.get_merchant(engine, m).name)
    return QrScanned.of(scanned, scales)


@router.post(f"{API_PREFIX}/qr/payments", status_code=201, summary="Pay a merchant's QR code")
def pay(
    body: QrPaymentCreate, user: CurrentUser, key: IdempotencyKeyHeader, codes: QrDep,
    scales: ScalesDep, response: Response,
) -> QrPaymentPublic:
    amount_minor = None
    if body.amount is not None:
        code = codes.scan(body.payload, lambda _merchant: "").code
        amount_minor = scales.to_minor(body.amount, code.currency)
    answer = codes.pay(payer_user_id=user.id, payload=body.payload, amount_minor=amount_minor,
                       idempotency_key=key)
    return QrPaymentPublic.of(_answered(answer, response), scales)


@router.get(f"{API_PREFIX}/qr/payments", summary="The caller's QR payments, newest first")
def list_payments(
    user: CurrentUser, codes: QrDep, scales: ScalesDep,
    limit: PageLimit = PAGE_LIMIT_DEFAULT, starting_after: UUID | None = None,
) -> Page[QrPaymentPublic]:
    rows = codes.list_payments(payer_user_id=user.id, limit=limit + 1,
                               starting_after=starting_after)
    return Page.of(rows, limit, lambda p: QrPaymentPublic.of(p, scales), lambda p: p.id)


@router.get(f"{API_PREFIX}/qr/payments/{{payment_id}}", summary="One of the caller's QR payments")
def get_payment(payment_id: UUID, user: CurrentUser, codes: QrDep,
                scales: ScalesDep) -> QrPaymentPublic:
    return QrPaymentPublic.of(codes.get_payment(payment_id=payment_id, payer_user_id=user.id),
                              scales)


def _answered(answer: QrAnswer | RefundAnswer, response: Response):
    if answer.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return answer.value
