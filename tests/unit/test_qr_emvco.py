"""The EMVCo merchant-presented codec: published examples, framing, fields, CRC, encoding."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pacioli.gateways import qr
from pacioli.gateways.qr import (
    AdditionalData,
    EmvcoPayload,
    MerchantAccount,
    MerchantLanguage,
    PointOfInitiation,
    QrCrcMismatch,
    QrError,
    QrInvalidAmount,
    QrInvalidField,
    QrMalformed,
    QrUnsupported,
    amount_to_minor,
    crc16_ccitt_false,
    crc_hex,
    currency_by_numeric,
    currency_numeric,
    decode_emvco,
    encode_emvco,
    merchant_qr,
)

# The static Pix BR Code example of Banco Central do Brasil's "Manual de Padrões para
# Iniciação do Pix" (BR Code section): Pix key 123e4567-e12b-12d1-a456-426655440000,
# "Fulano de Tal", BRASILIA, reference label "***". Its published CRC is 1D3D.
PIX_MANUAL_EXAMPLE = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)

# The example payload of the EMV QR Code Specification for Payment Systems, Merchant-
# Presented Mode (EMVCo, appendix), as quoted verbatim by several open-source EMVCo
# libraries: a dynamic QR of "BEST TRANSPORT", Beijing, 23.72 CNY, with a Chinese
# language template and an unreserved template 91. Its published CRC is A13A, which
# verifies over the UTF-8 bytes of the payload.
EMVCO_SPEC_EXAMPLE = (
    "00020101021229300012D156000000000510A93FO3230Q31280012D156000000010308"
    "12345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输"
    "0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016"
    "A0112233449988770708123456786304A13A"
)


def with_crc(body: str) -> str:
    """A payload body (without field 63) closed with its correct CRC."""
    return body + "6304" + crc_hex(body + "6304")


VALID_BODY = (
    "000201010211"
    "26200010io.pacioli0102m1"
    "5204581453039785802PT5904Cafe6006Lisbon"
)


def test_crc_of_the_standard_check_string_is_29b1():
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert crc_hex("123456789") == "29B1"


def test_crc_of_nothing_is_the_initial_value():
    assert crc16_ccitt_false(b"") == 0xFFFF


def test_pix_manual_example_decodes_and_its_crc_verifies():
    decoded = decode_emvco(PIX_MANUAL_EXAMPLE)

    assert decoded.crc_valid is True
    assert decoded.crc == "1D3D"
    assert decoded.point_of_initiation is None
    assert decoded.is_dynamic is False
    (account,) = decoded.merchant_accounts
    assert account.id == "26"
    assert account.gui == "br.gov.bcb.pix"
    assert account.fields["01"] == "123e4567-e12b-12d1-a456-426655440000"
    assert decoded.merchant_category_code == "0000"
    assert (decoded.currency_numeric, decoded.currency) == ("986", "BRL")
    assert decoded.amount is None
    assert decoded.amount_minor(2) is None
    assert (decoded.country_code, decoded.merchant_name, decoded.merchant_city) == (
        "BR", "Fulano de Tal", "BRASILIA")
    assert decoded.reference == "***"


def test_pix_manual_example_encodes_back_to_the_same_string():
    assert encode_emvco(decode_emvco(PIX_MANUAL_EXAMPLE)) == PIX_MANUAL_EXAMPLE


def test_emvco_specification_example_decodes_and_its_crc_verifies():
    decoded = decode_emvco(EMVCO_SPEC_EXAMPLE)

    assert decoded.crc_valid is True
    assert decoded.crc == "A13A"
    assert decoded.point_of_initiation is PointOfInitiation.DYNAMIC
    assert [account.id for account in decoded.merchant_accounts] == ["29", "31"]
    assert decoded.merchant_accounts[0].fields == {"00": "D15600000000", "05": "A93FO3230Q"}
    assert decoded.merchant_accounts[1].fields == {"00": "D15600000001", "03": "12345678"}
    assert decoded.merchant_category_code == "4111"
    assert (decoded.currency, decoded.amount, decoded.amount_minor(2)) == ("CNY", "23.72", 2372)
    assert decoded.tip_indicator == "01"
    assert decoded.language == MerchantLanguage(
        language_preference="ZH", merchant_name="最佳运输", merchant_city="北京")
    assert decoded.additional_data == AdditionalData(
        store_label="1234", customer_label="***", terminal_label="A6008667",
        consumer_data_request="ME")
    assert decoded.other == {"91": "0016A011223344998877070812345678"}


def test_emvco_specification_example_survives_encoding_in_canonical_order():
    decoded = decode_emvco(EMVCO_SPEC_EXAMPLE)
    encoded = encode_emvco(decoded)

    # The example lists field 64 before 54; Pacioli writes ids in ascending order.
    assert encoded != EMVCO_SPEC_EXAMPLE
    assert decode_emvco(encoded) == replace(decoded, crc=encoded[-4:])


def test_a_tampered_payload_is_refused_by_its_crc():
    tampered = PIX_MANUAL_EXAMPLE.replace("Fulano", "Fulana")

    with pytest.raises(QrCrcMismatch) as raised:
        decode_emvco(tampered)
    assert raised.value.code == "qr_crc_mismatch"


def test_a_tampered_payload_decodes_for_display_with_crc_valid_false():
    tampered = PIX_MANUAL_EXAMPLE.replace("Fulano", "Fulana")

    decoded = decode_emvco(tampered, verify_crc=False)

    assert decoded.crc_valid is False
    assert decoded.merchant_name == "Fulana de Tal"


def test_a_lower_case_crc_is_read_as_the_same_number():
    decoded = decode_emvco(PIX_MANUAL_EXAMPLE[:-4] + "1d3d")

    assert decoded.crc_valid is True


@pytest.mark.parametrize("payload", ["", "hello", "000101" + PIX_MANUAL_EXAMPLE[6:],
                                     "upi://pay?pa=a@b"])
def test_text_that_does_not_open_with_000201_is_unsupported(payload):
    with pytest.raises(QrUnsupported) as raised:
        decode_emvco(payload)
    assert raised.value.code == "qr_unsupported"


@pytest.mark.parametrize("payload", [
    PIX_MANUAL_EXAMPLE[:-8],                  # No CRC field at all.
    PIX_MANUAL_EXAMPLE[:-4] + "1D3G",         # A CRC that is not hexadecimal.
    PIX_MANUAL_EXAMPLE[:-8] + "6305" + "1D3D",  # Field 63 must be 4 characters.
    "000201",
])
def test_a_payload_without_a_well_formed_crc_trailer_is_malformed(payload):
    with pytest.raises(QrMalformed) as raised:
        decode_emvco(payload)
    assert raised.value.code == "qr_malformed"


@pytest.mark.parametrize(("body", "problem"), [
    (VALID_BODY + "5999X", "declares 99 characters"),   # Length runs past the end.
    (VALID_BODY + "5900", "length 00"),
    (VALID_BODY + "6004Lima", "appears twice"),
    (VALID_BODY + "A104abcd", "2-digit id"),
    (VALID_BODY + "610Xabcd", "2-digit length"),
])
def test_broken_id_length_value_structure_is_malformed(body, problem):
    with pytest.raises(QrMalformed, match=problem):
        decode_emvco(with_crc(body))


def test_a_crc_trailer_hidden_inside_another_fields_value_is_malformed():
    # The last eight characters look like field 63, and their CRC even matches, but they
    # belong to field 99's value: the payload has no field 63 of its own.
    prefix = VALID_BODY + "9912abcd6304"
    forged = prefix + crc_hex(prefix)

    with pytest.raises(QrMalformed, match="must end with field 63"):
        decode_emvco(forged)


def test_broken_nested_template_is_malformed():
    body = VALID_BODY.replace("26200010io.pacioli0102m1", "26200010io.pacioli0199m1")
    with pytest.raises(QrMalformed, match="template 26"):
        decode_emvco(with_crc(body))


@pytest.mark.parametrize(("removed", "named"), [
    ("5904Cafe", "59"),
    ("6006Lisbon", "60"),
    ("26200010io.pacioli0102m1", "02-51"),
])
def test_a_missing_mandatory_field_is_malformed(removed, named):
    with pytest.raises(QrMalformed, match=f"mandatory fields missing: .*{named}"):
        decode_emvco(with_crc(VALID_BODY.replace(removed, "")))


def test_a_payload_longer_than_512_characters_is_malformed():
    body = VALID_BODY + "".join(f"{data_id}99{'x' * 99}" for data_id in range(80, 85))
    with pytest.raises(QrMalformed, match="512"):
        decode_emvco(with_crc(body))


@pytest.mark.parametrize(("replacement", "error"), [
    (("010211", "010213"), QrInvalidField),           # Point of initiation 11 or 12 only.
    (("5204581453", "520458A453"), QrInvalidField),   # MCC digits only.
    (("5802PT", "5802P1"), QrInvalidField),           # Country letters only.
    (("5303978", "5303EUR"), QrInvalidField),         # Currency numeric.
])
def test_a_field_that_breaks_its_format_is_refused(replacement, error):
    with pytest.raises(error) as raised:
        decode_emvco(with_crc(VALID_BODY.replace(*replacement)))
    assert raised.value.code == "qr_invalid_field"


@pytest.mark.parametrize("amount", ["10,50", "-1.00", "0.00", "1e3", ".50", "10.", "１０"])
def test_an_amount_that_is_not_a_positive_decimal_string_is_refused(amount):
    body = VALID_BODY.replace("5802PT", f"54{len(amount):02d}{amount}5802PT")
    with pytest.raises(QrInvalidAmount) as raised:
        decode_emvco(with_crc(body))
    assert raised.value.code == "qr_invalid_amount"


def test_an_amount_longer_than_13_characters_is_refused():
    body = VALID_BODY.replace("5802PT", "54141234567890.1235802PT")
    with pytest.raises(QrInvalidAmount, match="13 characters"):
        decode_emvco(with_crc(body))


@pytest.mark.parametrize("fields", ["550202", "550203", "55020156041.00", "550204"])
def test_tip_and_convenience_fee_fields_must_agree(fields):
    body = VALID_BODY.replace("5802PT", fields + "5802PT")
    with pytest.raises(QrInvalidField):
        decode_emvco(with_crc(body))


def test_a_fixed_convenience_fee_is_read():
    decoded = decode_emvco(with_crc(VALID_BODY.replace("5802PT", "550202" "56041.505802PT")))
    assert (decoded.tip_indicator, decoded.convenience_fee_fixed) == ("02", "1.50")


def test_another_payment_systems_template_in_62_is_kept_raw():
    # Pix puts its BR Code version in 62, subfield 50 (GUI BR.GOV.BCB.BRCODE).
    template = "50300017BR.GOV.BCB.BRCODE01051.0.0"
    body = VALID_BODY + f"62{len(template) + 7:02d}0503abc" + template
    decoded = decode_emvco(with_crc(body))

    assert decoded.additional_data.reference_label == "abc"
    assert decoded.additional_data.other == {"50": "0017BR.GOV.BCB.BRCODE01051.0.0"}
    assert decoded.expires_at is None


def test_a_pacioli_expiry_that_is_not_a_time_is_refused():
    template = "0013io.pacioli.qr" + "011420261399000000"
    body = VALID_BODY + f"62{len(template) + 4:02d}50{len(template):02d}" + template
    with pytest.raises(QrInvalidField, match="expiry"):
        decode_emvco(with_crc(body))


def test_amounts_convert_to_minor_units_at_a_scale_without_floats():
    assert amount_to_minor("10.50", 2) == 1050
    assert amount_to_minor("10.5", 2) == 1050
    assert amount_to_minor("1500", 0) == 1500
    assert amount_to_minor("0.01", 2) == 1
    assert amount_to_minor("9999999999.99", 2) == 999_999_999_999


def test_an_amount_with_more_decimals_than_the_scale_is_refused():
    with pytest.raises(QrInvalidAmount, match="decimal places"):
        amount_to_minor("10.505", 2)
    with pytest.raises(QrInvalidAmount):
        amount_to_minor("1500.5", 0)


@pytest.mark.parametrize(("numeric", "alpha"), [
    ("840", "USD"), ("978", "EUR"), ("356", "INR"), ("156", "CNY"), ("392", "JPY"),
    ("986", "BRL"), ("826", "GBP"), ("702", "SGD"),
])
def test_iso_4217_numeric_codes_map_to_alpha_codes_and_back(numeric, alpha):
    assert currency_by_numeric(numeric).alpha == alpha
    assert currency_numeric(alpha) == numeric
    assert currency_numeric(alpha.lower()) == numeric


def test_jpy_has_no_minor_unit():
    assert currency_by_numeric("392").exponent == 0


def test_an_unknown_numeric_currency_decodes_without_an_alpha_code():
    decoded = decode_emvco(with_crc(VALID_BODY.replace("5303978", "5303999")))
    assert (decoded.currency_numeric, decoded.currency) == ("999", None)


def test_an_unknown_alpha_currency_is_unsupported_and_a_malformed_one_invalid():
    with pytest.raises(QrUnsupported):
        currency_numeric("XYZ")
    with pytest.raises(QrInvalidField):
        currency_numeric("EURO")


def make(**overrides) -> EmvcoPayload:
    """A dynamic merchant QR with every Pacioli field, with `overrides` applied."""
    fields = dict(
        merchant_name="Cafe Lisboa", merchant_city="Lisbon", country_code="PT",
        merchant_category_code="5814", currency="EUR", gui="io.pacioli",
        merchant_account_id="mer_123", amount="10.50", reference="qr_42",
        expires_at=datetime(2026, 11, 24, 19, 0, tzinfo=UTC),
    )
    return merchant_qr(**{**fields, **overrides})


def test_a_merchant_qr_without_amount_is_static():
    payload = encode_emvco(make(amount=None, expires_at=None, reference=None))
    decoded = decode_emvco(payload)

    assert payload.startswith("000201010211")
    assert "54" not in dict(qr.parse_tlv(payload))
    assert decoded.is_dynamic is False
    assert decoded.amount is None
    assert decoded.additional_data is None


def test_a_merchant_qr_with_amount_is_dynamic_with_reference_and_expiry():
    payload = encode_emvco(make())
    decoded = decode_emvco(payload)

    assert payload.startswith("000201010212")
    assert decoded.is_dynamic is True
    assert decoded.amount == "10.50"
    assert decoded.amount_minor(2) == 1050
    assert decoded.currency == "EUR"
    assert decoded.reference == "qr_42"
    assert decoded.expires_at == datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
    assert decoded.merchant_accounts == (
        MerchantAccount(id="26", fields={"00": "io.pacioli", "01": "mer_123"}),)


def test_the_expiry_travels_in_pacioli_template_50_of_field_62():
    additional = dict(qr.parse_tlv(dict(qr.parse_tlv(encode_emvco(make())))["62"]))

    assert additional["05"] == "qr_42"
    assert dict(qr.parse_tlv(additional["50"])) == {"00": qr.PACIOLI_GUI,
                                                    "01": "20261124190000"}


def test_an_expiry_in_another_zone_is_written_in_utc_and_fractions_dropped():
    lisbon_summer = timezone(timedelta(hours=1))
    decoded = decode_emvco(encode_emvco(make(
        expires_at=datetime(2026, 7, 1, 12, 0, 30, 999_000, tzinfo=lisbon_summer))))

    assert decoded.expires_at == datetime(2026, 7, 1, 11, 0, 30, tzinfo=UTC)


def test_is_expired_compares_the_expiry_with_a_given_time():
    decoded = decode_emvco(encode_emvco(make()))
    deadline = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)

    assert decoded.is_expired(deadline - timedelta(seconds=1)) is False
    assert decoded.is_expired(deadline) is True
    assert decode_emvco(PIX_MANUAL_EXAMPLE).is_expired(deadline) is False


def test_a_static_qr_cannot_expire():
    with pytest.raises(QrInvalidField, match="static"):
        make(amount=None)


def test_a_naive_expiry_is_refused():
    with pytest.raises(QrInvalidField, match="timezone-aware"):
        make(expires_at=datetime(2026, 11, 24, 19, 0))


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"merchant_name": "N" * 26}, "merchant_name must be at most 25"),
    ({"merchant_city": "C" * 16}, "merchant_city must be at most 15"),
    ({"reference": "R" * 26}, "reference_label must be at most 25"),
    ({"merchant_category_code": "58A4"}, "merchant category code"),
    ({"country_code": "PRT"}, "country"),
    ({"merchant_account_id": "x" * 90}, "1..99 characters"),
])
def test_encoding_enforces_emvco_formats_and_maximum_lengths(overrides, problem):
    with pytest.raises(QrInvalidField, match=problem):
        encode_emvco(make(**overrides))


def test_encoding_refuses_a_zero_amount():
    with pytest.raises(QrInvalidAmount):
        make(amount="0.00")


def test_encoding_refuses_a_template_account_without_a_gui_and_a_primitive_one_with_fields():
    base = make()
    for account in (MerchantAccount(id="26", fields={"01": "x"}),
                    MerchantAccount(id="04", fields={"00": "x"}),
                    MerchantAccount(id="52", value="x")):
        with pytest.raises(QrInvalidField):
            encode_emvco(replace(base, merchant_accounts=(account,)))


def test_a_card_network_account_is_a_primitive_field():
    base = make()
    payload = encode_emvco(replace(base, merchant_accounts=(
        MerchantAccount(id="04", value="5555666677778888"), *base.merchant_accounts)))
    decoded = decode_emvco(payload)
    assert decoded.merchant_accounts[0] == MerchantAccount(id="04", value="5555666677778888")


def test_fields_65_to_99_and_the_language_template_round_trip():
    base = make()
    payload = replace(
        base,
        language=MerchantLanguage(language_preference="PT", merchant_name="Café Lisboa",
                                  merchant_city="Lisboa"),
        other={"80": "0010io.example0103abc"},
    )
    decoded = decode_emvco(encode_emvco(payload))

    assert decoded.language == payload.language
    assert decoded.other == payload.other


def test_to_dict_is_json_with_crc_valid_and_the_amount_as_a_string():
    shown = json.loads(json.dumps(decode_emvco(encode_emvco(make())).to_dict()))

    assert shown["format"] == "emvco"
    assert shown["crc_valid"] is True
    assert shown["amount"] == "10.50"
    assert shown["currency"] == "EUR"
    assert shown["point_of_initiation"] == "dynamic"
    assert shown["expires_at"] == "2026-11-24T19:00:00+00:00"
    assert shown["reference"] == "qr_42"


def test_decode_any_reads_emvco_and_upi_and_refuses_anything_else():
    assert isinstance(qr.decode_any(PIX_MANUAL_EXAMPLE + "\n"), EmvcoPayload)
    assert isinstance(qr.decode_any("upi://pay?pa=shop@okbank"), qr.UpiPayment)
    with pytest.raises(QrUnsupported):
        qr.decode_any("https://example.com/pay")
    with pytest.raises(QrCrcMismatch):
        qr.decode_any(PIX_MANUAL_EXAMPLE[:-1] + "E")


def test_every_qr_error_has_a_stable_code_and_a_one_line_docstring():
    classes = [qr.QrError, QrMalformed, QrCrcMismatch, QrUnsupported, QrInvalidField,
               QrInvalidAmount]
    codes = {error.code for error in classes}

    assert codes == {"qr_invalid", "qr_malformed", "qr_crc_mismatch", "qr_unsupported",
                     "qr_invalid_field", "qr_invalid_amount"}
    for error in classes:
        assert issubclass(error, QrError)
        assert error.__doc__ and "\n" not in error.__doc__.strip()
