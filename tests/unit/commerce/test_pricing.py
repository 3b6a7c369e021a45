"""Pricing by hand-worked examples: rounding, allocation, and the order of application."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from pacioli.commerce.price_terms import CartInputs, Discount, LineInput, ShippingRate
from pacioli.commerce.pricing import compute
from pacioli.commerce.pricing_math import allocate, divide_half_up, line_taxes, percent_of
from pacioli.ledger.domain.errors import InvariantBroken

SUPPLIER_A = UUID(int=1)
SUPPLIER_B = UUID(int=2)
RESELLER = UUID(int=3)


def line(price: int, quantity: int = 1, *, supplier: UUID = SUPPLIER_A, margin: int = 0,
         tax_bps: int = 0, discounts: tuple[Discount, ...] = (), reseller=None) -> LineInput:
    return LineInput(
        line_id=uuid4(), product_id=uuid4(), variant_id=uuid4(), supplier_id=supplier,
        reseller_id=reseller, name="item", quantity=quantity, supplier_unit_price_minor=price,
        reseller_margin_minor=margin, tax_rate_bps=tax_bps, catalogue_discounts=discounts,
    )


def cart(*lines: LineInput, promotions: tuple[Discount, ...] = (), coupon: Discount | None = None,
         shipping: dict | None = None) -> CartInputs:
    return CartInputs(
        cart_id=uuid4(), cart_version=3, currency="USD", lines=lines,
        order_promotions=promotions, coupon_code="SAVE" if coupon else None, coupon=coupon,
        shipping=shipping or {}, unavailable=(),
    )


def test_divide_half_up_rounds_halves_away_from_zero():
    assert divide_half_up(5, 2) == 3
    assert divide_half_up(-5, 2) == -3
    assert divide_half_up(4, 3) == 1
    assert divide_half_up(5, 3) == 2
    assert divide_half_up(0, 7) == 0


def test_percent_of_rounds_half_up():
    assert percent_of(1999, 1000) == 200  # 199.9
    assert percent_of(1005, 1000) == 101  # 100.5
    assert percent_of(1004, 1000) == 100  # 100.4


def test_allocate_gives_the_left_over_units_to_the_largest_remainders():
    assert allocate(10, [1, 1, 1]) == [4, 3, 3]
    assert allocate(100, [50, 30, 20]) == [50, 30, 20]
    assert allocate(7, [1, 2]) == [2, 5]  # 2.33 and 4.67: the second takes the unit
    assert allocate(0, [5, 5]) == [0, 0]
    assert allocate(0, [0, 0]) == [0, 0]


def test_allocate_refuses_an_amount_over_zero_weights():
    with pytest.raises(InvariantBroken):
        allocate(1, [0, 0])


def test_line_taxes_return_the_order_level_tax_alongside_the_lines():
    per_line, order_tax = line_taxes([105, 105, 105], [500, 500, 500])
    assert per_line == [5, 5, 5]  # 5.25 each
    assert order_tax == 16  # 15.75


def test_a_plain_cart_adds_up():
    priced = compute(cart(line(1999, 3)))
    assert (priced.subtotal_minor, priced.discount_minor, priced.tax_minor) == (5997, 0, 0)
    assert priced.total_minor == 5997
    assert priced.lines[0].unit_price_minor == 1999
    assert priced.cart_version == 3


def test_the_reseller_margin_is_part_of_the_unit_price():
    priced = compute(cart(line(1000, 2, margin=150, reseller=RESELLER)))
    (only,) = priced.lines
    assert only.unit_price_minor == 1150
    assert only.supplier_unit_price_minor == 1000
    assert only.reseller_margin_minor == 150
    assert only.reseller_id == RESELLER
    assert priced.total_minor == 2300


def test_the_best_catalogue_discount_applies_and_fixed_ones_are_per_unit():
    ten_percent = Discount("percent", 1000)
    three_off = Discount("fixed", 300)
    priced = compute(cart(line(2000, 2, discounts=(ten_percent, three_off))))
    assert priced.lines[0].catalogue_discount_minor == 600  # 3.00 x 2 beats 10% of 40.00
    assert priced.total_minor == 3400


def test_a_fixed_catalogue_discount_never_exceeds_the_line():
    priced = compute(cart(line(200, 1, discounts=(Discount("fixed", 500),))))
    assert priced.lines[0].catalogue_discount_minor == 200
    assert priced.total_minor == 0


def test_order_discounts_come_after_catalogue_discounts_and_split_across_lines():
    # Catalogue: 10% off the first line (60.00 -> 54.00). Subtotal after it: 54 + 36 = 90.
    # Automatic 10% order promotion: 9.00; coupon 5.00 off what is left (81.00): 14.00 in all,
    # allocated 54:36 -> 8.40 and 5.60.
    first = line(3000, 2, discounts=(Discount("percent", 1000),))
    second = line(1200, 3)
    priced = compute(cart(first, second, promotions=(Discount("percent", 1000),),
                          coupon=Discount("fixed", 500)))
    assert [ln.catalogue_discount_minor for ln in priced.lines] == [600, 0]
    assert [ln.order_discount_minor for ln in priced.lines] == [840, 560]
    assert priced.discount_minor == 600 + 1400
    assert priced.coupon_code == "SAVE"
    assert priced.total_minor == 9600 - 2000


def test_only_the_best_automatic_promotion_applies_and_only_above_its_minimum():
    promotions = (Discount("fixed", 1000, min_subtotal_minor=10000),
                  Discount("percent", 500), Discount("fixed", 200))
    priced = compute(cart(line(5000), promotions=promotions))
    assert priced.discount_minor == 250  # 5% of 50.00; the 10.00 needs 100.00


def test_a_coupon_below_its_minimum_is_not_applied():
    priced = compute(cart(line(1000), coupon=Discount("percent", 5000, min_subtotal_minor=2000)))
    assert priced.discount_minor == 0
    assert priced.coupon_code is None


def test_tax_is_per_line_on_the_discounted_amount_with_the_remainder_booked():
    lines = [line(105, tax_bps=500) for _ in range(3)]
    priced = compute(cart(*lines))
    assert [ln.tax_minor for ln in priced.lines] == [5, 5, 5]
    assert priced.tax_minor == 15
    assert priced.rounding_minor == -1  # owed 16 (15.75 rounded once); collected 15
    assert priced.total_minor == 315 + 15


def test_tax_follows_the_order_discount():
    priced = compute(cart(line(10000, tax_bps=1000), coupon=Discount("percent", 2000)))
    assert priced.lines[0].tax_minor == 800  # 10% of 80.00
    assert priced.total_minor == 8800


def test_shipping_is_per_supplier_and_free_from_the_threshold():
    rates = {SUPPLIER_A: ShippingRate(500, 5000), SUPPLIER_B: ShippingRate(700, None)}
    priced = compute(cart(line(6000, supplier=SUPPLIER_A), line(1000, supplier=SUPPLIER_B),
                          shipping=rates))
    assert priced.shipping_by_supplier == {SUPPLIER_A: 0, SUPPLIER_B: 700}
    assert priced.total_minor == 7000 + 700


def test_the_free_shipping_threshold_counts_discounted_amounts():
    rates = {SUPPLIER_A: ShippingRate(500, 5000)}
    priced = compute(cart(line(5000, discounts=(Discount("fixed", 1),)), shipping=rates))
    assert priced.shipping_by_supplier == {SUPPLIER_A: 500}


def test_an_empty_cart_costs_nothing():
    priced = compute(cart())
    assert priced.total_minor == 0
    assert priced.lines == ()
    assert priced.coupon_code is None
