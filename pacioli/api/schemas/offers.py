"""Offers, promotions pools and their fundings on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field, StrictInt, StrictStr

from pacioli.api.schemas.common import RequestModel
from pacioli.api.schemas.money import AmountStr, AssetScales
from pacioli.payments.offers import (
    DESCRIPTION_LENGTH_MAX,
    Offer,
    OfferRule,
    PromotionFunding,
    funder_merchant_id,
)


class OfferCreate(RequestModel):
    """A merchant's offer: it rewards payments to that merchant only."""

    currency: StrictStr
    cashback_bps: StrictInt = Field(ge=1, le=10_000,
                                    description="Cashback in basis points of the payment.")
    cap: AmountStr = Field(description="The most one payment earns.")
    min_payment: AmountStr | None = Field(None, description="The least a payment must be.")
    starts_at: AwareDatetime | None = Field(None, description="Default: now.")
    ends_at: AwareDatetime | None = Field(None, description="Default: until ended.")
    uses_per_user_max: StrictInt | None = Field(None, ge=1)
    description: StrictStr = Field("", max_length=DESCRIPTION_LENGTH_MAX)

    def rule(self, scales: AssetScales, merchant_id: UUID | None = None) -> OfferRule:
        """Raises: UnknownAsset, InvalidAmount."""
        return OfferRule(
            currency=self.currency, cashback_bps=self.cashback_bps,
            cap_minor=scales.to_minor(self.cap, self.currency),
            min_payment_minor=0 if self.min_payment is None
            else scales.to_minor(self.min_payment, self.currency, allow_zero=True),
            merchant_id=merchant_id, starts_at=self.starts_at, ends_at=self.ends_at,
            uses_per_user_max=self.uses_per_user_max, description=self.description,
        )


class PlatformOfferCreate(OfferCreate):
    """An offer the platform funds, for every merchant or one."""

    merchant_id: UUID | None = Field(None, description="Only payments to this merchant.")


class OfferPublic(BaseModel):
    id: UUID
    funder: Literal["platform", "merchant"]
    funder_merchant_id: UUID | None
    merchant_id: UUID | None = Field(description="Only payments to this merchant qualify.")
    currency: str
    cashback_bps: int
    cap: str
    min_payment: str
    uses_per_user_max: int | None
    starts_at: datetime
    ends_at: datetime | None
    status: Literal["active", "ended"]
    description: str
    created_at: datetime
    ended_at: datetime | None

    @classmethod
    def of(cls, offer: Offer, scales: AssetScales) -> OfferPublic:
        funder_merchant = funder_merchant_id(offer.funder)
        return cls(
            id=offer.id, funder="platform" if funder_merchant is None else "merchant",
            funder_merchant_id=funder_merchant, merchant_id=offer.merchant_id,
            currency=offer.currency, cashback_bps=offer.cashback_bps,
            cap=scales.to_major(offer.cap_minor, offer.currency),
            min_payment=scales.to_major(offer.min_payment_minor, offer.currency),
            uses_per_user_max=offer.uses_per_user_max, starts_at=offer.starts_at,
            ends_at=offer.ends_at, status=offer.status, description=offer.description,
            created_at=offer.created_at, ended_at=offer.ended_at,
        )


class PoolFundingCreate(RequestModel):
    amount: AmountStr
    currency: StrictStr


class PoolFundingPublic(BaseModel):
    id: UUID
    currency: str
    amount: str
    status: Literal["created", "succeeded", "failed"]
    created_at: datetime

    @classmethod
    def of(cls, funding: PromotionFunding, scales: AssetScales) -> PoolFundingPublic:
        return cls(id=funding.id, currency=funding.currency,
                   amount=scales.to_major(funding.amount_minor, funding.currency),
                   status=funding.status, created_at=funding.created_at)


class PoolPublic(BaseModel):
    currency: str
    available: str = Field(description="What the pool can still pay in cashback.")
