"""Checkout's and orders' settings, from the environment (prefix PACIOLI_COMMERCE_)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pacioli.commerce.order_split import COMMISSION_BPS_DEFAULT


class OrderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PACIOLI_COMMERCE_", extra="ignore")

    # The platform's commission on a supplier's goods, in basis points (500 = 5%).
    commission_bps: int = Field(COMMISSION_BPS_DEFAULT, ge=0, le=10000)
    # Stock stays reserved this long for a checkout whose payment is not decided yet (a
    # 3DS card, say); after it the reservation expires and the units are on sale again.
    reservation_seconds: int = Field(15 * 60, ge=60, le=24 * 3600)
    # How often the workers settle what a callback did not (payments still deciding,
    # captures, voids and refunds a crash or an unreachable gateway left).
    sweep_interval_seconds: float = Field(30.0, gt=0)


@lru_cache
def order_settings() -> OrderSettings:
    return OrderSettings()
