"""Merchant settlements, their reports and schedules on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, StrictInt

from pacioli.api.schemas.common import RequestModel
from pacioli.api.schemas.money import AssetScales
from pacioli.payments.settlement import CYCLE_DAYS_MAX, SettlementBatch, SettlementReport
from pacioli.payments.settlement_items import SettlementItem


class SettlementPublic(BaseModel):
    """One settlement of one currency: gross − fees − refunds = net, paid out at once."""

    id: UUID
    currency: str
    status: Literal["created", "moved", "payout_pending", "paid", "failed"]
    cutoff_at: datetime = Field(description="Items completed before this were settled.")
    gross: str = Field(description="What the payments brought, fees included.")
    fees: str = Field(description="The platform's fees, less fees given back by refunds.")
    refunds: str = Field(description="What refunds of these payments gave back to payers.")
    net: str = Field(description="What is paid out: gross − fees − refunds.")
    item_count: int
    waiting_reason: str | None = Field(
        description="Why a created settlement has not moved on (e.g. "
        "settlement_account_not_found); it is retried every run.")
    payout_reference: str | None
    failure_code: str | None = Field(
        description="Why the payout failed; the net is then back in the merchant balance.")
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def fields_of(cls, batch: SettlementBatch, scales: AssetScales) -> dict:
        currency = batch.currency

        def major(amount_minor: int) -> str:
            return scales.to_major(amount_minor, currency)

        return {
            "id": batch.id, "currency": currency, "status": batch.status,
            "cutoff_at": batch.cutoff_at, "gross": major(batch.gross_minor),
            "fees": major(batch.fees_minor), "refunds": major(batch.refunds_minor),
            "net": major(batch.net_minor), "item_count": batch.item_count,
            "waiting_reason": batch.waiting_reason, "payout_reference": batch.payout_reference,
            "failure_code": batch.failure_code, "created_at": batch.created_at,
            "completed_at": batch.completed_at,
        }

    @classmethod
    def of(cls, batch: SettlementBatch, scales: AssetScales) -> SettlementPublic:
        return cls(**cls.fields_of(batch, scales))


class SettlementItemPublic(BaseModel):
    """One payment (or, negative, one refund) in a settlement."""

    id: UUID
    source_kind: str = Field(description="qr_payment, qr_refund ...")
    source_id: UUID
    gross: str
    fee: str
    net: str
    completed_at: datetime

    @classmethod
    def of(cls, item: SettlementItem, scales: AssetScales) -> SettlementItemPublic:
        currency = item.currency
        return cls(
            id=item.id, source_kind=item.source_kind, source_id=item.source_id,
            gross=scales.to_major(item.gross_minor, currency),
            fee=scales.to_major(item.fee_minor, currency),
            net=scales.to_major(item.net_minor, currency), completed_at=item.completed_at,
        )


class SettlementReportPublic(SettlementPublic):
    """A settlement with its items (at most 1,000: larger cycles make several)."""

    items: list[SettlementItemPublic]

    @classmethod
    def of_report(cls, report: SettlementReport,
                  scales: AssetScales) -> SettlementReportPublic:
        return cls(**cls.fields_of(report.batch, scales),
                   items=[SettlementItemPublic.of(item, scales) for item in report.items])


class SettlementSchedulePut(RequestModel):
    cycle_days: StrictInt | None = Field(
        ge=0, le=CYCLE_DAYS_MAX,
        description="T+N: a day's payments are settled N days later (0: at the next run). "
        "null: the platform's default again.")


class SettlementSchedulePublic(BaseModel):
    merchant_id: UUID
    cycle_days: int
