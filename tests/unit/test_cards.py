"""Card checks: Luhn, brands, expiry through the end of the month, CVC, bank accounts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pacioli.gateways.base import (
    CardBrand,
    CardBrandUnsupported,
    CardExpired,
    InvalidBankAccount,
    InvalidCardExpiry,
    InvalidCardNumber,
    InvalidCvc,
)
from pacioli.gateways.cards import (
    aba_routing_valid,
    check_expiry,
    detect_brand,
    luhn_check_digit,
    luhn_valid,
    normalize_card_number,
    validate_bank_account,
    validate_card,
)

NOW = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize("number", [
    "4242424242424242", "4000000000000002", "5555555555554444", "378282246310005",
    "6011111111111117", "79927398713",
])
def test_known_valid_numbers_pass_luhn(number):
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4242424242424241", "79927398710", "", "42a2", "0x12"])
def test_wrong_check_digits_and_non_digits_fail_luhn(number):
    assert not luhn_valid(number)


def test_check_digit_completes_a_partial_number():
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_check_digit("424242424242424") == "2"


@pytest.mark.parametrize(("number", "brand"), [
    ("4242424242424242", CardBrand.VISA),
    ("5555555555554444", CardBrand.MASTERCARD),
    ("2223003122003222", CardBrand.MASTERCARD),
    ("378282246310005", CardBrand.AMEX),
    ("371449635398431", CardBrand.AMEX),
    ("6011111111111117", CardBrand.DISCOVER),
    ("6445644564456445", CardBrand.DISCOVER),
])
def test_brand_follows_prefix_and_length(number, brand):
    assert detect_brand(number) is brand


def test_unknown_prefix_has_no_brand():
    assert detect_brand("3530111333300000") is None  # JCB is not accepted
    assert detect_brand("5655555555554444") is None  # 56 is not Mastercard


def test_spaces_and_dashes_are_removed_from_a_typed_number():
    assert normalize_card_number("4242 4242-4242 4242") == "4242424242424242"


@pytest.mark.parametrize("raw", ["4242424242424241", "4242", "4242x42424242424", "4" * 20])
def test_a_malformed_number_is_invalid_card_number(raw):
    with pytest.raises(InvalidCardNumber) as caught:
        normalize_card_number(raw)
    assert caught.value.code == "invalid_card_number"
    assert raw not in str(caught.value)


def test_a_card_is_valid_through_the_last_day_of_its_expiry_month():
    last_moment = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
    assert check_expiry(11, 2026, last_moment) == (11, 2026)


def test_a_card_expires_when_its_expiry_month_ends():
    with pytest.raises(CardExpired) as caught:
        check_expiry(11, 2026, datetime(2026, 12, 1, tzinfo=UTC))
    assert caught.value.code == "card_expired"
    with pytest.raises(CardExpired):
        check_expiry(12, 2025, NOW)


def test_a_two_digit_year_means_this_century():
    assert check_expiry(1, 30, NOW) == (1, 2030)


@pytest.mark.parametrize(("month", "year"), [
    (0, 2030), (13, 2030), (5, 1999), (5, 3000), (True, 2030), ("5", 2030)])
def test_an_impossible_expiry_is_invalid_card_expiry(month, year):
    with pytest.raises(InvalidCardExpiry):
        check_expiry(month, year, NOW)


def test_validate_card_keeps_brand_and_last4_and_hides_the_number_from_repr():
    card = validate_card("4242 4242 4242 4242", 12, 2030, "123", now=NOW)
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == (
        CardBrand.VISA, "4242", 12, 2030)
    assert "4242424242424242" not in repr(card)
    assert "123" not in repr(card)


def test_amex_needs_a_four_digit_cvc_and_others_three():
    validate_card("378282246310005", 1, 2030, "1234", now=NOW)
    with pytest.raises(InvalidCvc):
        validate_card("378282246310005", 1, 2030, "123", now=NOW)
    with pytest.raises(InvalidCvc):
        validate_card("4242424242424242", 1, 2030, "1234", now=NOW)
    with pytest.raises(InvalidCvc):
        validate_card("4242424242424242", 1, 2030, "12a", now=NOW)


def test_a_luhn_valid_number_of_an_unaccepted_brand_is_refused():
    with pytest.raises(CardBrandUnsupported) as caught:
        validate_card("3530111333300000", 1, 2030, "123", now=NOW)
    assert caught.value.code == "card_brand_unsupported"


def test_routing_numbers_carry_the_aba_checksum():
    assert aba_routing_valid("110000000")
    assert aba_routing_valid("021000021")
    assert not aba_routing_valid("110000001")
    assert not aba_routing_valid("11000000")


def test_bank_account_numbers_are_four_to_seventeen_digits():
    assert validate_bank_account("000123456789", "110000000") == ("000123456789", "110000000")
    for account in ("123", "1" * 18, "12ab5678"):
        with pytest.raises(InvalidBankAccount):
            validate_bank_account(account, "110000000")
    with pytest.raises(InvalidBankAccount):
        validate_bank_account("000123456789", "123456789")
