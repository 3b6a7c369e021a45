"""What an EMVCo merchant-presented QR says: frozen dataclasses, free of any wire format.

`emvco.py` turns these into payload strings and back. Every value is a string exactly as
the payload carries it (amounts included); helpers convert where a caller needs more.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pacioli.gateways.qr.amounts import amount_to_minor, currency_by_numeric


class PointOfInitiation(enum.StrEnum):
    """Field 01: a static QR is shown for many payments, a dynamic one for one payment."""

    STATIC = "11"
    DYNAMIC = "12"


@dataclass(frozen=True)
class MerchantAccount:
    """Merchant account information, one of fields 02-51.

    Ids 02-25 are primitive (a card network's merchant id, in `value`); ids 26-51 are
    templates whose subfields are in `fields`, subfield "00" being the globally unique
    identifier (GUI) of the payment system, e.g. "br.gov.bcb.pix".
    """

    id: str
    value: str | None = None
    fields: dict[str, str] = field(default_factory=dict)

    @classmethod
    def template(cls, id: str, gui: str, **subfields: str) -> MerchantAccount:
        """A template account (26-51): `gui` in subfield 00, then `subfields` ("01"=...)."""
        return cls(id=id, fields={"00": gui, **subfields})

    @property
    def gui(self) -> str | None:
        """The payment system's globally unique identifier, for a template account."""
        return self.fields.get("00")

    def to_dict(self) -> dict[str, Any]:
        if self.value is not None:
            return {"id": self.id, "value": self.value}
        return {"id": self.id, "gui": self.gui, "fields": dict(self.fields)}


@dataclass(frozen=True)
class AdditionalData:
    """The additional data field template, field 62.

    `expires_at` is Pacioli's own subfield (see `emvco.PACIOLI_GUI`): EMVCo has no expiry,
    so Pacioli carries it in a payment-system-specific template (62, ids 50-99).
    `other` keeps every other subfield, raw, so a payload decodes and encodes back whole.
    """

    bill_number: str | None = None
    mobile_number: str | None = None
    store_label: str | None = None
    loyalty_number: str | None = None
    reference_label: str | None = None
    customer_label: str | None = None
    terminal_label: str | None = None
    purpose_of_transaction: str | None = None
    consumer_data_request: str | None = None
    expires_at: datetime | None = None
    other: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            name: getattr(self, name) for name in ADDITIONAL_DATA_IDS.values()
            if getattr(self, name) is not None
        }
        if self.expires_at is not None:
            shown["expires_at"] = self.expires_at.isoformat()
        if self.other:
            shown["other"] = dict(self.other)
        return shown


# Subfield ids of template 62 and the attribute each fills (EMVCo MPM 4.8).
ADDITIONAL_DATA_IDS = {
    "01": "bill_number",
    "02": "mobile_number",
    "03": "store_label",
    "04": "loyalty_number",
    "05": "reference_label",
    "06": "customer_label",
    "07": "terminal_label",
    "08": "purpose_of_transaction",
    "09": "consumer_data_request",
}


@dataclass(frozen=True)
class MerchantLanguage:
    """The merchant information language template, field 64: name and city in another language.

    `language_preference` is an ISO 639 two-letter code ("ZH"); `other` keeps RFU subfields.
    """

    language_preference: str
    merchant_name: str
    merchant_city: str | None = None
    other: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"language_preference": self.language_preference,
                                 "merchant_name": self.merchant_name}
        if self.merchant_city is not None:
            shown["merchant_city"] = self.merchant_city
        if self.other:
            shown["other"] = dict(self.other)
        return shown


@dataclass(frozen=True)
class EmvcoPayload:
    """The fields of an EMVCo merchant-presented QR payload.

    Build one to encode (`crc` and `crc_valid` stay None); `decode_emvco` returns one with
    `crc` as found in the payload (upper-cased) and `crc_valid` telling whether it matches.
    `currency_numeric` is the ISO 4217 numeric code of field 53 ("986"); `amount` is field
    54 as a decimal string ("10.50"), None for a QR where the payer enters the amount.
    `other` keeps fields 65-99 (reserved for future use, unreserved templates) raw.
    """

    merchant_name: str
    merchant_city: str
    country_code: str
    merchant_category_code: str
    currency_numeric: str
    merchant_accounts: tuple[MerchantAccount, ...]
    point_of_initiation: PointOfInitiation | None = None
    amount: str | None = None
    tip_indicator: str | None = None
    convenience_fee_fixed: str | None = None
    convenience_fee_percentage: str | None = None
    postal_code: str | None = None
    additional_data: AdditionalData | None = None
    language: MerchantLanguage | None = None
    other: dict[str, str] = field(default_factory=dict)
    payload_format_indicator: str = "01"
    crc: str | None = None
    crc_valid: bool | None = None

    @property
    def currency(self) -> str | None:
        """The ISO 4217 alpha code of field 53 ("BRL"), None if the codec does not know it."""
        known = currency_by_numeric(self.currency_numeric)
        return known.alpha if known else None

    @property
    def is_dynamic(self) -> bool:
        """True for a QR made for one payment (field 01 is 12)."""
        return self.point_of_initiation is PointOfInitiation.DYNAMIC

    @property
    def reference(self) -> str | None:
        """The reference label (62, subfield 05): Pacioli's id for a dynamic QR's payment."""
        return self.additional_data.reference_label if self.additional_data else None

    @property
    def expires_at(self) -> datetime | None:
        """When a dynamic QR stops being payable (Pacioli's subfield of 62), if it says."""
        return self.additional_data.expires_at if self.additional_data else None

    def is_expired(self, at: datetime) -> bool:
        """True if the QR carries an expiry and `at` (timezone-aware) is at or after it."""
        return self.expires_at is not None and at >= self.expires_at

    def amount_minor(self, scale: int) -> int | None:
        """Field 54 in int minor units at `scale`, None when the payer enters the amount.

        Raises: QrInvalidAmount (more decimals than `scale`).
        """
        return None if self.amount is None else amount_to_minor(self.amount, scale)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field present, with `format` and `crc_valid` first."""
        point = self.point_of_initiation
        shown: dict[str, Any] = {
            "format": "emvco",
            "crc_valid": self.crc_valid,
            "crc": self.crc,
            "payload_format_indicator": self.payload_format_indicator,
            "point_of_initiation": point.name.lower() if point else None,
            "merchant_accounts": [account.to_dict() for account in self.merchant_accounts],
            "merchant_category_code": self.merchant_category_code,
            "currency": self.currency,
            "currency_numeric": self.currency_numeric,
            "amount": self.amount,
        }
        for name in ("tip_indicator", "convenience_fee_fixed", "convenience_fee_percentage"):
            if getattr(self, name) is not None:
                shown[name] = getattr(self, name)
        shown.update(country_code=self.country_code, merchant_name=self.merchant_name,
                     merchant_city=self.merchant_city, postal_code=self.postal_code,
                     reference=self.reference,
                     expires_at=self.expires_at.isoformat() if self.expires_at else None)
        if self.additional_data is not None:
            shown["additional_data"] = self.additional_data.to_dict()
        if self.language is not None:
            shown["language"] = self.language.to_dict()
        if self.other:
            shown["other"] = dict(self.other)
        return shown
