"""Properties of the QR codec: round trips of generated payloads and links, CRC detection.

Generated EMVCo payloads use every field the codec knows (merchant accounts, tips and
fees, templates 62 and 64 with Unicode text, fields 65-99, Pacioli's expiry), so a
field that is lost or changed between encoding and decoding shows up here.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pacioli.gateways.qr import (
    AdditionalData,
    EmvcoPayload,
    MerchantAccount,
    MerchantLanguage,
    PointOfInitiation,
    QrCrcMismatch,
    QrError,
    QrInvalidField,
    QrMalformed,
    UpiPayment,
    build_tlv,
    crc_hex,
    decode_any,
    decode_emvco,
    decode_upi,
    encode_emvco,
    encode_upi,
    parse_tlv,
)

ASCII_PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


def ans(min_size: int = 1, max_size: int = 25) -> st.SearchStrategy[str]:
    """EMVCo's "alphanumeric special" values: printable ASCII."""
    return st.text(ASCII_PRINTABLE, min_size=min_size, max_size=max_size)


def digits(size: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=size, max_size=size)


def ids(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda number: f"{number:02d}")


amounts = st.from_regex(r"[0-9]{1,10}(\.[0-9]{1,2})?", fullmatch=True).filter(
    lambda text: text.replace(".", "").strip("0") != "")


@st.composite
def merchant_accounts(draw) -> tuple[MerchantAccount, ...]:
    """One to three accounts with distinct ids, in ascending order as the encoder writes."""
    chosen = draw(st.lists(st.integers(2, 51), min_size=1, max_size=3, unique=True))
    accounts = []
    for number in sorted(chosen):
        if number <= 25:
            accounts.append(MerchantAccount(id=f"{number:02d}", value=draw(ans(1, 20))))
        else:
            subfields = draw(st.dictionaries(ids(1, 99), ans(1, 15), max_size=2))
            accounts.append(MerchantAccount(id=f"{number:02d}",
                                            fields={"00": draw(ans(1, 20)), **subfields}))
    return tuple(accounts)


@st.composite
def tips(draw) -> dict[str, str | None]:
    indicator = draw(st.sampled_from([None, "01", "02", "03"]))
    return {
        "tip_indicator": indicator,
        "convenience_fee_fixed": draw(amounts) if indicator == "02" else None,
        "convenience_fee_percentage": draw(digits(1).map(lambda d: f"{d}.5"))
        if indicator == "03" else None,
    }


expiries = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),
                        timezones=st.just(UTC)).map(lambda moment: moment.replace(microsecond=0))


@st.composite
def additional_data(draw) -> AdditionalData | None:
    named = draw(st.fixed_dictionaries({}, optional={
        name: ans(1, 25) for name in ("bill_number", "store_label", "reference_label",
                                      "terminal_label", "purpose_of_transaction")
    }))
    expires_at = draw(st.none() | expiries)
    # RFU subfields 10-49 only: 50-99 would be payment-system templates such as Pacioli's.
    other = draw(st.dictionaries(ids(10, 49), ans(1, 10), max_size=2))
    if not named and expires_at is None and not other:
        return None
    return AdditionalData(**named, expires_at=expires_at, other=other)


languages = st.none() | st.builds(
    MerchantLanguage,
    language_preference=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2),
    merchant_name=st.text(min_size=1, max_size=20),
    merchant_city=st.none() | st.text(min_size=1, max_size=15),
    other=st.dictionaries(ids(3, 99), st.text(min_size=1, max_size=10), max_size=1),
)


@st.composite
def payloads(draw) -> EmvcoPayload:
    return EmvcoPayload(
        merchant_name=draw(ans(1, 25)),
        merchant_city=draw(ans(1, 15)),
        country_code=draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2)),
        merchant_category_code=draw(digits(4)),
        currency_numeric=draw(digits(3)),
        merchant_accounts=draw(merchant_accounts()),
        point_of_initiation=draw(st.none() | st.sampled_from(PointOfInitiation)),
        amount=draw(st.none() | amounts),
        **draw(tips()),
        postal_code=draw(st.none() | ans(1, 10)),
        additional_data=draw(additional_data()),
        language=draw(languages),
        other=draw(st.dictionaries(ids(65, 99), ans(1, 30), max_size=2)),
    )


