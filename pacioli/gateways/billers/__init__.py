"""Billers: the `Biller` Protocol and its types (`base`), and the sandbox billers
(`sandbox`) that play real ones, with magic customer references for every outcome."""

from pacioli.gateways.billers.base import (
    AmountRule,
    Bill,
    Biller,
    BillerCategory,
    BillerInfo,
    BillerPayment,
    BillerRegistry,
    BillerStatus,
    Presentment,
    amount_allowed,
)

__all__ = [
    "AmountRule",
    "Bill",
    "Biller",
    "BillerCategory",
    "BillerInfo",
    "BillerPayment",
    "BillerRegistry",
    "BillerStatus",
    "Presentment",
    "amount_allowed",
]
