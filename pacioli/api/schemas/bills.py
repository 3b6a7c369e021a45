"""Billers, bills and bill payments on the wire."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, StrictStr

from pacioli.api.schemas.common import RequestModel
from pacioli.api.schemas.money import AmountStr, AssetScales
from pacioli.gateways.billers import AmountRule, Bill, BillerCategory, BillerInfo, Presentment
from pacioli.payments.bills import BillPayment


class BillerPublic(BaseModel):
    id: str
    name: str
    category: BillerCategory
    presentment: Presentment = Field(
        description="fetch_then_pay: fetch the bill, then pay it; direct_pay: no bill, pay"
        " an amount to a customer reference (prepaid)."
    )
    amount_rule: AmountRule = Field(
        description="exact: the bill's amount; minimum: at least the minimum due; any."
    )
    currency: str
    customer_reference_label: str = Field(description="What the biller calls the reference.")

    @classmethod
    def of(cls, info: BillerInfo) -> BillerPublic:
        return cls(
            id=info.id, name=info.name, category=info.category, presentment=info.presentment,
            amount_rule=info.amount_rule, currency=info.currency,
            customer_reference_label=info.customer_reference_label,
        )


class BillPublic(BaseModel):
    biller_id: str
    bill_reference: str
    customer_reference: str
    customer_name: str
    amount: str = Field(description="The amount due.")
    minimum_due: str | None = Field(
        description="The least a `minimum` biller takes; the amount itself for an `exact`"
        " biller; null for `any`."
    )
    currency: str
    due_date: date

    @classmethod
    def of(cls, biller_id: str, bill: Bill, scales: AssetScales) -> BillPublic:
        minimum_due = (None if bill.minimum_due_minor is None
                       else scales.to_major(bill.minimum_due_minor, bill.currency))
        return cls(
            biller_id=biller_id, bill_reference=bill.bill_reference,
            customer_reference=bill.customer_reference, customer_name=bill.customer_name,
            amount=scales.to_major(bill.amount_minor, bill.currency), minimum_due=minimum_due,
            currency=bill.currency, due_date=bill.due_date,
        )


class BillPaymentCreate(RequestModel):
    biller_id: StrictStr
    customer_reference: StrictStr
    amount: AmountStr
    currency: StrictStr


BillPaymentStatus = Literal["created", "pending", "succeeded", "failed", "refunded"]


class BillPaymentPublic(BaseModel):
    id: UUID
    status: BillPaymentStatus = Field(
        description="pending: funds held, waiting for the biller; succeeded: the biller"
        " confirmed and the funds were taken; refunded: the biller failed and the hold was"
        " released; failed: nothing moved (e.g. insufficient_funds)."
    )
    failure_code: str | None
    biller_id: str
    customer_reference: str
    bill_reference: str | None
    amount: str
    currency: str
    biller_reference: str | None = Field(description="The biller's name for the payment.")
    hold_transfer_id: UUID | None
    settlement_transfer_id: UUID | None = Field(
        description="The ledger transfer that posted (succeeded) or voided (refunded) the hold."
    )
    created_at: datetime
    held_at: datetime | None
    submitted_at: datetime | None
    checked_at: datetime | None
    completed_at: datetime | None

    @classmethod
    def of(cls, payment: BillPayment, scales: AssetScales) -> BillPaymentPublic:
        return cls(
            id=payment.id, status=payment.status, failure_code=payment.failure_code,
            biller_id=payment.biller_id, customer_reference=payment.customer_reference,
            bill_reference=payment.bill_reference,
            amount=scales.to_major(payment.amount_minor, payment.currency),
            currency=payment.currency, biller_reference=payment.biller_reference,
            hold_transfer_id=payment.hold_transfer_id,
            settlement_transfer_id=payment.settlement_transfer_id,
            created_at=payment.created_at, held_at=payment.held_at,
            submitted_at=payment.submitted_at, checked_at=payment.checked_at,
            completed_at=payment.completed_at,
        )
