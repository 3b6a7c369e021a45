"""UPI pay links: parsing, validation of the VPA, currency and amount, and building."""

from __future__ import annotations

import json

import pytest

from pacioli.gateways.qr import (
    QrInvalidAmount,
    QrInvalidField,
    QrMalformed,
    QrUnsupported,
    UpiPayment,
    decode_any,
    decode_upi,
    encode_upi,
)

FULL_LINK = ("upi://pay?pa=chai.stall-7@okaxis&pn=Chai%20Stall&am=25.50&cu=INR"
             "&tn=Two%20teas&tr=ORD-1001&mc=5814")


def test_a_full_pay_link_decodes_into_its_fields():
    payment = decode_upi(FULL_LINK)

    assert payment == UpiPayment(
        payee_address="chai.stall-7@okaxis", payee_name="Chai Stall", amount="25.50",
        currency="INR", note="Two teas", reference="ORD-1001", merchant_category_code="5814",
    )
    assert payment.amount_minor() == 2550


def test_a_link_with_only_the_payee_address_is_a_payment_where_the_payer_enters_the_amount():
    payment = decode_upi("upi://pay?pa=someone@upi")

    assert payment.amount is None
    assert payment.amount_minor() is None
    assert payment.currency == "INR"


def test_plus_signs_and_percent_escapes_decode_as_a_browser_would():
    payment = decode_upi("upi://pay?pa=a1@bank&pn=Ravi+Kumar&tn=50%25%20off%20%26%20more")

    assert payment.payee_name == "Ravi Kumar"
    assert payment.note == "50% off & more"


def test_the_scheme_and_host_are_case_insensitive():
    assert decode_upi("UPI://PAY?pa=a1@bank").payee_address == "a1@bank"


def test_parameters_the_codec_does_not_name_are_kept():
    payment = decode_upi("upi://pay?pa=a1@bank&mam=10.00&mode=02")

    assert payment.other == {"mam": "10.00", "mode": "02"}
    assert decode_upi(encode_upi(payment)) == payment


def test_encoding_writes_parameters_in_a_fixed_order_with_percent_escapes():
    link = encode_upi(UpiPayment(payee_address="chai.stall-7@okaxis", payee_name="Chai Stall",
                                 amount="25.50", note="Two teas & a bun", reference="ORD-1001"))

    assert link == ("upi://pay?pa=chai.stall-7@okaxis&pn=Chai%20Stall&am=25.50&cu=INR"
                    "&tn=Two%20teas%20%26%20a%20bun&tr=ORD-1001")


def test_an_encoded_link_decodes_back_to_the_same_payment():
    payment = decode_upi(FULL_LINK)
    assert decode_upi(encode_upi(payment)) == payment


@pytest.mark.parametrize("address", [
    "no-at-sign", "@okaxis", "a@", "a@1bank", "with space@okaxis", "a@b", "x@ok_axis",
    "ravi@okaxis@evil", "रवि@okaxis",
])
def test_a_payee_address_that_is_not_a_vpa_is_refused(address):
    with pytest.raises(QrInvalidField, match="VPA") as raised:
        decode_upi(f"upi://pay?pa={address}")
    assert raised.value.code == "qr_invalid_field"


@pytest.mark.parametrize("amount", ["0", "0.00", "-5", "10.555", "1e3", "10,50", "abc", ""])
def test_an_amount_that_is_not_positive_rupees_with_at_most_two_decimals_is_refused(amount):
    with pytest.raises(QrInvalidField) as raised:
        decode_upi(f"upi://pay?pa=a1@bank&am={amount}")
    assert raised.value.code in {"qr_invalid_amount", "qr_invalid_field"}


def test_a_three_decimal_amount_is_an_amount_error():
    with pytest.raises(QrInvalidAmount, match="2 decimal places"):
        decode_upi("upi://pay?pa=a1@bank&am=10.555")


def test_a_currency_other_than_inr_is_unsupported():
    with pytest.raises(QrUnsupported, match="INR"):
        decode_upi("upi://pay?pa=a1@bank&am=10&cu=USD")


def test_a_repeated_parameter_is_malformed():
    # Two amounts: which one would the payer's app show? Refuse rather than guess.
    with pytest.raises(QrMalformed, match="'am' appears twice"):
        decode_upi("upi://pay?pa=a1@bank&am=1.00&am=1000.00")


def test_a_link_without_a_payee_address_is_malformed():
    with pytest.raises(QrMalformed, match="pa"):
        decode_upi("upi://pay?pn=Nobody&am=1.00")


@pytest.mark.parametrize("link", ["upi://mandate?pa=a1@bank", "https://pay?pa=a1@bank",
                                  "upi://pay/extra?pa=a1@bank", "upi:pay?pa=a1@bank"])
def test_what_is_not_a_upi_pay_link_is_unsupported(link):
    with pytest.raises(QrUnsupported):
        decode_upi(link)


def test_an_overlong_link_or_value_is_refused():
    with pytest.raises(QrMalformed):
        decode_upi("upi://pay?pa=a1@bank&tn=" + "x" * 2100)
    with pytest.raises(QrInvalidField, match="1..255"):
        decode_upi("upi://pay?pa=a1@bank&tn=" + "x" * 300)


def test_a_merchant_category_code_must_be_four_digits():
    with pytest.raises(QrInvalidField, match="mc"):
        decode_upi("upi://pay?pa=a1@bank&mc=58A4")


def test_encoding_refuses_an_other_parameter_that_clashes_with_a_named_one():
    with pytest.raises(QrInvalidField, match="clashes"):
        encode_upi(UpiPayment(payee_address="a1@bank", other={"am": "5.00"}))


def test_decode_any_recognises_a_upi_link_and_to_dict_shows_no_crc():
    payment = decode_any("  " + FULL_LINK + "\n")
    shown = json.loads(json.dumps(payment.to_dict()))

    assert shown["format"] == "upi"
    assert shown["crc_valid"] is None
    assert shown["amount"] == "25.50"
    assert shown["payee_address"] == "chai.stall-7@okaxis"
