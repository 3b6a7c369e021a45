"""What a cart costs: line prices, discounts, tax, shipping and the rounding remainder.

`price_cart` reads the cart and everything its price depends on (pricing_inputs.py) and
hands it to `compute`, which is pure. The order of application (docs/commerce.md,
"Totals"):

1. unit price = supplier's variant price + the reseller's margin (if sold through a
   reseller's catalog); line gross = unit price x quantity;
2. catalogue discount: the best active product or variant promotion, percentage of the
   line gross (rounded half up) or fixed per unit (capped at the line gross);
3. order discounts on the subtotal after catalogue discounts: the best automatic order
   promotion, then the cart's coupon on what is left; their sum is allocated across the
   lines in proportion to each line's amount (largest remainder: it sums exactly);
4. tax per line on what is left, by the tax rate table, rounded half up per line; the
   order's tax rounded once on the exact sum is what is owed, and the difference is the
   rounding remainder (`rounding_minor`, booked to the platform's rounding account);
5. shipping per supplier: flat, or free when that supplier's discounted lines reach the
   threshold. Shipping is not taxed.

total = subtotal - discount + tax + shipping = sum of line totals + shipping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import Connection

from pacioli.commerce.price_terms import CartInputs, LineInput
from pacioli.commerce.pricing_inputs import load_inputs
from pacioli.commerce.pricing_math import allocate, line_taxes


@dataclass(frozen=True, slots=True)
class PricedLine:
    line_id: UUID
    product_id: UUID
    variant_id: UUID
    supplier_id: UUID  # the supplier's merchant id
    reseller_id: UUID | None  # the merchant id of the reseller whose catalog sold it
    name: str
    quantity: int
    unit_price_minor: int  # what the shopper pays per unit before discounts (incl. margin)
    supplier_unit_price_minor: int  # the supplier's price per unit
    reseller_margin_minor: int  # per unit
    catalogue_discount_minor: int  # whole line
    order_discount_minor: int  # this line's share of order-level discounts
    tax_minor: int  # this line's tax
    total_minor: int  # line total after discounts, incl. tax


@dataclass(frozen=True, slots=True)
class PricedCart:
    cart_id: UUID
    cart_version: int
    currency: str
    lines: tuple[PricedLine, ...]
    subtotal_minor: int
    discount_minor: int
    tax_minor: int  # what the shopper pays in tax: the sum of the lines' taxes
    shipping_minor: int
    shipping_by_supplier: dict[UUID, int]
    # sum of per-line taxes minus the order-level tax (can be negative): the tax owed is
    # tax_minor - rounding_minor, and rounding_minor is booked to Purpose.ROUNDING.
    rounding_minor: int
    total_minor: int  # what the shopper pays
    coupon_code: str | None  # the coupon applied (None if none, or it does not apply now)
    unavailable: tuple[UUID, ...]  # line ids whose stock or product is gone (not priced)


def price_cart(connection: Connection, cart_id: UUID, *, now: datetime,
               cart=None) -> PricedCart:
    """The cart's price now, its saved-for-later lines left out; `cart` is the cart's
    row when the caller has read it in this transaction (it is not read again).

    Raises: CartNotFound.
    """
    return compute(load_inputs(connection, cart_id, now=now, cart=cart))


def compute(inputs: CartInputs) -> PricedCart:
    """Price `inputs` in the documented order of application (module docstring)."""
    lines = inputs.lines
    gross = [line.quantity * _unit_price(line) for line in lines]
    catalogue = [
        _best_catalogue_discount(line, amount)
        for line, amount in zip(lines, gross, strict=True)
    ]
    after_catalogue = [amount - off for amount, off in zip(gross, catalogue, strict=True)]
    discounted_subtotal = sum(after_catalogue)
    order_discount, coupon_applied = _order_discount(inputs, discounted_subtotal)
    shares = allocate(order_discount, after_catalogue)
    bases = [amount - share for amount, share in zip(after_catalogue, shares, strict=True)]
    taxes, order_tax = line_taxes(bases, [line.tax_rate_bps for line in lines])
    shipping = _shipping(inputs, lines, bases)
    priced = tuple(
        PricedLine(
            line_id=line.line_id, product_id=line.product_id, variant_id=line.variant_id,
            supplier_id=line.supplier_id, reseller_id=line.reseller_id, name=line.name,
            quantity=line.quantity, unit_price_minor=_unit_price(line),
            supplier_unit_price_minor=line.supplier_unit_price_minor,
            reseller_margin_minor=line.reseller_margin_minor,
            catalogue_discount_minor=catalogue[i], order_discount_minor=shares[i],
            tax_minor=taxes[i], total_minor=bases[i] + taxes[i],
        )
        for i, line in enumerate(lines)
    )
    tax = sum(taxes)
    shipping_total = sum(shipping.values())
    return PricedCart(
        cart_id=inputs.cart_id, cart_version=inputs.cart_version, currency=inputs.currency,
        lines=priced, subtotal_minor=sum(gross), discount_minor=sum(catalogue) + order_discount,
        tax_minor=tax, shipping_minor=shipping_total, shipping_by_supplier=shipping,
        rounding_minor=tax - order_tax,
        total_minor=sum(bases) + tax + shipping_total,
        coupon_code=inputs.coupon_code if coupon_applied else None,
        unavailable=inputs.unavailable,
    )


def _unit_price(line: LineInput) -> int:
    return line.supplier_unit_price_minor + line.reseller_margin_minor


def _best_catalogue_discount(line: LineInput, gross_minor: int) -> int:
    """The largest of the line's catalogue discounts (they do not stack)."""
    return max(
        (discount.of_line(gross_minor, line.quantity) for discount in line.catalogue_discounts),
        default=0,
    )


def _order_discount(inputs: CartInputs, subtotal_minor: int) -> tuple[int, bool]:
    """The order-level discount and whether the coupon took part.

    The best automatic promotion whose minimum the subtotal reaches comes first; the
    coupon (if its minimum is reached) applies to what is left after it.
    """
    eligible = [p for p in inputs.order_promotions if subtotal_minor >= p.min_subtotal_minor]
    automatic = max((p.of_amount(subtotal_minor) for p in eligible), default=0)
    coupon = inputs.coupon
    if coupon is None or subtotal_minor < coupon.min_subtotal_minor or subtotal_minor == 0:
        return automatic, False
    return automatic + coupon.of_amount(subtotal_minor - automatic), True


def _shipping(
    inputs: CartInputs, lines: Sequence[LineInput], bases: Sequence[int]
) -> dict[UUID, int]:
    """Each supplier's shipping: its flat fee, or nothing once its lines reach the threshold."""
    by_supplier: dict[UUID, int] = {}
    for line, base in zip(lines, bases, strict=True):
        by_supplier[line.supplier_id] = by_supplier.get(line.supplier_id, 0) + base
    shipping: dict[UUID, int] = {}
    for supplier_id, amount in by_supplier.items():
        rate = inputs.shipping.get(supplier_id)
        free = rate is None or (rate.free_above_minor is not None
                                and amount >= rate.free_above_minor)
        shipping[supplier_id] = 0 if free else rate.fee_minor
    return shipping
