"""Pricing properties (hypothesis): totals add up exactly, allocations sum to what they
allocate, and the rounding remainder is exactly the gap between per-line and order tax."""

from __future__ import annotations

from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from pacioli.commerce.price_terms import CartInputs, Discount, LineInput, ShippingRate
from pacioli.commerce.pricing import compute
from pacioli.commerce.pricing_math import BPS_WHOLE, allocate, divide_half_up, line_taxes

SUPPLIERS = [UUID(int=i) for i in range(1, 4)]

amounts = st.integers(min_value=1, max_value=10**9)
discounts = st.one_of(
    st.builds(Discount, st.just("percent"), st.integers(1, BPS_WHOLE),
              st.integers(0, 10**6)),
    st.builds(Discount, st.just("fixed"), st.integers(1, 10**7), st.integers(0, 10**6)),
)


@st.composite
def lines(draw, index: int) -> LineInput:
    return LineInput(
        line_id=UUID(int=1000 + index), product_id=UUID(int=2000 + index),
        variant_id=UUID(int=3000 + index), supplier_id=draw(st.sampled_from(SUPPLIERS)),
        reseller_id=None, name=f"item {index}", quantity=draw(st.integers(1, 50)),
        supplier_unit_price_minor=draw(amounts), reseller_margin_minor=draw(st.integers(0, 10**6)),
        tax_rate_bps=draw(st.integers(0, 3000)),
        catalogue_discounts=tuple(draw(st.lists(discounts, max_size=3))),
    )


@st.composite
def carts(draw) -> CartInputs:
    count = draw(st.integers(0, 8))
    shipping = {
        supplier: ShippingRate(draw(st.integers(0, 10**5)),
                               draw(st.none() | st.integers(0, 10**8)))
        for supplier in SUPPLIERS if draw(st.booleans())
    }
    return CartInputs(
        cart_id=UUID(int=9), cart_version=1, currency="USD",
        lines=tuple(draw(lines(i)) for i in range(count)),
        order_promotions=tuple(draw(st.lists(discounts, max_size=3))),
        coupon_code="C", coupon=draw(st.none() | discounts), shipping=shipping, unavailable=(),
    )


@given(st.integers(0, 10**12), st.lists(st.integers(0, 10**9), min_size=1, max_size=20))
def test_allocation_sums_exactly_and_stays_within_one_unit_of_the_exact_share(total, weights):
    if sum(weights) == 0:
        total = 0
    total = min(total, sum(weights))
    shares = allocate(total, weights)
    assert sum(shares) == total
    for share, weight in zip(shares, weights, strict=True):
        assert 0 <= share <= weight
        if sum(weights):
            assert abs(share * sum(weights) - total * weight) < sum(weights)


@given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, BPS_WHOLE)), max_size=30))
def test_per_line_and_order_tax_differ_by_at_most_half_a_unit_per_line(pairs):
    bases = [base for base, _ in pairs]
    rates = [rate for _, rate in pairs]
    per_line, order_tax = line_taxes(bases, rates)
    exact = sum(base * rate for base, rate in pairs)
    assert order_tax == divide_half_up(exact, BPS_WHOLE)
    # Each line is off by at most half a unit; the order figure by at most half a unit too.
    assert 2 * abs(sum(per_line) - order_tax) <= len(pairs) + 1


@given(carts())
def test_totals_add_up_exactly(inputs):
    priced = compute(inputs)
    assert priced.total_minor == (priced.subtotal_minor - priced.discount_minor
                                  + priced.tax_minor + priced.shipping_minor)
    assert priced.total_minor == sum(ln.total_minor for ln in priced.lines) + priced.shipping_minor
    assert priced.shipping_minor == sum(priced.shipping_by_supplier.values())
    assert priced.tax_minor == sum(ln.tax_minor for ln in priced.lines)
    assert priced.discount_minor == sum(
        ln.catalogue_discount_minor + ln.order_discount_minor for ln in priced.lines)
    assert 0 <= priced.discount_minor <= priced.subtotal_minor


@given(carts())
def test_every_line_adds_up_and_no_discount_exceeds_its_line(inputs):
    priced = compute(inputs)
    for ln in priced.lines:
        gross = ln.quantity * ln.unit_price_minor
        assert ln.unit_price_minor == ln.supplier_unit_price_minor + ln.reseller_margin_minor
        assert 0 <= ln.catalogue_discount_minor + ln.order_discount_minor <= gross
        assert ln.tax_minor >= 0
        assert ln.total_minor == (gross - ln.catalogue_discount_minor - ln.order_discount_minor
                                  + ln.tax_minor)


@given(carts())
def test_the_rounding_remainder_is_what_per_line_tax_collects_over_the_order_tax(inputs):
    priced = compute(inputs)
    rates = {line.line_id: line.tax_rate_bps for line in inputs.lines}
    exact = sum(
        (ln.quantity * ln.unit_price_minor - ln.catalogue_discount_minor
         - ln.order_discount_minor) * rates[ln.line_id]
        for ln in priced.lines
    )
    owed = divide_half_up(exact, BPS_WHOLE)
    assert priced.tax_minor - priced.rounding_minor == owed
    assert 2 * abs(priced.rounding_minor) <= len(priced.lines) + 1


@given(carts())
def test_order_discounts_are_allocated_in_proportion_to_the_discounted_lines(inputs):
    priced = compute(inputs)
    after_catalogue = [ln.quantity * ln.unit_price_minor - ln.catalogue_discount_minor
                       for ln in priced.lines]
    order_discount = sum(ln.order_discount_minor for ln in priced.lines)
    assert order_discount <= sum(after_catalogue)
    assert [ln.order_discount_minor for ln in priced.lines] == allocate(
        order_discount, after_catalogue)