def encode_or_skip(payload: EmvcoPayload) -> str:
    """Encode, skipping a generated payload too big for EMVCo.

    That is one over 512 characters, or with a template (26-51, 62, 64) whose subfields
    add up to more than the 99 characters a value may hold; any other refusal fails.
    """
    try:
        return encode_emvco(payload)
    except QrMalformed as error:
        assume("512" not in str(error))
        raise
    except QrInvalidField as error:
        assume(not re.search(r"field \d\d must be 1\.\.99 characters long", str(error)))
        raise


@given(payload=payloads())
def test_encoding_then_decoding_gives_back_every_field(payload):
    encoded = encode_or_skip(payload)
    decoded = decode_emvco(encoded)

    assert decoded.crc_valid is True
    assert decoded.crc == encoded[-4:]
    assert replace(decoded, crc=None, crc_valid=None) == payload


@given(payload=payloads())
def test_decoding_then_encoding_gives_back_the_same_string(payload):
    encoded = encode_or_skip(payload)
    assert encode_emvco(decode_emvco(encoded)) == encoded


@given(payload=payloads(), data=st.data())
def test_any_changed_character_before_the_crc_is_detected(payload, data):
    encoded = encode_or_skip(payload)
    # Leave the 000201 header and the 6304 tag alone: changing those is a framing error,
    # tested elsewhere. Any one ASCII character changed for another is one byte changed,
    # which CRC-16 always detects.
    positions = [index for index in range(6, len(encoded) - 8) if encoded[index].isascii()]
    index = data.draw(st.sampled_from(positions))
    replacement = data.draw(ASCII_PRINTABLE.filter(lambda char: char != encoded[index]))
    tampered = encoded[:index] + replacement + encoded[index + 1:]

    with pytest.raises(QrCrcMismatch):
        decode_emvco(tampered)


@given(payload=payloads(), data=st.data())
def test_any_changed_crc_digit_is_detected(payload, data):
    encoded = encode_or_skip(payload)
    index = data.draw(st.integers(len(encoded) - 4, len(encoded) - 1))
    replacement = data.draw(st.sampled_from("0123456789ABCDEF").filter(
        lambda char: char != encoded[index].upper()))
    tampered = encoded[:index] + replacement + encoded[index + 1:]

    with pytest.raises(QrCrcMismatch):
        decode_emvco(tampered)
    assert decode_emvco(tampered, verify_crc=False).crc_valid is False


@given(pairs=st.dictionaries(ids(0, 99), st.text(min_size=1, max_size=99), max_size=8))
def test_random_tlv_parses_back_into_the_pairs_it_was_built_from(pairs):
    items = list(pairs.items())
    assert parse_tlv(build_tlv(items)) == items


@given(text=st.text(max_size=120))
def test_parsing_arbitrary_text_either_succeeds_or_raises_qr_malformed(text):
    try:
        pairs = parse_tlv(text)
    except QrMalformed:
        return
    assert build_tlv(pairs) == text


@given(text=st.text(max_size=200) | st.text(max_size=200).map(lambda t: "000201" + t))
def test_decoding_arbitrary_text_raises_only_qr_errors(text):
    with contextlib.suppress(QrError):
        decode_any(text)


@given(body=st.text(max_size=200))
def test_decoding_arbitrary_text_with_a_valid_crc_raises_only_qr_errors(body):
    framed = "000201" + body + "6304"
    with contextlib.suppress(QrError):
        decode_emvco(framed + crc_hex(framed))


vpas = st.from_regex(r"[a-z0-9][a-z0-9._-]{1,20}@[a-z][a-z0-9.-]{1,10}", fullmatch=True)
upi_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)


@given(payment=st.builds(
    UpiPayment,
    payee_address=vpas,
    payee_name=st.none() | upi_text,
    amount=st.none() | amounts,
    note=st.none() | upi_text,
    reference=st.none() | upi_text,
    merchant_category_code=st.none() | digits(4),
    other=st.dictionaries(st.sampled_from(["mam", "mode", "orgid", "sign"]), upi_text,
                          max_size=2),
))
def test_a_upi_link_decodes_back_to_the_payment_it_was_built_from(payment):
    assert decode_upi(encode_upi(payment)) == payment
