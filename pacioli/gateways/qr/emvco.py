"""EMVCo merchant-presented mode (MPM) QR payloads: decode, validate and encode.

A payload is a string of ID-length-value data objects (see `tlv.py`). It opens with
"000201" (payload format indicator 01) and closes with field 63, the CRC-16/CCITT-FALSE
of everything before it including "6304". Fields read here:

  00 payload format indicator    52 merchant category code (4 digits)
  01 point of initiation 11/12   53 transaction currency (ISO 4217 numeric)
  02-25 card network merchant id 54 amount ("10.50")
  26-51 merchant account         55 tip or convenience indicator (01, 02, 03)
        templates (00 = GUI)     56 / 57 convenience fee, fixed / percentage
  62 additional data template    58 country, 59 merchant name, 60 city, 61 postal code
  64 language template           63 CRC; 65-99 kept raw

Decoding checks structure and formats but is lenient with EMVCo's maximum lengths of
names and labels, which payloads in the wild exceed; encoding enforces them.

Pacioli's expiry travels in template 62 as a payment-system-specific template
(subfield 50): {00: PACIOLI_GUI, 01: expiry as UTC "YYYYMMDDhhmmss"}.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pacioli.gateways.qr.amounts import check_amount, currency_numeric
from pacioli.gateways.qr.crc import crc_hex
from pacioli.gateways.qr.errors import QrCrcMismatch, QrInvalidField, QrMalformed, QrUnsupported
from pacioli.gateways.qr.model import (
    ADDITIONAL_DATA_IDS,
    AdditionalData,
    EmvcoPayload,
    MerchantAccount,
    MerchantLanguage,
    PointOfInitiation,
)
from pacioli.gateways.qr.tlv import build_tlv, parse_tlv

PAYLOAD_LENGTH_MAX = 512  # EMVCo MPM: a payload holds at most 512 characters.
HEADER = "000201"
CRC_TAG = "6304"
PACIOLI_GUI = "io.pacioli.qr"
PACIOLI_TEMPLATE_ID = "50"
PACIOLI_EXPIRES_AT_ID = "01"
EXPIRES_AT_FORMAT = "%Y%m%d%H%M%S"

# Top-level fields that are plain strings, and the attribute each fills.
_PLAIN_FIELDS = {
    "52": "merchant_category_code",
    "53": "currency_numeric",
    "54": "amount",
    "55": "tip_indicator",
    "56": "convenience_fee_fixed",
    "57": "convenience_fee_percentage",
    "58": "country_code",
    "59": "merchant_name",
    "60": "merchant_city",
    "61": "postal_code",
}
_MANDATORY = ("52", "53", "58", "59", "60")
# EMVCo's maximum lengths, enforced when Pacioli makes a payload.
_LENGTH_MAX = {"merchant_name": 25, "merchant_city": 15, "postal_code": 10}
_ADDITIONAL_LENGTH_MAX = 25


def decode_emvco(payload: str, *, verify_crc: bool = True) -> EmvcoPayload:
    """Parse and validate an EMVCo MPM payload.

    With `verify_crc` (the default) a payload whose CRC does not match raises; without it
    the fields are returned with `crc_valid=False`, for display (`pacioli qr decode`).
    Never pay from a payload whose `crc_valid` is not True.
    Raises: QrUnsupported (not an EMVCo MPM payload), QrMalformed, QrCrcMismatch,
    QrInvalidField (a field's value breaks its format).
    """
    _check_frame(payload)
    crc = payload[-4:].upper()
    crc_valid = crc_hex(payload[:-4]) == crc
    if verify_crc and not crc_valid:
        raise QrCrcMismatch(f"CRC {payload[-4:]} does not match the payload"
                            f" (computed {crc_hex(payload[:-4])})")
    pairs = parse_tlv(payload)
    if pairs[-1][0] != "63" or len(pairs[-1][1]) != 4:
        raise QrMalformed("the payload must end with field 63, the 4-digit CRC")
    return _payload_from_pairs(pairs[:-1], crc=crc, crc_valid=crc_valid)


def _check_frame(payload: str) -> None:
    """Refuse what is not framed as an MPM payload before reading any field."""
    if not isinstance(payload, str) or not payload.startswith(HEADER):
        raise QrUnsupported("an EMVCo merchant-presented payload starts with 000201")
    if len(payload) > PAYLOAD_LENGTH_MAX:
        raise QrMalformed(f"the payload has {len(payload)} characters;"
                          f" EMVCo allows {PAYLOAD_LENGTH_MAX}")
    trailer = payload[-8:]
    if (len(payload) < len(HEADER) + 8 or not trailer.startswith(CRC_TAG)
            or not _is_hex(trailer[4:])):
        raise QrMalformed("the payload must end with 6304 and four hex digits (the CRC)")


def _is_hex(text: str) -> bool:
    return len(text) == 4 and all(char in "0123456789abcdefABCDEF" for char in text)


def _payload_from_pairs(pairs: list[tuple[str, str]], *, crc: str,
                        crc_valid: bool) -> EmvcoPayload:
    """Build the payload's fields from its top-level (id, value) pairs, CRC excluded."""
    plain: dict[str, str] = {}
    accounts: list[MerchantAccount] = []
    other: dict[str, str] = {}
    point = additional = language = None
    # The frame guarantees pairs[0] is ("00", "01"), and parse_tlv that no id repeats, so
    # field 63 (already split off) cannot appear here and ids 65-99 are all that is left.
    for data_id, value in pairs[1:]:
        number = int(data_id)
        if data_id == "01":
            point = _point_of_initiation(value)
        elif 2 <= number <= 51:
            accounts.append(_decode_account(data_id, value))
        elif data_id in _PLAIN_FIELDS:
            plain[_PLAIN_FIELDS[data_id]] = value
        elif data_id == "62":
            additional = _decode_additional(value)
        elif data_id == "64":
            language = _decode_language(value)
        else:
            other[data_id] = value
    missing = [data_id for data_id in _MANDATORY if _PLAIN_FIELDS[data_id] not in plain]
    if missing or not accounts:
        raise QrMalformed("mandatory fields missing: "
                          + ", ".join(missing + ([] if accounts else ["02-51"])))
    decoded = EmvcoPayload(
        **plain, merchant_accounts=tuple(accounts), point_of_initiation=point,
        additional_data=additional, language=language, other=other, crc=crc,
        crc_valid=crc_valid,
    )
    _check_fields(decoded)
    return decoded


def _point_of_initiation(value: str) -> PointOfInitiation:
    try:
        return PointOfInitiation(value)
    except ValueError:
        raise QrInvalidField(f"point of initiation (field 01) must be 11 or 12,"
                             f" not {value!r}") from None


def _decode_account(data_id: str, value: str) -> MerchantAccount:
    if int(data_id) <= 25:
        return MerchantAccount(id=data_id, value=value)
    return MerchantAccount(id=data_id, fields=dict(parse_tlv(value, where=f"template {data_id}")))


def _decode_additional(value: str) -> AdditionalData:
    """Template 62: named subfields, Pacioli's expiry template, and the rest kept raw."""
    named: dict[str, str] = {}
    other: dict[str, str] = {}
    expires_at = None
    for data_id, subvalue in parse_tlv(value, where="template 62"):
        if data_id in ADDITIONAL_DATA_IDS:
            named[ADDITIONAL_DATA_IDS[data_id]] = subvalue
            continue
        pacioli = _pacioli_template(data_id, subvalue)
        if pacioli is not None and expires_at is None:
            expires_at = _parse_expires_at(pacioli.get(PACIOLI_EXPIRES_AT_ID))
        else:
            other[data_id] = subvalue
    return AdditionalData(**named, expires_at=expires_at, other=other)


def _pacioli_template(data_id: str, value: str) -> dict[str, str] | None:
    """The subfields of a 62 subfield that is Pacioli's template (50-99, GUI ours), else None."""
    if not 50 <= int(data_id) <= 99:
        return None
    try:
        fields = dict(parse_tlv(value, where=f"template 62, subfield {data_id}"))
    except QrMalformed:
        return None  # Another payment system's data, not ours to judge.
    return fields if fields.get("00") == PACIOLI_GUI else None


def _parse_expires_at(value: str | None) -> datetime:
    try:
        if value is None or len(value) != 14 or not _digits(value):
            raise ValueError(value)
        return datetime.strptime(value, EXPIRES_AT_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise QrInvalidField(f"Pacioli expiry {value!r} is not a UTC YYYYMMDDhhmmss"
                             " time") from None


def _decode_language(value: str) -> MerchantLanguage:
    fields = dict(parse_tlv(value, where="template 64"))
    if "00" not in fields or "01" not in fields:
        raise QrMalformed("template 64 needs a language preference (00) and a name (01)")
    language = MerchantLanguage(
        language_preference=fields.pop("00"), merchant_name=fields.pop("01"),
        merchant_city=fields.pop("02", None), other=fields,
    )
    return language


def _check_fields(payload: EmvcoPayload, *, lengths: bool = False) -> None:
    """Check every field's format; with `lengths`, EMVCo's maximum lengths too.

    Raises: QrInvalidField, QrInvalidAmount.
    """
    _require(len(payload.merchant_category_code) == 4 and _digits(payload.merchant_category_code),
             "merchant category code (field 52) must be 4 digits")
    _require(len(payload.currency_numeric) == 3 and _digits(payload.currency_numeric),
             "currency (field 53) must be an ISO 4217 numeric code of 3 digits")
    _require(len(payload.country_code) == 2 and payload.country_code.isascii()
             and payload.country_code.isalpha(),
             "country (field 58) must be an ISO 3166 two-letter code")
    if payload.amount is not None:
        check_amount(payload.amount, where="amount (field 54)")
    _check_tip(payload)
    _require(payload.payload_format_indicator == "01", "payload format indicator must be 01")
    if payload.language is not None:
        _require(len(payload.language.language_preference) == 2,
                 "language preference (template 64, subfield 00) must be 2 letters")
    if lengths:
        for name, length_max in _LENGTH_MAX.items():
            value = getattr(payload, name)
            _require(value is None or len(value) <= length_max,
                     f"{name} must be at most {length_max} characters")
        for name in ADDITIONAL_DATA_IDS.values():
            value = getattr(payload.additional_data, name, None)
            _require(value is None or len(value) <= _ADDITIONAL_LENGTH_MAX,
                     f"{name} must be at most {_ADDITIONAL_LENGTH_MAX} characters")


def _check_tip(payload: EmvcoPayload) -> None:
    """Field 55 says which of 56 (fixed fee) or 57 (percentage) must follow; no other."""
    indicator = payload.tip_indicator
    _require(indicator in (None, "01", "02", "03"),
             "tip or convenience indicator (field 55) must be 01, 02 or 03")
    _require((payload.convenience_fee_fixed is not None) == (indicator == "02"),
             "a fixed convenience fee (field 56) goes with, and only with, indicator 02")
    _require((payload.convenience_fee_percentage is not None) == (indicator == "03"),
             "a percentage convenience fee (field 57) goes with, and only with, indicator 03")
    if payload.convenience_fee_fixed is not None:
        check_amount(payload.convenience_fee_fixed, where="convenience fee (field 56)")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise QrInvalidField(message)


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def encode_emvco(payload: EmvcoPayload) -> str:
    """Make the payload string of `payload`, CRC included; `crc` and `crc_valid` are ignored.

    Fields are written in ascending id order (00 first, 63 last), so decoding the result
    and encoding again gives the same string.
    Raises: QrInvalidField, QrInvalidAmount, QrMalformed (more than 512 characters).
    """
    _check_fields(payload, lengths=True)
    pairs = [("00", payload.payload_format_indicator)]
    if payload.point_of_initiation is not None:
        pairs.append(("01", payload.point_of_initiation.value))
    pairs += _encode_accounts(payload.merchant_accounts)
    for data_id, name in _PLAIN_FIELDS.items():
        if getattr(payload, name) is not None:
            pairs.append((data_id, getattr(payload, name)))
    if payload.additional_data is not None:
        pairs.append(("62", _encode_additional(payload.additional_data)))
    if payload.language is not None:
        pairs.append(("64", _encode_language(payload.language)))
    for data_id, value in payload.other.items():
        _require(_digits(data_id) and 65 <= int(data_id) <= 99,
                 f"field {data_id!r} in `other` must be an id from 65 to 99")
        pairs.append((data_id, value))
    pairs.sort(key=lambda pair: pair[0])
    body = build_tlv(pairs) + CRC_TAG
    encoded = body + crc_hex(body)
    if len(encoded) > PAYLOAD_LENGTH_MAX:
        raise QrMalformed(f"the payload would have {len(encoded)} characters;"
                          f" EMVCo allows {PAYLOAD_LENGTH_MAX}")
    return encoded


def _encode_accounts(accounts: tuple[MerchantAccount, ...]) -> list[tuple[str, str]]:
    _require(bool(accounts), "at least one merchant account (fields 02-51) is required")
    pairs = []
    for account in accounts:
        _require(_digits(account.id) and 2 <= int(account.id) <= 51,
                 f"merchant account id {account.id!r} must be from 02 to 51")
        if int(account.id) <= 25:
            _require(account.value is not None and not account.fields,
                     f"merchant account {account.id} is primitive: a value, no subfields")
            pairs.append((account.id, account.value or ""))
        else:
            _require(account.value is None and bool(account.gui),
                     f"merchant account {account.id} is a template: subfield 00 (GUI) needed")
            subfields = sorted(account.fields.items())
            pairs.append((account.id, build_tlv(subfields, where=f"template {account.id}")))
    _require(len({pair[0] for pair in pairs}) == len(pairs), "merchant account ids repeat")
    return pairs


def _encode_additional(additional: AdditionalData) -> str:
    pairs = [(data_id, getattr(additional, name)) for data_id, name in ADDITIONAL_DATA_IDS.items()
             if getattr(additional, name) is not None]
    for data_id, value in additional.other.items():
        _require(data_id not in ADDITIONAL_DATA_IDS,
                 f"template 62 subfield {data_id} has a named attribute; set that instead")
        pairs.append((data_id, value))
    if additional.expires_at is not None:
        _require(PACIOLI_TEMPLATE_ID not in additional.other,
                 f"template 62 subfield {PACIOLI_TEMPLATE_ID} is taken by the expiry")
        pairs.append((PACIOLI_TEMPLATE_ID, build_tlv([
            ("00", PACIOLI_GUI),
            (PACIOLI_EXPIRES_AT_ID, format_expires_at(additional.expires_at)),
        ])))
    _require(bool(pairs), "template 62 needs at least one subfield")
    return build_tlv(sorted(pairs), where="template 62")


def format_expires_at(expires_at: datetime) -> str:
    """An expiry as Pacioli's 62 subfield carries it: UTC "YYYYMMDDhhmmss".

    Fractions of a second are dropped, which moves the expiry earlier, never later.
    Raises: QrInvalidField (a naive datetime, whose zone nobody knows).
    """
    _require(expires_at.tzinfo is not None and expires_at.utcoffset() is not None,
             "expires_at must be timezone-aware")
    text = expires_at.astimezone(UTC).strftime(EXPIRES_AT_FORMAT)
    _require(len(text) == 14, "expires_at must be a year from 1000 to 9999")
    return text


def _encode_language(language: MerchantLanguage) -> str:
    pairs = [("00", language.language_preference), ("01", language.merchant_name)]
    if language.merchant_city is not None:
        pairs.append(("02", language.merchant_city))
    for data_id, value in language.other.items():
        _require(data_id not in ("00", "01", "02"),
                 f"template 64 subfield {data_id} has a named attribute; set that instead")
        pairs.append((data_id, value))
    return build_tlv(sorted(pairs), where="template 64")


def merchant_qr(
    *,
    merchant_name: str,
    merchant_city: str,
    country_code: str,
    merchant_category_code: str,
    currency: str,
    gui: str,
    merchant_account_id: str | None = None,
    amount: str | None = None,
    reference: str | None = None,
    expires_at: datetime | None = None,
    postal_code: str | None = None,
    account_template_id: str = "26",
) -> EmvcoPayload:
    """The fields of a merchant's QR as Pacioli makes them; pass the result to `encode_emvco`.

    Without `amount` the QR is static (01=11): printed once, the payer enters the amount.
    With `amount` it is dynamic (01=12): one payment of that amount, named by `reference`
    (62, subfield 05) and, if given, payable until `expires_at` (Pacioli's 62 template).
    The merchant account is template `account_template_id` with `gui` in subfield 00 and
    `merchant_account_id` in subfield 01 (for Pix: "br.gov.bcb.pix" and the Pix key).
    `currency` is an ISO 4217 alpha or numeric code.
    Raises: QrInvalidField (an expiry on a static QR, a bad field), QrUnsupported
    (an unknown alpha currency code), QrInvalidAmount.
    """
    dynamic = amount is not None
    _require(dynamic or expires_at is None,
             "an expiry needs an amount: a static QR (no amount) is used many times")
    if expires_at is not None:
        format_expires_at(expires_at)  # Refuse a naive datetime here, not at encoding.
    subfields = {} if merchant_account_id is None else {"01": merchant_account_id}
    has_additional = reference is not None or expires_at is not None
    return EmvcoPayload(
        merchant_name=merchant_name,
        merchant_city=merchant_city,
        country_code=country_code.upper(),
        merchant_category_code=merchant_category_code,
        currency_numeric=currency_numeric(currency),
        merchant_accounts=(MerchantAccount.template(account_template_id, gui, **subfields),),
        point_of_initiation=PointOfInitiation.DYNAMIC if dynamic else PointOfInitiation.STATIC,
        amount=None if amount is None else check_amount(amount),
        postal_code=postal_code,
        additional_data=(AdditionalData(reference_label=reference, expires_at=expires_at)
                         if has_additional else None),
    )
