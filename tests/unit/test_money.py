"""parse_major, format_minor, Money and allocate_pro_rata: exact cases for every scale."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pacioli.ledger.domain.errors import AssetMismatch, InvalidAmount
from pacioli.ledger.domain.money import (
    AMOUNT_MAX_MINOR,
    Asset,
    Money,
    allocate_pro_rata,
    format_minor,
    parse_major,
)

USD = Asset("USD", 2)
JPY = Asset("JPY", 0)
BTC = Asset("BTC", 8)
ETH = Asset("ETH", 18)


@pytest.mark.parametrize(
    ("text", "scale", "amount_minor"),
    [
        ("10.50", 2, 1050),
        ("10.5", 2, 1050),
        ("10", 2, 1000),
        ("0.01", 2, 1),
        ("123456789.99", 2, 12_345_678_999),
        ("1", 0, 1),
        ("1000000", 0, 1_000_000),
        ("0.00000001", 8, 1),
        ("21000000", 8, 2_100_000_000_000_000),
        ("1.23456789", 8, 123_456_789),
        ("0.000000000000000001", 18, 1),
        ("1", 18, 10**18),
        ("1.5", 18, 15 * 10**17),
        # Above 2**64 minor units: a plain int, no float in between.
        ("18.446744073709551617", 18, 2**64 + 1),
        ("340282366920938463463.374607431768211455", 18, 2**128 - 1),
    ],
)
def test_parse_major_gives_exact_minor_units(text, scale, amount_minor):
    parsed = parse_major(text, scale)
    assert parsed == amount_minor
    assert type(parsed) is int


@pytest.mark.parametrize(
    ("amount_minor", "scale", "text"),
    [
        (1050, 2, "10.50"),
        (1, 2, "0.01"),
        (100, 2, "1.00"),
        (0, 2, "0.00"),
        (-1050, 2, "-10.50"),
        (-1, 2, "-0.01"),
        (1, 0, "1"),
        (0, 0, "0"),
        (-7, 0, "-7"),
        (1, 8, "0.00000001"),
        (2_100_000_000_000_000, 8, "21000000.00000000"),
        (10**18, 18, "1.000000000000000000"),
        (2**64 + 1, 18, "18.446744073709551617"),
        (2**128 - 1, 18, "340282366920938463463.374607431768211455"),
    ],
)
def test_format_minor_writes_every_decimal_place(amount_minor, scale, text):
    assert format_minor(amount_minor, scale) == text


@pytest.mark.parametrize("value", [10.5, Decimal("10.50"), True, "1050"])
def test_format_minor_refuses_anything_but_int(value):
    with pytest.raises(TypeError):
        format_minor(value, 2)


@pytest.mark.parametrize(
    ("text", "scale"),
    [
        ("1e3", 2),
        ("1E3", 0),
        (" 1", 2),
        ("1 ", 2),
        ("1.", 2),
        (".5", 2),
        ("-1", 2),
        ("-0.01", 2),
        ("+1", 2),
        ("0", 2),
        ("0.00", 2),
        ("0", 0),
        ("0.000000000000000000", 18),
        ("", 2),
        ("1,000.00", 2),
        ("1_000", 0),
        ("0x10", 0),
        ("NaN", 2),
        ("Infinity", 2),
        ("10.505", 2),
        ("1.5", 0),
        ("0.000000001", 8),
        ("0.0000000000000000001", 18),
        ("340282366920938463463.374607431768211456", 18),  # 2**128
        ("340282366920938463463374607431768211456", 0),  # 2**128
    ],
)
def test_parse_major_refuses_what_is_not_a_plain_positive_amount(text, scale):
    with pytest.raises(InvalidAmount):
        parse_major(text, scale)


@pytest.mark.parametrize("value", [10.5, 10, Decimal("10.50"), None, b"10.50"])
def test_parse_major_refuses_non_strings(value):
    with pytest.raises(InvalidAmount):
        parse_major(value, 2)


def test_parse_major_names_the_allowed_number_of_decimals():
    with pytest.raises(InvalidAmount, match="3 decimal places; this asset allows 2"):
        parse_major("1.005", 2)


def test_parse_major_accepts_zero_only_when_asked():
    assert parse_major("0.00", 2, allow_zero=True) == 0
    assert parse_major("0", 0, allow_zero=True) == 0


def test_parse_major_refusal_carries_its_stable_code():
    with pytest.raises(InvalidAmount) as refused:
        parse_major("-1", 2)
    assert refused.value.code == "invalid_amount"


def test_parse_major_refuses_a_trailing_newline():
    with pytest.raises(InvalidAmount):
        parse_major("1\n", 2)


@pytest.mark.parametrize("text", ["١٠", "１０.５０"])
def test_parse_major_refuses_non_ascii_digits(text):
    with pytest.raises(InvalidAmount):
        parse_major(text, 2)


def test_parse_major_refuses_a_huge_digit_string_as_invalid_amount():
    with pytest.raises(InvalidAmount):
        parse_major("9" * 5000, 2)


# Money.


def test_money_adds_and_subtracts_within_one_asset():
    assert Money(1050, USD) + Money(25, USD) == Money(1075, USD)
    assert Money(1050, USD) - Money(50, USD) == Money(1000, USD)


def test_money_keeps_128_bit_amounts_exact():
    total = Money(2**127, ETH) + Money(2**127 - 1, ETH)
    assert total.amount_minor == AMOUNT_MAX_MINOR


@pytest.mark.parametrize("other", [Money(1, JPY), Money(1, Asset("USD", 3))])
def test_money_refuses_to_add_a_different_asset(other):
    with pytest.raises(AssetMismatch):
        Money(1, USD) + other
    with pytest.raises(AssetMismatch):
        Money(1, USD) - other


@pytest.mark.parametrize("amount", [1.5, Decimal("1"), True, "1"])
def test_money_refuses_a_non_int_amount(amount):
    with pytest.raises(TypeError):
        Money(amount, USD)


def test_money_is_frozen():
    money = Money(1, USD)
    with pytest.raises(AttributeError):
        money.amount_minor = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(1050, USD), "10.50 USD"),
        (Money(500, JPY), "500 JPY"),
        (Money(1, BTC), "0.00000001 BTC"),
        (Money(2**64 + 1, ETH), "18.446744073709551617 ETH"),
    ],
)
def test_money_prints_in_major_units(money, text):
    assert str(money) == text


# allocate_pro_rata.


@pytest.mark.parametrize(
    ("amount_minor", "weights", "shares", "remainder"),
    [
        (100, [1, 1, 1], [33, 33, 33], 1),
        (100, [1, 1], [50, 50], 0),
        (1000, [70, 20, 10], [700, 200, 100], 0),
        (1001, [70, 20, 10], [700, 200, 100], 1),
        (10, [3, 0, 7], [3, 0, 7], 0),
        (1, [1, 1], [0, 0], 1),
        (0, [5, 5], [0, 0], 0),
        (2**128 - 1, [1, 1], [2**127 - 1, 2**127 - 1], 1),
    ],
)
def test_allocate_pro_rata_rounds_down_and_returns_the_remainder(
    amount_minor, weights, shares, remainder
):
    assert allocate_pro_rata(amount_minor, weights) == (shares, remainder)


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1], [-1]])
def test_allocate_pro_rata_refuses_weights_that_split_nothing(weights):
    with pytest.raises(ValueError):
        allocate_pro_rata(100, weights)
