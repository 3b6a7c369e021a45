"""History entries and spending summaries on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from pacioli.api.schemas.money import AssetScales
from pacioli.payments.history import Entry, MonthSpending

EntryKind = Literal["p2p", "qr_payment", "bill_payment", "fx_transfer", "cashback", "top_up",
                    "withdrawal", "promotion_funding"]


class CounterpartyPublic(BaseModel):
    kind: Literal["user", "merchant", "biller", "platform", "instrument"]
    id: str
    name: str | None = Field(description="A display name, merchant, biller or card name.")


class EntryPublic(BaseModel):
    id: UUID = Field(description="The id of the payment, transfer, cashback or top-up.")
    kind: EntryKind
    direction: Literal["in", "out"]
    amount: str
    fee: str = Field(description="The fee inside the amount (a merchant's QR fee, an FX fee).")
    currency: str
    status: str
    counterparty: CounterpartyPublic
    category: str
    note: str | None
    occurred_at: datetime

    @classmethod
    def of(cls, entry: Entry, scales: AssetScales) -> EntryPublic:
        return cls(
            id=entry.id, kind=entry.kind, direction=entry.direction,
            amount=scales.to_major(entry.amount_minor, entry.currency),
            fee=scales.to_major(entry.fee_minor, entry.currency), currency=entry.currency,
            status=entry.status,
            counterparty=CounterpartyPublic(kind=entry.counterparty_kind,
                                            id=entry.counterparty_id,
                                            name=entry.counterparty_name),
            category=entry.category, note=entry.note, occurred_at=entry.occurred_at,
        )


class CategoryAmountPublic(BaseModel):
    category: str
    amount: str


class CurrencySpendingPublic(BaseModel):
    currency: str
    total: str
    categories: list[CategoryAmountPublic]


class MonthSpendingPublic(BaseModel):
    month: str = Field(description="A UTC calendar month, YYYY-MM.")
    currencies: list[CurrencySpendingPublic]


class SpendingPublic(BaseModel):
    months: list[MonthSpendingPublic]

    @classmethod
    def of(cls, months: list[MonthSpending], scales: AssetScales) -> SpendingPublic:
        return cls(months=[
            MonthSpendingPublic(month=m.month, currencies=[
                CurrencySpendingPublic(
                    currency=c.currency, total=scales.to_major(c.total_minor, c.currency),
                    categories=[CategoryAmountPublic(
                        category=t.category, amount=scales.to_major(t.amount_minor, c.currency))
                        for t in c.categories],
                )
                for c in m.currencies
            ])
            for m in months
        ])
