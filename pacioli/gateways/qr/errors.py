"""The QR codec's errors: plain exceptions with a stable snake_case `code`.

They live in `gateways/` and are not ledger `DomainError`s: the codec knows nothing of
the ledger. A payments flow that decodes a QR catches `QrError` and turns it into its
own rejection (keeping `code`), so the API can answer with a problem document.
"""

from __future__ import annotations


class QrError(Exception):
    """A QR payload or UPI link that Pacioli cannot trust or cannot make."""

    code = "qr_invalid"


class QrMalformed(QrError):
    """The payload's structure is broken: framing, ID-length-value, duplicates, missing fields."""

    code = "qr_malformed"


class QrCrcMismatch(QrError):
    """The payload's CRC (field 63) does not match its content: it was altered or mistyped."""

    code = "qr_crc_mismatch"


class QrUnsupported(QrError):
    """The text is not a payload this codec reads (not EMVCo MPM, not a UPI pay link)."""

    code = "qr_unsupported"


class QrInvalidField(QrError):
    """A field's value breaks its format: an MCC that is not four digits, a name too long …"""

    code = "qr_invalid_field"


class QrInvalidAmount(QrInvalidField):
    """An amount that is not a positive decimal string or has more decimals than allowed."""

    code = "qr_invalid_amount"
