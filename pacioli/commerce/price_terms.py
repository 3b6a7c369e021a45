"""What a cart's price is made of, as pricing reads it: the lines, the discounts in force,
the coupon, shipping rates. Pure data (with the two discount rules), so `pricing.compute`
can be tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from pacioli.commerce.pricing_math import percent_of


@dataclass(frozen=True, slots=True)
class Discount:
    """A percentage (`value` in basis points) or fixed (`value` in minor units) discount."""

    kind: str  # percent, fixed
    value: int
    min_subtotal_minor: int = 0

    def of_line(self, gross_minor: int, quantity: int) -> int:
        """A catalogue discount on a line: a percentage of it, or a fixed sum per unit."""
        if self.kind == "percent":
            return percent_of(gross_minor, self.value)
        return min(self.value * quantity, gross_minor)

    def of_amount(self, amount_minor: int) -> int:
        """An order discount on `amount_minor`, never more than it."""
        if self.kind == "percent":
            return percent_of(amount_minor, self.value)
        return min(self.value, amount_minor)


@dataclass(frozen=True, slots=True)
class LineInput:
    """A priceable cart line and what applies to it."""

    line_id: UUID
    product_id: UUID
    variant_id: UUID
    supplier_id: UUID
    reseller_id: UUID | None
    name: str
    quantity: int
    supplier_unit_price_minor: int
    reseller_margin_minor: int
    tax_rate_bps: int
    catalogue_discounts: tuple[Discount, ...] = ()


@dataclass(frozen=True, slots=True)
class ShippingRate:
    fee_minor: int
    free_above_minor: int | None


@dataclass(frozen=True, slots=True)
class CartInputs:
    """Everything a cart's price depends on, read at one moment."""

    cart_id: UUID
    cart_version: int
    currency: str
    lines: tuple[LineInput, ...]
    order_promotions: tuple[Discount, ...]
    coupon_code: str | None
    coupon: Discount | None  # None: no coupon, or it is not valid now
    shipping: dict[UUID, ShippingRate]
    unavailable: tuple[UUID, ...]
