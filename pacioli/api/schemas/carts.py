"""Carts on the wire: each line with its name, current price and availability, the lines
saved for later, and the totals in the documented order of application."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr, model_validator

from pacioli.api.schemas.catalog import MoneyPublic
from pacioli.api.schemas.common import RequestModel
from pacioli.api.schemas.money import AssetScales
from pacioli.commerce.cart_edits import QUANTITY_MAX
from pacioli.commerce.cart_view import CartView, LineView
from pacioli.commerce.pricing import PricedLine

VERSION_DESCRIPTION = "The cart version the change is based on; another is a 409."


class CartItemAdd(RequestModel):
    variant_id: UUID
    quantity: StrictInt = Field(ge=1, le=QUANTITY_MAX)
    catalog_slug: StrictStr | None = Field(
        None, description="The reseller's shared catalog the shopper buys through.")
    version: StrictInt | None = Field(None, description=VERSION_DESCRIPTION)


class CartItemUpdate(RequestModel):
    """A new quantity, or a move to or from "saved for later"."""

    version: StrictInt = Field(description=VERSION_DESCRIPTION)
    quantity: StrictInt | None = Field(None, ge=1, le=QUANTITY_MAX)
    saved_for_later: StrictBool | None = None

    @model_validator(mode="after")
    def _one_change(self) -> CartItemUpdate:
        if (self.quantity is None) == (self.saved_for_later is None):
            raise ValueError("give exactly one of quantity and saved_for_later")
        return self


class CouponApply(RequestModel):
    code: StrictStr = Field(min_length=1, max_length=40)
    version: StrictInt = Field(description=VERSION_DESCRIPTION)


class CartUpdate(RequestModel):
    region: StrictStr | None = Field(None, max_length=64,
                                     description="Where the cart ships (the tax region).")
    version: StrictInt = Field(description=VERSION_DESCRIPTION)


class CartLinePublic(BaseModel):
    id: UUID
    product_id: UUID
    variant_id: UUID
    name: str
    brand: str
    sku: str
    size: str | None
    colour: str | None
    image_url: str | None
    quantity: int
    unit_price: MoneyPublic = Field(description="Now, with the reseller's margin if any.")
    available: bool
    stock_available: int
    catalog_slug: str | None
    catalogue_discount: MoneyPublic | None = None
    order_discount: MoneyPublic | None = None
    tax: MoneyPublic | None = None
    total: MoneyPublic | None = Field(None, description="After discounts, with tax.")

    @classmethod
    def of(cls, line: LineView, priced: PricedLine | None,
           scales: AssetScales) -> CartLinePublic:
        def money(minor: int) -> MoneyPublic:
            return MoneyPublic.of(minor, line.currency, scales)

        return cls(
            id=line.line_id, product_id=line.product_id, variant_id=line.variant_id,
            name=line.name, brand=line.brand, sku=line.sku, size=line.size, colour=line.colour,
            image_url=line.image_url, quantity=line.quantity,
            unit_price=money(line.unit_price_minor), available=line.available,
            stock_available=line.stock_available, catalog_slug=line.catalog_slug,
            catalogue_discount=None if priced is None else money(priced.catalogue_discount_minor),
            order_discount=None if priced is None else money(priced.order_discount_minor),
            tax=None if priced is None else money(priced.tax_minor),
            total=None if priced is None else money(priced.total_minor),
        )


class CartTotals(BaseModel):
    subtotal: str
    discount: str
    tax: str
    shipping: str
    total: str = Field(description="subtotal - discount + tax + shipping: what checkout takes.")
    currency: str


class CartPublic(BaseModel):
    id: UUID
    version: int
    status: str
    user_id: UUID | None
    currency: str | None
    region: str | None
    coupon_code: str | None = Field(description="The coupon on the cart.")
    coupon_applied: bool = Field(description="Whether the coupon applies to the totals now.")
    items: list[CartLinePublic]
    saved_for_later: list[CartLinePublic]
    unavailable_line_ids: list[UUID] = Field(
        description="Lines in the cart that cannot be bought now (left out of the totals).")
    totals: CartTotals | None = Field(description="None while the cart is empty.")
    updated_at: datetime
    expires_at: datetime = Field(description="When the cart expires if left untouched.")

    @classmethod
    def of(cls, view: CartView, scales: AssetScales, *, idle_seconds: int) -> CartPublic:
        priced = {line.line_id: line for line in view.priced.lines}
        cart, p = view.cart, view.priced
        totals = None
        if p.currency:
            def major(minor: int) -> str:
                return scales.to_major(minor, p.currency)

            totals = CartTotals(
                subtotal=major(p.subtotal_minor), discount=major(p.discount_minor),
                tax=major(p.tax_minor), shipping=major(p.shipping_minor),
                total=major(p.total_minor), currency=p.currency,
            )
        return cls(
            id=cart.id, version=cart.version, status=cart.status, user_id=cart.user_id,
            currency=cart.currency, region=cart.region, coupon_code=cart.coupon_code,
            coupon_applied=p.coupon_code is not None,
            items=[CartLinePublic.of(line, priced.get(line.line_id), scales)
                   for line in view.lines if not line.saved_for_later],
            saved_for_later=[CartLinePublic.of(line, None, scales)
                             for line in view.lines if line.saved_for_later],
            unavailable_line_ids=list(p.unavailable), totals=totals,
            updated_at=cart.updated_at,
            expires_at=cart.updated_at + timedelta(seconds=idle_seconds),
        )


class GuestCartPublic(BaseModel):
    cart: CartPublic
    token: str = Field(description="Send as X-Cart-Token; shown this once.")


class MergePublic(BaseModel):
    cart: CartPublic
    skipped_line_ids: list[UUID] = Field(
        description="Guest lines in another currency, left in the guest cart.")
