"""FX pricing is exact: the source amount is fully accounted for and nothing is created."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacioli.payments import errors as pe
from pacioli.payments.fx import price

rates = st.fractions(min_value=Fraction(1, 10_000), max_value=Fraction(50_000)).filter(
    lambda r: r > 0
)
scales = st.sampled_from([0, 2, 8])


@given(
    amount=st.integers(min_value=1, max_value=10**15), mid=rates, source_scale=scales,
    target_scale=scales, fee_bps=st.integers(0, 500), spread_bps=st.integers(0, 500),
)
def test_the_source_amount_splits_exactly_and_the_target_never_exceeds_its_value(
    amount, mid, source_scale, target_scale, fee_bps, spread_bps
):
    try:
        p = price(amount, source_scale=source_scale, target_scale=target_scale, mid_rate=mid,
                  fee_bps=fee_bps, spread_bps=spread_bps)
    except pe.InvalidPayment:
        return  # too small to buy one minor unit of the target
    assert p.fee_minor + p.converted_minor + p.rounding_minor == amount
    assert min(p.fee_minor, p.converted_minor, p.rounding_minor, p.target_amount_minor) >= 0
    per_minor = p.customer_rate * Fraction(10**target_scale, 10**source_scale)
    # The target is what the converted units buy, rounded down: never more.
    assert p.target_amount_minor <= p.converted_minor * per_minor
    # And `converted` is the least that buys it: one unit less would not.
    assert (p.converted_minor - 1) * per_minor < p.target_amount_minor


def test_a_worked_example_usd_to_eur():
    # 100.00 USD at a mid rate of 0.92: fee 0.50 USD (50 bps), customer rate 0.9108.
    p = price(10_000, source_scale=2, target_scale=2, mid_rate=Fraction(92, 100))
    assert p.fee_minor == 50
    assert p.customer_rate == Fraction(9108, 10_000)
    assert p.target_amount_minor == 9062  # floor(9950 * 0.9108) = floor(9062.46)
    assert p.converted_minor == 9950 and p.rounding_minor == 0  # ceil(9062 / 0.9108) = 9950


def test_rounding_down_the_target_books_the_leftover_source_units():
    # 1,000 JPY at 1/149 USD each buy 6.71 USD; the fractional cent is not paid out.
    p = price(1_000, source_scale=0, target_scale=2, mid_rate=Fraction(1, 149), fee_bps=0,
              spread_bps=0)
    assert p.target_amount_minor == 671  # floor(1000 / 149 * 100) = floor(671.14)
    assert p.converted_minor == 1000 and p.rounding_minor == 0  # ceil(671 * 1.49) = 1000
    p = price(1_000, source_scale=2, target_scale=0, mid_rate=Fraction(149), fee_bps=0,
              spread_bps=0)
    assert p.target_amount_minor == 1490 and p.rounding_minor == 0
    p = price(1_001, source_scale=2, target_scale=0, mid_rate=Fraction(3, 2), fee_bps=0,
              spread_bps=0)  # 10.01 units at 1.5 = 15.015 → 15; 15 costs 10.00; 0.01 left
    assert (p.target_amount_minor, p.converted_minor, p.rounding_minor) == (15, 1000, 1)


@pytest.mark.parametrize("amount", [0, -1, 1.5])
def test_non_positive_or_non_integer_amounts_are_refused(amount):
    with pytest.raises(pe.InvalidPayment):
        price(amount, source_scale=2, target_scale=2, mid_rate=Fraction(1))
