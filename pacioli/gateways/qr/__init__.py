"""QR payment payloads: EMVCo merchant-presented codes and UPI pay links, plus their images.

Pure functions, no I/O; the payments layer builds QR payment flows on top. In short:

    payload = encode_emvco(merchant_qr(merchant_name="Cafe Lisboa", merchant_city="Lisbon",
                                       country_code="PT", merchant_category_code="5814",
                                       currency="EUR", gui="io.pacioli",
                                       merchant_account_id="mer_123", amount="10.50",
                                       reference="qr_42", expires_at=deadline))
    scanned = decode_any(text)          # EmvcoPayload or UpiPayment; raises QrError
    scanned.amount_minor(2)             # 1050, or None when the payer enters the amount
    render_png(payload), render_svg(payload)

Every failure is a `QrError` with a stable `code` (qr_malformed, qr_crc_mismatch,
qr_unsupported, qr_invalid_field, qr_invalid_amount). See docs/qr.md.
"""

from __future__ import annotations

from pacioli.gateways.qr.amounts import (
    CURRENCIES,
    Currency,
    amount_to_minor,
    currency_by_numeric,
    currency_numeric,
)
from pacioli.gateways.qr.crc import crc16_ccitt_false, crc_hex
from pacioli.gateways.qr.emvco import PACIOLI_GUI, decode_emvco, encode_emvco, merchant_qr
from pacioli.gateways.qr.errors import (
    QrCrcMismatch,
    QrError,
    QrInvalidAmount,
    QrInvalidField,
    QrMalformed,
    QrUnsupported,
)
from pacioli.gateways.qr.model import (
    AdditionalData,
    EmvcoPayload,
    MerchantAccount,
    MerchantLanguage,
    PointOfInitiation,
)
from pacioli.gateways.qr.render import render_png, render_svg
from pacioli.gateways.qr.tlv import build_tlv, parse_tlv
from pacioli.gateways.qr.upi import UpiPayment, decode_upi, encode_upi

__all__ = [
    "CURRENCIES",
    "PACIOLI_GUI",
    "AdditionalData",
    "Currency",
    "EmvcoPayload",
    "MerchantAccount",
    "MerchantLanguage",
    "PointOfInitiation",
    "QrCrcMismatch",
    "QrError",
    "QrInvalidAmount",
    "QrInvalidField",
    "QrMalformed",
    "QrUnsupported",
    "UpiPayment",
    "amount_to_minor",
    "build_tlv",
    "crc16_ccitt_false",
    "crc_hex",
    "currency_by_numeric",
    "currency_numeric",
    "decode_any",
    "decode_emvco",
    "decode_upi",
    "encode_emvco",
    "encode_upi",
    "merchant_qr",
    "parse_tlv",
    "render_png",
    "render_svg",
]


def decode_any(text: str, *, verify_crc: bool = True) -> EmvcoPayload | UpiPayment:
    """Decode what a payer's camera read: an EMVCo payload ("000201…") or a UPI link.

    Surrounding whitespace (a trailing newline from a scanner) is ignored; nothing inside
    the payload is changed. `verify_crc` is passed to `decode_emvco`.
    Raises: QrUnsupported (neither kind), and whatever the chosen decoder raises.
    """
    if not isinstance(text, str):
        raise QrUnsupported("a QR payload is text")
    stripped = text.strip()
    if stripped[:4].lower() == "upi:":
        return decode_upi(stripped)
    if stripped.startswith("000201"):
        return decode_emvco(stripped, verify_crc=verify_crc)
    raise QrUnsupported("not an EMVCo merchant-presented payload (000201…)"
                        " nor a UPI link (upi://pay?…)")
