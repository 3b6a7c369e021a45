"""QR codes and QR payments on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, StrictInt, StrictStr

from pacioli.api.schemas.common import RequestModel
from pacioli.api.schemas.money import AmountStr, AssetScales
from pacioli.payments.qr_payments import EXPIRY_SECONDS_MAX, QrCode, QrPayment, Scanned
from pacioli.payments.qr_refunds import QrRefund


class QrCodeCreate(RequestModel):
    currency: StrictStr
    amount: AmountStr | None = Field(
        None, description="With an amount the code is dynamic (paid once); without, static."
    )
    reference: StrictStr | None = Field(None, max_length=25)
    expires_in_seconds: StrictInt | None = Field(None, ge=1, le=EXPIRY_SECONDS_MAX)
    city: StrictStr = Field(min_length=1, max_length=15, description="Shown by the payer's app.")
    country_code: StrictStr = Field(pattern="^[A-Za-z]{2}$")
    category_code: StrictStr = Field("5999", pattern="^[0-9]{4}$",
                                     description="ISO 18245 merchant category code.")


class QrCodePublic(BaseModel):
    id: UUID
    kind: Literal["static", "dynamic"]
    status: Literal["active", "used", "revoked", "expired"]
    currency: str
    amount: str | None
    reference: str | None
    expires_at: datetime | None
    payload: str = Field(description="The EMVCo payload to render or print.")
    upi_link: str | None = Field(description="The same code as a UPI link (INR only).")
    created_at: datetime

    @classmethod
    def of(cls, code: QrCode, scales: AssetScales) -> QrCodePublic:
        return cls(
            id=code.id, kind=code.kind, status=code.status, currency=code.currency,
            amount=None if code.amount_minor is None
            else scales.to_major(code.amount_minor, code.currency),
            reference=code.reference, expires_at=code.expires_at, payload=code.payload,
            upi_link=code.upi_link, created_at=code.created_at,
        )


class QrScan(RequestModel):
    payload: StrictStr = Field(max_length=512)


class QrScanned(BaseModel):
    merchant_name: str
    kind: Literal["static", "dynamic"]
    currency: str
    amount: str | None
    payable: bool
    reason: str | None = Field(description="Why it cannot be paid, as an error code.")

    @classmethod
    def of(cls, scanned: Scanned, scales: AssetScales) -> QrScanned:
        code = scanned.code
        return cls(
            merchant_name=scanned.merchant_name, kind=code.kind, currency=code.currency,
            amount=None if code.amount_minor is None
            else scales.to_major(code.amount_minor, code.currency),
            payable=scanned.payable, reason=scanned.reason,
        )


class QrPaymentCreate(RequestModel):
    payload: StrictStr = Field(max_length=512)
    amount: AmountStr | None = Field(None, description="Required for a static code.")


class QrPaymentPublic(BaseModel):
    id: UUID
    status: Literal["created", "succeeded", "failed"]
    failure_code: str | None
    qr_code_id: UUID
    merchant_id: UUID
    payer_user_id: UUID
    amount: str
    fee: str = Field(description="The merchant's fee, taken from the amount.")
    currency: str
    transfer_id: UUID | None
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, payment: QrPayment, scales: AssetScales) -> QrPaymentPublic:
        currency = payment.currency
        return cls(
            id=payment.id, status=payment.status, failure_code=payment.failure_code,
            qr_code_id=payment.qr_id, merchant_id=payment.merchant_id,
            payer_user_id=payment.payer_user_id,
            amount=scales.to_major(payment.amount_minor, currency),
            fee=scales.to_major(payment.fee_minor, currency), currency=currency,
            transfer_id=payment.transfer_id, created_at=payment.created_at,
            completed_at=payment.completed_at,
        )


class MerchantBalancePublic(BaseModel):
    """One currency of a merchant's money: settled and not yet settled."""

    currency: str
    available: str = Field(description="Settled into the merchant's balance, not held for a "
                           "payout: what it may spend (e.g. fund its promotions pool).")
    account_id: UUID | None = Field(description="The merchant balance's ledger account.")
    pending_settlement: str = Field(description="Earned but not yet settled: waits for the "
                                    "next settlement run (net of fees and refunds).")
    pending_settlement_account_id: UUID | None


class QrRefundCreate(RequestModel):
    amount: AmountStr | None = Field(
        None, description="How much to give back; left out, all that is left of the payment.")


class QrRefundPublic(BaseModel):
    """A refund of a QR payment to the payer's wallet."""

    id: UUID
    payment_id: UUID
    status: Literal["created", "succeeded", "failed"]
    failure_code: str | None
    amount: str
    fee_returned: str = Field(description="The part of the payment's fee the platform gave "
                              "back; the merchant bears amount − fee_returned.")
    currency: str
    source: Literal["pending_settlement", "merchant_balance"] = Field(
        description="Which merchant account paid it: the payment's pending settlement (the "
        "refund is then netted in its settlement), or the settled balance.")
    transfer_id: UUID | None
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, refund: QrRefund, scales: AssetScales) -> QrRefundPublic:
        currency = refund.currency
        return cls(
            id=refund.id, payment_id=refund.payment_id, status=refund.status,
            failure_code=refund.failure_code,
            amount=scales.to_major(refund.amount_minor, currency),
            fee_returned=scales.to_major(refund.fee_returned_minor, currency),
            currency=currency, source=refund.source, transfer_id=refund.transfer_id,
            created_at=refund.created_at, completed_at=refund.completed_at,
        )
