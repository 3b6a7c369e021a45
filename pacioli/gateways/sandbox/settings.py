"""The sandbox processor's settings, from the environment (prefix PACIOLI_SANDBOX_)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class SandboxSettings(BaseSettings):
    """Where the sandbox sends callbacks, how it signs them and how slow it pretends to be."""

    model_config = SettingsConfigDict(env_prefix="PACIOLI_SANDBOX_")

    # Callbacks go to f"{callback_base_url}/v1/gateways/sandbox/callbacks".
    callback_base_url: str = "http://127.0.0.1:8000"
    # A sandbox moves no real money, so a known default secret is acceptable for local
    # runs; set PACIOLI_SANDBOX_SIGNING_SECRET in any shared deployment.
    signing_secret: str = "whsec_sandbox_development_only"
    # How long an asynchronous outcome (3DS card, bank debit, payout) takes.
    async_delay_seconds: float = 2.0
    # How long the "delayed" bank account takes to settle.
    delayed_seconds: float = 86_400.0
    # After this, the timeout card's authorization reports failed/timeout.
    authorization_timeout_seconds: float = 30.0
    # Callback delivery: attempts before giving up, and exponential backoff between them.
    callback_attempts_max: int = 8
    callback_retry_base_seconds: float = 5.0
    callback_retry_max_seconds: float = 3_600.0
    # A claimed callback is retried by another deliverer if not settled within this.
    callback_lease_seconds: float = 60.0
    delivery_batch_size: int = 100

    @property
    def callback_url(self) -> str:
        return self.callback_base_url.rstrip("/") + "/v1/gateways/sandbox/callbacks"


@lru_cache
def get_sandbox_settings() -> SandboxSettings:
    return SandboxSettings()
