"""UPI payment links, `upi://pay?pa=...&pn=...&am=...&cu=INR&tn=...&tr=...` (NPCI's linking spec).

A UPI link names the payee by a virtual payment address (VPA, "merchant@bank") and may
fix an amount, a note and a reference. It carries no checksum, so trust rests on the
link being well formed; the payer's app shows the payee before paying. UPI moves only
Indian rupees, so `cu`, when present, must be INR.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from pacioli.gateways.qr.amounts import amount_to_minor, check_amount
from pacioli.gateways.qr.errors import (
    QrInvalidAmount,
    QrInvalidField,
    QrMalformed,
    QrUnsupported,
)

LINK_LENGTH_MAX = 2048
VALUE_LENGTH_MAX = 255
UPI_CURRENCY = "INR"
UPI_SCALE = 2
# A VPA is a handle, "@", and the payment service provider's name: "shop.42@okbank".
_VPA_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,255}@[A-Za-z][A-Za-z0-9.-]{1,63}")

# Query parameters and the attribute each fills.
_PARAMS = {
    "pa": "payee_address",
    "pn": "payee_name",
    "am": "amount",
    "cu": "currency",
    "tn": "note",
    "tr": "reference",
    "tid": "transaction_id",
    "mc": "merchant_category_code",
    "url": "url",
}


@dataclass(frozen=True)
class UpiPayment:
    """A UPI pay link's fields; `amount` is a decimal string in rupees ("10.50") or None.

    `reference` (tr) is the merchant's reference for the payment; `other` keeps any
    parameter this codec does not name (mam, mode, sign …), so a link decodes and
    encodes back whole.
    """

    payee_address: str
    payee_name: str | None = None
    amount: str | None = None
    currency: str = UPI_CURRENCY
    note: str | None = None
    reference: str | None = None
    transaction_id: str | None = None
    merchant_category_code: str | None = None
    url: str | None = None
    other: dict[str, str] = field(default_factory=dict)

    def amount_minor(self, scale: int = UPI_SCALE) -> int | None:
        """The amount in paise (int minor units), None when the payer enters the amount.

        Raises: QrInvalidAmount.
        """
        return None if self.amount is None else amount_to_minor(self.amount, scale)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `crc_valid` is None because a UPI link has no CRC."""
        shown: dict[str, Any] = {"format": "upi", "crc_valid": None}
        shown.update({name: getattr(self, name) for name in _PARAMS.values()})
        if self.other:
            shown["other"] = dict(self.other)
        return shown


def decode_upi(link: str) -> UpiPayment:
    """Parse and validate a `upi://pay?...` link.

    Raises: QrUnsupported (not a UPI pay link, or a currency other than INR),
    QrMalformed (a repeated parameter, no payee address),
    QrInvalidField (an empty or too long value, a VPA of the wrong shape), QrInvalidAmount.
    """
    if not isinstance(link, str) or len(link) > LINK_LENGTH_MAX:
        raise QrMalformed(f"a UPI link is a string of at most {LINK_LENGTH_MAX} characters")
    parts = urlsplit(link)
    if (parts.scheme.lower(), parts.netloc.lower(), parts.path) not in (("upi", "pay", ""),
                                                                         ("upi", "pay", "/")):
        raise QrUnsupported("a UPI payment link starts with upi://pay?")
    params: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in params:
            raise QrMalformed(f"UPI parameter {name!r} appears twice")
        params[name] = value
    if "pa" not in params:
        raise QrMalformed("a UPI link needs the payee address (pa)")
    named = {_PARAMS[name]: params.pop(name) for name in list(params) if name in _PARAMS}
    payment = UpiPayment(**named, other=params)
    _check(payment)
    return payment


def encode_upi(payment: UpiPayment) -> str:
    """Make the `upi://pay?...` link of `payment`, parameters in a fixed order.

    Raises: QrInvalidField, QrInvalidAmount, QrUnsupported (a currency other than INR).
    """
    _check(payment)
    pairs = [(name, getattr(payment, attribute)) for name, attribute in _PARAMS.items()
             if getattr(payment, attribute) is not None]
    for name, value in payment.other.items():
        if name in _PARAMS or not name:
            raise QrInvalidField(f"UPI parameter {name!r} in `other` clashes or is empty")
        pairs.append((name, value))
    query = "&".join(f"{quote(name, safe='')}={quote(value, safe='@')}" for name, value in pairs)
    return f"upi://pay?{query}"


def _check(payment: UpiPayment) -> None:
    """Every value non-empty and bounded, the VPA's shape, INR only, a positive amount."""
    values = [value for value in (*[getattr(payment, a) for a in _PARAMS.values()],
                                  *payment.other.values()) if value is not None]
    for value in values:
        if not 1 <= len(value) <= VALUE_LENGTH_MAX:
            raise QrInvalidField(f"UPI values are 1..{VALUE_LENGTH_MAX} characters long")
    if _VPA_RE.fullmatch(payment.payee_address) is None or not payment.payee_address.isascii():
        raise QrInvalidField(f"payee address {payment.payee_address!r} is not a VPA"
                             " such as name@bank")
    if payment.currency.upper() != UPI_CURRENCY:
        raise QrUnsupported(f"UPI moves only INR, not {payment.currency!r}")
    if payment.amount is not None:
        check_amount(payment.amount, where="UPI amount (am)")
        if "." in payment.amount and len(payment.amount.partition(".")[2]) > UPI_SCALE:
            raise QrInvalidAmount(f"UPI amount {payment.amount!r} has more than"
                                  f" {UPI_SCALE} decimal places")
    if payment.merchant_category_code is not None and not (
            len(payment.merchant_category_code) == 4
            and payment.merchant_category_code.isascii()
            and payment.merchant_category_code.isdigit()):
        raise QrInvalidField("merchant category code (mc) must be 4 digits")
