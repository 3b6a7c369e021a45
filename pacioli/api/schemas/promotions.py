"""Promotions, coupons and tax rates on the wire.

A discount is a percentage in basis points (`{"kind": "percent", "percent_bps": 1000}`
is 10%) or a fixed amount (`{"kind": "fixed", "amount": "5.00", "currency": "USD"}`);
a minimum subtotal is an amount in the discount's currency.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, StrictInt, StrictStr, model_validator

from pacioli.api.schemas.common import RequestModel
from pacioli.api.schemas.money import AmountStr, AssetScales
from pacioli.commerce.promotion_admin import Coupon, DiscountTerms, Promotion
from pacioli.commerce.taxes import TaxRate


class DiscountFields(RequestModel):
    kind: Literal["percent", "fixed"]
    percent_bps: StrictInt | None = Field(None, gt=0, le=10000)
    amount: AmountStr | None = None
    currency: StrictStr | None = Field(
        None, description="Required for a fixed amount or a minimum subtotal.")
    min_subtotal: AmountStr | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> DiscountFields:
        if self.kind == "percent" and (self.percent_bps is None or self.amount is not None):
            raise ValueError("a percent discount gives percent_bps (and no amount)")
        if self.kind == "fixed" and (self.amount is None or self.percent_bps is not None):
            raise ValueError("a fixed discount gives amount (and no percent_bps)")
        if (self.amount is not None or self.min_subtotal is not None) and self.currency is None:
            raise ValueError("an amount or min_subtotal needs a currency")
        return self

    def terms(self, scales: AssetScales) -> DiscountTerms:
        """Raises: InvalidAmount, UnknownAsset."""
        value = (self.percent_bps if self.kind == "percent"
                 else scales.to_minor(self.amount, self.currency))
        minimum = (0 if self.min_subtotal is None
                   else scales.to_minor(self.min_subtotal, self.currency, allow_zero=True))
        if self.currency is not None:
            scales.scale_of(self.currency)
        return DiscountTerms(self.kind, value, self.currency, minimum, self.starts_at,
                             self.ends_at)


class CouponCreate(DiscountFields):
    code: StrictStr = Field(min_length=1, max_length=40)
    usage_limit_total: StrictInt | None = Field(None, ge=1)
    usage_limit_per_user: StrictInt | None = Field(None, ge=1)


class OrderPromotionCreate(DiscountFields):
    name: StrictStr = Field(min_length=1, max_length=200)


class CataloguePromotionCreate(DiscountFields):
    name: StrictStr = Field(min_length=1, max_length=200)
    scope: Literal["product", "variant"]
    target_id: UUID


class DiscountPublic(BaseModel):
    kind: str
    percent_bps: int | None
    amount: str | None
    currency: str | None
    min_subtotal: str | None
    starts_at: datetime | None
    ends_at: datetime | None

    @classmethod
    def of(cls, terms: DiscountTerms, scales: AssetScales) -> DiscountPublic:
        def major(minor: int) -> str | None:
            return None if terms.currency is None else scales.to_major(minor, terms.currency)

        return cls(
            kind=terms.kind, percent_bps=terms.value if terms.kind == "percent" else None,
            amount=major(terms.value) if terms.kind == "fixed" else None,
            currency=terms.currency, min_subtotal=major(terms.min_subtotal_minor),
            starts_at=terms.starts_at, ends_at=terms.ends_at,
        )


class CouponPublic(BaseModel):
    code: str
    discount: DiscountPublic
    usage_limit_total: int | None
    usage_limit_per_user: int | None
    redeemed_count: int
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, coupon: Coupon, scales: AssetScales) -> CouponPublic:
        return cls(code=coupon.code, discount=DiscountPublic.of(coupon.terms, scales),
                   usage_limit_total=coupon.usage_limit_total,
                   usage_limit_per_user=coupon.usage_limit_per_user,
                   redeemed_count=coupon.redeemed_count, active=coupon.active,
                   created_at=coupon.created_at)


class PromotionPublic(BaseModel):
    id: UUID
    supplier_id: UUID | None
    name: str
    scope: str
    target_id: UUID | None
    discount: DiscountPublic
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, promotion: Promotion, scales: AssetScales) -> PromotionPublic:
        return cls(id=promotion.id, supplier_id=promotion.supplier_id, name=promotion.name,
                   scope=promotion.scope, target_id=promotion.target_id,
                   discount=DiscountPublic.of(promotion.terms, scales),
                   active=promotion.active, created_at=promotion.created_at)


class TaxRateSet(RequestModel):
    rate_bps: StrictInt = Field(ge=0, le=10000, description="825 is 8.25%.")


class TaxRatePublic(BaseModel):
    category: str
    region: str
    rate_bps: int
    updated_at: datetime

    @classmethod
    def of(cls, rate: TaxRate) -> TaxRatePublic:
        return cls(category=rate.category, region=rate.region, rate_bps=rate.rate_bps,
                   updated_at=rate.updated_at)
