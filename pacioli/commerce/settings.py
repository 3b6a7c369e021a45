"""Commerce settings, from the environment (prefix PACIOLI_COMMERCE_)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class CommerceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PACIOLI_COMMERCE_")

    # A cart nobody touched for this long expires (its lines are kept, it is no longer
    # the owner's current cart). Amazon-style carts live long; 30 days by default.
    cart_idle_seconds: int = 30 * 24 * 3600
    # How often the expiry jobs (reservations, idle carts) run in the workers.
    expiry_interval_seconds: float = 30.0
    # A supplier registering without a low-stock threshold gets this one.
    low_stock_threshold_default: int = 5


@lru_cache
def commerce_settings() -> CommerceSettings:
    return CommerceSettings()
