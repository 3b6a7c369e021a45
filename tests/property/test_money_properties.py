"""Properties of parse_major, format_minor and allocate_pro_rata over every scale."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pacioli.ledger.domain.errors import InvalidAmount
from pacioli.ledger.domain.money import (
    AMOUNT_MAX_MINOR,
    SCALE_MAX,
    allocate_pro_rata,
    format_minor,
    parse_major,
)

scales = st.integers(min_value=0, max_value=SCALE_MAX)
amounts_minor = st.integers(min_value=1, max_value=AMOUNT_MAX_MINOR)


@given(amount_minor=amounts_minor, scale=scales)
def test_parse_major_reads_back_what_format_minor_wrote(amount_minor, scale):
    text = format_minor(amount_minor, scale)
    assert parse_major(text, scale) == amount_minor


@given(amount_minor=amounts_minor, scale=scales)
def test_format_minor_writes_exactly_scale_decimal_places(amount_minor, scale):
    text = format_minor(amount_minor, scale)
    units, _, fraction = text.partition(".")
    assert len(fraction) == scale
    assert units.isdigit() and (units == "0" or not units.startswith("0"))


@given(amount_minor=st.integers(min_value=-AMOUNT_MAX_MINOR, max_value=-1), scale=scales)
def test_format_minor_of_a_negative_is_the_positive_with_a_minus(amount_minor, scale):
    assert format_minor(amount_minor, scale) == "-" + format_minor(-amount_minor, scale)


@given(
    units=st.integers(min_value=0, max_value=10**20),
    fraction=st.text(alphabet="0123456789", min_size=1, max_size=25),
    scale=scales,
)
def test_parse_major_never_accepts_more_decimals_than_the_scale(units, fraction, scale):
    text = f"{units}.{fraction}"
    if len(fraction) > scale:
        with pytest.raises(InvalidAmount):
            parse_major(text, scale)
    else:
        # Padding the fraction to the scale gives the minor units directly.
        expected_minor = int(f"{units}{fraction.ljust(scale, '0')}")
        assume(0 < expected_minor <= AMOUNT_MAX_MINOR)
        assert parse_major(text, scale) == expected_minor


@given(amount_minor=amounts_minor, scale=scales)
def test_parse_major_refuses_amounts_past_128_bits(amount_minor, scale):
    too_large = amount_minor + AMOUNT_MAX_MINOR
    with pytest.raises(InvalidAmount):
        parse_major(format_minor(too_large, scale), scale)


@given(
    amount_minor=st.integers(min_value=0, max_value=AMOUNT_MAX_MINOR),
    weights=st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=20).filter(
        any
    ),
)
def test_allocate_pro_rata_books_every_minor_unit(amount_minor, weights):
    shares, remainder = allocate_pro_rata(amount_minor, weights)
    total_weight = sum(weights)
    assert len(shares) == len(weights)
    assert sum(shares) + remainder == amount_minor
    for share, weight in zip(shares, weights, strict=True):
        # share <= amount * weight / total, compared without division.
        assert 0 <= share * total_weight <= amount_minor * weight
        # Rounding down loses less than one minor unit per share.
        assert (share + 1) * total_weight > amount_minor * weight
    assert 0 <= remainder < len(weights)
